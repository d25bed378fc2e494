//! Delivering password-reset tokens: the [`ResetTokenSender`] trait and a file outbox.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

/// Hands a freshly issued reset token to its owner (email, SMS, a queue).
///
/// Called once per issued token, after the token is stored. The token is a secret: an
/// implementation must not log it.
#[async_trait]
pub trait ResetTokenSender: Send + Sync + 'static {
    /// Delivers `token` to the account `email`.
    ///
    /// # Errors
    /// Any delivery failure; the request then fails with a 500 and a generic body.
    async fn send(&self, email: &str, token: &str) -> Result<(), std::io::Error>;
}

/// A development [`ResetTokenSender`]: writes one message file per token into a directory,
/// named `<millis>-<random>.eml`, so a developer (or a test) can read the link.
#[derive(Debug, Clone)]
pub struct FileOutbox {
    dir: PathBuf,
}

impl FileOutbox {
    /// An outbox writing into `dir` (created on first use, owner-only on unix; message
    /// files are owner-only too, as they hold secrets).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory messages are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[async_trait]
impl ResetTokenSender for FileOutbox {
    async fn send(&self, email: &str, token: &str) -> Result<(), std::io::Error> {
        let unique = crate::token::generate(crate::token::TokenFormat::Uuid)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let millis = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
        let path = self.dir.join(format!("{millis}-{unique}.eml"));
        let body = format!(
            "To: {email}\r\nSubject: Reset your password\r\n\r\n\
             Use this token to choose a new password (PUT /reset_password):\r\n\r\n\
             email={email}\r\nreset_token={token}\r\n"
        );
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || write_message(&dir, &path, body.as_bytes()))
            .await
            .map_err(std::io::Error::other)?
    }
}

/// Writes one message holding a secret. On unix the directory is created owner-only
/// (0700) and the file is created fresh (never through an existing file or symlink) and
/// owner-only (0600), so other local users cannot read tokens even in a shared temp
/// directory. The message is written under a temporary name and renamed, so a reader never
/// sees half of it.
fn write_message(dir: &Path, path: &Path, body: &[u8]) -> std::io::Result<()> {
    let mut dirs = std::fs::DirBuilder::new();
    dirs.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut dirs, 0o700);
    dirs.create(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        // An existing directory is left as it is (it may be the developer's choice), but
        // say so when other users can look into it.
        if std::fs::metadata(dir)?.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                target: "tower_auth",
                dir = %dir.display(),
                "the reset outbox directory is accessible to other users"
            );
        }
    }

    let partial = path.with_extension("part");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&partial)
        .and_then(|mut file| file.write_all(body));
    if let Err(e) = written.and_then(|()| std::fs::rename(&partial, path)) {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    Ok(())
}
