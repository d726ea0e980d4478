//! Living under systemd: the sd_notify(3) protocol (`READY=1` once recovery is done, `STOPPING=1`,
//! `RELOADING=1`, `WATCHDOG=1`), socket activation of the ingest listener (sd_listen_fds(3)) and
//! journald priority prefixes on log lines (sd-daemon(3)).
//!
//! Every function here is a no-op outside systemd, so the daemon behaves the same under a shell,
//! a container runtime or a test harness.

use std::ffi::OsStr;
use std::io;
use std::net::SocketAddr;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{self, UnixDatagram};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::Level;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::app::App;

/// Sends state changes to the service manager's `$NOTIFY_SOCKET`; silent when there is none.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    target: Option<Arc<Target>>,
}

#[derive(Debug)]
struct Target {
    socket: UnixDatagram,
    addr: net::SocketAddr,
}

impl Notifier {
    /// The notifier for this process: from `$NOTIFY_SOCKET`, or a silent one.
    pub fn from_env() -> Notifier {
        match std::env::var_os("NOTIFY_SOCKET") {
            Some(v) if !v.is_empty() => Notifier::for_socket(&v).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "NOTIFY_SOCKET is unusable; systemd will not hear from notifyd.");
                Notifier::default()
            }),
            _ => Notifier::default(),
        }
    }

    /// A notifier for a socket path, or an abstract socket when it starts with `@`.
    pub fn for_socket(value: &OsStr) -> io::Result<Notifier> {
        let bytes = value.as_bytes();
        let addr = match bytes.split_first() {
            Some((b'@', name)) => net::SocketAddr::from_abstract_name(name)?,
            Some((b'/', _)) => net::SocketAddr::from_pathname(value)?,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "neither an absolute path nor an abstract (@) name",
                ));
            }
        };
        let socket = UnixDatagram::unbound()?;
        // The manager's queue is short (net.unix.max_dgram_qlen, 10 by default): when it is full a
        // blocking send would stall a runtime worker, so a message is dropped and logged instead.
        socket.set_nonblocking(true)?;
        Ok(Notifier {
            target: Some(Arc::new(Target { socket, addr })),
        })
    }

    /// Whether a service manager is listening.
    pub fn is_active(&self) -> bool {
        self.target.is_some()
    }

    /// Sends one datagram of newline-separated `KEY=value` assignments.
    pub fn notify(&self, state: &str) -> io::Result<()> {
        match &self.target {
            // A datagram socket: one send is the whole message or an error, never a part.
            Some(t) => t.socket.send_to_addr(state.as_bytes(), &t.addr).map(drop),
            None => Ok(()),
        }
    }

    /// Recovery is done and the listeners serve.
    pub fn ready(&self, pending: usize) {
        self.send(&format!(
            "READY=1\nSTATUS=Ready; {pending} notifications pending."
        ));
    }

    /// Intake is closed and attempts are draining.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=Stopping: draining attempts.");
    }

    /// A SIGHUP reload starts; [`Notifier::reloaded`] ends it.
    pub fn reloading(&self) {
        self.send("RELOADING=1");
    }

    /// The reload finished (well or not: the daemon serves either way).
    pub fn reloaded(&self, pending: usize) {
        self.ready(pending);
    }

    /// Tells the watchdog the daemon is alive.
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    fn send(&self, state: &str) {
        if let Err(e) = self.notify(state) {
            tracing::warn!(error = %e, "Could not notify systemd.");
        }
    }
}

/// The watchdog period systemd asked for (`$WATCHDOG_USEC`), when it is meant for this process.
pub fn watchdog_period() -> Option<Duration> {
    let var = |name| std::env::var(name).ok();
    parse_watchdog(
        var("WATCHDOG_USEC").as_deref(),
        var("WATCHDOG_PID").as_deref(),
        std::process::id(),
    )
}

/// `WATCHDOG_PID` may name a parent that forked us; then the pings are not ours to send.
fn parse_watchdog(usec: Option<&str>, pid: Option<&str>, own: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    match pid.map(str::trim) {
        Some(p) if !p.is_empty() && p.parse::<u32>().ok() != Some(own) => None,
        _ => Some(Duration::from_micros(usec)),
    }
}

/// Pings the watchdog at half the period systemd allows, as long as the daemon is alive: the
/// runtime still schedules tasks (delivery shards and listeners run on it) and the store
/// answers a read within the period. A wedged daemon stops pinging and systemd restarts it.
/// Abort the task when stopping; it holds the app only weakly so it never delays the store's close.
pub fn spawn_watchdog(notifier: &Notifier, app: &Arc<App>) -> Option<tokio::task::JoinHandle<()>> {
    let period = watchdog_period().filter(|_| notifier.is_active())?;
    let notifier = notifier.clone();
    let app = Arc::downgrade(app);
    let half = period / 2;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(half);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(app) = app.upgrade() else { return };
            if store_answers(&app, half).await {
                notifier.watchdog();
            } else {
                tracing::warn!(
                    "The store did not answer a read in time; withholding the watchdog ping."
                );
            }
        }
    }))
}

