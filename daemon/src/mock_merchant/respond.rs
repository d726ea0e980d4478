//! What the mock merchant answers: the `--respond` modes and their canned responses.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Response, StatusCode};
use http_body_util::Full;

use crate::config::parse_duration;

/// A `--respond` mode.
#[derive(Debug, Clone, PartialEq)]
pub enum Respond {
    /// `S`: 200, `S SUCCESS`.
    Success,
    /// `F`: 200, `F PROCESS_FAIL` (a permanent failure).
    Fail,
    /// `U`: 200, `U UNKNOWN_EXCEPTION`.
    Unknown,
    /// `SYSTEM_ERROR`: 200, `U SYSTEM_ERROR`.
    SystemError,
    /// `THROTTLE`: 200, `U REQUEST_TRAFFIC_EXCEED_LIMIT`.
    Throttle,
    /// `429`: HTTP 429 with `Retry-After: 1`.
    TooManyRequests,
    /// `500`: HTTP 500, plain text.
    ServerError,
    /// `GARBAGE`: 200 with a body that is not JSON.
    Garbage,
    /// `STALL`: never answers; the connection is held until the client gives up or the mock stops.
    Stall,
    /// `SLOW:<duration>`: `S` after the delay.
    Slow(Duration),
    /// `FAIL_RATE:<p>`: `U` with probability `p`, else `S`.
    FailRate(f64),
    /// `U,U,S`: the listed modes in turn, round and round.
    Cycle(Vec<Respond>),
}

/// What one request was answered with; counted per kind in `/_mock/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// `S SUCCESS`.
    Success,
    /// `F PROCESS_FAIL`.
    Fail,
    /// `U UNKNOWN_EXCEPTION`.
    Unknown,
    /// `U SYSTEM_ERROR`.
    SystemError,
    /// `U REQUEST_TRAFFIC_EXCEED_LIMIT`.
    Throttle,
    /// HTTP 429.
    TooManyRequests,
    /// HTTP 500.
    ServerError,
    /// Non-JSON body.
    Garbage,
    /// No answer.
    Stall,
}

impl Outcome {
    /// Every outcome, in the order of [`Outcome::index`].
    pub const ALL: [Outcome; 9] = [
        Outcome::Success,
        Outcome::Fail,
        Outcome::Unknown,
        Outcome::SystemError,
        Outcome::Throttle,
        Outcome::TooManyRequests,
        Outcome::ServerError,
        Outcome::Garbage,
        Outcome::Stall,
    ];

    /// Position in [`Outcome::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The name used in stats, the same as the `--respond` word.
    pub const fn name(self) -> &'static str {
        match self {
            Outcome::Success => "S",
            Outcome::Fail => "F",
            Outcome::Unknown => "U",
            Outcome::SystemError => "SYSTEM_ERROR",
            Outcome::Throttle => "THROTTLE",
            Outcome::TooManyRequests => "429",
            Outcome::ServerError => "500",
            Outcome::Garbage => "GARBAGE",
            Outcome::Stall => "STALL",
        }
    }
}

/// What to do for one request: the outcome, after an optional delay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Decision {
    pub(crate) outcome: Outcome,
    pub(crate) delay: Option<Duration>,
}

/// A mode with the cursor of its cycle.
#[derive(Debug)]
pub(crate) struct ModeState {
    pub(crate) respond: Respond,
    next: AtomicUsize,
}

impl ModeState {
    pub(crate) fn new(respond: Respond) -> Self {
        ModeState {
            respond,
            next: AtomicUsize::new(0),
        }
    }

    pub(crate) fn decide(&self) -> Decision {
        match &self.respond {
            Respond::Cycle(modes) if !modes.is_empty() => {
                let turn = self.next.fetch_add(1, Ordering::Relaxed) % modes.len();
                simple(&modes[turn])
            }
            other => simple(other),
        }
    }
}

fn simple(respond: &Respond) -> Decision {
    let now = |outcome| Decision {
        outcome,
        delay: None,
    };
    match respond {
        Respond::Success | Respond::Cycle(_) => now(Outcome::Success),
        Respond::Fail => now(Outcome::Fail),
        Respond::Unknown => now(Outcome::Unknown),
        Respond::SystemError => now(Outcome::SystemError),
        Respond::Throttle => now(Outcome::Throttle),
        Respond::TooManyRequests => now(Outcome::TooManyRequests),
        Respond::ServerError => now(Outcome::ServerError),
        Respond::Garbage => now(Outcome::Garbage),
        Respond::Stall => now(Outcome::Stall),
        Respond::Slow(delay) => Decision {
            outcome: Outcome::Success,
            delay: Some(*delay),
        },
        Respond::FailRate(p) => now(if rand::random::<f64>() < *p {
            Outcome::Unknown
        } else {
            Outcome::Success
        }),
    }
}

const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=UTF-8");

