//! Mail for the tests: a capturing in-process transport, a real SMTP server (aiosmtpd, on
//! loopback, as its own process), and a MIME reader for what either received.
//!
//! Include it from a test file with
//!
//! ```ignore
//! #[path = "support/mail.rs"]
//! mod mail;
//! ```
//!
//! The SMTP server needs Python's `aiosmtpd` (`pip install aiosmtpd`; `.ci/run` installs
//! it). Without it the SMTP tests are skipped and say so, unless `AUTH_REQUIRE_SMTP=1`
//! (set by `.ci/run`), which makes a missing server a failure.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tower_auth::mail::{MailError, MailTransport};

/// A message as a transport or server received it.
#[derive(Clone, Debug)]
pub struct Received {
    /// The envelope recipient.
    pub to: String,
    /// The whole message as sent.
    pub raw: Vec<u8>,
}

/// A received message, read as MIME.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub subject: String,
    pub from: String,
    pub to: String,
    pub content_type: String,
    pub text: String,
    pub html: String,
    pub message_id: Option<String>,
    pub date: Option<String>,
}

impl Received {
    /// The message read as MIME: headers decoded, the text and HTML parts of a
    /// `multipart/alternative` decoded from their transfer encoding.
    pub fn parsed(&self) -> Parsed {
        let mail = mailparse::parse_mail(&self.raw).expect("a parsable MIME message");
        let header = |name: &str| {
            mail.headers
                .iter()
                .find(|h| h.get_key().eq_ignore_ascii_case(name))
                .map(mailparse::MailHeader::get_value)
        };
        let part = |mime: &str| {
            mail.subparts
                .iter()
                .find(|p| p.ctype.mimetype == mime)
                .map(|p| p.get_body().expect("a decodable part"))
                .unwrap_or_default()
        };
        Parsed {
            subject: header("Subject").unwrap_or_default(),
            from: header("From").unwrap_or_default(),
            to: header("To").unwrap_or_default(),
            content_type: mail.ctype.mimetype.clone(),
            text: part("text/plain"),
            html: part("text/html"),
            message_id: header("Message-ID"),
            date: header("Date"),
        }
    }

    /// The `token` query parameter of the link in the text part.
    pub fn token(&self) -> String {
        token_in(&self.parsed().text).expect("a link with a token in the message")
    }
}

/// The value of the first `token=` query parameter in `text`, percent-decoded.
pub fn token_in(text: &str) -> Option<String> {
    let start = text.find("token=")? + "token=".len();
    let value: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '&' && *c != '"' && *c != '<')
        .collect();
    Some(
        percent_encoding::percent_decode_str(&value)
            .decode_utf8()
            .expect("UTF-8 token")
            .into_owned(),
    )
}

/// A [`MailTransport`] that keeps what it is handed, and can be told to fail.
#[derive(Clone, Default)]
pub struct Capture {
    sent: Arc<Mutex<Vec<Received>>>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl Capture {
    /// Everything delivered so far.
    pub fn sent(&self) -> Vec<Received> {
        self.sent.lock().unwrap().clone()
    }

    /// What was delivered to `to`.
    pub fn sent_to(&self, to: &str) -> Vec<Received> {
        self.sent().into_iter().filter(|m| m.to == to).collect()
    }

    /// Makes every delivery fail (transiently) while `down`.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    /// Waits (up to 10 s) until `count` messages in all were delivered; returns them.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        wait_until(|| {
            let sent = self.sent();
            (sent.len() >= count).then_some(sent)
        })
        .await
        .unwrap_or_else(|| panic!("expected {count} messages, got {}", self.sent().len()))
    }
}

#[async_trait::async_trait]
impl MailTransport for Capture {
    async fn send(&self, _from: &str, to: &str, message: &[u8]) -> Result<(), MailError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(MailError::Transient("the test mail server is down".into()));
        }
        self.sent.lock().unwrap().push(Received {
            to: to.to_owned(),
            raw: message.to_vec(),
        });
        Ok(())
    }
}

