//! Loading and validation: defaults, a full file, every kind of problem reported with its key, overrides.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notifyd_core::ack::SignatureMode;
use notifyd_core::backoff::RetryPolicy;
use notifyd_core::signing::RequestTimeFormat;

use super::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn problems(text: &str) -> Vec<Problem> {
    Config::from_toml(text, &Overrides::default()).expect_err("the file should be refused")
}

fn keys(text: &str) -> Vec<String> {
    problems(text).into_iter().map(|p| p.key).collect()
}

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/notifyd.example.toml")
}

#[test]
fn defaults_without_a_file() {
    let config = Config::load(None).unwrap();
    assert_eq!(config.store.path, Path::new("./notifyd-data"));
    assert_eq!(config.store.retention, Duration::from_secs(7 * 86_400));
    assert_eq!(config.store.idempotency_capacity.get(), 2_000_000);
    assert_eq!(config.ingest.listen, addr("127.0.0.1:8470"));
    assert_eq!(config.ingest.unix_socket, None);
    assert_eq!(config.ingest.unix_socket_mode, 0o660);
    assert_eq!(config.ingest.max_body_bytes.get(), 1 << 20);
    assert_eq!(config.ingest.max_batch.get(), 1000);
    assert_eq!(config.ingest.max_pending.get(), 1_000_000);
    assert_eq!(config.metrics.listen, addr("127.0.0.1:9470"));
    assert_eq!(config.delivery.shards, 0);
    assert!(config.delivery.shard_count().get() >= 1);
    assert_eq!(config.delivery.endpoint_concurrency.get(), 64);
    assert_eq!(config.delivery.max_in_flight.get(), 4096);
    assert_eq!(config.delivery.pool_idle_timeout, Duration::from_secs(90));
    assert_eq!(config.shutdown.grace, Duration::from_secs(10));
    assert_eq!(config.log.format, LogFormat::Text);
    assert_eq!(config.log.level, "info");

    assert_eq!(config.profiles.len(), 1);
    let default = config.profile(DEFAULT_PROFILE).unwrap();
    assert_eq!(default, &Profile::default());
    assert_eq!(default.attempt_timeout, Duration::from_secs(15));
    let RetryPolicy::Schedule(schedule) = &default.retry else {
        panic!("default retry is not a schedule: {:?}", default.retry);
    };
    let minutes: Vec<u64> = schedule.delays().iter().map(|d| d.as_secs() / 60).collect();
    assert_eq!(minutes, [0, 2, 10, 10, 60, 120, 360, 900]);
    assert_eq!(schedule.jitter(), 0.1);
}

#[test]
fn state_directory_is_the_default_store_but_not_over_the_file() {
    let overrides = Overrides {
        state_directory: Some(PathBuf::from("/var/lib/notifyd")),
        ..Overrides::default()
    };
    let config = Config::from_toml("", &overrides).unwrap();
    assert_eq!(config.store.path, Path::new("/var/lib/notifyd"));
    let config = Config::from_toml("[store]\npath = \"/srv/n\"\n", &overrides).unwrap();
    assert_eq!(config.store.path, Path::new("/srv/n"));
}

#[test]
fn the_example_file_parses_to_the_defaults() {
    let config = Config::load(Some(&example_path())).unwrap();
    let defaults = Config::load(None).unwrap();
    assert_eq!(config.store, defaults.store);
    assert_eq!(config.ingest, defaults.ingest);
    assert_eq!(config.metrics, defaults.metrics);
    assert_eq!(config.delivery, defaults.delivery);
    assert_eq!(config.shutdown, defaults.shutdown);
    assert_eq!(config.log, defaults.log);
    assert_eq!(config.profiles[DEFAULT_PROFILE], Profile::default());
    let antom = &config.profiles["antom"];
    assert_eq!(antom.request_time_format, RequestTimeFormat::EpochMillis);
    assert_eq!(
        antom.retry,
        RetryPolicy::exponential(
            Duration::from_secs(2),
            2.0,
            Duration::from_secs(15 * 3600),
            8,
            Some(Duration::from_secs(25 * 3600)),
            0.1,
        )
        .unwrap()
    );
}

