//! The gateway body read as a top-level scan: each top-level value is kept as the raw slice of
//! the request (`RawValue`, validated but never turned into a tree), `model` and `stream` are
//! read, and the body is written back with `model` rewritten. A 32 MiB body of numbers costs
//! about twice its size instead of a JSON tree ten times larger (see SECURITY.md).

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// Why a body cannot be dispatched (answered 400 by the gateway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON.
    Syntax,
    /// JSON, but not an object.
    NotObject,
    /// No string `model`.
    NoModel,
    /// `model` or `stream` given twice (the provider might read the other one).
    Duplicate(&'static str),
    /// `stream` is neither true, false nor null.
    BadStream,
    /// Gemini's `batchEmbedContents` without an array of request objects.
    BadRequests,
}

impl BodyError {
    /// The message for the client.
    pub fn message(self) -> &'static str {
        match self {
            BodyError::Syntax => "the request body is not valid JSON",
            BodyError::NotObject => "the request body must be a JSON object",
            BodyError::NoModel => "`model` is required and must be a string",
            BodyError::Duplicate("model") => "`model` appears more than once",
            BodyError::Duplicate(_) => "`stream` appears more than once",
            BodyError::BadStream => "`stream` must be a boolean",
            BodyError::BadRequests => "`requests` must be an array of objects",
        }
    }

    /// The parameter at fault, when there is one.
    pub fn param(self) -> Option<&'static str> {
        match self {
            BodyError::NoModel | BodyError::Duplicate("model") => Some("model"),
            BodyError::Duplicate(_) | BodyError::BadStream => Some("stream"),
            BodyError::BadRequests => Some("requests"),
            _ => None,
        }
    }
}

/// A body's top level, borrowing from the request bytes.
pub struct Scanned<'a> {
    fields: Vec<(Key<'a>, &'a RawValue)>,
    model_at: usize,
    /// The Rotor model name the client asked for.
    pub model: String,
    /// Whether the client asked for server-sent events.
    pub stream: bool,
}

/// A top-level key, borrowed unless it held escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

struct Fields<'a>(Vec<(Key<'a>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8).min(64));
                while let Some(entry) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    fields.push(entry);
                }
                Ok(Fields(fields))
            }
        }
        d.deserialize_map(V)
    }
}

/// Runs `parse`, the read of a body of `len` bytes, off the async worker's core when the body is
/// big: a 24 MiB body takes tens of milliseconds, during which the worker's other connections
/// and the database pool's replies would wait. The usual few kilobytes are parsed inline.
pub fn off_core<R>(len: usize, parse: impl FnOnce() -> R) -> R {
    const BIG: usize = 256 * 1024;
    let threaded = || {
        tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
    };
    if len >= BIG && threaded() {
        tokio::task::block_in_place(parse)
    } else {
        parse()
    }
}

/// Scans `body`: a JSON object with one string `model` and at most one boolean `stream`.
pub fn scan(body: &[u8]) -> Result<Scanned<'_>, BodyError> {
    let first = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .ok_or(BodyError::Syntax)?;
    let Fields(fields) = serde_json::from_slice(body).map_err(|_| {
        if *first == b'{' {
            BodyError::Syntax
        } else if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
            BodyError::NotObject
        } else {
            BodyError::Syntax
        }
    })?;
    let mut model_at = None;
    let mut stream = None;
    for (i, (key, value)) in fields.iter().enumerate() {
        match key.0.as_ref() {
            "model" if model_at.is_some() => return Err(BodyError::Duplicate("model")),
            "model" => model_at = Some(i),
            "stream" if stream.is_some() => return Err(BodyError::Duplicate("stream")),
            "stream" => {
                let s: Option<bool> =
                    serde_json::from_str(value.get()).map_err(|_| BodyError::BadStream)?;
                stream = Some(s.unwrap_or(false));
            }
            _ => {}
        }
    }
    let model_at = model_at.ok_or(BodyError::NoModel)?;
    let model: String =
        serde_json::from_str(fields[model_at].1.get()).map_err(|_| BodyError::NoModel)?;
    Ok(Scanned {
        fields,
        model_at,
        model,
        stream: stream.unwrap_or(false),
    })
}

