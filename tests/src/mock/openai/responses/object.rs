//! A Responses API response as the mock keeps it, and as it is written: the `response`
//! object (in the field order of OpenAI's answers), its input items, and the semantic events
//! of its stream.

use super::super::super::json::{arr, n, obj, opt_s, raw, s, J};
use super::super::super::{hex_chars, id_chars, next_serial, BODY_CANARY};

/// Usage the mock reports (distinct, so a mix-up shows): input tokens, of them read from the
/// cache, and reasoning tokens, which count among the output tokens.
pub(crate) const INPUT_TOKENS: u64 = 11;
pub(crate) const CACHED_TOKENS: u64 = 3;
pub(crate) const REASONING_TOKENS: u64 = 2;

/// Where a response is in its life (OpenAI's `status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Queued,
    InProgress,
    Completed,
    Failed,
    Cancelled,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }
}

/// One response: what the request asked and what the "model" answered.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    /// The API key that created it: only that key sees it.
    pub key: String,
    pub id: String,
    pub created_at: u64,
    pub completed_at: Option<u64>,
    pub status: Status,
    pub model: String,
    pub background: bool,
    pub store: bool,
    pub previous_response_id: Option<String>,
    pub instructions: Option<String>,
    /// The request's `metadata`, echoed.
    pub metadata: Option<serde_json::Value>,
    /// The id of the output message.
    pub message_id: String,
    /// The output text, as the stream's deltas.
    pub deltas: Vec<String>,
    /// The input items, with their ids.
    pub input: Vec<(String, J)>,
}

/// `resp_…` or `msg_…`: the prefix and 50 hex digits, as OpenAI's ids.
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", hex_chars(next_serial(), 50))
}

impl Stored {
    /// The output text.
    pub fn text(&self) -> String {
        self.deltas.concat()
    }

    /// The `response` object in its present state: output and usage once completed, the
    /// error once failed.
    pub fn object(&self) -> J {
        let completed = self.status == Status::Completed;
        let output = if completed {
            arr([self.message("completed", arr([self.output_text(&self.text())]))])
        } else {
            arr([])
        };
        let error = if self.status == Status::Failed {
            obj([
                ("code", s("server_error")),
                (
                    "message",
                    s(format!(
                        "{BODY_CANARY} An error occurred while processing your request."
                    )),
                ),
            ])
        } else {
            J::Null
        };
        obj([
            ("id", s(self.id.as_str())),
            ("object", s("response")),
            ("created_at", n(self.created_at)),
            ("status", s(self.status.as_str())),
            ("background", J::Bool(self.background)),
            ("completed_at", self.completed_at.map_or(J::Null, n)),
            ("error", error),
            ("incomplete_details", J::Null),
            ("instructions", opt_s(self.instructions.as_deref())),
            ("max_output_tokens", J::Null),
            ("max_tool_calls", J::Null),
            ("model", s(self.model.as_str())),
            ("output", output),
            ("parallel_tool_calls", J::Bool(true)),
            (
                "previous_response_id",
                opt_s(self.previous_response_id.as_deref()),
            ),
            ("prompt_cache_key", J::Null),
            (
                "reasoning",
                obj([("effort", J::Null), ("summary", J::Null)]),
            ),
            ("safety_identifier", J::Null),
            ("service_tier", s("default")),
            ("store", J::Bool(self.store)),
            ("temperature", J::Float(1.0)),
            (
                "text",
                obj([
                    ("format", obj([("type", s("text"))])),
                    ("verbosity", s("medium")),
                ]),
            ),
            ("tool_choice", s("auto")),
            ("tools", arr([])),
            ("top_logprobs", n(0)),
            ("top_p", J::Float(1.0)),
            ("truncation", s("disabled")),
            ("usage", if completed { self.usage() } else { J::Null }),
            ("user", J::Null),
            (
                "metadata",
                self.metadata.as_ref().map_or_else(|| obj([]), raw),
            ),
        ])
    }

    fn usage(&self) -> J {
        let output = self.deltas.len() as u64 + REASONING_TOKENS;
        obj([
            ("input_tokens", n(INPUT_TOKENS)),
            (
                "input_tokens_details",
                obj([
                    ("cached_tokens", n(CACHED_TOKENS)),
                    ("cache_write_tokens", n(0)),
                ]),
            ),
            ("output_tokens", n(output)),
            (
                "output_tokens_details",
                obj([("reasoning_tokens", n(REASONING_TOKENS))]),
            ),
            ("total_tokens", n(INPUT_TOKENS + output)),
        ])
    }

    fn message(&self, status: &str, content: J) -> J {
        obj([
            ("id", s(self.message_id.as_str())),
            ("type", s("message")),
            ("status", s(status)),
            ("content", content),
            ("role", s("assistant")),
        ])
    }

    fn output_text(&self, text: &str) -> J {
        obj([
            ("type", s("output_text")),
            ("annotations", arr([])),
            ("logprobs", arr([])),
            ("text", s(text)),
        ])
    }