#[test]
fn every_key_set_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("wallet.pem");
    let peer = dir.path().join("merchant.pub");
    let token = dir.path().join("token");
    let ca = dir.path().join("ca.pem");
    let cert = dir.path().join("client.pem");
    let cert_key = dir.path().join("client.key");
    for f in [&key, &peer, &token, &ca, &cert, &cert_key] {
        std::fs::write(f, "x").unwrap();
    }
    for secret in [&key, &token, &cert_key] {
        chmod(secret, 0o600);
    }
    let text = format!(
        r#"
[store]
path = "/srv/notifyd"
retention = "36h"
idempotency_capacity = 5
cache_size = 2_097_152
[ingest]
listen = "0.0.0.0:18470"
unix_socket = "/run/notifyd/ingest.sock"
unix_socket_mode = "0600"
max_body_bytes = 4096
max_batch = 10
max_pending = 77
auth_token_file = "{token}"
unix_socket_group = "0"
max_header_bytes = 9000
max_connections = 12
header_timeout = "500ms"
body_timeout = "3s"
[metrics]
listen = "[::1]:19470"
[delivery]
shards = 3
endpoint_concurrency = 8
max_in_flight = 100
pool_idle_timeout = "1.5s"
[shutdown]
grace = "250ms"
[log]
format = "json"
level = "warn,notifyd=debug"
[profiles.acme]
allow_http = true
allow_private = ["127.0.0.0/8", "fd00::/8"]
client_id = "2022000000000000"
key_version = 0
private_key_file = "{key}"
peer_public_key_file = "{peer}"
response_signature = "required"
ca_file = "{ca}"
client_cert_file = "{cert}"
client_key_file = "{cert_key}"
request_time_format = "epoch_millis"
extra_fields = "forward"
[profiles.acme.retry]
kind = "schedule"
schedule = ["0s", "1.5s", "1m"]
jitter = 0
attempt_timeout = "2s"
[inquiry]
listen = "0.0.0.0:18472"
profile = "acme"
authoritative = true
retention = "90d"
request_time_window = "90s"
[merchants.shop1]
client_id = "2022091234567890"
public_key_file = "{peer}"
partner_ids = ["P0001", "P0002"]
"#,
        token = token.display(),
        key = key.display(),
        peer = peer.display(),
        ca = ca.display(),
        cert = cert.display(),
        cert_key = cert_key.display(),
    );
    let config = Config::from_toml(&text, &Overrides::default()).unwrap();
    assert_eq!(config.store.path, Path::new("/srv/notifyd"));
    assert_eq!(config.store.retention, Duration::from_secs(36 * 3600));
    assert_eq!(config.store.idempotency_capacity.get(), 5);
    assert_eq!(config.store.cache_size, 2_097_152);
    assert_eq!(config.ingest.listen, addr("0.0.0.0:18470"));
    assert_eq!(
        config.ingest.unix_socket.as_deref(),
        Some(Path::new("/run/notifyd/ingest.sock"))
    );
    assert_eq!(config.ingest.unix_socket_mode, 0o600);
    assert_eq!(config.ingest.max_body_bytes.get(), 4096);
    assert_eq!(config.ingest.max_batch.get(), 10);
    assert_eq!(config.ingest.max_pending.get(), 77);
    assert_eq!(
        config.ingest.auth_token_file.as_deref(),
        Some(token.as_path())
    );
    assert_eq!(config.ingest.unix_socket_group, Some(0));
    assert_eq!(config.ingest.max_header_bytes, 9000);
    assert_eq!(config.ingest.max_connections.get(), 12);
    assert_eq!(config.ingest.header_timeout, Duration::from_millis(500));
    assert_eq!(config.ingest.body_timeout, Duration::from_secs(3));
    assert_eq!(config.metrics.listen, addr("[::1]:19470"));
    assert_eq!(config.delivery.shard_count().get(), 3);
    assert_eq!(config.delivery.endpoint_concurrency.get(), 8);
    assert_eq!(config.delivery.max_in_flight.get(), 100);
    assert_eq!(
        config.delivery.pool_idle_timeout,
        Duration::from_millis(1500)
    );
    assert_eq!(config.shutdown.grace, Duration::from_millis(250));
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.log.level, "warn,notifyd=debug");

    // The built-in default stays alongside the named profile.
    assert_eq!(config.profiles.len(), 2);
    assert_eq!(config.profiles[DEFAULT_PROFILE], Profile::default());
    let acme = &config.profiles["acme"];
    assert!(acme.allow_http);
    let cidrs: Vec<String> = acme.allow_private.iter().map(ToString::to_string).collect();
    assert_eq!(cidrs, ["127.0.0.0/8", "fd00::/8"]);
    assert_eq!(
        acme.signing,
        Some(Signing {
            client_id: "2022000000000000".to_owned(),
            key_version: 0,
            private_key_file: key.clone(),
        })
    );
    assert_eq!(acme.peer_public_key_file.as_deref(), Some(peer.as_path()));
    assert_eq!(acme.response_signature, SignatureMode::Required);
    assert_eq!(acme.ca_file.as_deref(), Some(ca.as_path()));
    assert_eq!(
        acme.client_cert,
        Some(ClientCert {
            cert_file: cert.clone(),
            key_file: cert_key.clone(),
        })
    );
    assert_eq!(acme.request_time_format, RequestTimeFormat::EpochMillis);
    assert_eq!(
        acme.extra_fields,
        notifyd_core::model::ExtraFieldsPolicy::Forward
    );
    assert_eq!(acme.attempt_timeout, Duration::from_secs(2));
    assert_eq!(
        config.inquiry,
        InquiryConfig {
            listen: Some(addr("0.0.0.0:18472")),
            profile: "acme".into(),
            authoritative: true,
            retention: Some(Duration::from_secs(90 * 86_400)),
            request_time_window: Duration::from_secs(90),
        }
    );
    assert_eq!(
        config.finished_retention(),
        Duration::from_secs(90 * 86_400)
    );
    assert_eq!(
        config.merchants["shop1"],
        Merchant {
            client_id: "2022091234567890".into(),
            public_key_file: peer.clone(),
            partner_ids: vec!["P0001".into(), "P0002".into()],
        }
    );
    assert_eq!(
        acme.retry,
        RetryPolicy::schedule(
            vec![
                Duration::ZERO,
                Duration::from_millis(1500),
                Duration::from_secs(60)
            ],
            0.0,
        )
        .unwrap()
    );
}

