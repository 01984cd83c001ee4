//! Test support shared by the end-to-end tests and the benchmarks (`bench/run` starts the
//! `mock-upstream` binary): a local mock of an OpenAI-compatible provider, scripted per API key
//! with [`mock::MockKey`]. The tests themselves live in `it/`.

pub mod mock;
