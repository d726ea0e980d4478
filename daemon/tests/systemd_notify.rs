//! The built `notifyd` binary under a pretend service manager: sd_notify messages on
//! `$NOTIFY_SOCKET` (READY=1 once it serves, WATCHDOG=1, RELOADING=1 on SIGHUP, STOPPING=1 on
//! SIGTERM, exit 0), journald-style log lines, and socket activation of the ingest listener.

mod support;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A port nobody listens on right now (bound, then released).
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn write_config(dir: &Path, ingest: SocketAddr, metrics: SocketAddr) -> std::path::PathBuf {
    let file = dir.join("notifyd.toml");
    let text = format!(
        "[store]\npath = \"{}\"\n[ingest]\nlisten = \"{ingest}\"\n[metrics]\nlisten = \"{metrics}\"\n[shutdown]\ngrace = \"2s\"\n",
        dir.join("data").display()
    );
    std::fs::write(&file, text).unwrap();
    file
}

/// The notify socket a service manager would listen on.
fn notify_socket(dir: &Path) -> (UnixDatagram, std::path::PathBuf) {
    let path = dir.join("notify.sock");
    let rx = UnixDatagram::bind(&path).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    (rx, path)
}

/// Reads messages until one starts with `prefix` (watchdog pings may come in between).
fn expect(rx: &UnixDatagram, prefix: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = rx
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no {prefix} (got {seen:?}): {e}"));
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if msg.starts_with(prefix) {
            return msg;
        }
        assert!(
            msg == "WATCHDOG=1",
            "unexpected message {msg:?} while waiting for {prefix}"
        );
        seen.push(msg);
    }
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn notifyd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_notifyd"));
    c.env_remove("NOTIFYD_CONFIG")
        .env_remove("STATE_DIRECTORY")
        .env_remove("WATCHDOG_PID")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Waits (bounded) for the child to exit; its stderr is read meanwhile so it never blocks on a
/// full pipe.
fn wait_exit(reap: &mut Reap) -> (Option<i32>, String) {
    let mut child = reap.0.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "notifyd did not exit after SIGTERM:\n{}",
                reader.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code(), reader.join().unwrap())
}

/// Kills the child if an assertion fails midway, so no daemon outlives the test.
struct Reap(Option<Child>);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn ready_watchdog_reload_stopping_and_journal_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (ingest, metrics) = (free_addr(), free_addr());
    let config = write_config(dir.path(), ingest, metrics);
    let (rx, sock) = notify_socket(dir.path());
    let child = notifyd()
        .arg("--config")
        .arg(&config)
        .env("NOTIFY_SOCKET", &sock)
        .env("WATCHDOG_USEC", "200000")
        .env("JOURNAL_STREAM", "8:12345")
        .spawn()
        .unwrap();
    let mut reap = Reap(Some(child));
    let child = reap.0.as_ref().unwrap();

    let ready = expect(&rx, "READY=1");
    assert!(ready.contains("\nSTATUS=Ready"), "{ready}");
    // READY=1 comes after recovery: the daemon already says ready and takes requests.
    assert!(http_get(metrics, "/readyz").starts_with("HTTP/1.1 200"));
    assert!(http_get(ingest, "/healthz").starts_with("HTTP/1.1 200"));
    expect(&rx, "WATCHDOG=1");

    signal(child, "-HUP");
    expect(&rx, "RELOADING=1");
    expect(&rx, "READY=1");

    signal(child, "-TERM");
    expect(&rx, "STOPPING=1");
    let (code, log) = wait_exit(&mut reap);
    assert_eq!(code, Some(0), "{log}");

    // Journald lines: a syslog priority prefix, no colour codes, no timestamp of our own.
    let lines: Vec<&str> = log.lines().collect();
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(
            ["<3>", "<4>", "<6>", "<7>"]
                .iter()
                .any(|p| line.starts_with(p)),
            "{line}"
        );
        assert!(!line.contains('\u{1b}'), "colour code in {line:?}");
        assert!(
            !line[3..].trim_start().starts_with("20"),
            "timestamp in {line}"
        );
    }
    for said in [
        "Ready.",
        "Reloaded profiles, merchants and keys.",
        "Stopped.",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("<6>") && l.contains(&format!(": {said}"))),
            "no info line saying {said:?} in:\n{log}"
        );
    }
}

#[test]
fn socket_activation_serves_ingest_on_the_passed_socket() {
    if Command::new("systemd-socket-activate")
        .arg("--version")
        .output()
        .is_err()
    {
        support::skip("systemd-socket-activate not found (apt-get install -y systemd provides it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (configured, metrics, activated) = (free_addr(), free_addr(), free_addr());
    let config = write_config(dir.path(), configured, metrics);
    let (rx, sock) = notify_socket(dir.path());
    // Without --accept, systemd-socket-activate listens, waits for a connection, then execs
    // notifyd in its own process with LISTEN_FDS=1 and LISTEN_PID set to it.
    let child = Command::new("systemd-socket-activate")
        .arg(format!("--listen={activated}"))
        .arg(format!("--setenv=NOTIFY_SOCKET={}", sock.display()))
        .arg(env!("CARGO_BIN_EXE_notifyd"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reap = Reap(Some(child));

    // The first connection may come before the socket exists; retry briefly.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let reply = loop {
        match TcpStream::connect(activated) {
            Ok(_) => break http_get(activated, "/healthz"),
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "no listener: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    expect(&rx, "READY=1");
    // The passed socket replaced ingest.listen, which nothing binds.
    assert!(TcpStream::connect(configured).is_err());
    assert!(http_get(metrics, "/readyz").starts_with("HTTP/1.1 200"));

    signal(reap.0.as_ref().unwrap(), "-TERM");
    expect(&rx, "STOPPING=1");
    let out = reap.0.take().unwrap().wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Using the ingest socket systemd passed")
    );
}
