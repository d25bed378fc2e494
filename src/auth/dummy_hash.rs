//! The hash an unknown email is verified against. It must cost what verifying a real
//! account's hash costs, or the time of a wrong password tells registered emails from
//! unknown ones. After a change of algorithm or cost, most stored hashes keep their old
//! parameters until their owners log in again, so the configured parameters are not what a
//! typical account costs: the parameters most often seen in stored hashes are.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::password::params_key;

/// Parameter sets counted at most: stored hashes are ours, so a handful exist.
const MAX_KINDS: usize = 16;

/// Which hash parameters logins meet, and a dummy hash made for the usual one.
#[derive(Default)]
pub(super) struct DummyHashes {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Times each parameter set was met in a stored hash being verified.
    seen: HashMap<String, u64>,
    /// Dummy hashes by parameter set; `None` while being made, or when it cannot be.
    made: HashMap<String, Option<String>>,
}

impl DummyHashes {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts the parameters of a stored hash about to be verified.
    pub(super) fn note(&self, hash: &str) {
        let Some(key) = params_key(hash) else { return };
        let mut state = self.state();
        if state.seen.len() >= MAX_KINDS && !state.seen.contains_key(&key) {
            return;
        }
        let count = state.seen.entry(key).or_default();
        *count = count.saturating_add(1);
    }

    /// The parameter set seen most often (ties: the one that sorts first) and its dummy
    /// hash if one is made.
    pub(super) fn usual(&self) -> Option<(String, Option<String>)> {
        let state = self.state();
        let (key, _) = state
            .seen
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))?;
        let made = state.made.get(key).cloned().flatten();
        Some((key.clone(), made))
    }

    /// True when no dummy for `key` is made or being made: the caller makes it.
    pub(super) fn start_making(&self, key: &str) -> bool {
        let mut state = self.state();
        if state.made.contains_key(key) {
            return false;
        }
        state.made.insert(key.to_owned(), None);
        true
    }

    /// Records the dummy made for `key` (`None`: it could not be, and is not tried again).
    pub(super) fn made(&self, key: &str, hash: Option<String>) {
        self.state().made.insert(key.to_owned(), hash);
    }
}

#[cfg(test)]
mod tests {
    use super::DummyHashes;

    #[test]
    fn the_usual_parameters_are_the_most_often_seen() {
        let dummies = DummyHashes::default();
        assert!(dummies.usual().is_none());
        let old = "$2b$04$abcdefghijklmnopqrstuu5rQ0wYpQY8lzl7C8QHmaZ2m1.JxFNpG";
        let new = "$2b$12$abcdefghijklmnopqrstuu5rQ0wYpQY8lzl7C8QHmaZ2m1.JxFNpG";
        dummies.note(old);
        dummies.note(new);
        dummies.note(old);
        dummies.note("!");
        assert_eq!(
            dummies.usual().map(|(key, _)| key).as_deref(),
            Some("$2b$04")
        );
        assert!(dummies.start_making("$2b$04"));
        assert!(!dummies.start_making("$2b$04"), "made once");
        dummies.made("$2b$04", Some("dummy".into()));
        assert_eq!(
            dummies.usual().and_then(|(_, made)| made).as_deref(),
            Some("dummy")
        );
    }
}
