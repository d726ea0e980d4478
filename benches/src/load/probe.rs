//! `recovery-probe`: the store's share of a restart. Opens a stopped notifyd's store through the notifyd
//! library and times what recovery reads (`load_idempotency`, then `load_pending`), with the RSS each
//! adds. notifyd's restart time minus these is queue building; its RSS after restart minus these is the
//! in-memory queue.

use std::time::Instant;

use notifyd_core::UnixMillis;
use notifyd_daemon::store::{RedbStore, Store, StoreOptions};

use super::cli::Probe;
use super::daemon;
use super::report::{Summary, round3};

/// Runs the probe and prints (and writes) its summary.
pub async fn run(p: &Probe) -> Result<(), String> {
    let mut s = Summary::default();
    s.put("scenario", "recovery-probe");
    s.put("data", p.data.display().to_string());
    s.put(
        "cache_mib",
        p.cache_mib
            .map_or("redb default (1024)".to_owned(), |m| m.to_string()),
    );
    let mib = |kib: u64| round3(kib as f64 / 1024.0);
    let before = daemon::proc_stats("self");
    let opts = StoreOptions {
        cache_size: p.cache_mib.map(|m| m << 20),
        ..StoreOptions::default()
    };
    let data = p.data.clone();
    let measured = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let store = RedbStore::open(&data, opts).map_err(|e| e.to_string())?;
        let open_s = t.elapsed().as_secs_f64();
        let after_open = daemon::proc_stats("self");
        let t = Instant::now();
        let idem = store
            .load_idempotency(UnixMillis(0))
            .map_err(|e| e.to_string())?;
        let idem_s = t.elapsed().as_secs_f64();
        let after_idem = daemon::proc_stats("self");
        let t = Instant::now();
        let pending = store.load_pending().map_err(|e| e.to_string())?;
        let pending_s = t.elapsed().as_secs_f64();
        let after_pending = daemon::proc_stats("self");
        let payload: usize = pending.iter().map(|r| r.body.len()).sum();
        let n = (idem.len(), pending.len(), payload);
        drop(idem);
        drop(pending);
        let after_drop = daemon::proc_stats("self");
        Ok::<_, String>((
            n,
            [open_s, idem_s, pending_s],
            [after_open, after_idem, after_pending, after_drop],
        ))
    })
    .await
    .map_err(|e| e.to_string())??;
    let ((idem, pending, payload), [open_s, idem_s, pending_s], [o, i, l, d]) = measured;
    s.put("open_seconds", round3(open_s));
    s.put("idempotency_records", idem);
    s.put("load_idempotency_seconds", round3(idem_s));
    s.put("pending_records", pending);
    s.put("load_pending_seconds", round3(pending_s));
    s.put("payload_bytes_total", payload);
    s.put("rss_before_mib", mib(before.rss_kib));
    s.put("rss_after_open_mib", mib(o.rss_kib));
    s.put("rss_after_load_idempotency_mib", mib(i.rss_kib));
    s.put("rss_after_load_pending_mib", mib(l.rss_kib));
    // What stays once the loaded records are dropped is mostly redb's page cache (and malloc's
    // retained free memory).
    s.put("rss_after_dropping_records_mib", mib(d.rss_kib));
    s.put(
        "rss_bytes_per_pending_retained_after_drop",
        round3((d.rss_kib.saturating_sub(before.rss_kib) as f64) * 1024.0 / pending.max(1) as f64),
    );
    s.emit(p.json.as_deref())
}
