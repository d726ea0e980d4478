//! `Amount` (PROTOCOL.md §2.2): an ISO 4217 currency and a positive integer in its minor unit,
//! both JSON strings.

use serde::{Deserialize, Serialize};
use simd_json::BorrowedValue as Value;

use super::fields::{req_str, split};
use crate::error::ValidationError;

/// A money amount as the protocol carries it: `{"currency":"USD","value":"10000"}` is USD 100.00.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Amount {
    /// ISO 4217 alphabetic code of a currency that has a minor unit.
    pub currency: String,
    /// 1 to 16 decimal digits, greater than zero, without leading zeros, in the currency's minor unit.
    pub value: String,
}

impl Amount {
    pub(crate) fn parse(v: &Value<'_>) -> Result<Amount, ValidationError> {
        let [currency, value] = split(v, &["currency", "value"], "Amount")?;
        let currency = req_str(currency, "currency", 3)?;
        if minor_unit(currency).is_none() {
            return Err(ValidationError::new(
                "currency",
                "must be an ISO 4217 currency code that has a minor unit",
            ));
        }
        let value = req_str(value, "value", 16)?;
        if !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValidationError::new("value", "must be 1 to 16 digits"));
        }
        if value.bytes().all(|b| b == b'0') {
            return Err(ValidationError::new("value", "must be greater than zero"));
        }
        // Key fields compare the text: "0100" and "100" of one payment would read as two
        // different amounts, so only the canonical natural number is accepted.
        if value.starts_with('0') {
            return Err(ValidationError::new(
                "value",
                "must not have leading zeros (write 100, not 0100)",
            ));
        }
        Ok(Amount {
            currency: currency.to_owned(),
            value: value.to_owned(),
        })
    }

    /// The currency's minor-unit exponent (2 for USD: `value` counts cents).
    pub fn minor_unit(&self) -> u8 {
        minor_unit(&self.currency).unwrap_or(2)
    }
}

/// Minor-unit exponent of an ISO 4217 currency, or `None` for unknown codes and for
/// metals, funds and testing codes (XAU, XDR, XTS, XXX…), which have no minor unit and are refused.
/// Source: ISO 4217 List One as snapshotted in PROTOCOL.md §2.2 (data version 2026-01-01).
pub fn minor_unit(code: &str) -> Option<u8> {
    let code = code.as_bytes();
    if code.len() != 3 || !code.iter().all(u8::is_ascii_uppercase) {
        return None;
    }
    let key = [code[0], code[1], code[2]];
    CURRENCIES
        .binary_search_by(|(c, _)| c.cmp(&&key))
        .ok()
        .map(|i| CURRENCIES[i].1)
}

/// Active ISO 4217 codes with their minor units, sorted for binary search.
#[rustfmt::skip]
const CURRENCIES: &[(&[u8; 3], u8)] = &[
    (b"AED", 2), (b"AFN", 2), (b"ALL", 2), (b"AMD", 2), (b"AOA", 2), (b"ARS", 2), (b"AUD", 2),
    (b"AWG", 2), (b"AZN", 2), (b"BAM", 2), (b"BBD", 2), (b"BDT", 2), (b"BGN", 2), (b"BHD", 3),
    (b"BIF", 0), (b"BMD", 2), (b"BND", 2), (b"BOB", 2), (b"BOV", 2), (b"BRL", 2), (b"BSD", 2),
    (b"BTN", 2), (b"BWP", 2), (b"BYN", 2), (b"BZD", 2), (b"CAD", 2), (b"CDF", 2), (b"CHE", 2),
    (b"CHF", 2), (b"CHW", 2), (b"CLF", 4), (b"CLP", 0), (b"CNY", 2), (b"COP", 2), (b"COU", 2),
    (b"CRC", 2), (b"CUP", 2), (b"CVE", 2), (b"CZK", 2), (b"DJF", 0), (b"DKK", 2), (b"DOP", 2),
    (b"DZD", 2), (b"EGP", 2), (b"ERN", 2), (b"ETB", 2), (b"EUR", 2), (b"FJD", 2), (b"FKP", 2),
    (b"GBP", 2), (b"GEL", 2), (b"GHS", 2), (b"GIP", 2), (b"GMD", 2), (b"GNF", 0), (b"GTQ", 2),
    (b"GYD", 2), (b"HKD", 2), (b"HNL", 2), (b"HTG", 2), (b"HUF", 2), (b"IDR", 2), (b"ILS", 2),
    (b"INR", 2), (b"IQD", 3), (b"IRR", 2), (b"ISK", 0), (b"JMD", 2), (b"JOD", 3), (b"JPY", 0),
    (b"KES", 2), (b"KGS", 2), (b"KHR", 2), (b"KMF", 0), (b"KPW", 2), (b"KRW", 0), (b"KWD", 3),
    (b"KYD", 2), (b"KZT", 2), (b"LAK", 2), (b"LBP", 2), (b"LKR", 2), (b"LRD", 2), (b"LSL", 2),
    (b"LYD", 3), (b"MAD", 2), (b"MDL", 2), (b"MGA", 2), (b"MKD", 2), (b"MMK", 2), (b"MNT", 2),
    (b"MOP", 2), (b"MRU", 2), (b"MUR", 2), (b"MVR", 2), (b"MWK", 2), (b"MXN", 2), (b"MXV", 2),
    (b"MYR", 2), (b"MZN", 2), (b"NAD", 2), (b"NGN", 2), (b"NIO", 2), (b"NOK", 2), (b"NPR", 2),
    (b"NZD", 2), (b"OMR", 3), (b"PAB", 2), (b"PEN", 2), (b"PGK", 2), (b"PHP", 2), (b"PKR", 2),
    (b"PLN", 2), (b"PYG", 0), (b"QAR", 2), (b"RON", 2), (b"RSD", 2), (b"RUB", 2), (b"RWF", 0),
    (b"SAR", 2), (b"SBD", 2), (b"SCR", 2), (b"SDG", 2), (b"SEK", 2), (b"SGD", 2), (b"SHP", 2),
    (b"SLE", 2), (b"SOS", 2), (b"SRD", 2), (b"SSP", 2), (b"STN", 2), (b"SVC", 2), (b"SYP", 2),
    (b"SZL", 2), (b"THB", 2), (b"TJS", 2), (b"TMT", 2), (b"TND", 3), (b"TOP", 2), (b"TRY", 2),
    (b"TTD", 2), (b"TWD", 2), (b"TZS", 2), (b"UAH", 2), (b"UGX", 0), (b"USD", 2), (b"USN", 2),
    (b"UYI", 0), (b"UYU", 2), (b"UYW", 4), (b"UZS", 2), (b"VED", 2), (b"VES", 2), (b"VND", 0),
    (b"VUV", 0), (b"WST", 2), (b"XAF", 0), (b"XCD", 2), (b"XCG", 2), (b"XOF", 0), (b"XPF", 0),
    (b"YER", 2), (b"ZAR", 2), (b"ZMW", 2), (b"ZWG", 2),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(CURRENCIES.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn minor_units_follow_the_snapshot() {
        for (code, unit) in [
            ("USD", 2),
            ("JPY", 0),
            ("KRW", 0),
            ("IQD", 3),
            ("CLF", 4),
            ("IDR", 2),
        ] {
            assert_eq!(minor_unit(code), Some(unit), "{code}");
        }
        for code in ["XAU", "XDR", "XTS", "XXX", "usd", "US", "USDD", "ABC", ""] {
            assert_eq!(minor_unit(code), None, "{code}");
        }
    }
}