/// Checks that `body` is one JSON object (Gemini bodies, which do not name the model), without
/// building a tree of it.
pub fn object(body: &[u8]) -> Result<(), BodyError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Ok(_) => Err(BodyError::NotObject),
            Err(_) => Err(BodyError::Syntax),
        };
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(body)
        .map(drop)
        .map_err(|_| BodyError::Syntax)
}

/// A Gemini `batchEmbedContents` body with every inner request's `model` set to
/// `models/{upstream_model}` (the provider refuses inner models other than the path's).
pub fn gemini_batch(body: &[u8], upstream_model: &str) -> Result<bytes::Bytes, BodyError> {
    let mut v: serde_json::Value = serde_json::from_slice(body).map_err(|_| BodyError::Syntax)?;
    let requests = v
        .as_object_mut()
        .ok_or(BodyError::NotObject)?
        .get_mut("requests")
        .and_then(serde_json::Value::as_array_mut)
        .ok_or(BodyError::BadRequests)?;
    let name = serde_json::Value::String(format!("models/{upstream_model}"));
    for r in requests {
        r.as_object_mut()
            .ok_or(BodyError::BadRequests)?
            .insert("model".to_owned(), name.clone());
    }
    serde_json::to_vec(&v)
        .map(bytes::Bytes::from)
        .map_err(|_| BodyError::Syntax)
}

