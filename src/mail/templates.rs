//! The messages' words: one subject, plain-text and HTML template per [`MailKind`],
//! rendered with MiniJinja (HTML templates escape what they insert).

use minijinja::Environment;

/// What a message is for; each has its own templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MailKind {
    /// A link that confirms a new account's address.
    ConfirmEmail,
    /// To the owner of an address someone tried to register again (no token).
    AlreadyRegistered,
    /// A link that logs in.
    MagicLink,
    /// To a new address: a link that moves the account to it.
    ChangeEmail,
    /// To the old address: a change to a new one was asked for (no token).
    EmailChangeRequested,
    /// A link to choose a new password.
    ResetPassword,
    /// A second factor (authenticator app, passkey) was added (no token).
    SecondFactorAdded,
    /// A second factor was removed (no token).
    SecondFactorRemoved,
    /// A recovery code was used to log in (no token).
    RecoveryCodeUsed,
    /// A sign-in provider's identity was linked to the account (no token).
    ProviderLinked,
}

impl MailKind {
    /// Every kind.
    pub const ALL: [Self; 10] = [
        Self::ConfirmEmail,
        Self::AlreadyRegistered,
        Self::MagicLink,
        Self::ChangeEmail,
        Self::EmailChangeRequested,
        Self::ResetPassword,
        Self::SecondFactorAdded,
        Self::SecondFactorRemoved,
        Self::RecoveryCodeUsed,
        Self::ProviderLinked,
    ];

    /// The kind's name, the stem of its template names (`magic_link.subject.txt`,
    /// `magic_link.txt`, `magic_link.html`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConfirmEmail => "confirm_email",
            Self::AlreadyRegistered => "already_registered",
            Self::MagicLink => "magic_link",
            Self::ChangeEmail => "change_email",
            Self::EmailChangeRequested => "email_change_requested",
            Self::ResetPassword => "reset_password",
            Self::SecondFactorAdded => "second_factor_added",
            Self::SecondFactorRemoved => "second_factor_removed",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::ProviderLinked => "provider_linked",
        }
    }
}

/// A template that does not parse, or a name that is not one of ours.
#[derive(Debug, thiserror::Error)]
#[error("mail template {name}: {reason}")]
pub struct TemplateError {
    name: String,
    reason: String,
}

impl TemplateError {
    fn new(name: &str, reason: impl std::fmt::Display) -> Self {
        Self {
            name: name.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// The templates of every [`MailKind`]: three per kind, named `<kind>.subject.txt`,
/// `<kind>.txt` and `<kind>.html` (kinds by [`MailKind::as_str`]). The defaults are plain
/// English; replace any of them with [`set`](Self::set).
///
/// Every template sees `email` (the recipient), `link` (the link to open; for notices,
/// the app's address) and `valid_for` (how long the link works, "15 minutes"); email
/// changes also see `old_email` (in `change_email`) or `new_email` (in
/// `email_change_requested`). MiniJinja syntax; `.html` templates escape what they insert.
///
/// ```
/// use tower_auth::{MailKind, MailTemplates};
/// let mut templates = MailTemplates::default();
/// templates
///     .set("magic_link.subject.txt", "Your link to Example")
///     .unwrap();
/// assert!(templates.set("magic_link.txt", "{{ unclosed").is_err());
/// assert!(templates.set("no_such_kind.txt", "hi").is_err());
/// # let _ = MailKind::MagicLink;
/// ```
#[derive(Clone)]
pub struct MailTemplates {
    env: Environment<'static>,
}

impl std::fmt::Debug for MailTemplates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailTemplates").finish_non_exhaustive()
    }
}

/// The built-in templates, by name.
const DEFAULTS: [(&str, &str); 30] = {
    macro_rules! kind {
        ($name:literal) => {
            [
                (
                    concat!($name, ".subject.txt"),
                    include_str!(concat!("templates/", $name, ".subject.txt")),
                ),
                (
                    concat!($name, ".txt"),
                    include_str!(concat!("templates/", $name, ".txt")),
                ),
                (
                    concat!($name, ".html"),
                    include_str!(concat!("templates/", $name, ".html")),
                ),
            ]
        };
    }
    let [a, b, c] = kind!("confirm_email");
    let [d, e, f] = kind!("already_registered");
    let [g, h, i] = kind!("magic_link");
    let [j, k, l] = kind!("change_email");
    let [m, n, o] = kind!("email_change_requested");
    let [p, q, r] = kind!("reset_password");
    let [s, t, u] = kind!("second_factor_added");
    let [v, w, x] = kind!("second_factor_removed");
    let [y, z, aa] = kind!("recovery_code_used");
    let [ab, ac, ad] = kind!("provider_linked");
    [
        a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v, w, x, y, z, aa, ab, ac,
        ad,
    ]
};

impl Default for MailTemplates {
    fn default() -> Self {
        let mut env = Environment::new();
        for (name, source) in DEFAULTS {
            // The built-in templates are tested to parse (see the tests below).
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(target: "tower_auth", template = name, error = %e, "built-in mail template");
            }
        }
        Self { env }
    }
}

