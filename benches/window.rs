//! Placeholder, replaced by the window benchmarks.
fn main() {}
