//! Prometheus metrics (`/metrics`: the bearer `ROTOR_METRICS_TOKEN`, or loopback clients when
//! it is unset). Global metrics (`rotor_build_info`, fallbacks, unreadable credentials) live in
//! the `metrics` recorder; the per-(workspace, model, credential) series live in the server's
//! own [`rotor_dispatch::series::Registry`], which a sweep keeps free of deleted models,
//! credentials and workspaces (gone from `/metrics` within 10 minutes, see SECURITY.md).

use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rotor_dispatch::lifecycle::CredentialLabel;
use rotor_dispatch::state::StateBackend;
use secrecy::ExposeSecret;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;
use uuid::Uuid;

/// How often every series is checked against the database (the contract is 10 minutes; a
/// write through this replica checks its workspace at once).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder (installed once; later calls share it).
pub fn recorder() -> anyhow::Result<PrometheusHandle> {
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    // The series with buckets are rendered by the registry (rotor_dispatch::series).
    let builder = PrometheusBuilder::new();
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        // Another thread won the race; use its handle.
        return HANDLE
            .get()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("metrics recorder already installed elsewhere"));
    }
    metrics::gauge!("rotor_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    let _ = HANDLE.set(handle.clone());
    Ok(handle)
}

/// Prometheus text exposition.
pub async fn metrics_endpoint(State(state): State<AppState>, req: Request) -> Response {
    let allowed = match &state.config().metrics_token {
        Some(token) => crate::extract::bearer(req.headers())
            .is_some_and(|t| constant_time_eq(t.as_bytes(), token.expose_secret().as_bytes())),
        // A loopback peer that forwards for someone (a local reverse proxy) does not make
        // the world loopback (see SECURITY.md).
        None => {
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .is_some_and(|c| c.0.ip().is_loopback())
                && !req.headers().contains_key("x-forwarded-for")
                && !req.headers().contains_key(header::FORWARDED)
        }
    };
    if !allowed {
        return crate::error::ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "metrics need the metrics token (or a direct loopback client)",
        )
        .into_response();
    }
    let mut text = state.metrics().render();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    state.series().render(&mut text);
    let engine = state.engine();
    let now_ms = engine.clock().now_ms();
    let flagged = engine
        .state()
        .flagged()
        .await
        .into_iter()
        .filter_map(|f| {
            let label = f.record.health(now_ms).state;
            (label != CredentialLabel::Available).then_some(((f.workspace, f.credential), label))
        })
        .collect();
    state.series().render_states(&mut text, &flagged);
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

/// Sweeps every series against the database every [`SWEEP_EVERY`] until the server closes
/// its database pool.
pub fn spawn_sweeper(state: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate, and nothing has been counted yet
        loop {
            tick.tick().await;
            if state.db().is_closed() {
                return;
            }
            sweep(&state, None).await;
        }
    });
}

/// Forgets the series of `workspace` (or of every workspace) whose model or credential no
/// longer exists; a workspace that is gone took its models with it. When the database cannot
/// be asked, nothing is forgotten.
pub async fn sweep(state: &AppState, workspace: Option<Uuid>) {
    let census = state.series().census(workspace);
    if census.is_empty() {
        return;
    }
    match alive(state.db(), &census).await {
        Ok((models, credentials)) => {
            let forgotten = state.series().forget_dead(&census, &models, &credentials);
            if forgotten > 0 {
                tracing::debug!(
                    forgotten,
                    "metric series of deleted models or credentials removed"
                );
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not check which metric series are still alive; keeping them")
        }
    }
}

/// Which (workspace, model name) and (workspace, credential) pairs of `census` still exist.
async fn alive(
    db: &sqlx::PgPool,
    census: &rotor_dispatch::series::Census,
) -> Result<(HashSet<(Uuid, String)>, HashSet<(Uuid, Uuid)>), sqlx::Error> {
    let (workspaces, names) = census.models();
    let models: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT k.workspace_id, k.name FROM unnest($1::uuid[], $2::text[]) AS k(workspace_id, name) \
         WHERE EXISTS (SELECT 1 FROM models m WHERE m.workspace_id = k.workspace_id AND m.name = k.name)",
    )
    .bind(&workspaces)
    .bind(&names)
    .fetch_all(db)
    .await?;
    let (workspaces, ids) = census.credentials();
    let credentials: Vec<(Uuid, Uuid)> = if ids.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(
            "SELECT k.workspace_id, k.id FROM unnest($1::uuid[], $2::uuid[]) AS k(workspace_id, id) \
             WHERE EXISTS (SELECT 1 FROM credentials c WHERE c.workspace_id = k.workspace_id AND c.id = k.id)",
        )
        .bind(&workspaces)
        .bind(&ids)
        .fetch_all(db)
        .await?
    };
    Ok((
        models.into_iter().collect(),
        credentials.into_iter().collect(),
    ))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
