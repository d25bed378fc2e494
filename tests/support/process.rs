//! The spec server as a child process, for tests that need a real process: several
//! instances on one database, or one killed with `kill -9`.
//!
//! Include it from a test file with
//!
//! ```ignore
//! #[path = "support/process.rs"]
//! mod process;
//! ```
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A spec server child process, killed (SIGKILL) when dropped.
pub struct SpecServer {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl SpecServer {
    /// Starts `binary` on a free port over `database_url` with bcrypt cost 4 and `extra`
    /// arguments, and waits until it answers.
    pub async fn start(binary: &Path, database_url: &str, extra: &[&str]) -> Self {
        let port = free_port();
        let child = Command::new(binary)
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .args(["--database-url", database_url])
            .args(["--bcrypt-cost", "4"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start spec_server");
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..400 {
            if client.get(&server.base).send().await.is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("spec_server on port {port} did not start");
    }

    /// `kill -9`, and waits for the process to be gone.
    pub fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SpecServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The spec server, built (or found up to date) in this test's own target directory and
/// profile, so the test never runs a stale server.
pub fn spec_server_binary() -> PathBuf {
    example_binary("spec_server")
}

/// The example `name`, built as [`spec_server_binary`] builds the spec server.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps layout");
    let target_dir = profile_dir.parent().expect("target directory");
    let mut build = Command::new(env!("CARGO"));
    build
        .args(["build", "--quiet", "--example", name, "--all-features"])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "cargo build --example {name} failed");
    profile_dir.join("examples").join(name)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
