//! The `store` benchmark group (placeholder).
fn main() {}