/// The values a template sees.
#[derive(Debug, serde::Serialize)]
pub(crate) struct MailContext<'a> {
    pub(crate) email: &'a str,
    pub(crate) link: &'a str,
    pub(crate) valid_for: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) old_email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) new_email: Option<&'a str>,
}

/// One message's rendered parts.
pub(crate) struct Rendered {
    pub(crate) subject: String,
    pub(crate) text: String,
    pub(crate) html: String,
}

impl MailTemplates {
    /// Replaces the template `name` (`<kind>.subject.txt`, `<kind>.txt` or `<kind>.html`).
    ///
    /// # Errors
    /// [`TemplateError`] when `name` is not one of ours or `source` does not parse; the
    /// template in place stays.
    pub fn set(&mut self, name: &str, source: &str) -> Result<(), TemplateError> {
        if !DEFAULTS.iter().any(|(known, _)| *known == name) {
            return Err(TemplateError::new(
                name,
                "not a template name (<kind>.subject.txt, <kind>.txt or <kind>.html)",
            ));
        }
        // Parse on a scratch environment first, so a bad template replaces nothing.
        Environment::new()
            .template_from_str(source)
            .map_err(|e| TemplateError::new(name, e))?;
        self.env
            .add_template_owned(name.to_owned(), source.to_owned())
            .map_err(|e| TemplateError::new(name, e))
    }

    pub(crate) fn render(
        &self,
        kind: MailKind,
        context: &MailContext<'_>,
    ) -> Result<Rendered, TemplateError> {
        let render = |suffix: &str| {
            let name = format!("{}.{suffix}", kind.as_str());
            self.env
                .get_template(&name)
                .and_then(|t| t.render(context))
                .map_err(|e| TemplateError::new(&name, e))
        };
        Ok(Rendered {
            // A subject is one line, whatever the template's trailing newline.
            subject: render("subject.txt")?
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
            text: render("txt")?,
            html: render("html")?,
        })
    }
}

/// "15 minutes", "1 hour", "3 days": how long a link works, for people.
pub(crate) fn human_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = if secs.is_multiple_of(86_400) && secs >= 86_400 {
        (secs / 86_400, "day")
    } else if secs.is_multiple_of(3_600) && secs >= 3_600 {
        (secs / 3_600, "hour")
    } else {
        (secs.div_ceil(60).max(1), "minute")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context<'a>() -> MailContext<'a> {
        MailContext {
            email: "bob@example.com",
            link: "https://x.example/?token=<&>",
            valid_for: "15 minutes".into(),
            old_email: Some("old@example.com"),
            new_email: Some("new@example.com"),
        }
    }

    #[test]
    fn every_default_template_renders() {
        let templates = MailTemplates::default();
        for kind in MailKind::ALL {
            let r = templates.render(kind, &context()).expect("renders");
            assert!(!r.subject.is_empty() && !r.subject.contains('\n'));
            assert!(r.text.contains("bob@example.com"), "{kind:?}");
            // The HTML escapes what it inserts; the text does not.
            if r.text.contains("token=<&>") {
                assert!(r.html.contains("token=&lt;&amp;&gt;"), "{kind:?}");
            }
        }
    }

    #[test]
    fn a_replaced_template_is_used_and_a_broken_one_refused() {
        let mut templates = MailTemplates::default();
        templates
            .set("magic_link.txt", "Link for {{ email }}: {{ link }}")
            .unwrap();
        let r = templates.render(MailKind::MagicLink, &context()).unwrap();
        assert_eq!(
            r.text,
            "Link for bob@example.com: https://x.example/?token=<&>"
        );
        assert!(templates.set("magic_link.html", "{% if %}").is_err());
        assert!(templates.render(MailKind::MagicLink, &context()).is_ok());
    }

    #[test]
    fn durations_read_as_people_say_them() {
        use std::time::Duration;
        assert_eq!(human_duration(Duration::from_secs(900)), "15 minutes");
        assert_eq!(human_duration(Duration::from_secs(3600)), "1 hour");
        assert_eq!(human_duration(Duration::from_secs(2 * 86_400)), "2 days");
        assert_eq!(human_duration(Duration::from_secs(30)), "1 minute");
    }
}
