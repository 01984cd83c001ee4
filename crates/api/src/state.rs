//! The one shared application state: cheap to clone, everything behind an `Arc`.

use crate::auth::{Jwt, Passwords};
use crate::config::{Config, Deployment};
use crate::license::LicenseState;
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

/// The parts the state is built from.
pub struct Parts {
    /// Validated settings.
    pub config: Config,
    /// Postgres pool.
    pub db: PgPool,
    /// Session tokens.
    pub jwt: Jwt,
    /// Password hashing.
    pub passwords: Passwords,
    /// Master keys.
    pub keyring: Keyring,
    /// Upstream client.
    pub upstream: Upstream,
    /// License.
    pub license: LicenseState,
}

struct Inner {
    parts: Parts,
    throttle: LoginThrottle,
}

impl AppState {
    /// Assembles the state from validated parts.
    pub fn new(parts: Parts) -> Self {
        Self {
            inner: Arc::new(Inner {
                parts,
                throttle: LoginThrottle::default(),
            }),
        }
    }

    /// The validated settings.
    pub fn config(&self) -> &Config {
        &self.inner.parts.config
    }

    /// The Postgres pool.
    pub fn db(&self) -> &PgPool {
        &self.inner.parts.db
    }

    /// Session token signer/verifier.
    pub fn jwt(&self) -> &Jwt {
        &self.inner.parts.jwt
    }

    /// Password hasher.
    pub fn passwords(&self) -> &Passwords {
        &self.inner.parts.passwords
    }

    /// Failed-login counters.
    pub fn throttle(&self) -> &LoginThrottle {
        &self.inner.throttle
    }

    /// The master keys (current and previous) that unwrap workspace data keys.
    pub fn keyring(&self) -> &Keyring {
        &self.inner.parts.keyring
    }

    /// The shared upstream HTTP client with the address policy.
    pub fn upstream(&self) -> &Upstream {
        &self.inner.parts.upstream
    }

    /// The instance's license.
    pub fn license(&self) -> &LicenseState {
        &self.inner.parts.license
    }

    /// Whether a workspace on `plan` may use load balancing: a valid license that grants it,
    /// or, in saas mode only, a paid plan. Evaluated at call time, so expiry is noticed live.
    pub fn has_load_balancing(&self, plan: Plan) -> bool {
        self.license().grants("load_balancing", chrono::Utc::now())
            || (self.config().deployment == Deployment::Saas && plan.is_paid())
    }

    /// Refuses one more workspace when a valid license caps them at `existing` or fewer.
    pub fn check_workspace_limit(&self, existing: i64) -> Result<(), rotor_storage::Error> {
        match self.license().max_workspaces(chrono::Utc::now()) {
            Some(max) if u64::try_from(existing).unwrap_or(0) >= max => {
                Err(rotor_storage::Error::LimitReached)
            }
            _ => Ok(()),
        }
    }
}
