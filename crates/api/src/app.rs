//! The HTTP application: routes, OpenAPI document, Swagger UI and the middleware stack.

use crate::error::{ApiError, ErrorBody};
use crate::routes;
use crate::state::AppState;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::any::Any;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rotor",
        description = "Pool LLM provider credentials per workspace and balance model traffic across them. \
            Management API under /api/v1 (Authorization: Bearer <session JWT or rp- personal access token>).",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody)),
    tags(
        (name = "auth", description = "Signup and login"),
        (name = "me", description = "The signed-in user"),
        (name = "workspaces", description = "Workspaces (tenants)"),
        (name = "members", description = "Workspace members and roles"),
        (name = "api-keys", description = "Gateway API keys"),
        (name = "audit", description = "Audit log"),
        (name = "providers", description = "Provider catalogue"),
        (name = "credentials", description = "Provider credentials (encrypted, masked)"),
        (name = "models", description = "Models and their default credential"),
        (name = "load-balancing", description = "A model's credential pool"),
        (name = "usage", description = "The usage ledger: requests, errors, tokens and costs"),
        (name = "admin", description = "Instance administration"),
        (name = "health", description = "Probes"),
        (name = "gateway", description = "The gateway: OpenAI, Anthropic and Gemini APIs (API key auth)"),

    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A session JWT from /api/v1/auth/login or a personal access token (rp-…)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A workspace API key (rk-…), for the gateway (every family accepts it as a bearer token)",
                    ))
                    .build(),
            ),
        );
        let header_key = |name: &str, description: &str| {
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                name,
                description,
            )))
        };
        components.add_security_scheme(
            "anthropic_key",
            header_key(
                "x-api-key",
                "A workspace API key (rk-…), where Anthropic's SDKs send it",
            ),
        );
        components.add_security_scheme(
            "gemini_key",
            header_key(
                "x-goog-api-key",
                "A workspace API key (rk-…), where Google's SDKs send it",
            ),
        );
        components.add_security_scheme(
            "gemini_query_key",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "key",
                "A workspace API key (rk-…) as Gemini's `?key=` query parameter",
            ))),
        );
    }
}

fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::health::router())
        .nest("/api/v1", routes::api_v1())
        .merge(crate::gateway::router())
}

/// The OpenAPI document of every documented route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().split_for_parts().1
}

/// The whole application with its state and middleware.
pub fn router(state: AppState) -> Router {
    let (routes, api) = documented().split_for_parts();
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    routes
        .merge(SwaggerUi::new("/docs").url("/openapi.json", api))
        .route("/metrics", axum::routing::get(crate::observe::metrics_endpoint))
        .merge(crate::console::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(
            request_id,
            crate::request_id::MakeRequestCounter::default(),
        ))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("request handler panicked");
    ApiError::internal().into_response()
}
