//! Shared payload fixtures for the benchmarks: the core's seed fixtures, as bodies and as
//! ingest envelopes, so every bench measures the same bytes the tests check.
#![forbid(unsafe_code)]

pub mod accept_step;
/// The `notifyd-load` load driver (scenarios in benches/LOAD.md).
pub mod load;

use notifyd_core::Api;

/// The receiver URL every bench envelope carries.
pub const TARGET_URL: &str = "https://merchant.example.com/v1/payments/notifyPayment";

/// One API's seed-sized payload.
#[derive(Debug, Clone, Copy)]
pub struct Fixture {
    /// The API the body belongs to.
    pub api: Api,
    /// The body as stored in `core/tests/fixtures` (pretty-printed, as the seeds show it).
    pub body: &'static [u8],
}

/// The three notification APIs' fixtures, in [`Api::ALL`] order.
pub const FIXTURES: [Fixture; 3] = [
    Fixture {
        api: Api::NotifyPayment,
        body: include_bytes!("../../core/tests/fixtures/notify_payment.json"),
    },
    Fixture {
        api: Api::NotifyVoid,
        body: include_bytes!("../../core/tests/fixtures/notify_void.json"),
    },
    Fixture {
        api: Api::AlipayPlusNotifyPayment,
        body: include_bytes!("../../core/tests/fixtures/alipayplus_notify_payment.json"),
    },
];

impl Fixture {
    /// The body wrapped in an ingest envelope (`{"api","url","body"}`, default profile).
    pub fn envelope(&self) -> Vec<u8> {
        let body = std::str::from_utf8(self.body).expect("fixtures are UTF-8");
        format!(
            r#"{{"api":"{}","url":"{TARGET_URL}","body":{}}}"#,
            self.api.as_str(),
            body.trim_end()
        )
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_envelope_validates_as_its_api() {
        for f in FIXTURES {
            let mut bytes = f.envelope();
            let env = notifyd_core::Envelope::parse(&mut bytes).expect("fixture envelope is valid");
            assert_eq!(env.api, f.api);
            assert_eq!(env.url, TARGET_URL);
        }
    }
}
