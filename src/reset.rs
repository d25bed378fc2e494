//! Delivering password-reset tokens: the [`ResetTokenSender`] trait and a file outbox.

use std::path::PathBuf;

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
    /// An outbox writing into `dir` (created on first use).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory messages are written to.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

#[async_trait]
impl ResetTokenSender for FileOutbox {
    async fn send(&self, email: &str, token: &str) -> Result<(), std::io::Error> {
        tokio::fs::create_dir_all(&self.dir).await?;
        let unique = crate::token::generate(crate::token::TokenFormat::Uuid)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let millis = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
        let path = self.dir.join(format!("{millis}-{unique}.eml"));
        let body = format!(
            "To: {email}\r\nSubject: Reset your password\r\n\r\n\
             Use this token to choose a new password (PUT /reset_password):\r\n\r\n\
             email={email}\r\nreset_token={token}\r\n"
        );
        // Write to a temporary name and rename, so a reader never sees half a message.
        let partial = path.with_extension("part");
        tokio::fs::write(&partial, body).await?;
        tokio::fs::rename(&partial, &path).await
    }
}
