//! Prometheus metrics (`/metrics`: the bearer `ROTOR_METRICS_TOKEN`, or loopback clients when
//! it is unset).

use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::OnceLock;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder (installed once; later calls share it).
pub fn recorder() -> anyhow::Result<PrometheusHandle> {
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let latency = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        60.0, 120.0,
    ];
    let overhead = [
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05,
    ];
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("rotor_upstream_latency_seconds".into()),
            &latency,
        )?
        .set_buckets_for_metric(Matcher::Full("rotor_overhead_seconds".into()), &overhead)?;
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
        Some(token) => req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| constant_time_eq(t.trim().as_bytes(), token.as_bytes())),
        // A loopback peer that forwards for someone (a local reverse proxy) does not make
        // the world loopback (DESIGN §12).
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
    let mut r = state.metrics().render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
