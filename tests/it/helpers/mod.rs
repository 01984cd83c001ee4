//! Test harness: real Rotor servers (in-process or as processes) with fresh databases, one
//! request builder and answer type for every call, a dispatch [`World`], the OpenAPI document,
//! the Prometheus text the servers expose, and the console driven in a real browser.

mod app;
mod browser;
mod http;
mod metrics;
pub mod openapi;
mod process;
mod sdk;
mod world;

pub use app::*;
pub use browser::run_browser;
pub use http::*;
pub use metrics::*;
pub use process::*;
pub use sdk::run_sdk;
pub use world::*;
