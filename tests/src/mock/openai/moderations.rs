//! OpenAI's moderations, `POST /moderations`: one unflagged result per input (each string of
//! a list of strings, or one for a string or a list of multimodal parts), with the omni
//! models' thirteen categories, their scores and the input types each applied to.

use super::super::json::{arr, obj, s, J};
use super::super::{hex_chars, next_serial, Incoming};
use super::{body, ok_json};
use axum::response::Response;

/// The categories in the order the API lists them, with the input types each applies to.
const CATEGORIES: [(&str, &[&str]); 13] = [
    ("harassment", &["text"]),
    ("harassment/threatening", &["text"]),
    ("sexual", &["text", "image"]),
    ("hate", &["text"]),
    ("hate/threatening", &["text"]),
    ("illicit", &["text"]),
    ("illicit/violent", &["text"]),
    ("self-harm/intent", &["text", "image"]),
    ("self-harm/instructions", &["text", "image"]),
    ("self-harm", &["text", "image"]),
    ("sexual/minors", &["text"]),
    ("violence", &["text", "image"]),
    ("violence/graphic", &["text", "image"]),
];

/// The answer to `POST /moderations`.
pub(super) fn answer(req: &Incoming) -> Response {
    let json = match body(req, &["input"]) {
        Ok(json) => json,
        Err(refused) => return *refused,
    };
    let inputs = json
        .and_then(|j| j.get("input"))
        .and_then(|i| i.as_array())
        .filter(|a| a.iter().all(|i| i.is_string()))
        .map_or(1, Vec::len);
    let model = req.model.as_deref().unwrap_or("omni-moderation-latest");
    ok_json(obj([
        ("id", s(format!("modr-{}", hex_chars(next_serial(), 32)))),
        ("model", s(model)),
        ("results", arr((0..inputs).map(|_| result()))),
    ]))
}

fn result() -> J {
    let per_category = |value: &dyn Fn(&[&str]) -> J| {
        J::Obj(
            CATEGORIES
                .iter()
                .map(|(name, types)| (*name, value(types)))
                .collect(),
        )
    };
    obj([
        ("flagged", J::Bool(false)),
        ("categories", per_category(&|_| J::Bool(false))),
        ("category_scores", per_category(&|_| J::Float(1.2e-5))),
        (
            "category_applied_input_types",
            per_category(&|types| arr(types.iter().map(|t| s(*t)))),
        ),
    ])
}
