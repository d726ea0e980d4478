//! A batch of notification records as the column arrays `unnest` turns back into rows: the
//! shape in which accepts (`accept.rs`) and dead-letter hooks (`hooks.rs`) insert alike.

use std::borrow::Cow;

use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

use super::{millis, order_hash, text, uid};
use crate::store::NotificationRecord;

/// One typed statement parameter.
pub(super) type Param<'a> = (&'a (dyn ToSql + Sync), Type);

/// The columns of `nd_notification` (and the queue's order hash and due time), one array each.
pub(super) struct RecordColumns<'a> {
    pub(super) ids: Vec<Uuid>,
    apis: Vec<i16>,
    pub(super) profiles: Vec<&'a str>,
    urls: Vec<&'a str>,
    bodies: Vec<&'a [u8]>,
    pub(super) keys: Vec<Uuid>,
    pub(super) fps: Vec<Uuid>,
    // NUL-safe (`text`): the fields a sender chose.
    order_keys: Vec<Cow<'a, str>>,
    payment_ids: Vec<Option<Cow<'a, str>>>,
    request_ids: Vec<Option<Cow<'a, str>>>,
    partner_ids: Vec<Option<Cow<'a, str>>>,
    accepted: Vec<i64>,
    hashes: Vec<i64>,
    due: Vec<i64>,
    started: Vec<Option<i64>>,
}

impl<'a> RecordColumns<'a> {
    pub(super) fn of<I>(records: I) -> Self
    where
        I: IntoIterator<Item = &'a NotificationRecord>,
        I::IntoIter: Clone,
    {
        let rs = records.into_iter();
        RecordColumns {
            ids: rs.clone().map(|r| uid(r.id)).collect(),
            apis: rs.clone().map(|r| i16::from(r.api.tag())).collect(),
            profiles: rs.clone().map(|r| r.profile.as_str()).collect(),
            urls: rs.clone().map(|r| r.url.as_str()).collect(),
            bodies: rs.clone().map(|r| r.body.as_ref()).collect(),
            keys: rs.clone().map(|r| Uuid::from_u128(r.idem_key)).collect(),
            fps: rs.clone().map(|r| Uuid::from_u128(r.fingerprint)).collect(),
            order_keys: rs.clone().map(|r| text(&r.order_key)).collect(),
            payment_ids: rs
                .clone()
                .map(|r| r.payment_id.as_deref().map(text))
                .collect(),
            request_ids: rs
                .clone()
                .map(|r| r.payment_request_id.as_deref().map(text))
                .collect(),
            partner_ids: rs
                .clone()
                .map(|r| r.partner_id.as_deref().map(text))
                .collect(),
            accepted: rs.clone().map(|r| millis(r.accepted_at)).collect(),
            hashes: rs.clone().map(|r| order_hash(&r.order_key)).collect(),
            due: rs
                .clone()
                .map(|r| millis(r.next_attempt_at.unwrap_or(r.accepted_at)))
                .collect(),
            started: rs.map(|r| r.delivery_started_at.map(millis)).collect(),
        }
    }

    /// Parameters `$1` to `$15`, in binary: id, api, profile, url, body, idem_key, fingerprint,
    /// order_key, payment_id, payment_request_id, partner_id, accepted_at, order_hash, due_at,
    /// delivery_started_at.
    pub(super) fn params(&self) -> Vec<Param<'_>> {
        let params: [Param<'_>; 15] = [
            (&self.ids, Type::UUID_ARRAY),
            (&self.apis, Type::INT2_ARRAY),
            (&self.profiles, Type::TEXT_ARRAY),
            (&self.urls, Type::TEXT_ARRAY),
            (&self.bodies, Type::BYTEA_ARRAY),
            (&self.keys, Type::UUID_ARRAY),
            (&self.fps, Type::UUID_ARRAY),
            (&self.order_keys, Type::TEXT_ARRAY),
            (&self.payment_ids, Type::TEXT_ARRAY),
            (&self.request_ids, Type::TEXT_ARRAY),
            (&self.partner_ids, Type::TEXT_ARRAY),
            (&self.accepted, Type::INT8_ARRAY),
            (&self.hashes, Type::INT8_ARRAY),
            (&self.due, Type::INT8_ARRAY),
            (&self.started, Type::INT8_ARRAY),
        ];
        Vec::from(params)
    }
}
