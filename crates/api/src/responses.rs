//! The error answers that many routes share, declared once for the OpenAPI document: a route
//! lists the sets that apply (`responses((status = 200, …), Authed, Scoped, Body)`) and
//! writes out only the answers that are its own.

use std::collections::BTreeMap;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::IntoResponses;

/// `ErrorBody` answers with these statuses and descriptions (the error code first).
fn errors(list: &[(u16, &str)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(status, description)| {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build();
            let response = ResponseBuilder::new()
                .description(*description)
                .content("application/json", content)
                .build();
            (status.to_string(), RefOr::T(response))
        })
        .collect()
}

macro_rules! error_set {
    ($($(#[$doc:meta])* $name:ident = [$(($status:literal, $description:literal)),* $(,)?];)*) => {$(
        $(#[$doc])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                errors(&[$(($status, $description)),*])
            }
        }
    )*};
}

error_set! {
    /// Every route behind a session: no or bad credentials, and the database gone.
    Authed = [(401, "unauthorized"), (503, "database_unavailable")];
    /// Routes under `/workspaces/{ws}` (or naming a target): not a member, no such target.
    Scoped = [(404, "not_found")];
    /// Routes for owners and admins only.
    Managers = [(403, "forbidden")];
    /// Routes that read a JSON body: its media type, size and syntax.
    Body = [(400, "invalid_json"), (413, "payload_too_large"), (415, "unsupported_media_type")];
    /// Lists: a bad `limit` or `cursor`.
    Paged = [(422, "validation_failed (limit or cursor)")];
    /// Bodies whose fields are checked.
    Invalid = [(422, "validation_failed")];
    /// Writes of a load-balancing pool: the feature, `If-Match`, the two-credential rule.
    PoolWrite = [
        (403, "forbidden or feature_not_available"),
        (412, "version_conflict"),
        (422, "validation_failed or not_enough_entries"),
    ];
}
