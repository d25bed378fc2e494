//! Capturing what a test thread traces, to check log lines and events.
//!
//! Include it from a test file with
//!
//! ```ignore
//! #[path = "support/logs.rs"]
//! mod logs;
//! ```
//!
//! Use current-thread runtimes (`#[tokio::test]`): the server's tasks then run on the
//! test's thread, so everything they trace is captured, and nothing from tests running on
//! other threads.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What a test thread's subscriber saw: events and span fields, all targets, all levels.
#[derive(Clone, Default)]
pub struct Capture(pub Arc<Mutex<Vec<Captured>>>);

#[derive(Debug, Clone)]
pub struct Captured {
    /// The event's target (or `span <id>` for span fields).
    pub target: String,
    /// Its fields, rendered.
    pub fields: BTreeMap<String, String>,
}

impl Captured {
    /// The whole event as one line.
    pub fn text(&self) -> String {
        format!("{} {:?}", self.target, self.fields)
    }
}

thread_local! {
    static THREAD_CAPTURE: std::cell::RefCell<Option<Capture>> =
        const { std::cell::RefCell::new(None) };
}

/// Captures everything traced on this thread until dropped.
pub struct CaptureGuard;

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        THREAD_CAPTURE.with(|c| c.borrow_mut().take());
    }
}

impl Capture {
    /// Starts capturing what is traced on the current thread.
    ///
    /// The subscriber is process-wide, set once, and hands each event to the capture of
    /// the thread it happens on. A thread-scoped subscriber (`set_default`) is not enough
    /// here: tracing caches each callsite's interest when the callsite is first hit, and
    /// with a single scoped subscriber it asks the *hitting* thread's subscriber, so a test
    /// running in parallel could make `tower_auth::event` "never interesting" for good.
    pub fn start(&self) -> CaptureGuard {
        static GLOBAL: std::sync::Once = std::sync::Once::new();
        GLOBAL.call_once(|| {
            use tracing_subscriber::layer::SubscriberExt as _;
            tracing::subscriber::set_global_default(
                tracing_subscriber::registry().with(ThreadCapture),
            )
            .expect("no other global subscriber in this test binary");
        });
        THREAD_CAPTURE.with(|c| *c.borrow_mut() = Some(self.clone()));
        CaptureGuard
    }

    /// Everything captured so far.
    pub fn events(&self) -> Vec<Captured> {
        self.0.lock().unwrap().clone()
    }

    fn push(target: String, record: impl FnOnce(&mut FieldVisitor<'_>)) {
        THREAD_CAPTURE.with(|c| {
            if let Some(capture) = &*c.borrow() {
                let mut fields = BTreeMap::new();
                record(&mut FieldVisitor(&mut fields));
                capture.0.lock().unwrap().push(Captured { target, fields });
            }
        });
    }
}

struct FieldVisitor<'a>(&'a mut BTreeMap<String, String>);

impl tracing::field::Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

/// The global layer: forwards to the current thread's [`Capture`], if any.
struct ThreadCapture;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ThreadCapture {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        Capture::push(event.metadata().target().to_owned(), |v| event.record(v));
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        Capture::push(attrs.metadata().target().to_owned(), |v| attrs.record(v));
    }

    fn on_record(
        &self,
        span: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        Capture::push(format!("span {span:?}"), |v| values.record(v));
    }
}
