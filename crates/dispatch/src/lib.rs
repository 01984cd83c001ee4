//! Dispatch: everything between Rotor and the LLM providers — the upstream address policy
//! (SSRF guard), the shared HTTP client, provider request shapes, and (with the gateway) the
//! weighted round-robin balancer with cooldowns and failover. Knows nothing of Postgres: it is
//! handed resolved targets with decrypted credentials.

pub mod balancer;
pub mod client;
pub mod clock;
pub mod cooldown;
pub mod engine;
pub mod json_top;
pub mod lifecycle;
pub mod pick;
pub mod policy;
pub mod series;
pub mod signals;
pub mod state;
pub mod target;
pub mod usage;