#[test]
fn inquiry_and_merchant_problems_name_their_key() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[inquiry]\nlisten = \"0.0.0.0:8472\"",
            "inquiry.profile",
            "profile \"default\" must set client_id, key_version and private_key_file: its key signs every answer of inquiry.listen",
        ),
        (
            "[inquiry]\nlisten = \"0.0.0.0:8472\"\nprofile = \"nope\"",
            "inquiry.profile",
            "no profile named \"nope\" is configured",
        ),
        (
            "[inquiry]\nlisten = \"8472\"",
            "inquiry.listen",
            "`8472` is not a socket address such as \"0.0.0.0:8472\"",
        ),
        (
            "[inquiry]\nretention = \"1d\"",
            "inquiry.retention",
            "must be at least store.retention (inquiry keeps records longer, never shorter)",
        ),
        (
            "[inquiry]\nrequest_time_window = \"0s\"",
            "inquiry.request_time_window",
            "must be more than 0",
        ),
        (
            "[merchants.m]\npartner_ids = [\"P1\"]\npublic_key_file = \"/nonexistent.pub\"",
            "merchants.m.client_id",
            "is required",
        ),
        (
            "[merchants.m]\nclient_id = \"C\"\npartner_ids = [\"P1\"]",
            "merchants.m.public_key_file",
            "is required",
        ),
        (
            "[merchants.m]\nclient_id = \"C\"\npublic_key_file = \"/nonexistent.pub\"",
            "merchants.m.partner_ids",
            "must name at least one partner (a merchant sees only its partners' payments)",
        ),
        (
            "[merchants.m]\nclient_id = \"C\"\nwho = 1",
            "merchants.m.who",
            "unknown key; expected one of `client_id`, `public_key_file`, `partner_ids`",
        ),
        (
            "[profiles.p]\nextra_fields = \"pass\"",
            "profiles.p.extra_fields",
            "unknown value `pass`; expected \"refuse\" or \"forward\"",
        ),
    ];
    for (text, key, message) in cases {
        let found = problems(text);
        assert!(
            found.iter().any(|p| p.key == *key && p.message == *message),
            "{text}: {found:?}"
        );
    }
    let dup = "[merchants.a]\nclient_id = \"C\"\npartner_ids = [\"P\"]\n\
               [merchants.b]\nclient_id = \"C\"\npartner_ids = [\"P\"]";
    assert!(
        keys(dup).contains(&"merchants.b.client_id".to_owned()),
        "{dup}"
    );
}

