//! The development outbox: each message as an owner-only `.eml` file in a directory.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{MailError, MailTransport};

/// A development [`MailTransport`]: writes each message, exactly as it would go over SMTP,
/// into `dir` as `<millis>-<random>.eml` (openable in any mail client), so a developer or
/// a test can read its link. The directory is created owner-only, and so is each file, as
/// messages carry secrets.
#[derive(Debug, Clone)]
pub struct MailDir {
    dir: PathBuf,
}

impl MailDir {
    /// An outbox writing into `dir` (created on first use).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory messages are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[async_trait]
impl MailTransport for MailDir {
    async fn send(&self, _from: &str, _to: &str, message: &[u8]) -> Result<(), MailError> {
        let unique = crate::token::generate(crate::token::TokenFormat::Uuid)
            .map_err(|e| MailError::Transient(e.to_string().into()))?;
        let millis = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
        let path = self.dir.join(format!("{millis}-{unique}.eml"));
        let dir = self.dir.clone();
        let message = message.to_vec();
        tokio::task::spawn_blocking(move || write_message(&dir, &path, &message))
            .await
            .map_err(|e| MailError::Transient(Box::new(e)))?
            .map_err(|e| MailError::Transient(Box::new(e)))
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
                "the mail outbox directory is accessible to other users"
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
