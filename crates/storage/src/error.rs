//! Storage errors: the few outcomes callers branch on, plus opaque database failures.

/// Storage result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong when loading or writing domain data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The row does not exist in this workspace (or at all: callers cannot tell).
    #[error("not found")]
    NotFound,
    /// An account with this email already exists.
    #[error("email taken")]
    EmailTaken,
    /// A credential of this provider already has this name in the workspace.
    #[error("credential name taken")]
    CredentialExists,
    /// A model with this name already exists in the workspace.
    #[error("model name taken")]
    ModelExists,
    /// No user has this email (adding a member).
    #[error("user not found")]
    UserNotFound,
    /// The user is already a member of the workspace.
    #[error("already a member")]
    AlreadyMember,
    /// The password changed between reading and writing it.
    #[error("password changed concurrently")]
    PasswordChangedConcurrently,
    /// A unique or foreign-key constraint that no domain rule names refused the write.
    #[error("conflict on {0}")]
    Conflict(String),
    /// The change would leave a workspace without an owner.
    #[error("a workspace must keep at least one owner")]
    LastOwner,
    /// The caller's role does not allow this change to this target.
    #[error("forbidden")]
    Forbidden,
    /// The database could not be reached (pool timeout, I/O): answered as 503.
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// Any other database failure.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// A stored secret cannot be decrypted (tampered, or its key is missing).
    #[error("credential cannot be decrypted")]
    Unreadable,
    /// The input breaks a domain rule; `code` is the API error code, `fields` name the problems.
    #[error("{code}")]
    Invalid {
        /// `validation_failed`, `secret_required`, …
        code: &'static str,
        /// Field path → problem.
        fields: std::collections::BTreeMap<String, String>,
    },
    /// The change would leave load balancing enabled in a workspace without the feature.
    #[error("feature not available")]
    FeatureNotAvailable,
    /// The license's `max_workspaces` is reached.
    #[error("license limit reached")]
    LimitReached,
    /// `If-Match` named another version than the stored one.
    #[error("version conflict")]
    VersionConflict {
        /// The stored version.
        current: i64,
    },
    /// A credential is the default credential of these models.
    #[error("credential in use")]
    CredentialInUse(Vec<String>),
    /// A migration could not be applied.
    #[error("migration failed: {0}")]
    Migration(String),
}

impl Error {
    /// A 422 naming one field.
    pub fn field(name: &str, problem: impl Into<String>) -> Self {
        Error::Invalid {
            code: "validation_failed",
            fields: [(name.to_owned(), problem.into())].into(),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => Error::NotFound,
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Error::Unavailable(e),
            sqlx::Error::Database(db) => {
                // 23505 unique_violation, 23503 foreign_key_violation, 23514 check_violation.
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                let constraint = db.constraint().unwrap_or("unknown");
                if code == "23505" || code == "23503" {
                    constraint_error(constraint)
                } else if let Some(field) = checked_field(constraint).filter(|_| code == "23514") {
                    // The API checks these bounds first; the CHECK is the last line, still a 422.
                    Error::field(field, "out of range")
                } else if code.starts_with("08") || code == "57P01" || code == "57P03" {
                    // connection exceptions, admin shutdown, cannot connect now
                    Error::Unavailable(e)
                } else {
                    Error::Database(e)
                }
            }
            _ => Error::Database(e),
        }
    }
}

/// The field a bounds CHECK of the lifecycle settings guards, by the constraint's name.
fn checked_field(constraint: &str) -> Option<&'static str> {
    Some(match constraint {
        "credentials_quota_cooldown_seconds_check" => "quota_cooldown_seconds",
        "lb_configs_max_wait_ms_check" => "max_wait_ms",
        "lb_configs_affinity_check" => "affinity",
        "lb_configs_affinity_ttl_seconds_check" => "affinity_ttl_seconds",
        "lb_entries_rpm_check" => "rpm",
        "lb_entries_tpm_check" => "tpm",
        _ => return None,
    })
}

/// The domain meaning of a refused constraint, named in the migrations.
fn constraint_error(constraint: &str) -> Error {
    match constraint {
        "users_email_key" => Error::EmailTaken,
        "credentials_name_key" => Error::CredentialExists,
        "models_name_key" => Error::ModelExists,
        // A model's default credential cannot be deleted (ON DELETE RESTRICT).
        "models_credential_fkey" => Error::CredentialInUse(Vec::new()),
        other => Error::Conflict(other.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bounds_check_named_here_exists_in_the_migration() {
        let sql = include_str!("../../../migrations/20261202000002_lifecycle_settings.sql");
        for name in [
            "credentials_quota_cooldown_seconds_check",
            "lb_configs_max_wait_ms_check",
            "lb_configs_affinity_check",
            "lb_configs_affinity_ttl_seconds_check",
            "lb_entries_rpm_check",
            "lb_entries_tpm_check",
        ] {
            assert!(sql.contains(name), "{name} is not in the migration");
            assert!(checked_field(name).is_some(), "{name}");
        }
        assert_eq!(checked_field("lb_entries_weight_check"), None);
    }
}
