//! Building and running the server: the listener is bound first so tests can use port 0 and
//! ask which port they got.

use crate::auth::{Jwt, Passwords};
use crate::config::Config;
use crate::state::{AppState, Parts};
use anyhow::Context;
use rotor_dispatch::client::Upstream;
use rotor_dispatch::clock::SystemClock;
use rotor_dispatch::engine::{Engine, Settings};
use rotor_dispatch::state::memory::MemoryState;
use rotor_dispatch::state::redis::RedisState;

use rotor_dispatch::state::AnyState;
use std::sync::Arc;

use rotor_dispatch::policy::AddressPolicy;
use rotor_storage::crypto::Keyring;
use secrecy::ExposeSecret;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;

/// In-flight requests get this long to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// A server ready to run: database migrated, listener bound.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Connects to the database, migrates it and binds the listener. `config.database_url`
    /// and `config.jwt_secret` must be set (the embedded default fills them in first).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let url = config
            .database_url
            .as_ref()
            .context("DATABASE_URL is not set")?;
        let jwt = Jwt::new(
            config
                .jwt_secret
                .as_deref()
                .context("ROTOR_JWT_SECRET is not set")?,
        );
        let db = rotor_storage::connect(url.expose(), 32)
            .await
            .with_context(|| format!("cannot connect to the database at {}", url.redacted()))?;
        rotor_storage::migrate(&db)
            .await
            .context("cannot migrate the database")?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {} (ROTOR_LISTEN)", config.listen))?;
        let keyring = keyring(&config)?;
        let missing = rotor_storage::credentials::missing_key_ids(&db, &keyring).await?;
        if let Some(id) = missing.first() {
            anyhow::bail!(
                "stored data is encrypted under master key {id}, which is neither ROTOR_MASTER_KEY ({}) nor \
                 ROTOR_MASTER_KEY_PREVIOUS: set the key with id {id}",
                keyring.current_id()
            );
        }
        let policy = AddressPolicy {
            allow: config.upstream_allow.clone(),
            deny: config.upstream_deny.clone(),
            allow_private_by_default: config.embedded,
        };
        let upstream = Upstream::new(policy).context("cannot build the upstream HTTP client")?;
        let passwords = Passwords::new().await?;
        let saas = config.deployment == crate::config::Deployment::Saas;
        // A license that cannot run saas mode is refused before it is installed: once stored
        // as the newest, it would stay the active one and keep the instance from starting.
        let setting = config.license.as_ref().map(ExposeSecret::expose_secret);
        let unfit = setting.is_some_and(|v| {
            crate::license::Verifier::trusted()
                .is_ok_and(|t| crate::license::lacks_saas(&t, &crate::license::read_setting(v)))
        });
        let license = if saas && unfit {
            None
        } else {
            Some(crate::license::load(&db, setting).await?)
        };
        let license = match license {
            Some(l) if !saas || l.grants(crate::license::SAAS, chrono::Utc::now()) => l,
            _ => anyhow::bail!(
                "ROTOR_DEPLOYMENT=saas needs a valid license whose features include `saas` \
                 (set ROTOR_LICENSE, or install one while running self-hosted); refusing to start"
            ),
        };
        let settings = Settings {
            upstream_timeout: config.upstream_timeout,
            request_deadline: config.request_deadline,
            stream_idle_timeout: config.stream_idle_timeout,
            max_body: config.upstream_max_body,
        };
        let dispatch_state = Arc::new(match &config.redis_url {
            Some(url) => {
                let redis = RedisState::start(url.expose())
                    .await
                    .context("invalid REDIS_URL")?;
                if !redis.is_shared() {
                    tracing::warn!("Redis does not answer yet: dispatch starts on in-process state and switches when it does");
                }
                AnyState::Redis(redis)
            }
            None => AnyState::Memory(MemoryState::default()),
        });

        let (changes, changed) = tokio::sync::mpsc::channel(crate::lifecycle::CHANGES_QUEUE);
        let ledger = Arc::new(crate::ledger::Ledger::default());
        let engine = Engine::new(
            upstream.clone(),
            dispatch_state,
            Arc::new(SystemClock),
            settings,
        )
        .with_changes(changes)
        .with_usage(ledger.clone());
        let metrics = crate::observe::recorder()?;
        let keys = rotor_storage::api_keys::all_live(&db)
            .await
            .context("cannot load the API keys")?;
        let state = AppState::new(Parts {
            config,
            db,
            jwt,
            passwords,
            keyring,
            upstream,
            license,
            engine,
            metrics,
            ledger,
        });
        state.refresh_budgets(&keys).await;
        state.gateway().load_keys(keys);
        crate::sync::spawn_listener(state.clone());
        crate::observe::spawn_sweeper(state.clone());
        crate::lifecycle::spawn_auditor(state.clone(), changed);
        crate::lifecycle::spawn_probes(state.clone());
        crate::ledger::spawn_flusher(state.clone());

        Ok(Self { listener, state })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The shared state (tests use it to reach the database).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then stops accepting, gives in-flight requests up
    /// to [`SHUTDOWN_GRACE`] to finish and writes the usage they made.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let front = crate::app::Front::new(self.state.clone());
        let max = self.state.config().max_connections;
        crate::serve::serve(self.listener, front, max, shutdown, SHUTDOWN_GRACE).await;
        crate::ledger::flush_at_shutdown(&self.state).await;
        self.state.db().close().await;
        Ok(())
    }
}

/// The master keys of `config` (the current one is required).
pub fn keyring(config: &Config) -> anyhow::Result<Keyring> {
    let current = config
        .master_key
        .as_ref()
        .context("ROTOR_MASTER_KEY is not set")?;
    Ok(Keyring::new(
        current.expose(),
        config.master_key_previous.as_ref().map(|k| k.expose()),
    ))
}

/// Completes on SIGTERM or Ctrl-C. The handlers are installed when this is called, not when
/// the future is first polled: a SIGTERM that arrives once the instance answers `/readyz` must
/// stop it gracefully, never kill it with the default action.
#[cfg(unix)]
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = interrupt.recv() => {},
        }
    })
}

/// Completes on Ctrl-C.
#[cfg(not(unix))]
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
