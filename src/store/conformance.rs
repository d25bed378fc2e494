//! Conformance suite placeholder