#[test]
fn each_problem_names_its_key() {
    let cases: &[(&str, &str)] = &[
        ("[store]\nretention = \"0s\"", "store.retention"),
        ("[store]\nretention = \"1 week\"", "store.retention"),
        (
            "[store]\nidempotency_capacity = 0",
            "store.idempotency_capacity",
        ),
        ("[store]\npath = \"\"", "store.path"),
        ("[ingest]\nlisten = \"localhost\"", "ingest.listen"),
        (
            "[ingest]\nunix_socket_mode = \"rw\"",
            "ingest.unix_socket_mode",
        ),
        (
            "[ingest]\nunix_socket_mode = \"01777\"",
            "ingest.unix_socket_mode",
        ),
        ("[ingest]\nmax_body_bytes = 0", "ingest.max_body_bytes"),
        ("[ingest]\nmax_batch = 0", "ingest.max_batch"),
        ("[ingest]\nmax_batch = 1001", "ingest.max_batch"),
        ("[ingest]\nmax_pending = 0", "ingest.max_pending"),
        ("[ingest]\nmax_pending = -1", "ingest.max_pending"),
        (
            "[ingest]\nmax_header_bytes = 4096",
            "ingest.max_header_bytes",
        ),
        ("[ingest]\nmax_connections = 0", "ingest.max_connections"),
        ("[ingest]\nheader_timeout = \"0s\"", "ingest.header_timeout"),
        ("[ingest]\nbody_timeout = \"soon\"", "ingest.body_timeout"),
        (
            "[ingest]\nunix_socket_group = \"no-such-group-here\"",
            "ingest.unix_socket_group",
        ),
        ("[profiles.a]\nclient_cert_file = \"/c.pem\"", "profiles.a"),
        (
            "[profiles.a]\nca_file = \"/nonexistent/ca\"",
            "profiles.a.ca_file",
        ),
        (
            "[ingest]\nauth_token_file = \"/nonexistent/token\"",
            "ingest.auth_token_file",
        ),
        ("[metrics]\nlisten = \"127.0.0.1:8470\"", "metrics.listen"),
        ("[metrics]\nlisten = \":9470\"", "metrics.listen"),
        (
            "[delivery]\nendpoint_concurrency = 0",
            "delivery.endpoint_concurrency",
        ),
        ("[delivery]\nmax_in_flight = 0", "delivery.max_in_flight"),
        (
            "[delivery]\npool_idle_timeout = \"90\"",
            "delivery.pool_idle_timeout",
        ),
        ("[shutdown]\ngrace = \"10x\"", "shutdown.grace"),
        ("[log]\nformat = \"xml\"", "log.format"),
        ("[log]\nlevel = \"info,=[\"", "log.level"),
        (
            "[profiles.a]\nallow_private = [\"10.0.0.0/33\"]",
            "profiles.a.allow_private[0]",
        ),
        (
            "[profiles.a]\nallow_private = [\"127.0.0.0/8\", \"nope\"]",
            "profiles.a.allow_private[1]",
        ),
        (
            "[profiles.a]\nallow_http = \"yes\"",
            "profiles.a.allow_http",
        ),
        ("[profiles.a]\nclient_id = \"c\"", "profiles.a"),
        (
            "[profiles.a]\nkey_version = 1\nprivate_key_file = \"/k\"",
            "profiles.a",
        ),
        (
            "[profiles.a]\nclient_id = \"c\"\nkey_version = 1\nprivate_key_file = \"/nonexistent/k.pem\"",
            "profiles.a.private_key_file",
        ),
        (
            "[profiles.a]\npeer_public_key_file = \"/nonexistent\"",
            "profiles.a.peer_public_key_file",
        ),
        (
            "[profiles.a]\npeer_public_keys = { \"v2\" = \"/etc/hostname\" }",
            "profiles.a.peer_public_keys.\"v2\"",
        ),
        (
            "[profiles.a]\npeer_public_keys = { \"-1\" = \"/etc/hostname\" }",
            "profiles.a.peer_public_keys.\"-1\"",
        ),
        (
            "[profiles.a]\npeer_public_keys = { \"2\" = \"/nonexistent\" }",
            "profiles.a.peer_public_keys.\"2\"",
        ),
        (
            "[profiles.a]\npeer_public_keys = { \"01\" = \"/etc/hostname\", \"1\" = \"/etc/hostname\" }",
            "profiles.a.peer_public_keys.\"1\"",
        ),
        (
            "[profiles.a]\nresponse_signature = \"maybe\"",
            "profiles.a.response_signature",
        ),
        (
            "[profiles.a]\nresponse_signature = \"required\"",
            "profiles.a.response_signature",
        ),
        (
            "[profiles.a]\nrequest_time_format = \"iso\"",
            "profiles.a.request_time_format",
        ),
        ("[profiles.\"a b\"]", "profiles.a b"),
        (
            "[profiles.a.retry]\nkind = \"linear\"",
            "profiles.a.retry.kind",
        ),
        (
            "[profiles.a.retry]\nschedule = []",
            "profiles.a.retry.schedule",
        ),
        (
            "[profiles.a.retry]\nschedule = [\"0s\", \"2\"]",
            "profiles.a.retry.schedule[1]",
        ),
        (
            "[profiles.a.retry]\njitter = 1.0",
            "profiles.a.retry.jitter",
        ),
        (
            "[profiles.a.retry]\njitter = -0.1",
            "profiles.a.retry.jitter",
        ),
        (
            "[profiles.a.retry]\nattempt_timeout = \"0s\"",
            "profiles.a.retry.attempt_timeout",
        ),
        (
            "[profiles.a.retry]\nmultiplier = 2.0",
            "profiles.a.retry.multiplier",
        ),
        (
            "[profiles.a.retry]\nkind = \"exponential\"\nschedule = [\"1s\"]",
            "profiles.a.retry.schedule",
        ),
        (
            "[profiles.a.retry]\nkind = \"exponential\"\nmultiplier = 0.5",
            "profiles.a.retry.multiplier",
        ),
        (
            "[profiles.a.retry]\nkind = \"exponential\"\nmax_attempts = 0",
            "profiles.a.retry.max_attempts",
        ),
        (
            "[profiles.a.retry]\nkind = \"exponential\"\ninitial = \"0s\"",
            "profiles.a.retry.initial",
        ),
        (
            "[profiles.a.retry]\nkind = \"exponential\"\ninitial = \"1m\"\nmax_delay = \"30s\"",
            "profiles.a.retry.max_delay",
        ),
        (
            "[profiles.a.retry]\nkind = \"exponential\"\ndeadline = \"soon\"",
            "profiles.a.retry.deadline",
        ),
        // A bound that does not parse is reported once, not judged again against the other.
        (
            "[profiles.a.retry]\nkind = \"exponential\"\ninitial = \"soon\"\nmax_delay = \"0s\"",
            "profiles.a.retry.initial",
        ),
        // The core's limits hold in the file too, not only when the daemon starts.
        (
            "[profiles.a.retry]\nkind = \"exponential\"\nmax_attempts = 1001",
            "profiles.a.retry.max_attempts",
        ),
        ("profiles = 3", "profiles"),
        ("[profiles]\na = 3", "profiles.a"),
        ("store = 1", "store"),
    ];
    for (text, key) in cases {
        let found = keys(text);
        assert_eq!(found, [*key], "for {text:?}: {:?}", problems(text));
    }
}

