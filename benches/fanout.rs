//! Placeholder, replaced by the fanout benchmarks.
fn main() {}
