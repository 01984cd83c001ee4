//! Signup and login: the only unauthenticated management routes.

use crate::auth::TOKEN_TTL_SECS;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ClientAddr, FieldErrors, JsonBody};
use crate::responses::{Body, Invalid};
use crate::state::AppState;
use crate::throttle;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use rotor_storage::users::{NewUser, Signup};
use rotor_storage::{MemberWorkspace, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `/auth/*`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
}

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 8;
/// Longest password accepted (bounds hashing work).
pub const MAX_PASSWORD: usize = 1024;

/// A new account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// Email address, used to sign in.
    #[schema(example = "ada@example.com", min_length = 3, max_length = 254)]
    pub email: String,
    /// At least 8 characters.
    #[schema(
        example = "correct horse battery staple",
        min_length = 8,
        max_length = 1024
    )]
    pub password: String,
    /// Display name.
    #[schema(example = "Ada", min_length = 1, max_length = 100)]
    pub name: String,
}

/// The new account, its personal workspace and a session token.
#[derive(Serialize, ToSchema)]
pub struct SignupResponse {
    /// The new user.
    pub user: User,
    /// The personal workspace (the user is its owner).
    pub workspace: MemberWorkspace,
    /// Session JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: i64,
}

/// Email and password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Email address.
    pub email: String,
    /// Password.
    pub password: String,
}

/// A session token.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// Session JWT, sent as `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: i64,
}

/// Checks an email's shape (not deliverability) and returns it trimmed.
pub fn check_email(errors: &mut FieldErrors, field: &str, email: &str) -> String {
    let email = email.trim();
    let valid = email.len() <= throttle::MAX_EMAIL
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if !valid {
        errors.add(field, "must be an email address");
    }
    email.to_owned()
}

/// Checks a new password's length.
pub fn check_password(errors: &mut FieldErrors, field: &str, password: &str) {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        errors.add(field, format!("must be at least {MIN_PASSWORD} characters"));
    } else if n > MAX_PASSWORD {
        errors.add(field, format!("must be at most {MAX_PASSWORD} characters"));
    }
}

/// Create an account and its personal workspace. The first user of an empty instance becomes
/// instance admin and may sign up even when `ROTOR_SIGNUP=closed`.
#[utoipa::path(post, path = "/auth/signup", tag = "auth", request_body = SignupRequest, responses(
    (status = 201, body = SignupResponse),
    (status = 403, body = ErrorBody, description = "signup_closed or license_limit_reached"),
    (status = 409, body = ErrorBody, description = "email_taken"),
    (status = 503, body = ErrorBody, description = "database_unavailable (or busy with Retry-After: 1 when more than 64 password checks are waiting)"),
    Body, Invalid,
))]
pub async fn signup(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SignupRequest>,
) -> ApiResult<(StatusCode, Json<SignupResponse>)> {
    let open = state.config().signup_open;
    let closed = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "signup_closed",
            "signup is closed on this instance",
        )
    };
    if !open && rotor_storage::users::any_exist(state.db()).await? {
        return Err(closed());
    }
    state.check_workspace_limit(rotor_storage::workspaces::count(state.db()).await?)?;
    let mut errors = FieldErrors::default();
    let email = check_email(&mut errors, "email", &body.email);
    check_password(&mut errors, "password", &body.password);
    let name = errors.name("name", &body.name, 100);
    errors.finish()?;

    let hash = state.passwords().hash(body.password).await?;
    let workspace_name: String = format!("{name}'s workspace");
    let new = NewUser {
        email: &email,
        name: &name,
        password_hash: &hash,
        workspace_name: &workspace_name,
    };
    let (user, workspace) = match rotor_storage::users::signup(state.db(), new, open, |n| {
        state.check_workspace_limit(n)
    })
    .await?
    {
        Signup::Created(user, workspace) => (user, workspace),
        Signup::Closed => return Err(closed()),
    };
    tracing::info!(user_id = %user.id, is_admin = user.is_admin, "user signed up");
    let access_token = state.jwt().issue(user.id.uuid(), user.token_version)?;
    Ok((
        StatusCode::CREATED,
        Json(SignupResponse {
            user,
            workspace,
            access_token,
            token_type: "Bearer",
            expires_in: TOKEN_TTL_SECS,
        }),
    ))
}

/// Exchange email and password for a session token. Unknown emails and wrong passwords get
/// the same answer in the same time; repeated failures are throttled.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest, responses(
    (status = 200, body = TokenResponse),
    (status = 401, body = ErrorBody, description = "invalid_credentials"),
    (status = 429, body = ErrorBody, description = "too_many_requests, with Retry-After"),
    (status = 503, body = ErrorBody, description = "database_unavailable (or busy with Retry-After: 1 when more than 64 password checks are waiting)"),
    Body, Invalid,
))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    body: JsonBody,
) -> ApiResult<Json<TokenResponse>> {
    let body: LoginRequest = body.parse_allowing_nul()?;
    let invalid = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "invalid email or password",
        )
    };
    let email = body.email.trim();
    // No account can have such an email: answered before any state is kept or query made.
    if email.len() > throttle::MAX_EMAIL || email.contains('\0') {
        return Err(invalid());
    }
    // The slot is taken before the password is checked, so concurrent guesses cannot all pass.
    let slot = state
        .throttle()
        .take(email, addr)
        .map_err(ApiError::too_many_requests)?;
    let (user, hash) = match rotor_storage::users::find_by_email(state.db(), email).await? {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let password = if body.password.chars().count() <= MAX_PASSWORD {
        body.password
    } else {
        String::new()
    };
    let ok = state.passwords().verify(hash, password).await?;
    let user = match (ok, user) {
        (true, Some(user)) => user,
        _ => return Err(invalid()),
    };
    state.throttle().succeeded(slot);
    let access_token = state.jwt().issue(user.id.uuid(), user.token_version)?;
    Ok(Json(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: TOKEN_TTL_SECS,
    }))
}