/// The canned response for `outcome` (never called for [`Outcome::Stall`]).
pub(crate) fn answer(outcome: Outcome) -> Response<Full<Bytes>> {
    let (status, body): (StatusCode, &'static [u8]) = match outcome {
        Outcome::Success => (
            StatusCode::OK,
            br#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}"#,
        ),
        Outcome::Fail => (
            StatusCode::OK,
            br#"{"result":{"resultCode":"PROCESS_FAIL","resultStatus":"F","resultMessage":"process fail"}}"#,
        ),
        Outcome::Unknown | Outcome::Stall => (
            StatusCode::OK,
            br#"{"result":{"resultCode":"UNKNOWN_EXCEPTION","resultStatus":"U","resultMessage":"unknown exception"}}"#,
        ),
        Outcome::SystemError => (
            StatusCode::OK,
            br#"{"result":{"resultCode":"SYSTEM_ERROR","resultStatus":"U","resultMessage":"system error"}}"#,
        ),
        Outcome::Throttle | Outcome::TooManyRequests => (
            if outcome == Outcome::Throttle {
                StatusCode::OK
            } else {
                StatusCode::TOO_MANY_REQUESTS
            },
            br#"{"result":{"resultCode":"REQUEST_TRAFFIC_EXCEED_LIMIT","resultStatus":"U","resultMessage":"request traffic exceed limit"}}"#,
        ),
        Outcome::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, b"internal server error"),
        Outcome::Garbage => (StatusCode::OK, b"<html>this is not json</html>"),
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body)));
    *response.status_mut() = status;
    let content_type = if outcome == Outcome::ServerError {
        HeaderValue::from_static("text/plain")
    } else {
        JSON
    };
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    if outcome == Outcome::TooManyRequests {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

impl FromStr for Respond {
    type Err = String;

    /// `S`, `F`, `U`, `SYSTEM_ERROR`, `THROTTLE`, `429`, `500`, `GARBAGE`, `STALL`, `SLOW:<duration>`,
    /// `FAIL_RATE:<0..1>`, or a comma-separated list of those (answered in turn). Words are case-insensitive.
    fn from_str(text: &str) -> Result<Self, String> {
        if text.contains(',') {
            let modes = text
                .split(',')
                .map(|part| single(part.trim()))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Respond::Cycle(modes));
        }
        single(text.trim())
    }
}

fn single(text: &str) -> Result<Respond, String> {
    let (word, argument) = match text.split_once(':') {
        Some((w, a)) => (w, Some(a)),
        None => (text, None),
    };
    let word = word.to_ascii_uppercase();
    let respond = match (word.as_str(), argument) {
        ("S", None) => Respond::Success,
        ("F", None) => Respond::Fail,
        ("U", None) => Respond::Unknown,
        ("SYSTEM_ERROR", None) => Respond::SystemError,
        ("THROTTLE", None) => Respond::Throttle,
        ("429", None) => Respond::TooManyRequests,
        ("500", None) => Respond::ServerError,
        ("GARBAGE", None) => Respond::Garbage,
        ("STALL", None) => Respond::Stall,
        ("SLOW", Some(delay)) => Respond::Slow(parse_duration(delay)?),
        ("FAIL_RATE", Some(p)) => {
            let p: f64 = p
                .parse()
                .map_err(|_| format!("FAIL_RATE needs a number in [0, 1], not `{p}`"))?;
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("FAIL_RATE needs a number in [0, 1], not `{p}`"));
            }
            Respond::FailRate(p)
        }
        _ => {
            return Err(format!(
                "unknown mode `{text}`; expected S, F, U, SYSTEM_ERROR, THROTTLE, 429, 500, GARBAGE, STALL, \
                 SLOW:<duration>, FAIL_RATE:<0..1> or a comma-separated list of them"
            ));
        }
    };
    Ok(respond)
}

impl fmt::Display for Respond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Respond::Success => f.write_str("S"),
            Respond::Fail => f.write_str("F"),
            Respond::Unknown => f.write_str("U"),
            Respond::SystemError => f.write_str("SYSTEM_ERROR"),
            Respond::Throttle => f.write_str("THROTTLE"),
            Respond::TooManyRequests => f.write_str("429"),
            Respond::ServerError => f.write_str("500"),
            Respond::Garbage => f.write_str("GARBAGE"),
            Respond::Stall => f.write_str("STALL"),
            Respond::Slow(d) => write!(f, "SLOW:{}ms", d.as_millis()),
            Respond::FailRate(p) => write!(f, "FAIL_RATE:{p}"),
            Respond::Cycle(modes) => {
                for (i, mode) in modes.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{mode}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_mode() {
        assert_eq!("S".parse(), Ok(Respond::Success));
        assert_eq!("system_error".parse(), Ok(Respond::SystemError));
        assert_eq!("429".parse(), Ok(Respond::TooManyRequests));
        assert_eq!(
            "SLOW:250ms".parse(),
            Ok(Respond::Slow(Duration::from_millis(250)))
        );
        assert_eq!("FAIL_RATE:0.25".parse(), Ok(Respond::FailRate(0.25)));
        assert_eq!(
            "U, U,S".parse(),
            Ok(Respond::Cycle(vec![
                Respond::Unknown,
                Respond::Unknown,
                Respond::Success
            ]))
        );
        for bad in [
            "",
            "X",
            "SLOW",
            "SLOW:fast",
            "FAIL_RATE:1.5",
            "S:1",
            "U,,S",
            "FAIL_RATE:NaN",
        ] {
            assert!(bad.parse::<Respond>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "S",
            "U,U,S",
            "SLOW:1500ms",
            "FAIL_RATE:0.5",
            "429,500,GARBAGE",
        ] {
            let mode: Respond = text.parse().unwrap();
            assert_eq!(mode.to_string(), text);
        }
    }

    #[test]
    fn cycle_answers_in_turn() {
        let state = ModeState::new("U,F,S".parse().unwrap());
        let outcomes: Vec<_> = (0..6).map(|_| state.decide().outcome).collect();
        use Outcome::*;
        assert_eq!(outcomes, [Unknown, Fail, Success, Unknown, Fail, Success]);
    }

    #[test]
    fn fail_rate_extremes() {
        let never = ModeState::new(Respond::FailRate(0.0));
        let always = ModeState::new(Respond::FailRate(1.0));
        for _ in 0..100 {
            assert_eq!(never.decide().outcome, Outcome::Success);
            assert_eq!(always.decide().outcome, Outcome::Unknown);
        }
    }
}
