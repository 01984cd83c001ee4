//! Domain types shared by the repositories and the API (they are also the response bodies).

use crate::ids::*;
use crate::page::Keyed;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use utoipa::ToSchema;
use uuid::Uuid;

/// A member's role in a workspace; owners and admins manage, the others read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Full control, including granting owner and admin.
    Owner,
    /// Manages members (except owners/admins), credentials, models, pools and API keys.
    Admin,
    /// Read-only in Rotor (kept for Dify parity).
    Editor,
    /// Read-only.
    Normal,
}

impl Role {
    /// The role's name as stored and serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Normal => "normal",
        }
    }

    /// Owners and admins may change the workspace's configuration.
    pub fn can_manage(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }

    /// Roles that only an owner may grant, change or take away.
    pub fn is_privileged(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

impl FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "editor" => Ok(Role::Editor),
            "normal" => Ok(Role::Normal),
            _ => Err(()),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A workspace's subscription plan; in saas mode the paid ones grant load balancing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// The free plan (default).
    Sandbox,
    /// Paid.
    Professional,
    /// Paid.
    Team,
    /// Paid.
    Enterprise,
}

impl Plan {
    /// The plan's name as stored and serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Sandbox => "sandbox",
            Plan::Professional => "professional",
            Plan::Team => "team",
            Plan::Enterprise => "enterprise",
        }
    }

    /// Whether the plan includes load balancing (in saas mode).
    pub fn is_paid(self) -> bool {
        !matches!(self, Plan::Sandbox)
    }
}

impl FromStr for Plan {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "sandbox" => Ok(Plan::Sandbox),
            "professional" => Ok(Plan::Professional),
            "team" => Ok(Plan::Team),
            "enterprise" => Ok(Plan::Enterprise),
            _ => Err(()),
        }
    }
}

/// How a pool picks a credential for related requests: sticky per session keeps prompt caches warm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Affinity {
    /// Every request follows the weighted rotation (default).
    #[default]
    None,
    /// Requests with the same affinity key go to the same credential for a while.
    Session,
}

impl Affinity {
    /// The affinity's name as stored and serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Affinity::None => "none",
            Affinity::Session => "session",
        }
    }
}

impl FromStr for Affinity {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "none" => Ok(Affinity::None),
            "session" => Ok(Affinity::Session),
            _ => Err(()),
        }
    }
}

pub(crate) fn parse_role(s: &str) -> Role {
    // The column has a CHECK constraint; an unknown value can only be a newer release's role,
    // and treating it as read-only is the safe reading.
    s.parse().unwrap_or(Role::Normal)
}

pub(crate) fn parse_plan(s: &str) -> Plan {
    s.parse().unwrap_or(Plan::Sandbox)
}

pub(crate) fn parse_affinity(s: &str) -> Affinity {
    // A newer release's mode read by an older one: plain rotation is always safe.
    s.parse().unwrap_or_default()
}

/// Roles, plans and affinities are `text` columns: read with the safe fallback above, so a row written
/// by a newer release never fails to load.
macro_rules! text_column {
    ($ty:ty, $parse:ident) => {
        impl sqlx::Type<sqlx::Postgres> for $ty {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <&str as sqlx::Type<sqlx::Postgres>>::type_info()
            }
            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Postgres> for $ty {
            fn decode(
                value: sqlx::postgres::PgValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                Ok($parse(<&str as sqlx::Decode<sqlx::Postgres>>::decode(
                    value,
                )?))
            }
        }
    };
}

text_column!(Role, parse_role);
text_column!(Plan, parse_plan);
text_column!(Affinity, parse_affinity);

/// A person who signs in to manage workspaces.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    /// User id.
    pub id: UserId,
    /// Email address (unique, case-insensitive).
    pub email: String,
    /// Display name.
    pub name: String,
    /// Instance administrator (the first user of an instance).
    pub is_admin: bool,
    /// Bumped on password change; JWTs carrying an older value are refused.
    #[serde(skip)]
    pub token_version: i32,
}

/// A workspace as seen by one of its members.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct MemberWorkspace {
    /// Workspace id.
    pub id: WorkspaceId,
    /// Workspace name.
    pub name: String,
    /// The caller's role in it.
    pub role: Role,
    /// The workspace's plan.
    pub plan: Plan,
    #[serde(skip)]
    /// Creation time (the list order).
    pub created_at: DateTime<Utc>,
}

