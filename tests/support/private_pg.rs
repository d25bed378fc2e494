//! A PostgreSQL server of the test's own (Debian's binaries, a temporary data directory, a
//! free port), for fault tests that stop and start it: the shared test server must never
//! go down under the other tests.
//!
//! Include it from a test file with
//!
//! ```ignore
//! #[path = "support/private_pg.rs"]
//! mod private_pg;
//! ```
//!
//! It needs root (the server runs as the `postgres` user) and Debian's PostgreSQL
//! packages (`bash .ci/postgres.sh` installs them). Without them [`PrivatePg::start`]
//! returns `None` and the test skips, saying so, unless `AUTH_REQUIRE_POSTGRES=1`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running private server; stopped (and its directory removed) when dropped.
pub struct PrivatePg {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivatePg {
    /// Initializes and starts a server, or `None` (with a notice) when this machine
    /// cannot run one and `AUTH_REQUIRE_POSTGRES` is not `1`.
    pub fn start() -> Option<Self> {
        let required = std::env::var("AUTH_REQUIRE_POSTGRES").is_ok_and(|v| v.trim() == "1");
        let skip = |why: &str| {
            assert!(!required, "AUTH_REQUIRE_POSTGRES=1 but {why}");
            eprintln!("SKIPPED: private PostgreSQL fault test ({why})");
            None
        };
        let Some(bin) = pg_bindir() else {
            return skip("no PostgreSQL binaries under /usr/lib/postgresql");
        };
        if !is_root() {
            return skip("not root (the server runs as the postgres user)");
        }
        let dir = tempfile::Builder::new()
            .prefix("tower-auth-faults-pg")
            .tempdir()
            .expect("temp dir");
        chown_postgres(dir.path());
        let data = dir.path().join("data");
        let initdb = as_postgres(&bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .expect("initdb");
        assert!(initdb.success(), "initdb failed");
        let port = free_port();
        let pg = Self { bin, dir, port };
        pg.start_server();
        Some(pg)
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once, as a crash or a killed host would (`-m immediate`).
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "immediate", "-w"]);
    }

    /// Starts the server again on the same data and port, and waits until it accepts.
    pub fn start_server(&self) {
        let log = self.dir.path().join("server.log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        self.pg_ctl(&[
            "start",
            "-w",
            "-t",
            "60",
            "-l",
            &log.display().to_string(),
            "-o",
            &options,
        ]);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let status = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("pg_ctl");
        assert!(status.success(), "pg_ctl {args:?} failed");
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["stop", "-m", "immediate"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn pg_bindir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("postgres").exists() && bin.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn chown_postgres(path: &Path) {
    let status = Command::new("chown")
        .args(["postgres:postgres"])
        .arg(path)
        .status()
        .expect("chown");
    assert!(status.success(), "chown postgres {}", path.display());
}

fn as_postgres(program: &Path) -> Command {
    let mut command = Command::new("runuser");
    command.args(["-u", "postgres", "--"]).arg(program);
    command
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
