//! OpenAI's speech to text, `POST /audio/transcriptions` and `/audio/translations`, whose
//! bodies are `multipart/form-data` with a `file` and a `model`. The `response_format` field
//! picks the answer: `json` (the default) `{"text", "usage"}`, `text`, `srt` and `vtt` as
//! plain text, `verbose_json` with `task`, `language`, `duration` and `segments`. Usage is
//! in tokens for the GPT-4o transcribe models and in seconds for `whisper-1`, as OpenAI bills
//! them; translations carry none. A GPT-4o transcription with `stream=true` is an SSE stream
//! of `transcript.text.delta` events and a `transcript.text.done` with the usage.
//!
//! A body that is not a form, or a form without its file or model, is refused with OpenAI's
//! words for it; a form whose framing is broken with the mock's own.

use super::super::json::{arr, n, obj, s, J};
use super::super::{paced, respond, FormError, Incoming};
use super::{no_model, ok_json, refusal};
use axum::http::StatusCode;
use axum::response::Response;

/// What the audio "says", its length in seconds and the tokens it costs.
const TEXT: &str = "Hello from the mock.";
const SECONDS: u64 = 3;
const AUDIO_TOKENS: u64 = 14;
const TEXT_TOKENS: u64 = 7;

/// OpenAI's 400 for a form without a file, word for word.
const NO_FILE: &str =
    "1 validation error for Request\nbody -> file\n  field required (type=value_error.missing)";

/// Which of the two endpoints a request is to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Task {
    Transcribe,
    Translate,
}

/// The answer to `POST /audio/transcriptions`.
pub(super) fn transcription(req: &Incoming) -> Response {
    answer(req, Task::Transcribe)
}

/// The answer to `POST /audio/translations`.
pub(super) fn translation(req: &Incoming) -> Response {
    answer(req, Task::Translate)
}

fn answer(req: &Incoming, task: Task) -> Response {
    if let Some(refused) = refused(req) {
        return refused;
    }
    let model = req.model.as_deref().unwrap_or_default();
    let tokens = model != "whisper-1";
    if task == Task::Transcribe && tokens && req.form_text("stream") == Some("true") {
        return stream(req);
    }
    let usage = match (task, tokens) {
        (Task::Translate, _) => None,
        (Task::Transcribe, true) => Some(token_usage()),
        (Task::Transcribe, false) => Some(obj([("type", s("duration")), ("seconds", n(SECONDS))])),
    };
    let text_plain = |body: String| respond(StatusCode::OK, "text/plain; charset=utf-8", body);
    match req.form_text("response_format").unwrap_or("json") {
        "text" => text_plain(format!("{TEXT}\n")),
        // Cues of the whole `SECONDS`.
        "srt" => text_plain(format!("1\n00:00:00,000 --> 00:00:03,000\n{TEXT}\n\n")),
        "vtt" => text_plain(format!(
            "WEBVTT\n\n00:00:00.000 --> 00:00:03.000\n{TEXT}\n\n"
        )),
        "verbose_json" => {
            let mut fields = vec![
                (
                    "task",
                    s(match task {
                        Task::Transcribe => "transcribe",
                        Task::Translate => "translate",
                    }),
                ),
                ("language", s("english")),
                ("duration", J::Float(SECONDS as f64)),
                ("text", s(TEXT)),
                ("segments", arr([segment()])),
            ];
            // A verbose transcription is billed by the second, whatever the model.
            if task == Task::Transcribe {
                fields.push((
                    "usage",
                    obj([("type", s("duration")), ("seconds", n(SECONDS))]),
                ));
            }
            ok_json(J::Obj(fields))
        }
        _ => {
            let mut fields = vec![("text", s(TEXT))];
            fields.extend(usage.map(|u| ("usage", u)));
            ok_json(J::Obj(fields))
        }
    }
}

/// OpenAI's 400 for a body that is not a form with a file and a model.
fn refused(req: &Incoming) -> Option<Response> {
    let bad = |message: &str| Some(refusal(StatusCode::BAD_REQUEST, message, None, None));
    match &req.form {
        Err(FormError::NotMultipart) => {
            let content_type = req.header("content-type").unwrap_or("None");
            bad(&format!("Invalid Content-Type header ({content_type}), expected multipart/form-data. (HINT: If you're using curl, you can pass -H 'Content-Type: multipart/form-data')"))
        }
        Err(FormError::NoBoundary | FormError::Malformed) => {
            bad("Could not parse multipart form data.")
        }
        Ok(parts)
            if !parts
                .iter()
                .any(|p| p.name == "file" && p.filename.is_some()) =>
        {
            bad(NO_FILE)
        }
        Ok(_) if req.form_text("model").is_none_or(str::is_empty) => Some(no_model()),
        Ok(_) => None,
    }
}

fn token_usage() -> J {
    obj([
        ("type", s("tokens")),
        ("input_tokens", n(AUDIO_TOKENS)),
        (
            "input_token_details",
            obj([("text_tokens", n(0)), ("audio_tokens", n(AUDIO_TOKENS))]),
        ),
        ("output_tokens", n(TEXT_TOKENS)),
        ("total_tokens", n(AUDIO_TOKENS + TEXT_TOKENS)),
    ])
}

fn segment() -> J {
    obj([
        ("id", n(0)),
        ("seek", n(0)),
        ("start", J::Float(0.0)),
        ("end", J::Float(SECONDS as f64)),
        ("text", s(format!(" {TEXT}"))),
        ("tokens", arr([50364, 2425, 490, 264, 17362, 13].map(n))),
        ("temperature", J::Float(0.0)),
        ("avg_logprob", J::Float(-0.25)),
        ("compression_ratio", J::Float(0.87)),
        ("no_speech_prob", J::Float(0.01)),
    ])
}

/// A streamed transcription: one delta per scripted chunk, then the whole text and usage.
fn stream(req: &Incoming) -> Response {
    let chunks = req.script.chunks.unwrap_or(3);
    let deltas: Vec<String> = (0..chunks).map(|i| format!("tok{i} ")).collect();
    let mut events: Vec<J> = deltas
        .iter()
        .map(|d| {
            obj([
                ("type", s("transcript.text.delta")),
                ("delta", s(d.as_str())),
                ("logprobs", arr([])),
            ])
        })
        .collect();
    events.push(obj([
        ("type", s("transcript.text.done")),
        ("text", s(deltas.concat())),
        ("logprobs", arr([])),
        ("usage", token_usage()),
    ]));
    let mut events: Vec<String> = events
        .iter()
        .map(|e| format!("data: {}\n\n", e.compact()))
        .collect();
    if let Some(n) = req.script.error_after {
        events.truncate(usize::try_from(n).unwrap_or(usize::MAX));
        events.push(format!(
            "data: {}\n\n",
            obj([
                ("type", s("error")),
                (
                    "error",
                    obj([
                        ("type", s("server_error")),
                        (
                            "message",
                            s(format!(
                                "{} The server had an error while processing your request.",
                                super::super::BODY_CANARY
                            )),
                        ),
                    ]),
                ),
            ])
            .compact()
        ));
    }
    respond(
        StatusCode::OK,
        "text/event-stream",
        paced(events, &req.script),
    )
}
