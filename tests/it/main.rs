//! End-to-end tests: the real server over real HTTP against a real PostgreSQL.

mod helpers;

mod auth;
