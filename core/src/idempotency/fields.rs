//! Which fields make a notification's idempotency key and which are its key fields
//! (CONTRACT.md §2), hashed with [`KeyHasher`].

use super::{Fingerprint, IdempotencyKey, KeyHasher};
use crate::envelope::Envelope;
use crate::model::{Amount, Notification, ResultInfo};

/// Hash domains: the API tag is folded in so equal ids of different APIs never collide.
const KEY_DOMAIN: u8 = 0x10;
const FINGERPRINT_DOMAIN: u8 = 0x20;

impl Envelope {
    /// The idempotency key and the key-field fingerprint of this notification:
    ///
    /// | api | key | key fields |
    /// |---|---|---|
    /// | notifyPayment | profile, partnerId, paymentRequestId | url, paymentId, paymentAmount, paymentStatus |
    /// | alipayplus.notifyPayment | profile, paymentRequestId | url, paymentAmount, paymentResult, paymentId, payToAmount, customerId |
    /// | notifyVoid | profile, paymentId, voidRequestId | url, voidResult, voidAmount |
    pub fn idempotency(&self) -> (IdempotencyKey, Fingerprint) {
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
                result(&mut fp, &n.payment_result);
                fp.opt_part(n.payment_id.as_deref().map(str::as_bytes));
                amount(&mut fp, n.pay_to_amount.as_ref());
                fp.opt_part(n.customer_id.as_deref().map(str::as_bytes));
            }
            Notification::NotifyVoid(n) => {
                key.part(n.payment_id.as_bytes())
                    .part(n.void_request_id.as_bytes());
                result(&mut fp, &n.void_result);
                amount(&mut fp, n.void_amount.as_ref());
            }
        }
        (IdempotencyKey(key.finish()), Fingerprint(fp.finish()))
    }
}

fn amount(h: &mut KeyHasher, a: Option<&Amount>) {
    match a {
        Some(a) => h.part(a.currency.as_bytes()).part(a.value.as_bytes()),
        None => h.absent().absent(),
    };
}

fn result(h: &mut KeyHasher, r: &ResultInfo) {
    h.part(r.result_status.as_bytes())
        .part(r.result_code.as_bytes())
        .opt_part(r.result_message.as_deref().map(str::as_bytes));
}
