//! OpenAI's image generation, `POST /images/generations`: `{created, data}` with `n` images
//! (a 1×1 PNG) as `b64_json` or as a `url` as `response_format` asks (DALL·E's default is a
//! URL, the GPT image models' always base64); the GPT image models add the `usage` they
//! bill by and the `background`, `output_format`, `quality` and `size` they used, DALL·E 3 a
//! `revised_prompt`.

use super::super::json::{arr, n, obj, s, J};
use super::super::{hex_chars, next_serial, unix_now, Incoming};
use super::{body, ok_json};
use axum::response::Response;

/// A 1×1 PNG, base64-encoded.
pub(crate) const PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
/// Usage the mock reports: the prompt's text tokens and each image's output tokens (a
/// medium-quality 1024×1024 image).
const PROMPT_TOKENS: u64 = 11;
const IMAGE_TOKENS: u64 = 1056;

/// The answer to `POST /images/generations`.
pub(super) fn answer(req: &Incoming) -> Response {
    let json = match body(req, &["prompt"]) {
        Ok(json) => json,
        Err(refused) => return *refused,
    };
    let field = |name: &str| json.and_then(|j| j.get(name)).and_then(|v| v.as_str());
    // `auto` (and nothing) is what the model picks.
    let chosen = |name: &str, auto: &'static str| {
        field(name)
            .filter(|v| *v != "auto")
            .map_or_else(|| s(auto), s)
    };
    let model = req.model.as_deref().unwrap_or("dall-e-2");
    let gpt_image = model.starts_with("gpt-image");
    let images = json
        .and_then(|j| j.get("n"))
        .and_then(|v| v.as_u64())
        .unwrap_or(1)
        .clamp(1, 10);
    let url = match field("response_format") {
        Some(format) => format == "url",
        None => !gpt_image,
    };
    let image = |i: u64| {
        let mut fields = vec![if url {
            (
                "url",
                s(format!(
                    "https://oaidalleapiprodscus.blob.core.windows.net/private/img-{}.png",
                    hex_chars(next_serial() + i, 24)
                )),
            )
        } else {
            ("b64_json", s(PNG_B64))
        }];
        if model == "dall-e-3" {
            fields.push(("revised_prompt", s(field("prompt").unwrap_or_default())));
        }
        J::Obj(fields)
    };
    let mut answer = vec![("created", n(unix_now()))];
    if gpt_image {
        answer.push(("background", chosen("background", "opaque")));
    }
    answer.push(("data", arr((0..images).map(image))));
    if gpt_image {
        answer.extend([
            ("output_format", chosen("output_format", "png")),
            ("quality", chosen("quality", "medium")),
            ("size", chosen("size", "1024x1024")),
            ("usage", usage(images)),
        ]);
    }
    ok_json(J::Obj(answer))
}

fn usage(images: u64) -> J {
    let output = IMAGE_TOKENS * images;
    obj([
        ("input_tokens", n(PROMPT_TOKENS)),
        (
            "input_tokens_details",
            obj([("image_tokens", n(0)), ("text_tokens", n(PROMPT_TOKENS))]),
        ),
        ("output_tokens", n(output)),
        ("total_tokens", n(PROMPT_TOKENS + output)),
    ])
}
