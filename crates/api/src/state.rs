//! The one shared application state: cheap to clone, everything behind an `Arc`.

use crate::auth::{Jwt, Passwords};
use crate::config::{Config, Deployment};
use crate::throttle::LoginThrottle;
use rotor_dispatch::client::Upstream;
use rotor_storage::crypto::Keyring;
use rotor_storage::Plan;
use sqlx::PgPool;
use std::sync::Arc;

/// Handles every request needs.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    db: PgPool,
    jwt: Jwt,
    passwords: Passwords,
    throttle: LoginThrottle,
    keyring: Keyring,
    upstream: Upstream,
}

impl AppState {
    /// Assembles the state from validated parts.
    pub fn new(
        config: Config,
        db: PgPool,
        jwt: Jwt,
        passwords: Passwords,
        keyring: Keyring,
        upstream: Upstream,
    ) -> Self {
        let throttle = LoginThrottle::default();
        Self {
            inner: Arc::new(Inner {
                config,
                db,
                jwt,
                passwords,
                throttle,
                keyring,
                upstream,
            }),
        }
    }

    /// The master keys (current and previous) that unwrap workspace data keys.
    pub fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    /// The shared upstream HTTP client with the address policy.
    pub fn upstream(&self) -> &Upstream {
        &self.inner.upstream
    }

    /// The validated settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The Postgres pool.
    pub fn db(&self) -> &PgPool {
        &self.inner.db
    }

    /// Session token signer/verifier.
    pub fn jwt(&self) -> &Jwt {
        &self.inner.jwt
    }

    /// Password hasher.
    pub fn passwords(&self) -> &Passwords {
        &self.inner.passwords
    }

    /// Failed-login counters.
    pub fn throttle(&self) -> &LoginThrottle {
        &self.inner.throttle
    }

    /// Whether a workspace on `plan` may use load balancing: in saas mode a paid plan grants it;
    /// otherwise only a license does (licenses arrive with the license issue).
    pub fn has_load_balancing(&self, plan: Plan) -> bool {
        self.inner.config.deployment == Deployment::Saas && plan.is_paid()
    }
}