impl Keyed for MemberWorkspace {
    fn key(&self) -> (DateTime<Utc>, Uuid) {
        (self.created_at, self.id.uuid())
    }
}

/// A workspace as seen by an instance administrator.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Workspace {
    /// Workspace id.
    pub id: WorkspaceId,
    /// Workspace name.
    pub name: String,
    /// The workspace's plan.
    pub plan: Plan,
    /// Number of members.
    pub member_count: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl Keyed for Workspace {
    fn key(&self) -> (DateTime<Utc>, Uuid) {
        (self.created_at, self.id.uuid())
    }
}

/// A user's membership in a workspace.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Member {
    /// The member's user id.
    pub user_id: UserId,
    /// The member's email.
    pub email: String,
    /// The member's name.
    pub name: String,
    /// The member's role.
    pub role: Role,
    #[serde(skip)]
    /// When the membership was created (the list order).
    pub created_at: DateTime<Utc>,
}

impl Keyed for Member {
    fn key(&self) -> (DateTime<Utc>, Uuid) {
        (self.created_at, self.user_id.uuid())
    }
}

/// A workspace API key as listed (its secret is never stored or shown again).
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct ApiKey {
    /// Key id.
    pub id: ApiKeyId,
    /// Name given at creation.
    pub name: String,
    /// First 11 characters of the key, to recognise it.
    pub prefix: String,
    /// Model names the key may call; null means every model of the workspace.
    pub allowed_models: Option<Vec<String>>,
    /// After this instant the key is refused.
    pub expires_at: Option<DateTime<Utc>>,
    /// Its limits (each null: none).
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub limits: KeyLimits,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last time the gateway accepted it (written at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

/// What one API key may use, so one application cannot eat a workspace's pool (null: no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema, sqlx::FromRow)]
pub struct KeyLimits {
    /// Requests per UTC minute (1–1,000,000).
    #[schema(example = 600, minimum = 1, maximum = 1000000)]
    pub rpm: Option<i32>,
    /// Input plus output tokens per UTC minute (1–1,000,000,000).
    #[schema(example = 200000, minimum = 1, maximum = 1000000000)]
    pub tpm: Option<i64>,
    /// Input plus output tokens per UTC month (1–10^15).
    #[schema(example = 50000000, minimum = 1, maximum = 1000000000000000_i64)]
    pub monthly_token_budget: Option<i64>,
    /// US dollars per UTC month at the models' prices (0.01–1,000,000,000).
    #[schema(example = 250.0, minimum = 0.01, maximum = 1000000000)]
    pub monthly_budget_usd: Option<f64>,
}

impl KeyLimits {
    /// Whether a monthly budget is set (the key's month spend is then kept up to date).
    pub fn budgeted(&self) -> bool {
        self.monthly_token_budget.is_some() || self.monthly_budget_usd.is_some()
    }
}

impl Keyed for ApiKey {
    fn key(&self) -> (DateTime<Utc>, Uuid) {
        (self.created_at, self.id.uuid())
    }
}

/// A personal access token as listed (its secret is never stored or shown again).
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct PersonalToken {
    /// Token id.
    pub id: TokenId,
    /// Name given at creation.
    pub name: String,
    /// First 11 characters of the token, to recognise it.
    pub prefix: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// After this instant the token is refused.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last time it authenticated a request (written at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl Keyed for PersonalToken {
    fn key(&self) -> (DateTime<Utc>, Uuid) {
        (self.created_at, self.id.uuid())
    }
}

/// One recorded write: who did what to which target, and when. Never holds a secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEvent {
    /// Event id.
    pub id: EventId,
    /// The user who made the change, when a user did.
    pub actor_user_id: Option<UserId>,
    /// `resource.verb`, e.g. `api_key.created`.
    pub action: String,
    /// The kind of thing changed, e.g. `api_key`.
    pub target_type: String,
    /// The id of the thing changed.
    pub target_id: Option<Uuid>,
    /// Non-secret details of the change.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

impl Keyed for AuditEvent {
    fn key(&self) -> (DateTime<Utc>, Uuid) {
        (self.created_at, self.id.uuid())
    }
}