impl Scanned<'_> {
    /// A top-level string field (`previous_response_id`), when present and a string.
    pub fn string(&self, name: &str) -> Option<String> {
        self.fields
            .iter()
            .find(|(key, _)| key.0 == name)
            .and_then(|(_, v)| serde_json::from_str(v.get()).ok())
    }

    /// The affinity key the body names (§14): OpenAI's `prompt_cache_key`, else `user`, else
    /// Anthropic's `metadata.user_id`; hashed (an empty string names nothing).
    pub fn affinity(&self) -> Option<u64> {
        #[derive(Deserialize)]
        struct Metadata {
            user_id: Option<String>,
        }
        let named = ["prompt_cache_key", "user"]
            .into_iter()
            .find_map(|name| self.string(name).filter(|s| !s.is_empty()));
        let key = match named {
            Some(key) => key,
            None => {
                let (_, meta) = self.fields.iter().find(|(key, _)| key.0 == "metadata")?;
                let meta: Metadata = serde_json::from_str(meta.get()).ok()?;
                meta.user_id.filter(|s| !s.is_empty())?
            }
        };
        Some(rotor_dispatch::state::affinity_hash(key.as_bytes()))
    }

    /// The body again, every top-level value as sent, `model` replaced by `upstream_model`.
    pub fn rewrite(&self, upstream_model: &str, size_hint: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(size_hint + upstream_model.len() + 16);
        out.push(b'{');
        for (i, (key, value)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_string(&mut out, &key.0);
            out.push(b':');
            if i == self.model_at {
                write_string(&mut out, upstream_model);
            } else {
                out.extend_from_slice(value.get().as_bytes());
            }
        }
        out.push(b'}');
        out
    }
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    // Serialising a &str into a Vec cannot fail.
    if serde_json::to_writer(&mut *out, s).is_err() {
        out.extend_from_slice(b"\"\"");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rotor_dispatch::state::affinity_hash;

    #[test]
    fn the_affinity_key_comes_from_the_first_field_that_names_one() {
        let key = |body: &str| scan(body.as_bytes()).unwrap().affinity();
        let h = |s: &str| Some(affinity_hash(s.as_bytes()));
        assert_eq!(
            key(r#"{"model":"m","prompt_cache_key":"p","user":"u"}"#),
            h("p")
        );
        assert_eq!(
            key(r#"{"model":"m","user":"u","metadata":{"user_id":"x"}}"#),
            h("u")
        );
        assert_eq!(
            key(r#"{"model":"m","prompt_cache_key":"","metadata":{"user_id":"x"}}"#),
            h("x")
        );
        assert_eq!(key(r#"{"model":"m","metadata":{"user_id":7}}"#), None);
        assert_eq!(key(r#"{"model":"m","user":{"id":"u"}}"#), None);
        assert_eq!(key(r#"{"model":"m"}"#), None);
    }

    fn rewritten(body: &str, to: &str) -> serde_json::Value {
        let s = scan(body.as_bytes()).unwrap();
        serde_json::from_slice(&s.rewrite(to, body.len())).unwrap()
    }

    #[test]
    fn model_is_rewritten_and_everything_else_kept_as_sent() {
        let body = r#" {"model": "fast", "messages": [{"role": "user", "content": "h\u00e9 \"x\""}],
            "temperature": 0.70, "n": 1e2, "stream": true, "we\"ird": null} "#;
        let s = scan(body.as_bytes()).unwrap();
        assert_eq!(s.model, "fast");
        assert!(s.stream);
        let out = String::from_utf8(s.rewrite("gpt-4o-mini", body.len())).unwrap();
        // Numbers keep their spelling (no float round trip), escapes stay as sent.
        assert!(out.contains(r#""temperature":0.70"#), "{out}");
        assert!(out.contains(r#""n":1e2"#), "{out}");
        assert!(out.contains(r#"h\u00e9 \"x\""#), "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["model"], "gpt-4o-mini");
        assert_eq!(v["we\"ird"], serde_json::Value::Null);
        assert_eq!(rewritten(r#"{"model":"a\"b"}"#, "c\"d")["model"], "c\"d");
    }

    #[test]
    fn bad_bodies_are_named() {
        assert_eq!(scan(b"").err(), Some(BodyError::Syntax));
        assert_eq!(scan(b"{\"model\": ").err(), Some(BodyError::Syntax));
        assert_eq!(scan(b"[1, 2]").err(), Some(BodyError::NotObject));
        assert_eq!(scan(b"\"x\"").err(), Some(BodyError::NotObject));
        assert_eq!(scan(b"{}").err(), Some(BodyError::NoModel));
        assert_eq!(scan(br#"{"model": 5}"#).err(), Some(BodyError::NoModel));
        assert_eq!(
            scan(br#"{"model": "a", "model": "b"}"#).err(),
            Some(BodyError::Duplicate("model"))
        );
        assert_eq!(
            scan(br#"{"model": "a", "stream": "yes"}"#).err(),
            Some(BodyError::BadStream)
        );
        assert_eq!(scan(br#"{"model": "a"} x"#).err(), Some(BodyError::Syntax));
        assert!(!scan(br#"{"model": "a", "stream": null}"#).unwrap().stream);
    }

    #[test]
    fn gemini_bodies_are_objects_and_batches_get_the_providers_model() {
        assert_eq!(object(br#" {"contents": []} "#), Ok(()));
        assert_eq!(object(b"[1]"), Err(BodyError::NotObject));
        assert_eq!(object(b"{\"a\": "), Err(BodyError::Syntax));
        assert_eq!(object(b""), Err(BodyError::Syntax));
        let body =
            br#"{"requests": [{"model": "models/mine", "content": {"parts": [{"text": "a"}]}},
            {"content": {"parts": [{"text": "b"}]}}]}"#;
        let out: serde_json::Value =
            serde_json::from_slice(&gemini_batch(body, "text-embedding-004").unwrap()).unwrap();
        assert_eq!(out["requests"][0]["model"], "models/text-embedding-004");
        assert_eq!(out["requests"][1]["model"], "models/text-embedding-004");
        assert_eq!(out["requests"][1]["content"]["parts"][0]["text"], "b");
        assert_eq!(
            gemini_batch(br#"{"requests": 1}"#, "m").err(),
            Some(BodyError::BadRequests)
        );
        assert_eq!(
            gemini_batch(br#"{"requests": [1]}"#, "m").err(),
            Some(BodyError::BadRequests)
        );
    }
}
