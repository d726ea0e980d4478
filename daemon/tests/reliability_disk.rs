//! The store on a full filesystem (a small tmpfs): ingest answers 503 U UNKNOWN_EXCEPTION, never
//! S, for what it could not make durable; when space returns it goes on without a restart; every
//! S it did answer survives a restart.
//!
//! Needs root (to mount tmpfs); otherwise the test says why and passes without checking.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::{Harness, payment};

/// A tmpfs mounted for the test, unmounted when dropped (also when the test fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `file` until the filesystem refuses; returns the bytes written.
fn fill(file: &Path) -> u64 {
    let mut f = std::fs::File::create(file).unwrap();
    let chunk = vec![0xA5u8; 16 * 1024];
    let mut written = 0;
    while f.write_all(&chunk).is_ok() {
        written += chunk.len() as u64;
    }
    // The last partial chunk may have gone in; get it on disk so the space is really taken.
    let _ = f.sync_all();
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_never_s_and_recovers_without_restart() {
    let outer = tempfile::tempdir().unwrap();
    let mnt = outer.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let _tmpfs = match Tmpfs::mount(&mnt, "8m") {
        Ok(t) => t,
        Err(e) => {
            support::skip(&format!("cannot mount a tmpfs (needs root): {e}"));
            return;
        }
    };
    let store = mnt.join("store");
    let mut h = Harness::start_with("S", |c| c.store.path = store.clone()).await;
    let url = h.merchant_url("/n");
    let mut accepted = Vec::new();
    for i in 0..20 {
        accepted.push(h.submit(&payment(&url, &format!("PAY-PRE-{i}"))).await);
    }

    let filler = mnt.join("filler");
    let taken = fill(&filler);
    assert!(taken > 0, "the filler took no space");

    // Free pages inside the store file may take a few more; then every answer must be 503 U.
    let mut refused = 0;
    let mut i = 0;
    while refused < 20 {
        assert!(
            i < 5000,
            "the store never ran out of space ({refused} refusals)"
        );
        let (status, body) = h
            .post(
                "/v1/notifications",
                &payment(&url, &format!("PAY-FULL-{i}")),
            )
            .await;
        i += 1;
        match status {
            200 => {
                assert_eq!(body["result"]["resultStatus"], "S", "{body}");
                accepted.push(body["notificationId"].as_str().unwrap().to_owned());
            }
            503 => {
                assert_eq!(body["result"]["resultStatus"], "U", "{body}");
                assert_eq!(body["result"]["resultCode"], "UNKNOWN_EXCEPTION", "{body}");
                assert!(
                    body["notificationId"].is_null(),
                    "an id for a refused notification: {body}"
                );
                refused += 1;
            }
            other => panic!("HTTP {other} on a full disk: {body}"),
        }
    }
    let (status, _) = h.get("/healthz").await;
    assert_eq!(status, 200, "notifyd stays alive on a full disk");

    // Space returns: no restart, and ingest goes on. A refused notification left nothing
    // behind: sent again, it is new, not a duplicate.
    std::fs::remove_file(&filler).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let again = payment(&url, &format!("PAY-FULL-{}", i - 1));
    loop {
        let (status, body) = h.post("/v1/notifications", &again).await;
        if status == 200 {
            assert_eq!(body["result"]["resultStatus"], "S", "{body}");
            assert_ne!(
                body["duplicate"], true,
                "a refused notification was kept: {body}"
            );
            accepted.push(body["notificationId"].as_str().unwrap().to_owned());
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ingest never recovered: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for j in 0..20 {
        accepted.push(h.submit(&payment(&url, &format!("PAY-POST-{j}"))).await);
    }
    for id in &accepted {
        h.wait_state(id, "delivered").await;
    }

    // Every S was durable: all of them are still there after a restart.
    h.restart().await;
    for id in &accepted {
        let s = h.status(id).await;
        assert_eq!(s["state"], "delivered", "{s}");
    }
    eprintln!(
        "disk: filler {taken} bytes, {} accepted, {refused} refused with 503 U while full",
        accepted.len()
    );
}