#[test]
fn peer_keys_by_version_are_read_and_their_problems_say_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old.pub"), dir.path().join("new.pub"));
    for f in [&old, &new] {
        std::fs::write(f, "x").unwrap();
    }
    let text = format!(
        "[profiles.a]\nresponse_signature = \"required\"\npeer_public_keys = {{ \"1\" = \"{}\", \"2\" = \"{}\" }}",
        old.display(),
        new.display()
    );
    let config = Config::from_toml(&text, &Overrides::default())
        .expect("keys by version alone satisfy required");
    let a = &config.profiles["a"];
    assert_eq!(a.peer_public_keys.get(&1), Some(&old));
    assert_eq!(a.peer_public_keys.get(&2), Some(&new));
    assert_eq!(a.peer_public_key_file, None);

    let p = problems("[profiles.a]\npeer_public_keys = { \"v2\" = \"/etc/hostname\" }");
    assert_eq!(
        p[0].message,
        "a key version is a decimal number (the keyVersion of the receiver's Signature header)"
    );
    let p = problems(
        "[profiles.a]\npeer_public_keys = { \"01\" = \"/etc/hostname\", \"1\" = \"/etc/hostname\" }",
    );
    assert_eq!(p[0].message, "key version 1 is given twice");
    let p = problems("[profiles.a]\nresponse_signature = \"required\"");
    assert_eq!(
        p[0].message,
        "\"required\" needs peer_public_key_file or peer_public_keys"
    );
}

