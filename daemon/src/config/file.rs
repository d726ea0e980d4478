//! The configuration file as written: every key an operator may set, with its default.
//!
//! Values that need parsing (durations, addresses, CIDRs, enumerations) are kept as text here so that one
//! bad value does not hide the others: `validate` turns this into the typed [`Config`](super::Config) and
//! reports every problem at once. `deny_unknown_fields` everywhere, so a misspelt key is an error rather than
//! a silently ignored default.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// The whole file. Every section is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// `[store]`: the embedded durable store.
    pub store: StoreFile,
    /// `[ingest]`: where gateways submit notifications.
    pub ingest: IngestFile,
    /// `[metrics]`: the Prometheus endpoint.
    pub metrics: MetricsFile,
    /// `[delivery]`: outbound concurrency and connection pooling.
    pub delivery: DeliveryFile,
    /// `[shutdown]`: what SIGTERM/SIGINT waits for.
    pub shutdown: ShutdownFile,
    /// `[log]`: diagnostics on stderr.
    pub log: LogFile,
    /// `[profiles.NAME]`: signing, SSRF and retry settings; envelopes pick one by name. A `default` profile
    /// always exists: built in when the file has none.
    pub profiles: BTreeMap<String, ProfileFile>,
    /// `[inquiry]`: how `inquiryPayment` answers, and the merchant-facing listener.
    pub inquiry: InquiryFile,
    /// `[merchants.NAME]`: the merchants allowed to call the merchant-facing inquiry.
    pub merchants: BTreeMap<String, MerchantFile>,
}

/// `[inquiry]` (CONTRACT.md §2, §2.2)
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InquiryFile {
    /// TCP address of the merchant-facing `POST /v1/payments/inquiryPayment`, authenticated by
    /// request signature (never by the ingest token). Default: none (off).
    pub listen: Option<String>,
    /// The profile whose `private_key_file` and `key_version` sign every answer on that
    /// listener; it must have signing set. Default `"default"`.
    pub profile: String,
    /// true: a payment notifyd holds nothing about answers F `ORDER_NOT_EXIST` (which seed 002
    /// lets a merchant treat as a failed payment); false: U `UNKNOWN_EXCEPTION`, retry. Only for a
    /// notifyd that is told every payment. Default false.
    pub authoritative: bool,
    /// How long finished notifications are kept for inquiry, when longer than
    /// `store.retention`. Default: `store.retention`.
    pub retention: Option<String>,
    /// How far a request's `Request-Time` may be from notifyd's clock, either way; older or
    /// newer requests are refused (a captured request cannot be replayed later). Default `"5m"`.
    pub request_time_window: String,
}

impl Default for InquiryFile {
    fn default() -> Self {
        InquiryFile {
            listen: None,
            profile: "default".to_owned(),
            authoritative: false,
            retention: None,
            request_time_window: "5m".to_owned(),
        }
    }
}

/// `[merchants.NAME]`: one merchant allowed to call the merchant-facing inquiry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MerchantFile {
    /// The `Client-Id` header the merchant sends; unique among merchants. Required.
    pub client_id: Option<String>,
    /// PEM file (X.509 SubjectPublicKeyInfo) of the merchant's RSA public key, which verifies
    /// its request `Signature`. Required.
    pub public_key_file: Option<PathBuf>,
    /// The partners whose payments this merchant may ask about; any other payment is answered
    /// as unknown. At least one.
    pub partner_ids: Vec<String>,
}

/// `[store]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreFile {
    /// Directory of the store. Default `$STATE_DIRECTORY` when systemd sets it, else `./notifyd-data`.
    /// `--data-dir` overrides.
    pub path: Option<PathBuf>,
    /// How long finished (delivered, failed, dead) notifications stay queryable. Default `"7d"`.
    pub retention: String,
    /// Idempotency keys remembered for duplicate detection; the oldest are forgotten first. Default 2_000_000.
    pub idempotency_capacity: u64,
    /// Bytes of the store's page cache (reads of recent records). Default 67_108_864 (64 MiB).
    pub cache_size: u64,
    /// `"embedded"` (the redb file under `path`, one host) or `"postgres"` (a database shared by
    /// several hosts). Default `"embedded"`.
    pub kind: String,
    /// `kind = "postgres"`: a libpq URL (`postgres://user@host/db?sslmode=require`) or key=value
    /// string. Required for that kind.
    pub url: Option<String>,
    /// `kind = "postgres"`: how long a host's claim on a notification lasts unless renewed.
    /// Default `"60s"`; must exceed every profile's attempt_timeout by the lease margin.
    pub lease: String,
    /// `kind = "postgres"`: connections of the pool for claims, reads and maintenance (the two
    /// commit lanes have their own). Default 8.
    pub pool_size: u64,
}