async fn store_answers(app: &Arc<App>, within: Duration) -> bool {
    let store = app.store.clone();
    let probe = tokio::task::spawn_blocking(move || {
        store
            .get(notifyd_core::NotificationId::from_u128(0))
            .is_ok()
    });
    matches!(tokio::time::timeout(within, probe).await, Ok(Ok(true)))
}

/// The ingest socket systemd passed (socket activation), taken once by [`take_activated_socket`].
static ACTIVATED: Mutex<Option<std::net::TcpListener>> = Mutex::new(None);

/// Takes the first socket systemd passed (`$LISTEN_FDS`, `$LISTEN_PID`) for the ingest listener.
///
/// Call it from `main` before any thread starts: reading the variables also clears them, which
/// is only safe while the process has one thread. Returns what it took, for a log line.
pub fn take_activated_socket() -> io::Result<Option<SocketAddr>> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Ok(None);
    }
    let Some(listener) = fds.take_tcp_listener(0)? else {
        return Ok(None);
    };
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    *ACTIVATED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(listener);
    Ok(Some(addr))
}

/// The ingest listener: the socket systemd passed, if any (once per process), else `addr` bound.
pub async fn ingest_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let activated = ACTIVATED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    match activated {
        Some(l) => TcpListener::from_std(l),
        None => TcpListener::bind(addr).await,
    }
}

/// Whether stderr goes to the journal (`$JOURNAL_STREAM`, set by systemd for `StandardError=journal`).
pub fn logging_to_journal() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some_and(|v| !v.is_empty())
}

/// Prefixes each log line with its syslog priority (`<3>` error … `<7>` debug) so journald files
/// it at the right level (`journalctl -p warning`); the line itself is the inner format's.
#[derive(Debug)]
pub struct JournalPriority<F>(pub F);

impl<S, N, F> FormatEvent<S, N> for JournalPriority<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "<{}>", priority(*event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

/// sd-daemon(3) priorities: ERROR means data loss or operator action, WARN a problem notifyd
/// works around, INFO a change of state, DEBUG and TRACE detail for developers.
const fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_period_needs_a_positive_value_and_our_pid_when_one_is_named() {
        assert_eq!(
            parse_watchdog(Some("30000000"), None, 7),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_watchdog(Some("30000000"), Some("7"), 7),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_watchdog(Some("30000000"), Some("8"), 7), None);
        assert_eq!(parse_watchdog(Some("0"), None, 7), None);
        assert_eq!(parse_watchdog(Some("soon"), None, 7), None);
        assert_eq!(parse_watchdog(None, Some("7"), 7), None);
    }

    #[test]
    fn notify_socket_must_be_a_path_or_an_abstract_name() {
        assert!(Notifier::for_socket(OsStr::new("relative/sock")).is_err());
        assert!(Notifier::for_socket(OsStr::new("")).is_err());
        assert!(Notifier::for_socket(OsStr::new("@notifyd-test")).is_ok());
        assert!(!Notifier::default().is_active());
        assert!(Notifier::default().notify("READY=1").is_ok());
    }

    #[test]
    fn abstract_and_path_sockets_receive_the_message() {
        let name = format!("notifyd-test-{}", std::process::id());
        let abs = net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&abs).unwrap();
        let n = Notifier::for_socket(OsStr::new(&format!("@{name}"))).unwrap();
        n.stopping();
        let mut buf = [0u8; 256];
        let len = rx.recv(&mut buf).unwrap();
        assert!(buf[..len].starts_with(b"STOPPING=1\n"));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::for_socket(path.as_os_str()).unwrap();
        n.watchdog();
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
    }

    #[test]
    fn a_full_manager_queue_drops_the_message_instead_of_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let _rx = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::for_socket(path.as_os_str()).unwrap();
        let refused = (0..10_000).find_map(|_| n.notify("WATCHDOG=1").err());
        assert_eq!(refused.map(|e| e.kind()), Some(io::ErrorKind::WouldBlock));
    }

    #[test]
    fn priorities_follow_sd_daemon() {
        assert_eq!(priority(Level::ERROR), 3);
        assert_eq!(priority(Level::WARN), 4);
        assert_eq!(priority(Level::INFO), 6);
        assert_eq!(priority(Level::TRACE), 7);
    }
}