#[test]
fn unknown_keys_are_refused_wherever_they_are() {
    let found = keys(
        "colour = 1\n[store]\npth = \"x\"\n[ingest]\nlisen = \"1\"\n[profiles.a]\nallow_htp = true\n\
         [profiles.a.retry]\njiter = 0.2\n",
    );
    assert_eq!(
        found,
        [
            "colour",
            "ingest.lisen",
            "profiles.a.allow_htp",
            "profiles.a.retry.jiter",
            "store.pth"
        ]
    );
    let message = &problems("[store]\npth = \"x\"")[0].message;
    assert!(
        message.contains("unknown key") && message.contains("`path`"),
        "{message}"
    );
}

#[test]
fn all_problems_are_listed_at_once() {
    let text = r#"
[store]
retention = "forever"
idempotency_capacity = "many"
[ingest]
listen = "nowhere"
max_body_bytes = 0
[profiles.acme]
client_id = "x"
allow_private = ["1.2.3.4/40"]
[profiles.acme.retry]
jitter = 1.5
schedule = []
"#;
    let mut found = keys(text);
    found.sort();
    assert_eq!(
        found,
        [
            "ingest.listen",
            "ingest.max_body_bytes",
            "profiles.acme",
            "profiles.acme.allow_private[0]",
            "profiles.acme.retry.jitter",
            "profiles.acme.retry.schedule",
            "store.idempotency_capacity",
            "store.retention",
        ]
    );
    let rendered: Vec<String> = problems(text).iter().map(ToString::to_string).collect();
    assert!(
        rendered
            .contains(&"profiles.acme.retry.jitter: must be at least 0 and less than 1".to_owned())
    );
    assert!(
        rendered.contains(
            &"profiles.acme: client_id, key_version and private_key_file must be set together"
                .to_owned()
        )
    );
}

#[test]
fn syntax_errors_and_unreadable_files_are_reported() {
    let found = problems("[store\npath = 1");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].key, "");
    assert!(found[0].message.contains("line 1"), "{}", found[0].message);

    let missing = Config::load(Some(Path::new("/nonexistent/notifyd.toml"))).unwrap_err();
    assert_eq!(missing.len(), 1);
    assert!(missing[0].message.contains("/nonexistent/notifyd.toml"));
}

#[test]
fn key_file_that_is_a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[profiles.a]\nclient_id = \"c\"\nkey_version = 1\nprivate_key_file = \"{}\"\n",
        dir.path().display()
    );
    assert_eq!(keys(&text), ["profiles.a.private_key_file"]);
}

