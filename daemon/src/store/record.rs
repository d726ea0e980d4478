//! What the store keeps about a notification, and its on-disk layout.
//!
//! A record is split in two values under the same id: the *meta* (everything that changes or is
//! small) and the *body* (the canonical payload, written once at accept time). Attempt updates
//! rewrite only the meta, so a retry storm does not rewrite kilobytes of payload per attempt.
//!
//! Meta layout, version 1 (all integers little-endian; `str` = LEB128 length + UTF-8 bytes):
//!
//! ```text
//! u8 version (=1) | u8 api tag | u8 state | u8 flags | varint attempts
//! u128 idem_key | u128 fingerprint | u64 accepted_at
//! [u64 next_attempt_at] [u64 finished_at] [u64 delivery_started_at]   (flags bits 0, 1, 6)
//! str profile | str url | str order_key
//! [str last_result] [str payment_id] [str payment_request_id] [str partner_id]   (flags bits 2..5)
//! [varint more | [str acquirer_id] [str psp_id] [u128 hook_of]]   (flags bit 7; `more` bits 0..2)
//! ```
//!
//! Fields are only ever added behind a flag bit that was zero in every record written before, so
//! records written by earlier versions still decode (with the new fields absent); `more` is a
//! varint so later fields need no new format version. A record that uses a new field is refused
//! as corrupt by a version that does not know its bit, rather than misread.
//!
//! The id is the table key and is not repeated inside the value. Decoding checks every length and
//! that nothing trails, and answers [`StoreError::Corrupt`] instead of panicking.

use bytes::Bytes;
pub use notifyd_core::ack::ReceiverIds;
use notifyd_core::{Api, NotificationId, UnixMillis};

use super::error::StoreError;

const FORMAT_V1: u8 = 1;

const F_NEXT_ATTEMPT: u8 = 1 << 0;
const F_FINISHED: u8 = 1 << 1;
const F_LAST_RESULT: u8 = 1 << 2;
const F_PAYMENT_ID: u8 = 1 << 3;
const F_PAYMENT_REQUEST_ID: u8 = 1 << 4;
const F_PARTNER_ID: u8 = 1 << 5;
const F_DELIVERY_STARTED: u8 = 1 << 6;
/// A `more` varint of further flags follows the optional strings.
const F_MORE: u8 = 1 << 7;

const M_ACQUIRER_ID: u64 = 1 << 0;
const M_PSP_ID: u64 = 1 << 1;
const M_HOOK_OF: u64 = 1 << 2;
const M_KNOWN: u64 = (1 << 3) - 1;

/// Where a notification is in its life (CONTRACT.md §2, `state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Waiting for its next attempt, or for an earlier notification of the same payment.
    Pending,
    /// The receiver answered `S`.
    Delivered,
    /// The receiver answered a permanent `F`.
    Failed,
    /// Attempts or deadline exhausted without a final answer.
    Dead,
}

impl State {
    /// The contract's name for the state.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Delivered => "delivered",
            State::Failed => "failed",
            State::Dead => "dead",
        }
    }

    /// True for the states a notification never leaves on its own (all but `pending`).
    pub const fn is_finished(self) -> bool {
        !matches!(self, State::Pending)
    }

    /// True for the states listed as dead letters and allowed to be redelivered.
    pub const fn is_dead_letter(self) -> bool {
        matches!(self, State::Failed | State::Dead)
    }

    pub(crate) const fn tag(self) -> u8 {
        match self {
            State::Pending => 1,
            State::Delivered => 2,
            State::Failed => 3,
            State::Dead => 4,
        }
    }

    pub(crate) const fn from_tag(tag: u8) -> Option<State> {
        match tag {
            1 => Some(State::Pending),
            2 => Some(State::Delivered),
            3 => Some(State::Failed),
            4 => Some(State::Dead),
            _ => None,
        }
    }
}

