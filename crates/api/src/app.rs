//! The HTTP application: routes, OpenAPI document, Swagger UI, and the front every request
//! enters by (the edge, then the gateway's hot endpoints or the router).

use crate::edge::{Edge, EdgeFuture};
use crate::error::{ApiError, ErrorBody};
use crate::routes;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use std::convert::Infallible;
use std::net::SocketAddr;
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
    routes
        .merge(SwaggerUi::new("/docs").url("/openapi.json", api))
        .route(
            "/metrics",
            axum::routing::get(crate::observe::metrics_endpoint),
        )
        .merge(crate::console::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Every request's way in: through the [`Edge`], then the gateway's hot endpoints (OpenAI's
/// and Anthropic's JSON calls, [`crate::gateway::hot`]) straight to their handler, and
/// everything else through the router. The handler is the one the router would call; only
/// the route matching and the router's layers are skipped, and the gateway uses none of them.
pub struct Front {
    router: Router,
    state: AppState,
    edge: Edge,
}

/// A [`Front`] answer: the gateway's, or the router's.
type FrontFuture = futures_util::future::Either<
    futures_util::future::Map<
        futures_util::future::BoxFuture<'static, Response>,
        fn(Response) -> Result<Response, Infallible>,
    >,
    <Router as tower::Service<Request<Body>>>::Future,
>;

impl Front {
    /// The front of `state`'s application.
    pub fn new(state: AppState) -> Self {
        Self {
            router: router(state.clone()),
            state,
            edge: Edge::default(),
        }
    }

    /// Answers `req` from `peer`.
    pub fn call(&self, req: Request<Body>, peer: SocketAddr) -> EdgeFuture<FrontFuture> {
        use futures_util::future::{Either, FutureExt};
        self.edge.handle(req, |mut req| {
            let hot = (req.method() == Method::POST)
                .then(|| crate::gateway::hot(req.uri().path()))
                .flatten();
            match hot {
                Some(endpoint) => {
                    let answer = crate::gateway::proxy(self.state.clone(), req, endpoint);
                    Either::Left(answer.boxed().map(Ok as fn(Response) -> _))
                }
                None => {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    Either::Right(tower::Service::call(&mut self.router.clone(), req))
                }
            }
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::hot;

    #[test]
    fn every_hot_path_is_a_documented_post_route_of_the_router() {
        let doc = openapi();
        let hot_paths = [
            "/v1/chat/completions",
            "/v1/messages",
            "/v1/completions",
            "/v1/embeddings",
        ];
        for path in hot_paths {
            assert!(hot(path).is_some(), "{path}");
            let item = doc
                .paths
                .paths
                .get(path)
                .unwrap_or_else(|| panic!("{path} is routed"));
            assert!(item.post.is_some(), "{path} is a POST route");
        }
        // Anything else goes through the router (its own 404s and 405s).
        for path in [
            "/v1/chat/completions/",
            "/v1/responses",
            "/v1/models",
            "/V1/messages",
            "/v1/messages/count_tokens",
        ] {
            assert_eq!(hot(path), None, "{path}");
        }
    }
}
