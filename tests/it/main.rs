//! End-to-end tests: the real server over real HTTP against a real PostgreSQL.

mod helpers;

mod admin;
mod api_keys;
mod auth;
mod embedded;
mod hostile;
mod roles;
mod tenancy;