    /// The stream of a response that completes, as `(type, event)` pairs, each event with its
    /// `type` and `sequence_number`; `obfuscation` pads each delta as OpenAI does unless the
    /// request turned it off.
    pub fn events(&self, obfuscation: bool) -> Vec<(&'static str, J)> {
        let in_progress = Stored {
            status: Status::InProgress,
            completed_at: None,
            ..self.clone()
        };
        let done = Stored {
            status: Status::Completed,
            ..self.clone()
        };
        let text = self.text();
        let item = || ("item_id", s(self.message_id.as_str()));
        let indices = || [("output_index", n(0)), ("content_index", n(0))];
        let mut events: Vec<(&'static str, Vec<(&'static str, J)>)> = vec![
            ("response.created", vec![("response", in_progress.object())]),
            (
                "response.in_progress",
                vec![("response", in_progress.object())],
            ),
            (
                "response.output_item.added",
                vec![
                    ("output_index", n(0)),
                    ("item", self.message("in_progress", arr([]))),
                ],
            ),
            ("response.content_part.added", {
                let mut e = vec![item()];
                e.extend(indices());
                e.push(("part", self.output_text("")));
                e
            }),
        ];
        for delta in &self.deltas {
            let mut e = vec![item()];
            e.extend(indices());
            e.extend([("delta", s(delta.as_str())), ("logprobs", arr([]))]);
            if obfuscation {
                // Pads every delta to a multiple of 16 characters with the obfuscation.
                let pad = 16 - delta.chars().count() % 16;
                e.push(("obfuscation", s(id_chars(next_serial(), pad))));
            }
            events.push(("response.output_text.delta", e));
        }
        events.push(("response.output_text.done", {
            let mut e = vec![item()];
            e.extend(indices());
            e.extend([("text", s(text.as_str())), ("logprobs", arr([]))]);
            e
        }));
        events.push(("response.content_part.done", {
            let mut e = vec![item()];
            e.extend(indices());
            e.push(("part", self.output_text(&text)));
            e
        }));
        events.push((
            "response.output_item.done",
            vec![
                ("output_index", n(0)),
                (
                    "item",
                    self.message("completed", arr([self.output_text(&text)])),
                ),
            ],
        ));
        events.push(("response.completed", vec![("response", done.object())]));
        events
            .into_iter()
            .enumerate()
            .map(|(i, (kind, fields))| (kind, event(kind, i as u64, fields)))
            .collect()
    }

    /// The `response.failed` event that ends a stream broken at `sequence_number`.
    pub fn failed_event(&self, sequence_number: u64) -> J {
        let failed = Stored {
            status: Status::Failed,
            completed_at: None,
            ..self.clone()
        };
        event(
            "response.failed",
            sequence_number,
            vec![("response", failed.object())],
        )
    }
}

fn event(kind: &'static str, sequence_number: u64, fields: Vec<(&'static str, J)>) -> J {
    let mut all = vec![("type", s(kind)), ("sequence_number", n(sequence_number))];
    all.extend(fields);
    J::Obj(all)
}

/// The input items of a request's `input`: a string is one user message; each message of a
/// list becomes a `message` item (a string content one `input_text` part, or `output_text`
/// for the assistant's); any other item is kept as sent. Each gets its id (`msg_…`) unless it
/// has one.
pub(crate) fn input_items(input: Option<&serde_json::Value>) -> Vec<(String, J)> {
    let message = |role: &str, content: J| {
        let id = new_id("msg");
        let item = obj([
            ("id", s(id.as_str())),
            ("type", s("message")),
            ("status", s("completed")),
            ("content", content),
            ("role", s(role)),
        ]);
        (id, item)
    };
    let text_part = |role: &str, text: &str| {
        let kind = if role == "assistant" {
            "output_text"
        } else {
            "input_text"
        };
        arr([obj([("type", s(kind)), ("text", s(text))])])
    };
    match input {
        Some(serde_json::Value::String(text)) => vec![message("user", text_part("user", text))],
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|item| {
                let role = item.get("role").and_then(|r| r.as_str());
                let kind = item.get("type").and_then(|t| t.as_str());
                match (role, kind, item.get("content")) {
                    (Some(role), None | Some("message"), Some(content)) => {
                        let content = match content.as_str() {
                            Some(text) => text_part(role, text),
                            None => raw(content),
                        };
                        Some(message(role, content))
                    }
                    _ => {
                        let mut item = item.as_object()?.clone();
                        let id = match item.get("id").and_then(|i| i.as_str()) {
                            Some(id) => id.to_owned(),
                            None => {
                                let id = new_id("msg");
                                item.insert("id".to_owned(), id.clone().into());
                                id
                            }
                        };
                        Some((id, raw(&serde_json::Value::Object(item))))
                    }
                }
            })
            .collect(),
        _ => Vec::new(),
    }
}