/// Polls `check` every 20 ms for up to 10 s.
pub async fn wait_until<T>(mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = check() {
            return Some(found);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Set to `1` to make a missing `aiosmtpd` a failure instead of a skip.
pub const REQUIRE_SMTP_VAR: &str = "AUTH_REQUIRE_SMTP";

/// True when Python's `aiosmtpd` can be imported; otherwise prints a skip notice (or
/// panics under `AUTH_REQUIRE_SMTP=1`).
pub fn smtp_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            !std::env::var(REQUIRE_SMTP_VAR).is_ok_and(|v| v.trim() == "1"),
            "{REQUIRE_SMTP_VAR}=1 but Python's aiosmtpd is missing: pip install aiosmtpd"
        );
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: SMTP tests (pip install aiosmtpd to run them)"
        );
    }
    ok
}

/// A real SMTP server (tests/support/smtp_server.py) in its own process, writing what it
/// accepts into a directory. Killed when dropped.
pub struct SmtpServer {
    child: Option<Child>,
    port: u16,
    /// The port, held for as long as the server lives: see [`reserve`].
    _reservation: tokio::net::TcpSocket,
    dir: PathBuf,
    extra: Vec<String>,
}

/// A socket bound to `port` (0: any free one) but not listening, with `SO_REUSEADDR`: the
/// SMTP server (which binds with it too) can listen on the port, connections are refused
/// while it is stopped, and no other server of a test running beside it is given the port
/// meanwhile, so a stopped server can always start again where its clients expect it.
fn reserve(port: u16) -> tokio::net::TcpSocket {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .expect("the SMTP server's port");
    socket
}

impl SmtpServer {
    /// Starts a server on a free loopback port; `extra` are more flags (`--auth u:p`,
    /// `--starttls CERT KEY`, `--smtps CERT KEY`).
    pub async fn start(dir: &Path, extra: &[&str]) -> Self {
        Self::start_reserved(reserve(0), dir, extra).await
    }

    /// [`start`](Self::start) on `port`.
    pub async fn start_on(port: u16, dir: &Path, extra: &[&str]) -> Self {
        Self::start_reserved(reserve(port), dir, extra).await
    }

    async fn start_reserved(
        reservation: tokio::net::TcpSocket,
        dir: &Path,
        extra: &[&str],
    ) -> Self {
        let port = reservation.local_addr().expect("reserved port").port();
        let mut server = Self {
            child: None,
            port,
            _reservation: reservation,
            dir: dir.to_owned(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        server.run().await;
        server
    }

    async fn run(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--port", &self.port.to_string()])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the SMTP server");
        let stdout = child.stdout.take().expect("stdout");
        let ready = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        });
        let line = tokio::time::timeout(Duration::from_secs(20), ready)
            .await
            .expect("the SMTP server starts within 20 s")
            .expect("reader")
            .expect("read");
        assert_eq!(line.trim(), "READY", "SMTP server said {line:?}");
        self.child = Some(child);
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `smtp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Kills the server: connections are refused until [`restart`](Self::restart).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) {
        self.stop();
        self.run().await;
    }

    /// Every message received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .map(|path| {
                let raw = std::fs::read(path).expect("read message");
                let parsed = mailparse::parse_mail(&raw).expect("MIME");
                let to = parsed
                    .headers
                    .iter()
                    .find(|h| h.get_key() == "X-Envelope-To")
                    .map(mailparse::MailHeader::get_value)
                    .unwrap_or_default();
                Received { to, raw }
            })
            .collect()
    }

    /// Waits (up to 10 s) until `count` messages in all arrived; returns them.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        wait_until(|| {
            let got = self.received();
            (got.len() >= count).then_some(got)
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "expected {count} messages at the SMTP server, got {}",
                self.received().len()
            )
        })
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}