/// Everything the store holds about one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    pub id: NotificationId,
    pub api: Api,
    pub profile: String,
    pub url: String,
    /// The canonical encoded payload, sent byte-identical on every attempt.
    pub body: Bytes,
    pub idem_key: u128,
    pub fingerprint: u128,
    /// Per-payment ordering key (`host|paymentId`), built by the caller.
    pub order_key: String,
    /// Lookup keys for `inquiryPayment`.
    pub payment_id: Option<String>,
    pub payment_request_id: Option<String>,
    pub partner_id: Option<String>,
    pub state: State,
    pub attempts: u32,
    pub last_result: Option<String>,
    pub accepted_at: UnixMillis,
    pub next_attempt_at: Option<UnixMillis>,
    /// Set when the record reaches a finished state; drives dead-letter order and pruning.
    pub finished_at: Option<UnixMillis>,
    /// When the current delivery started: accept, or the latest redeliver. The retry deadline
    /// counts from here after a restart. `None` in records written before it was kept.
    pub delivery_started_at: Option<UnixMillis>,
    /// What the receiver's latest answer said about who it is (Alipay+ `acquirerId`, `pspId`).
    pub receiver_ids: ReceiverIds,
    /// Set on a dead-letter hook (`dead_letter.rs`): the notification whose end it reports. A
    /// hook that ends dead or failed itself fires no hook, so this is kept with the record.
    pub hook_of: Option<NotificationId>,
}

/// The outcome of one attempt (or of a scheduling decision) to write back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptUpdate {
    pub id: NotificationId,
    /// The claim this outcome completes ([`Lease::LOCAL`](super::Lease::LOCAL) on the embedded
    /// store); a store refuses the update when it is no longer the notification's.
    pub lease: super::Lease,
    pub state: State,
    pub attempts: u32,
    pub last_result: Option<String>,
    pub next_attempt_at: Option<UnixMillis>,
    /// Should be set for finished states; when missing the store uses `accepted_at` so the
    /// record still ages out.
    pub finished_at: Option<UnixMillis>,
    /// Replaces the stored ids when the answer named either; `None` keeps them (an answer that
    /// names neither, a timeout, says nothing new about who the receiver is).
    pub receiver_ids: Option<ReceiverIds>,
}

/// An idempotency entry, kept so duplicates are recognised after a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub key: u128,
    pub fingerprint: u128,
    pub id: NotificationId,
    pub accepted_at: UnixMillis,
}

impl NotificationRecord {
    /// The idempotency entry this record carries.
    pub fn idempotency(&self) -> IdempotencyRecord {
        IdempotencyRecord {
            key: self.idem_key,
            fingerprint: self.fingerprint,
            id: self.id,
            accepted_at: self.accepted_at,
        }
    }

    /// Applies an attempt update's fields (the id is not checked here).
    pub(crate) fn apply(&mut self, u: &AttemptUpdate) {
        self.state = u.state;
        self.attempts = u.attempts;
        self.last_result = u.last_result.clone();
        self.next_attempt_at = u.next_attempt_at;
        self.finished_at = if u.state.is_finished() {
            Some(u.finished_at.unwrap_or(self.accepted_at))
        } else {
            None
        };
        if let Some(ids) = &u.receiver_ids {
            self.receiver_ids = ids.clone();
        }
    }
}

/// Encodes everything but `id` and `body` (see the module doc for the layout).
pub(crate) fn encode_meta(r: &NotificationRecord, out: &mut Vec<u8>) {
    let mut flags = 0u8;
    let opt_flag = |present: bool, bit: u8| if present { bit } else { 0 };
    flags |= opt_flag(r.next_attempt_at.is_some(), F_NEXT_ATTEMPT);
    flags |= opt_flag(r.finished_at.is_some(), F_FINISHED);
    flags |= opt_flag(r.last_result.is_some(), F_LAST_RESULT);
    flags |= opt_flag(r.payment_id.is_some(), F_PAYMENT_ID);
    flags |= opt_flag(r.payment_request_id.is_some(), F_PAYMENT_REQUEST_ID);
    flags |= opt_flag(r.partner_id.is_some(), F_PARTNER_ID);
    flags |= opt_flag(r.delivery_started_at.is_some(), F_DELIVERY_STARTED);
    let ids = &r.receiver_ids;
    let mut more = 0u64;
    more |= if ids.acquirer_id.is_some() {
        M_ACQUIRER_ID
    } else {
        0
    };
    more |= if ids.psp_id.is_some() { M_PSP_ID } else { 0 };
    more |= if r.hook_of.is_some() { M_HOOK_OF } else { 0 };
    flags |= opt_flag(more != 0, F_MORE);

    out.reserve(64 + r.profile.len() + r.url.len() + r.order_key.len());
    out.extend_from_slice(&[FORMAT_V1, r.api.tag(), r.state.tag(), flags]);
    put_varint(out, u64::from(r.attempts));
    out.extend_from_slice(&r.idem_key.to_le_bytes());
    out.extend_from_slice(&r.fingerprint.to_le_bytes());
    out.extend_from_slice(&r.accepted_at.0.to_le_bytes());
    for t in [r.next_attempt_at, r.finished_at, r.delivery_started_at]
        .into_iter()
        .flatten()
    {
        out.extend_from_slice(&t.0.to_le_bytes());
    }
    for s in [&r.profile, &r.url, &r.order_key] {
        put_str(out, s);
    }
    let optional = [
        &r.last_result,
        &r.payment_id,
        &r.payment_request_id,
        &r.partner_id,
    ];
    for s in optional.into_iter().flatten() {
        put_str(out, s);
    }
    if more != 0 {
        put_varint(out, more);
        for s in [&ids.acquirer_id, &ids.psp_id].into_iter().flatten() {
            put_str(out, s);
        }
        if let Some(of) = r.hook_of {
            out.extend_from_slice(&of.as_u128().to_le_bytes());
        }
    }
}

