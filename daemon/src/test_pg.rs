//! A private PostgreSQL cluster for tests of the PostgreSQL store (unit and integration tests
//! alike, hence public). It listens on a Unix socket in its own directory only, never on TCP,
//! and is stopped and removed on drop.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A running cluster. Each test makes its own database in it with [`Cluster::database`].
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    as_postgres: bool,
    /// The server options it was started with, to start it again the same way.
    options: String,
}

/// Debian's layout: the newest `/usr/lib/postgresql/<major>/bin` that holds `initdb`.
fn binaries() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

impl Cluster {
    /// Starts a cluster; `Err` says why none could be (PostgreSQL not installed, no `postgres`
    /// user to run it as root, or it failed to start).
    pub fn start() -> Result<Cluster, String> {
        Cluster::start_with(false)
    }

    /// [`Cluster::start`], with `fsync` on when measuring: a figure without it says nothing
    /// about commits.
    pub fn start_with(fsync: bool) -> Result<Cluster, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let bin = binaries().ok_or("PostgreSQL is not installed (/usr/lib/postgresql/*/bin)")?;
        let dir = std::env::temp_dir().join(format!(
            "notifyd-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // initdb refuses to run as root: run the server as the package's `postgres` user.
        let as_postgres = std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        if as_postgres {
            let ids = |flag: &str| -> Result<u32, String> {
                let out = Command::new("id")
                    .args([flag, "postgres"])
                    .output()
                    .map_err(|e| format!("id: {e}"))?;
                String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse()
                    .map_err(|_| "no `postgres` user to run PostgreSQL as".to_owned())
            };
            std::os::unix::fs::chown(&dir, Some(ids("-u")?), Some(ids("-g")?))
                .map_err(|e| format!("chown {}: {e}", dir.display()))?;
        }
        let mut cluster = Cluster {
            bin,
            dir,
            as_postgres,
            options: String::new(),
        };
        let data = cluster.dir.join("data");
        cluster.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-U".as_ref(),
                "notifyd".as_ref(),
                "--no-sync".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
            ],
        )?;
        // fsync off by default: these tests check logic, not the disk; the build disk is shared.
        cluster.options = format!(
            "-k {} -c listen_addresses='' -c max_connections=200 -c fsync={}",
            cluster.dir.display(),
            if fsync { "on" } else { "off" }
        );
        cluster.start_again()?;
        Ok(cluster)
    }

    /// Starts the server (again, after [`Cluster::stop`]) and waits until it accepts connections.
    pub fn start_again(&self) -> Result<(), String> {
        let (data, log) = (self.dir.join("data"), self.dir.join("log"));
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "-o".as_ref(),
                self.options.as_ref(),
                "start".as_ref(),
            ],
        )
    }

    /// Stops the server with `pg_ctl stop -m <mode>` (`fast`: sessions are cut and it shuts
    /// down cleanly; `immediate`: it dies and recovers from WAL at the next start) and waits
    /// until it is down.
    pub fn stop(&self, mode: &str) -> Result<(), String> {
        let data = self.dir.join("data");
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                mode.as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        )
    }

    fn run(&self, tool: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
        let path = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let out = cmd
            .args(args)
            .current_dir(&self.dir)
            .output()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{tool} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    /// The socket directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates database `name` and answers its connection string.
    pub fn database(&self, name: &str) -> Result<String, String> {
        let host = self.dir.as_os_str();
        self.run(
            "createdb",
            &[
                "-h".as_ref(),
                host,
                "-U".as_ref(),
                "notifyd".as_ref(),
                name.as_ref(),
            ],
        )?;
        Ok(format!(
            "host={} user=notifyd dbname={name}",
            self.dir.display()
        ))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop("immediate");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
