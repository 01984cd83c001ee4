//! The management API's error model: one JSON shape, the right status, never a secret or an
//! internal message in the body.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Handler result type.
pub type ApiResult<T> = Result<T, ApiError>;

/// An error answer: status, stable snake_case code, human message, optional details.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: Cow<'static, str>,
    details: Option<serde_json::Value>,
    retry_after: Option<u64>,
}

/// The JSON body of every error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong, for programs (`code`) and people (`message`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `validation_failed`.
    #[schema(example = "validation_failed")]
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Extra data, e.g. `{"fields": {"password": "must be at least 8 characters"}}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// Adds a `details` object.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// 401: no, malformed, expired or revoked credentials.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid credentials",
        )
    }

    /// 403: the caller's role does not allow this.
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "your role does not allow this action",
        )
    }

    /// 403: the workspace's plan or the instance's license does not include load balancing.
    pub fn feature_not_available() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "feature_not_available",
            "load balancing needs a license that grants it (or a paid plan on the hosted service)",
        )
    }

    /// 404: missing, or belongs to someone else (indistinguishable by design).
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "not found")
    }

    /// 409 with a specific code.
    pub fn conflict(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 422 naming the offending fields.
    pub fn validation(fields: BTreeMap<String, String>) -> Self {
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        let message = format!("invalid request: {}", names.join(", "));
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            message,
        )
        .with_details(serde_json::json!({ "fields": fields }))
    }

    /// 422 for a single field.
    pub fn field(name: &str, problem: impl Into<String>) -> Self {
        Self::validation(BTreeMap::from([(name.to_owned(), problem.into())]))
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "too many failed attempts; retry later",
        );
        e.retry_after = Some(retry_after.max(1));
        e
    }

    /// 503: too many password hashes are waiting; retry in a second.
    pub fn busy() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "the server is busy; retry in a second",
        );
        e.retry_after = Some(1);
        e
    }

    /// 408: the request body did not arrive in time.
    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request body was not received in time",
        )
    }

    /// 503: the database does not answer.
    pub fn database_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database is unavailable; retry shortly",
        )
    }

    /// 500 with a generic message; the cause must already be logged.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error",
        )
    }
}

impl From<rotor_storage::Error> for ApiError {
    fn from(e: rotor_storage::Error) -> Self {
        use rotor_storage::Error as E;
        match e {
            E::NotFound => ApiError::not_found(),
            E::EmailTaken => {
                ApiError::conflict("email_taken", "an account with this email already exists")
            }
            E::CredentialExists => ApiError::conflict(
                "credential_exists",
                "a credential of this provider already has this name",
            ),
            E::ModelExists => {
                ApiError::conflict("model_exists", "a model with this name already exists")
            }
            E::UserNotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "user_not_found", "no user has this email")
            }
            E::AlreadyMember => ApiError::conflict("member_exists", "the user is already a member"),
            E::PasswordChangedConcurrently => {
                ApiError::conflict("conflict", "the password was changed concurrently; retry")
            }
            E::Conflict(constraint) => {
                tracing::warn!(%constraint, "write refused by a constraint");
                ApiError::conflict("conflict", "the request conflicts with the current state")
            }
            E::LastOwner => {
                ApiError::conflict("last_owner", "a workspace must keep at least one owner")
            }
            E::Forbidden => ApiError::forbidden(),
            E::Unavailable(source) => {
                tracing::warn!(error = %source, "database unavailable");
                ApiError::database_unavailable()
            }
            E::Database(source) => {
                tracing::error!(error = %source, "database error");
                ApiError::internal()
            }
            E::Unreadable => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "credential_unreadable",
                "the credential's secrets cannot be decrypted: send them again in clear (PATCH) or check the master keys",

            ),
            E::Invalid { code, fields } => {
                let names: Vec<&str> = fields.keys().map(String::as_str).collect();
                let message = if code == "secret_required" {
                    format!("changing base_url or endpoint requires every secret in clear: {}", names.join(", "))
                } else {
                    format!("invalid request: {}", names.join(", "))
                };
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
                    .with_details(serde_json::json!({ "fields": fields }))
            }
            E::FeatureNotAvailable => ApiError::feature_not_available(),
            E::LimitReached => ApiError::new(
                StatusCode::FORBIDDEN,
                "license_limit_reached",
                "the license's max_workspaces is reached; nothing was created",
            ),
            E::VersionConflict { current } => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "version_conflict",
                "the configuration changed since you read it; reload and retry",
            )
            .with_details(serde_json::json!({ "current_version": current })),
            E::CredentialInUse(models) => ApiError::conflict(
                "credential_in_use",
                "the credential is the default credential of some models; change their default first",
            )
            .with_details(serde_json::json!({ "models": models })),
            E::Migration(message) => {
                tracing::error!(%message, "migration error");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.into_owned(),
                details: self.details,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}