/// Decodes a meta value written by [`encode_meta`] and joins it with its id and body.
pub(crate) fn decode_meta(
    id: NotificationId,
    bytes: &[u8],
    body: Bytes,
) -> Result<NotificationRecord, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("notification {id}: {what}"));
    let mut r = Reader { buf: bytes };
    let version = r.u8().ok_or_else(|| corrupt("empty record"))?;
    if version != FORMAT_V1 {
        return Err(corrupt(&format!("unknown record format {version}")));
    }
    let truncated = || corrupt("truncated record");
    let api_tag = r.u8().ok_or_else(truncated)?;
    let api = Api::from_tag(api_tag).ok_or_else(|| corrupt(&format!("unknown api {api_tag}")))?;
    let state_tag = r.u8().ok_or_else(truncated)?;
    let state =
        State::from_tag(state_tag).ok_or_else(|| corrupt(&format!("unknown state {state_tag}")))?;
    let flags = r.u8().ok_or_else(truncated)?;
    let attempts = r.varint().ok_or_else(truncated)?;
    let attempts = u32::try_from(attempts).map_err(|_| corrupt("attempts out of range"))?;
    let idem_key = r.u128().ok_or_else(truncated)?;
    let fingerprint = r.u128().ok_or_else(truncated)?;
    let accepted_at = UnixMillis(r.u64().ok_or_else(truncated)?);
    let mut time_if = |bit: u8| -> Result<Option<UnixMillis>, StoreError> {
        if flags & bit == 0 {
            return Ok(None);
        }
        r.u64().map(|v| Some(UnixMillis(v))).ok_or_else(truncated)
    };
    let next_attempt_at = time_if(F_NEXT_ATTEMPT)?;
    let finished_at = time_if(F_FINISHED)?;
    let delivery_started_at = time_if(F_DELIVERY_STARTED)?;
    let bad_str = || corrupt("truncated or non-UTF-8 string");
    let profile = r.string().ok_or_else(bad_str)?;
    let url = r.string().ok_or_else(bad_str)?;
    let order_key = r.string().ok_or_else(bad_str)?;
    let mut str_if = |bit: u8| -> Result<Option<String>, StoreError> {
        if flags & bit == 0 {
            return Ok(None);
        }
        r.string().map(Some).ok_or_else(bad_str)
    };
    let last_result = str_if(F_LAST_RESULT)?;
    let payment_id = str_if(F_PAYMENT_ID)?;
    let payment_request_id = str_if(F_PAYMENT_REQUEST_ID)?;
    let partner_id = str_if(F_PARTNER_ID)?;
    let more = if flags & F_MORE == 0 {
        0
    } else {
        let more = r.varint().ok_or_else(truncated)?;
        if more == 0 || more & !M_KNOWN != 0 {
            return Err(corrupt(&format!("unknown further flags {more:#x}")));
        }
        more
    };
    let mut more_str = |bit: u64| -> Result<Option<String>, StoreError> {
        if more & bit == 0 {
            return Ok(None);
        }
        r.string().map(Some).ok_or_else(bad_str)
    };
    let receiver_ids = ReceiverIds {
        acquirer_id: more_str(M_ACQUIRER_ID)?,
        psp_id: more_str(M_PSP_ID)?,
    };
    let hook_of = if more & M_HOOK_OF == 0 {
        None
    } else {
        Some(NotificationId::from_u128(r.u128().ok_or_else(truncated)?))
    };
    if !r.buf.is_empty() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(NotificationRecord {
        id,
        api,
        profile,
        url,
        body,
        idem_key,
        fingerprint,
        order_key,
        payment_id,
        payment_request_id,
        partner_id,
        state,
        attempts,
        last_result,
        accepted_at,
        next_attempt_at,
        finished_at,
        delivery_started_at,
        receiver_ids,
        hook_of,
    })
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.buf.split_first_chunk::<N>()?;
        self.buf = rest;
        Some(*head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }

    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }

    fn u128(&mut self) -> Option<u128> {
        self.take().map(u128::from_le_bytes)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.varint()?).ok()?;
        if len > self.buf.len() {
            return None;
        }
        let (s, rest) = self.buf.split_at(len);
        self.buf = rest;
        std::str::from_utf8(s).ok().map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(all: bool) -> NotificationRecord {
        let some = |s: &str| all.then(|| s.to_owned());
        NotificationRecord {
            id: NotificationId::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_6677),
            api: Api::AlipayPlusNotifyPayment,
            profile: "défaut-支付".into(),
            url: "https://merchant.example.com/notify?x=ü".into(),
            body: Bytes::from_static(b"{\"paymentId\":\"p1\"}"),
            idem_key: u128::MAX - 7,
            fingerprint: 42,
            order_key: "merchant.example.com|p1".into(),
            payment_id: some("p1"),
            payment_request_id: some("请求-1"),
            partner_id: some("P0001"),
            state: if all { State::Dead } else { State::Pending },
            attempts: if all { 300 } else { 0 },
            last_result: some("U UNKNOWN_EXCEPTION: 超时"),
            accepted_at: UnixMillis(1_700_000_000_000),
            next_attempt_at: all.then_some(UnixMillis(1_700_000_120_000)),
            finished_at: all.then_some(UnixMillis(u64::MAX)),
            delivery_started_at: all.then_some(UnixMillis(1_700_000_060_000)),
            receiver_ids: ReceiverIds {
                acquirer_id: some("acq-蚂蚁-1"),
                psp_id: some("PSP_0001"),
            },
            hook_of: None,
        }
    }

    /// `sample(false)` and `sample(true)` as the code before `delivery_started_at` and the
    /// receiver ids encoded them (captured from that code's `encode_meta`, commit 46cf0c0).
    const OLD_MINIMAL: &str = "0103010000f8ffffffffffffffffffffffffffffff2a00000000000000000000000000000000\
        68e5cf8b0100000e64c3a9666175742de694afe4bb982868747470733a2f2f6d65726368616e742e6578616d70\
        6c652e636f6d2f6e6f746966793f783dc3bc176d65726368616e742e6578616d706c652e636f6d7c7031";
    const OLD_FULL: &str = "0103043fac02f8ffffffffffffffffffffffffffffff2a00000000000000000000000000000000\
        68e5cf8b010000c03ce7cf8b010000ffffffffffffffff0e64c3a9666175742de694afe4bb982868747470733a\
        2f2f6d65726368616e742e6578616d706c652e636f6d2f6e6f746966793f783dc3bc176d65726368616e742e65\
        78616d706c652e636f6d7c70311b5520554e4b4e4f574e5f455843455054494f4e3a20e8b685e697b602703108\
        e8afb7e6b1822d31055030303031";

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn records_written_before_the_new_fields_still_decode() {
        for (hex, all) in [(OLD_MINIMAL, false), (OLD_FULL, true)] {
            let mut want = sample(all);
            want.delivery_started_at = None;
            want.receiver_ids = ReceiverIds::default();
            let got = decode_meta(want.id, &unhex(hex), want.body.clone()).expect("decodes");
            assert_eq!(got, want);
            // And a record without the new fields is written exactly as before, so an older
            // binary still reads it.
            let mut again = Vec::new();
            encode_meta(&got, &mut again);
            assert_eq!(again, unhex(hex));
        }
    }

    #[test]
    fn unknown_further_flags_are_corrupt() {
        let r = sample(true);
        let buf = round_trip(&r);
        // The `more` varint sits right after the four optional strings: find it by re-encoding
        // without the ids and comparing lengths.
        let mut bare = r.clone();
        bare.receiver_ids = ReceiverIds::default();
        let mut without = Vec::new();
        encode_meta(&bare, &mut without);
        let at = without.len();
        assert_eq!(buf[at], 0b11, "both ids flagged");
        let mut future = buf.clone();
        future[at] = 0b1011;
        let err = decode_meta(r.id, &future, Bytes::new()).unwrap_err();
        assert!(err.to_string().contains("unknown further flags"), "{err}");
    }

    #[test]
    fn a_hook_keeps_the_id_it_reports_on() {
        for all in [false, true] {
            let mut r = sample(all);
            r.hook_of = Some(NotificationId::from_u128(u128::MAX - 1));
            let buf = round_trip(&r);
            // Cut anywhere inside the trailing id: corrupt, never a different id.
            for cut in 1..16 {
                assert!(decode_meta(r.id, &buf[..buf.len() - cut], Bytes::new()).is_err());
            }
        }
    }

    fn round_trip(r: &NotificationRecord) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_meta(r, &mut buf);
        let back = decode_meta(r.id, &buf, r.body.clone()).expect("decodes");
        assert_eq!(&back, r);
        buf
    }

    #[test]
    fn round_trips_with_every_option_absent_and_present() {
        round_trip(&sample(false));
        round_trip(&sample(true));
        // Each optional alone, so a flag bit mix-up between neighbours shows.
        let base = sample(false);
        let mut variants = Vec::new();
        let mut v = base.clone();
        v.last_result = Some("x".into());
        variants.push(v);
        let mut v = base.clone();
        v.payment_request_id = Some("y".into());
        variants.push(v);
        let mut v = base.clone();
        v.finished_at = Some(UnixMillis(5));
        variants.push(v);
        let mut v = base.clone();
        v.partner_id = Some(String::new());
        variants.push(v);
        let mut v = base.clone();
        v.delivery_started_at = Some(UnixMillis(7));
        variants.push(v);
        let mut v = base.clone();
        v.receiver_ids.acquirer_id = Some("a".into());
        variants.push(v);
        let mut v = base;
        v.receiver_ids.psp_id = Some("p".into());
        variants.push(v);
        for v in &variants {
            round_trip(v);
        }
    }

    #[test]
    fn every_truncation_and_bad_version_is_corrupt_not_a_panic() {
        let r = sample(true);
        let buf = round_trip(&r);
        for len in 0..buf.len() {
            let err = decode_meta(r.id, &buf[..len], Bytes::new()).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt(_)), "len {len}: {err:?}");
        }
        let mut trailing = buf.clone();
        trailing.push(0);
        assert!(matches!(
            decode_meta(r.id, &trailing, Bytes::new()),
            Err(StoreError::Corrupt(_))
        ));
        let mut future = buf.clone();
        future[0] = 9;
        assert!(matches!(
            decode_meta(r.id, &future, Bytes::new()),
            Err(StoreError::Corrupt(_))
        ));
        let mut bad_api = buf;
        bad_api[1] = 0;
        assert!(matches!(
            decode_meta(r.id, &bad_api, Bytes::new()),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn garbage_never_panics() {
        // A cheap deterministic fuzz: flip every byte of a valid record through a few values.
        let r = sample(true);
        let buf = round_trip(&r);
        for i in 0..buf.len() {
            for x in [0x00u8, 0x7f, 0x80, 0xff] {
                let mut b = buf.clone();
                b[i] = x;
                let _ = decode_meta(r.id, &b, Bytes::new());
            }
        }
    }

    #[test]
    fn update_sets_finished_at_only_for_finished_states() {
        let mut r = sample(false);
        let mut u = AttemptUpdate {
            lease: crate::store::Lease::LOCAL,
            id: r.id,
            state: State::Dead,
            attempts: 8,
            last_result: Some("timeout".into()),
            next_attempt_at: None,
            finished_at: None,
            receiver_ids: None,
        };
        r.apply(&u);
        assert_eq!(r.finished_at, Some(r.accepted_at));
        u.state = State::Pending;
        u.finished_at = Some(UnixMillis(9));
        r.apply(&u);
        assert_eq!(r.finished_at, None);
        assert_eq!(r.attempts, 8);
        let ids = ReceiverIds {
            acquirer_id: Some("A1".into()),
            psp_id: None,
        };
        u.receiver_ids = Some(ids.clone());
        r.apply(&u);
        assert_eq!(r.receiver_ids, ids);
        u.receiver_ids = None;
        r.apply(&u);
        assert_eq!(r.receiver_ids, ids, "an answer naming neither keeps them");
    }
}
