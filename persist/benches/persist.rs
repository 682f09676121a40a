//! The `persist` benchmark group (placeholder).
fn main() {}