impl Default for StoreFile {
    fn default() -> Self {
        StoreFile {
            path: None,
            retention: "7d".to_owned(),
            idempotency_capacity: 2_000_000,
            cache_size: 64 << 20,
            kind: "embedded".to_owned(),
            url: None,
            lease: "60s".to_owned(),
            pool_size: 8,
        }
    }
}

/// `[ingest]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestFile {
    /// TCP address of the ingest API. Default `"127.0.0.1:8470"`. `--listen` overrides.
    pub listen: String,
    /// Also serve the ingest API on this Unix socket. Default: none.
    pub unix_socket: Option<PathBuf>,
    /// Octal permission bits of the Unix socket. Default `"0660"`.
    pub unix_socket_mode: String,
    /// Group owning the Unix socket (a name from /etc/group, or a number), so gateways in that
    /// group may connect. Default: the daemon's own group.
    pub unix_socket_group: Option<String>,
    /// Largest request body accepted; larger ones get 413. Default 1 MiB.
    pub max_body_bytes: u64,
    /// Most envelopes in one batch request (1 to 1000). Default 1000.
    pub max_batch: u64,
    /// Most notifications pending delivery; beyond it ingest answers 429. Default 1_000_000.
    pub max_pending: u64,
    /// File holding the bearer token gateways must send (one per line; `#` comments); no auth when
    /// unset. Must not be readable by group or others. Default: none.
    pub auth_token_file: Option<PathBuf>,
    /// Largest request head (request line plus headers) accepted, at least 8192. Default 16384.
    pub max_header_bytes: u64,
    /// Most ingest connections served at once per listener; more wait in the kernel's backlog.
    /// Default 4096.
    pub max_connections: u64,
    /// Time a client has to send a request's headers (also how long an idle keep-alive connection
    /// is kept). Default `"10s"`.
    pub header_timeout: String,
    /// Time a client has to send a request's body once its headers are in. Default `"30s"`.
    pub body_timeout: String,
}

impl Default for IngestFile {
    fn default() -> Self {
        IngestFile {
            listen: "127.0.0.1:8470".to_owned(),
            unix_socket: None,
            unix_socket_mode: "0660".to_owned(),
            max_body_bytes: 1024 * 1024,
            max_batch: 1000,
            max_pending: 1_000_000,
            auth_token_file: None,
            unix_socket_group: None,
            max_header_bytes: 16 * 1024,
            max_connections: 4096,
            header_timeout: "10s".to_owned(),
            body_timeout: "30s".to_owned(),
        }
    }
}

/// `[metrics]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsFile {
    /// TCP address of `GET /metrics`, `/healthz` and `/readyz`. Default `"127.0.0.1:9470"`.
    /// `--metrics-listen` overrides.
    pub listen: String,
}

impl Default for MetricsFile {
    fn default() -> Self {
        MetricsFile {
            listen: "127.0.0.1:9470".to_owned(),
        }
    }
}

/// `[delivery]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryFile {
    /// Delivery shards (worker loops); 0 means one per CPU core. Default 0.
    pub shards: u64,
    /// Most attempts in flight to one endpoint (scheme, host, port) at once. Default 64.
    pub endpoint_concurrency: u64,
    /// Most attempts in flight in the whole process. Default 4096.
    pub max_in_flight: u64,
    /// How long an idle pooled connection to a receiver is kept. Default `"90s"`.
    pub pool_idle_timeout: String,
}

impl Default for DeliveryFile {
    fn default() -> Self {
        DeliveryFile {
            shards: 0,
            endpoint_concurrency: 64,
            max_in_flight: 4096,
            pool_idle_timeout: "90s".to_owned(),
        }
    }
}

/// `[shutdown]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownFile {
    /// How long in-flight attempts may run after SIGTERM before the rest is left pending. Default `"10s"`.
    pub grace: String,
}

