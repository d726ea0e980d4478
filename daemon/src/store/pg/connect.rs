//! Connections: the URL, TLS through rustls, the pool, and fresh connections for the lanes.

use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::{Client, Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::pg_err;
use crate::store::StoreError;

/// A libpq URL or key=value string. tokio-postgres decides per host whether TLS is used: never
/// on a Unix socket, and on TCP as `sslmode` asks (`prefer` by default, like libpq).
pub(super) fn parse(url: &str) -> Result<Config, StoreError> {
    url.parse::<Config>().map_err(|e| {
        StoreError::Open(format!(
            "store.url is not a PostgreSQL connection string: {e}"
        ))
    })
}

/// How connections are made: plain, or through rustls.
#[derive(Clone)]
pub(super) enum Tls {
    /// Unix sockets (TLS over them is pointless, and rustls cannot name a socket path as a
    /// server name), or `sslmode=disable`.
    Plain,
    Rustls(MakeRustlsConnect),
}

/// rustls when a TCP host may use TLS (sslmode prefer, require), plain otherwise.
pub(super) fn tls(config: &Config) -> Result<Tls, StoreError> {
    let unix_only = config
        .get_hosts()
        .iter()
        .all(|h| matches!(h, tokio_postgres::config::Host::Unix(_)));
    if unix_only || config.get_ssl_mode() == tokio_postgres::config::SslMode::Disable {
        return Ok(Tls::Plain);
    }
    rustls_connector().map(Tls::Rustls)
}

/// rustls with ring and the system's roots, as for merchants: no OpenSSL in the process.
fn rustls_connector() -> Result<MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    let _ = roots.add_parsable_certificates(crate::delivery::tls::system_roots().iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| StoreError::Open(format!("TLS for PostgreSQL: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// One connection, driven on the current (the store's) runtime, with the session settings every
/// notifyd connection needs.
pub(super) async fn client(config: &Config, tls: &Tls) -> Result<Client, StoreError> {
    let failed =
        |e: tokio_postgres::Error| StoreError::Open(format!("connecting to PostgreSQL: {e}"));
    let client = match tls {
        Tls::Plain => {
            let (client, connection) = config.connect(NoTls).await.map_err(failed)?;
            tokio::spawn(drive(connection));
            client
        }
        Tls::Rustls(tls) => {
            let (client, connection) = config.connect(tls.clone()).await.map_err(failed)?;
            tokio::spawn(drive(connection));
            client
        }
    };
    // An S answer promises durability: a database (or role) defaulting to `off` would lose the
    // last acked commits on a crash (POSTGRES.md §2).
    client
        .batch_execute("SET synchronous_commit = on")
        .await
        .map_err(|e| pg_err("setting synchronous_commit", e))?;
    Ok(client)
}

async fn drive<F: std::future::Future<Output = Result<(), tokio_postgres::Error>>>(connection: F) {
    if let Err(e) = connection.await {
        tracing::warn!(error = %e, "PostgreSQL connection ended");
    }
}

/// The pool for claims, renewals, reads and maintenance.
pub(super) fn pool(config: Config, tls: Tls, size: usize) -> Result<Pool, StoreError> {
    // Fast: a pooled client is reused without a round trip; a broken one is dropped on error.
    let recycling = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match tls {
        Tls::Plain => Manager::from_config(config, NoTls, recycling),
        Tls::Rustls(tls) => Manager::from_config(config, tls, recycling),
    };
    Pool::builder(manager)
        .max_size(size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| StoreError::Open(format!("building the PostgreSQL pool: {e}")))
}

/// How a lane gets a new connection after its own broke.
#[derive(Clone)]
pub(super) struct Reconnect {
    config: Config,
    tls: Tls,
}

impl Reconnect {
    pub(super) fn new(config: Config, tls: Tls) -> Self {
        Reconnect { config, tls }
    }

    pub(super) async fn client(&self) -> Result<Client, StoreError> {
        client(&self.config, &self.tls).await
    }
}

/// A pooled client, with the failure named.
pub(super) async fn pooled(pool: &Pool) -> Result<deadpool_postgres::Object, StoreError> {
    pool.get()
        .await
        .map_err(|e| StoreError::io(&format!("no PostgreSQL connection from the pool: {e}")))
}