#[test]
fn flags_override_the_file() {
    let text = "[store]\npath = \"/from/file\"\n[ingest]\nlisten = \"127.0.0.1:1\"\n\
                [metrics]\nlisten = \"127.0.0.1:2\"\n";
    let overrides = Overrides {
        state_directory: Some(PathBuf::from("/state")),
        data_dir: Some(PathBuf::from("/from/flag")),
        listen: Some(addr("0.0.0.0:3")),
        metrics_listen: Some(addr("0.0.0.0:4")),
    };
    let config = Config::from_toml(text, &overrides).unwrap();
    assert_eq!(config.store.path, Path::new("/from/flag"));
    assert_eq!(config.ingest.listen, addr("0.0.0.0:3"));
    assert_eq!(config.metrics.listen, addr("0.0.0.0:4"));

    // A value a flag replaces is not judged.
    let config = Config::from_toml("[ingest]\nlisten = \"bad\"\n", &overrides).unwrap();
    assert_eq!(config.ingest.listen, addr("0.0.0.0:3"));
}

#[test]
fn a_file_default_profile_replaces_the_built_in_one() {
    let config = Config::from_toml(
        "[profiles.default]\nallow_http = true\n[profiles.default.retry]\nschedule = [\"1s\"]\n",
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(config.profiles.len(), 1);
    let default = &config.profiles[DEFAULT_PROFILE];
    assert!(default.allow_http);
    assert_eq!(
        default.retry,
        RetryPolicy::schedule(vec![Duration::from_secs(1)], DEFAULT_JITTER).unwrap()
    );
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// As ssh does: a secret that group or others can read is refused, naming the key and the fix.
#[test]
fn secrets_open_to_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    let cert = dir.path().join("cert.pem");
    std::fs::write(&secret, "x").unwrap();
    std::fs::write(&cert, "x").unwrap();
    let text = format!(
        "[ingest]\nauth_token_file = \"{s}\"\n[profiles.a]\nclient_id = \"c\"\nkey_version = 1\n\
         private_key_file = \"{s}\"\nclient_cert_file = \"{c}\"\nclient_key_file = \"{s}\"\n",
        s = secret.display(),
        c = cert.display(),
    );
    for mode in [0o644, 0o640, 0o604, 0o660] {
        chmod(&secret, mode);
        let found = problems(&text);
        let mut keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "ingest.auth_token_file",
                "profiles.a.client_key_file",
                "profiles.a.private_key_file"
            ],
            "mode {mode:o}"
        );
        assert!(
            found[0].message.contains("chmod 600"),
            "{}",
            found[0].message
        );
    }
    for mode in [0o600, 0o400] {
        chmod(&secret, mode);
        assert!(
            Config::from_toml(&text, &Overrides::default()).is_ok(),
            "mode {mode:o}"
        );
    }
}

#[test]
fn a_postgres_store_is_configured_and_its_lease_checked() {
    let ok = "[store]\nkind = \"postgres\"\nurl = \"host=/tmp dbname=n\"\nlease = \"30s\"\npool_size = 3\n";
    let config = Config::from_toml(ok, &Overrides::default()).unwrap();
    assert_eq!(
        config.store.backend,
        StoreBackend::Postgres(PostgresConfig {
            url: "host=/tmp dbname=n".to_owned(),
            lease: Duration::from_secs(30),
            pool_size: 3,
        })
    );
    assert!(
        !format!("{:?}", config.store).contains("dbname"),
        "the url is redacted"
    );
    assert_eq!(
        Config::load(None).unwrap().store.backend,
        StoreBackend::Embedded
    );

    // The default profile's attempt_timeout is 15s: 25s is not longer than 15s + 10s.
    let short = "[store]\nkind = \"postgres\"\nurl = \"postgres://h/db\"\nlease = \"25s\"\n";
    assert_eq!(keys(short), ["store.lease"]);
    let slow = "[store]\nkind = \"postgres\"\nurl = \"postgres://h/db\"\n\
                [profiles.slow.retry]\nattempt_timeout = \"55s\"\n";
    let found = problems(slow);
    assert!(
        found
            .iter()
            .any(|p| p.key == "store.lease" && p.message.contains("`slow`")),
        "{found:?}"
    );
    assert_eq!(keys("[store]\nkind = \"postgres\"\n"), ["store.url"]);
    assert_eq!(keys("[store]\nkind = \"mysql\"\n"), ["store.kind"]);
    assert_eq!(
        keys("[store]\nkind = \"postgres\"\nurl = \"postgres://h/db\"\npool_size = 0\n"),
        ["store.pool_size"]
    );
}
