//! Which fields make a notification's idempotency key and which are its key fields
//! (CONTRACT.md §2), hashed with [`KeyHasher`].

use super::{Fingerprint, IdempotencyKey, KeyHasher};
use crate::envelope::Envelope;
use crate::model::{Amount, ExtraFields, ExtraValue, Notification, ResultInfo};

/// Hash domains: the API tag is folded in so equal ids of different APIs never collide.
const KEY_DOMAIN: u8 = 0x10;
const FINGERPRINT_DOMAIN: u8 = 0x20;

impl Envelope {
    /// The idempotency key and the key-field fingerprint of this notification:
    ///
    /// | api | key | key fields |
    /// |---|---|---|
    /// | notifyPayment | profile, partnerId, paymentRequestId | url, paymentId, paymentAmount, paymentStatus |
    /// | alipayplus.notifyPayment | profile, paymentRequestId | url, paymentAmount, paymentResult, paymentId, payToAmount, customerId, customsDeclarationAmount |
    /// | notifyVoid | profile, paymentId, voidRequestId | url, voidResult, voidAmount |
    ///
    /// A result counts by its status and code; its `resultMessage` is wording ("success" and
    /// "Success" are one result). Forwarded fields are key fields of every api. Fields added
    /// after the first version are hashed only when present, so a body without them keeps the
    /// fingerprint it had: stores written by earlier versions still deduplicate.
    pub fn idempotency(&self) -> (IdempotencyKey, Fingerprint) {
        self.hash(ResultParts::StatusAndCode)
    }

    /// The fingerprint earlier versions computed (a result's `resultMessage` included), when
    /// it differs from [`Envelope::idempotency`]'s: a repeat of a notification an earlier version
    /// accepted and stored is judged against this one. `None` when the two agree, or when the
    /// body holds fields earlier versions refused (they can have stored no such notification).
    pub fn legacy_fingerprint(&self) -> Option<Fingerprint> {
        let message = match &self.notification {
            Notification::NotifyPayment(_) => None,
            Notification::NotifyVoid(n) => n.void_result.result_message.as_ref(),
            Notification::AlipayPlusNotifyPayment(n) if n.customs_declaration_amount.is_none() => {
                n.payment_result.result_message.as_ref()
            }
            Notification::AlipayPlusNotifyPayment(_) => None,
        };
        if message.is_none() || !self.extra.is_empty() {
            return None;
        }
        Some(self.hash(ResultParts::WithMessage).1)
    }

    fn hash(&self, results: ResultParts) -> (IdempotencyKey, Fingerprint) {
        let tag = self.api.tag();
        let mut key = KeyHasher::new(KEY_DOMAIN | tag);
        let mut fp = KeyHasher::new(FINGERPRINT_DOMAIN | tag);
        key.part(self.profile.as_bytes());
        fp.part(self.url.as_bytes());
        match &self.notification {
            Notification::NotifyPayment(n) => {
                key.part(n.partner_id.as_bytes())
                    .part(n.payment_request_id.as_bytes());
                fp.part(n.payment_id.as_bytes());
                amount(&mut fp, Some(&n.payment_amount));
                fp.part(n.payment_status.as_bytes());
            }
            Notification::AlipayPlusNotifyPayment(n) => {
                key.part(n.payment_request_id.as_bytes());
                amount(&mut fp, Some(&n.payment_amount));
                result(&mut fp, &n.payment_result, results);
                fp.opt_part(n.payment_id.as_deref().map(str::as_bytes));
                amount(&mut fp, n.pay_to_amount.as_ref());
                fp.opt_part(n.customer_id.as_deref().map(str::as_bytes));
                if let Some(customs) = &n.customs_declaration_amount {
                    fp.part(b"customsDeclarationAmount");
                    amount(&mut fp, Some(customs));
                }
            }
            Notification::NotifyVoid(n) => {
                key.part(n.payment_id.as_bytes())
                    .part(n.void_request_id.as_bytes());
                result(&mut fp, &n.void_result, results);
                amount(&mut fp, n.void_amount.as_ref());
            }
        }
        extra(&mut fp, &self.extra);
        (IdempotencyKey(key.finish()), Fingerprint(fp.finish()))
    }
}

#[derive(Clone, Copy)]
enum ResultParts {
    StatusAndCode,
    WithMessage,
}

fn amount(h: &mut KeyHasher, a: Option<&Amount>) {
    match a {
        Some(a) => h.part(a.currency.as_bytes()).part(a.value.as_bytes()),
        None => h.absent().absent(),
    };
}

fn result(h: &mut KeyHasher, r: &ResultInfo, parts: ResultParts) {
    h.part(r.result_status.as_bytes())
        .part(r.result_code.as_bytes());
    // The message's slot stays, always absent: a result that never had a message hashes as it
    // did when the message was a key field.
    match parts {
        ResultParts::StatusAndCode => h.absent(),
        ResultParts::WithMessage => h.opt_part(r.result_message.as_deref().map(str::as_bytes)),
    };
}

/// Each forwarded field as its name, a shape tag and its value(s); nothing at all when there is
/// none. Names are unique and no known field's, so the parts cannot be read two ways.
fn extra(h: &mut KeyHasher, extra: &ExtraFields) {
    for (name, value) in extra.iter() {
        h.part(name.as_bytes());
        match value {
            ExtraValue::Text(t) => {
                h.part(b"s").part(t.as_bytes());
            }
            ExtraValue::Object(members) => {
                h.part(b"o").part(&(members.len() as u64).to_le_bytes());
                for (k, v) in members {
                    h.part(k.as_bytes()).part(v.as_bytes());
                }
            }
        }
    }
}
