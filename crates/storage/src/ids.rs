//! Typed ids: a workspace id cannot be passed where a credential id is expected, so swapped
//! arguments fail to compile instead of querying the wrong row.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random id, for rows created in this process.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }

            /// The raw UUID, for layers that do not know the domain (dispatch, metrics labels).
            pub fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, uuid::Error> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

ids! {
    /// A workspace (tenant): the first argument of every tenant-scoped repository function.
    WorkspaceId;
    /// A user account; also the actor of audit events.
    UserId;
    /// A stored provider credential.
    CredentialId;
    /// A model enabled in a workspace.
    ModelId;
    /// A load-balancing pool entry.
    EntryId;
    /// A gateway API key (`rk-…`).
    ApiKeyId;
    /// A personal access token (`rp-…`).
    TokenId;
    /// An audit event.
    EventId;
}
