//! Test support shared by the end-to-end tests (and, later, the benchmarks): a local mock of
//! an OpenAI-compatible provider. The tests themselves live in `it/`.

pub mod mock;
