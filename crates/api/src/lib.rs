//! Rotor's API crate: the management REST API, authentication, OpenAPI document and the
//! `rotor` binary's commands. Storage and dispatch live in their own crates.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod console;
pub mod edge;
pub mod embedded;
pub mod error;
pub mod extract;
pub mod gateway;
pub mod ledger;
pub mod license;
pub mod lifecycle;
pub mod observe;
pub mod responses;
pub mod routes;
pub mod serve;
pub mod startup;
pub mod state;
pub mod sync;
pub mod targets;
pub mod telemetry;
pub mod throttle;

pub use config::Config;
pub use startup::Application;
