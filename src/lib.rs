//! Cross-crate tests and benchmarks of the igdm workspace.
//!
//! This package is not published. Its `tests/` folder holds tests that combine several igdm crates,
//! and its `benches/` folder holds the criterion suite, one file per hot path, each measuring igdm
//! next to a named rival in the same group.
