//! End-to-end tests: the real server over real HTTP against a real PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
mod helpers;

mod admin;
mod api_keys;
mod auth;
mod concurrency;
mod console;
mod console_admin;
mod console_keys;
mod console_lb;
mod credentials;
mod embedded;
mod encryption;
mod families;
mod faults;
mod gateway;
mod hardening;
mod hostile;
mod key_limits;
mod keyfiles;
mod license;
mod lifecycle;
mod load;
mod load_balancing;
mod metrics;
mod mock_families;
mod replicas;
mod roles;
mod sdk;
mod settings;
mod statuses;
mod tenancy;
mod usage;
