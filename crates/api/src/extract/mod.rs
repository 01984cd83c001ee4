//! Request extractors, in the order of the error precedence every route follows:
//! authentication (401), workspace membership (404), role (403), the body's syntax
//! (413/415/400), the target named in the path (404), then the body's shape (422).
//!
//! A handler declares what it needs ([`Member`], [`PathId`], [`ApiJson`], [`TargetJson`] …)
//! and axum runs the checks in that order before the handler's first line.

mod auth;
mod client;
mod fields;
mod headers;
mod json;
mod list;
mod target;

pub use auth::{AnyRole, AuthUser, InstanceAdmin, Manager, Member, RoleRequirement};
pub use client::ClientAddr;
pub use fields::{present, FieldErrors};
pub use headers::{bearer, IfMatch};
pub use json::{nul_field, parse_json, parse_value, ApiJson, JsonBody, BODY_TIMEOUT, MAX_BODY};
pub use list::{List, ListQuery};
pub use target::{PathId, PathParam, Scope, Target, TargetJson};
