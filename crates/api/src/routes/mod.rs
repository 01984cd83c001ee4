//! The management API's routes, one module per resource, each with its OpenAPI description.

pub mod admin;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod credentials;
pub mod health;
pub mod load_balancing;
pub mod me;
pub mod members;
pub mod models;
pub mod providers;
pub mod usage;
pub mod workspaces;

use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;

/// Every `/api/v1` route.
pub fn api_v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(auth::router())
        .merge(me::router())
        .merge(workspaces::router())
        .merge(members::router())
        .merge(api_keys::router())
        .merge(audit::router())
        .merge(providers::router())
        .merge(credentials::router())
        .merge(models::router())
        .merge(usage::router())
        .merge(load_balancing::router())
        .merge(admin::router())
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::extract::MAX_BODY,
        ))
}
