//! The answer to an `inquiryPayment` from the notifications notifyd holds (CONTRACT.md §2).
//!
//! A payment's notifications are found by `paymentId`; a `paymentRequestId` is first resolved to
//! the `paymentId`s of its payment notifications, so that the payment's voids (which carry only
//! the `paymentId`) count whichever id the merchant asks by.

use std::collections::BTreeSet;
use std::sync::Arc;

use notifyd_core::Notification;
use notifyd_core::ack::Status;
use notifyd_core::ack::codes::UNKNOWN_EXCEPTION;
use notifyd_core::model::inquiry::Lookup;
use notifyd_core::model::{InquiryRequest, InquiryResponse, ResultInfo};

use crate::app::App;
use crate::metrics;
use crate::store::{NotificationRecord, Store, StoreError};

/// Who is asking, for what the answer may tell.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// The partners whose payments may be told; `None` for the operator (every partner).
    pub partners: Option<Vec<String>>,
}

/// Answers `req` from the store. Store failures answer U `UNKNOWN_EXCEPTION` (retry), as any
/// other "cannot tell now" does.
pub async fn answer(app: &App, req: &InquiryRequest, scope: Scope) -> InquiryResponse {
    let store: Arc<dyn Store> = app.store.clone();
    let lookup = OwnedLookup::from(req);
    let found = tokio::task::spawn_blocking(move || held(store.as_ref(), &lookup, &scope)).await;
    let records = match found {
        Ok(Ok(records)) => records,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "Store read for inquiryPayment failed.");
            return unavailable();
        }
        Err(_) => return unavailable(),
    };
    let held: Vec<Notification> = records.iter().filter_map(readable).collect();
    InquiryResponse::answer(&held).unwrap_or_else(|| {
        if app.inquiry().authoritative {
            InquiryResponse::not_found()
        } else {
            InquiryResponse::unknown()
        }
    })
}

/// The stored notification, or `None` (logged and counted) when its body no longer parses: the
/// store was damaged, or an older version stored what this one refuses. The answer is then made
/// from the others, as before, but an operator hears of it.
fn readable(r: &NotificationRecord) -> Option<Notification> {
    match Notification::parse_stored(r.api, &mut r.body.to_vec()) {
        Ok(n) => Some(n),
        Err(e) => {
            metrics::unreadable_record();
            // The path only: the rule may quote the body.
            tracing::error!(id = %r.id, api = %r.api, field = e.path(), "A stored notification could not be read back; the inquiry answer leaves it out.");
            None
        }
    }
}

fn unavailable() -> InquiryResponse {
    InquiryResponse::result_only(ResultInfo::new(
        Status::U,
        UNKNOWN_EXCEPTION,
        "the store could not be read; retry",
    ))
}

enum OwnedLookup {
    PaymentId {
        partner_id: Option<String>,
        payment_id: String,
    },
    PaymentRequestId {
        partner_id: Option<String>,
        payment_request_id: String,
    },
}

impl OwnedLookup {
    /// The request's lookup (`paymentId` first), with its `partnerId` narrowing either kind.
    fn from(req: &InquiryRequest) -> Self {
        let partner_id = req.partner_id.clone();
        match req.lookup() {
            Lookup::PaymentId(id) => OwnedLookup::PaymentId {
                partner_id,
                payment_id: id.to_owned(),
            },
            Lookup::PaymentRequestId {
                payment_request_id, ..
            } => OwnedLookup::PaymentRequestId {
                partner_id,
                payment_request_id: payment_request_id.to_owned(),
            },
        }
    }

    fn partner_id(&self) -> Option<&str> {
        match self {
            OwnedLookup::PaymentId { partner_id, .. }
            | OwnedLookup::PaymentRequestId { partner_id, .. } => partner_id.as_deref(),
        }
    }
}

/// Every notification of the payment asked about that `scope` may see, in accept order; empty
/// when the payment is unknown or another partner's.
fn held(
    store: &dyn Store,
    lookup: &OwnedLookup,
    scope: &Scope,
) -> Result<Vec<NotificationRecord>, StoreError> {
    let admits = |partner: &str| {
        lookup.partner_id().is_none_or(|p| p == partner)
            && scope
                .partners
                .as_ref()
                .is_none_or(|allowed| allowed.iter().any(|a| a == partner))
    };
    let mut records = match lookup {
        OwnedLookup::PaymentId { payment_id, .. } => store.find_by_payment_id(payment_id)?,
        OwnedLookup::PaymentRequestId {
            partner_id,
            payment_request_id,
        } => {
            let mut by_request =
                store.find_by_payment_request_id(partner_id.as_deref(), payment_request_id)?;
            // Request ids are the merchant's own and may repeat across partners: only the
            // asker's partners' payments are resolved further.
            by_request.retain(|r| match &r.partner_id {
                Some(p) => admits(p),
                None => scope.partners.is_none(),
            });
            let payment_ids: BTreeSet<String> = by_request
                .iter()
                .filter_map(|r| r.payment_id.clone())
                .collect();
            for id in &payment_ids {
                by_request.extend(store.find_by_payment_id(id)?);
            }
            by_request
        }
    };
    records.sort_by_key(|r| (r.accepted_at, r.id));
    records.dedup_by_key(|r| r.id);
    // A payment belongs to the partner its notifyPayment names; voids and Alipay+ results name
    // none, so a merchant (scoped to partners) sees a payment only through its notifyPayment.
    let partners: Vec<&str> = records
        .iter()
        .filter_map(|r| r.partner_id.as_deref())
        .collect();
    let visible = if partners.is_empty() {
        scope.partners.is_none()
    } else {
        partners.iter().any(|p| admits(p))
    };
    if !visible {
        records.clear();
    }
    Ok(records)
}
