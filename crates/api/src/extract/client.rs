//! The client's address, for throttling: proxies are believed only when configured.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::net::{IpAddr, SocketAddr};

/// The client's address: the TCP peer, or the `X-Forwarded-For` client when the peer is a
/// trusted proxy (`ROTOR_TRUSTED_PROXIES`).
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let trusted = |ip: &IpAddr| {
            state
                .config()
                .trusted_proxies
                .iter()
                .any(|n| n.contains(ip))
        };
        if !trusted(&peer) {
            return Ok(ClientAddr(peer));
        }
        // Walk X-Forwarded-For from the right, skipping our own proxies.
        let forwarded: Vec<IpAddr> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        let client = forwarded
            .iter()
            .rev()
            .find(|ip| !trusted(ip))
            .copied()
            .unwrap_or(peer);
        Ok(ClientAddr(client))
    }
}