impl Default for ShutdownFile {
    fn default() -> Self {
        ShutdownFile {
            grace: "10s".to_owned(),
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogFile {
    /// `"text"` (human) or `"json"` (one object a line). Default `"text"`.
    pub format: String,
    /// A tracing filter: a level (`"info"`) or directives (`"info,notifyd_daemon::delivery=debug"`). Default `"info"`.
    pub level: String,
}

impl Default for LogFile {
    fn default() -> Self {
        LogFile {
            format: "text".to_owned(),
            level: "info".to_owned(),
        }
    }
}

/// `[profiles.NAME]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileFile {
    /// Allow plain `http://` targets. Default false.
    pub allow_http: bool,
    /// CIDRs the SSRF guard lets through (private, loopback, link-local are refused otherwise), e.g.
    /// `["127.0.0.0/8"]`. Default empty.
    pub allow_private: Vec<String>,
    /// Signing: the `Client-Id` header. Set together with `key_version` and `private_key_file`.
    pub client_id: Option<String>,
    /// Signing: the `keyVersion` in the `Signature` header.
    pub key_version: Option<u32>,
    /// Signing: PEM file of the RSA private key (PKCS#8). Must not be readable by group or others.
    pub private_key_file: Option<PathBuf>,
    /// PEM file of the receiver's public key, to verify response signatures; with
    /// `peer_public_keys`, the key for answers whose `keyVersion` has no key of its own there.
    pub peer_public_key_file: Option<PathBuf>,
    /// The receiver's public keys by the `keyVersion` its answers' `Signature` header names
    /// (`{ "1" = "old.pub", "2" = "new.pub" }`), so answers signed with the old or the new key
    /// both verify while the receiver rotates. Default empty.
    pub peer_public_keys: BTreeMap<String, PathBuf>,
    /// `"required"`, `"optional"` (verify when present) or `"off"`. Default `"optional"`.
    pub response_signature: String,
    /// PEM bundle of CAs trusted in addition to the system's roots. Default: none.
    pub ca_file: Option<PathBuf>,
    /// An HTTP CONNECT proxy every delivery of the profile goes through, `"http://HOST:PORT"`.
    /// TLS stays end to end (the handshake is with the receiver, inside the tunnel), and the
    /// SSRF guard still judges the receiver's address: notifyd resolves the receiver itself and
    /// asks the proxy for a tunnel to the address it checked. Default: none (direct).
    pub proxy: Option<String>,
    /// Receivers reached directly although `proxy` is set: a host name (`"merchant.example"`),
    /// a `.suffix` (`".internal.example"`: every name under it) or a CIDR (`"10.0.0.0/8"`: a
    /// receiver whose address is inside). Default empty.
    pub no_proxy: Vec<String>,
    /// PEM certificate chain presented to receivers that ask for one (mTLS). Set together with
    /// `client_key_file`. Default: none.
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of `client_cert_file`. Must not be readable by group or others.
    pub client_key_file: Option<PathBuf>,
    /// Format of the `Request-Time` header: `"rfc3339"` (Alipay+, mini-program) or `"epoch_millis"`
    /// (Antom). Default `"rfc3339"`.
    pub request_time_format: String,
    /// Body fields an envelope's API does not define: `"refuse"` (400 PARAM_ILLEGAL, "is not a
    /// field of …") or `"forward"` (checked, stored and sent after the known fields, and part of
    /// the key fields; see README "Fields the APIs add over time"). Default `"refuse"`.
    pub extra_fields: String,
    /// `[profiles.NAME.retry]`: the retry policy.
    pub retry: RetryFile,
    /// The operator's URL that gets a signed POST when a notification of this profile ends
    /// `dead` or `failed` (README "Dead-letter hook"); the profile's URL rules apply to it.
    /// Default: none.
    pub dead_letter_url: Option<String>,
}

impl Default for ProfileFile {
    fn default() -> Self {
        ProfileFile {
            allow_http: false,
            allow_private: Vec::new(),
            client_id: None,
            key_version: None,
            private_key_file: None,
            peer_public_key_file: None,
            peer_public_keys: BTreeMap::new(),
            response_signature: "optional".to_owned(),
            ca_file: None,
            proxy: None,
            no_proxy: Vec::new(),
            client_cert_file: None,
            client_key_file: None,
            request_time_format: "rfc3339".to_owned(),
            extra_fields: "refuse".to_owned(),
            retry: RetryFile::default(),
            dead_letter_url: None,
        }
    }
}

/// `[profiles.NAME.retry]`. Keys of the kind not chosen are refused, so a half-switched policy is noticed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryFile {
    /// `"schedule"` or `"exponential"`. Default `"schedule"`.
    pub kind: Option<String>,
    /// schedule: delay before each attempt, counted from the previous one. Default Alipay's
    /// `["0s", "2m", "10m", "10m", "1h", "2h", "6h", "15h"]`.
    pub schedule: Option<Vec<String>>,
    /// Each delay is varied by up to this fraction either way, in [0, 1). Default 0.1.
    pub jitter: Option<f64>,
    /// Time allowed for one attempt (connect to last byte of the answer). Default `"15s"`.
    pub attempt_timeout: Option<String>,
    /// exponential: delay before the first retry. Default `"2s"`.
    pub initial: Option<String>,
    /// exponential: factor between successive delays, at least 1. Default 2.0.
    pub multiplier: Option<f64>,
    /// exponential: cap on one delay. Default `"15h"`.
    pub max_delay: Option<String>,
    /// exponential: most attempts, the first included. Default 8.
    pub max_attempts: Option<u32>,
    /// exponential: no attempt starts later than this after acceptance. Default `"25h"`.
    pub deadline: Option<String>,
}
