//! JSON with its keys in the order a provider writes them, in the three spellings the mock
//! needs: compact (`{"a":1,"b":2}`, OpenAI and Anthropic), Google's streaming compact
//! (`{"a": 1,"b": 2}`, Gemini's SSE chunks) and Google's pretty print (two-space indent,
//! Gemini's JSON answers and errors). `serde_json::Value` sorts keys, which no provider does.

use std::fmt::Write;

/// A JSON value whose objects keep their keys in the order given.
#[derive(Clone, Debug)]
pub(crate) enum J {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(&'static str, J)>),
    /// JSON a client sent, echoed as it came (always compact).
    Raw(String),
}

/// A string value.
pub(crate) fn s(v: impl Into<String>) -> J {
    J::Str(v.into())
}

/// An integer value.
pub(crate) fn n(v: u64) -> J {
    J::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

/// An object of `pairs`, in order.
pub(crate) fn obj<const N: usize>(pairs: [(&'static str, J); N]) -> J {
    J::Obj(pairs.into())
}

/// A client's own JSON, echoed back (its input items, metadata).
pub(crate) fn raw(v: &serde_json::Value) -> J {
    J::Raw(v.to_string())
}

/// A string, or null.
pub(crate) fn opt_s(v: Option<impl Into<String>>) -> J {
    v.map_or(J::Null, s)
}

/// An array.
pub(crate) fn arr(items: impl IntoIterator<Item = J>) -> J {
    J::Arr(items.into_iter().collect())
}

/// How a value is spelled.
#[derive(Clone, Copy)]
enum Style {
    Compact,
    GoogleCompact,
    Pretty,
}

impl J {
    /// `{"a":1}`.
    pub(crate) fn compact(&self) -> String {
        self.render(Style::Compact)
    }

    /// `{"a": 1,"b": 2}`, as Gemini writes a streamed chunk.
    pub(crate) fn google_compact(&self) -> String {
        self.render(Style::GoogleCompact)
    }

    /// Two-space indented, as Google's front ends write a JSON answer.
    pub(crate) fn pretty(&self) -> String {
        self.render(Style::Pretty)
    }

    fn render(&self, style: Style) -> String {
        let mut out = String::new();
        self.write(&mut out, style, 0);
        out
    }

    fn write(&self, out: &mut String, style: Style, depth: usize) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Int(i) => {
                let _ = write!(out, "{i}");
            }
            // A whole float keeps its `.0`, as Python's JSON writes it (`"duration": 3.0`).
            J::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => {
                let _ = write!(out, "{f:.1}");
            }
            J::Float(f) => {
                let _ = write!(out, "{f}");
            }
            J::Str(v) => out.push_str(&serde_json::to_string(v).unwrap_or_default()),
            J::Raw(v) => out.push_str(v),
            J::Arr(items) => {
                let items: Vec<(Option<&str>, &J)> = items.iter().map(|v| (None, v)).collect();
                container(out, style, depth, ('[', ']'), &items);
            }
            J::Obj(pairs) => {
                let items: Vec<(Option<&str>, &J)> =
                    pairs.iter().map(|(k, v)| (Some(*k), v)).collect();
                container(out, style, depth, ('{', '}'), &items);
            }
        }
    }
}

fn container(
    out: &mut String,
    style: Style,
    depth: usize,
    (open, close): (char, char),
    items: &[(Option<&str>, &J)],
) {
    out.push(open);
    if items.is_empty() {
        out.push(close);
        return;
    }
    let pretty = matches!(style, Style::Pretty);
    let colon = if matches!(style, Style::Compact) {
        ":"
    } else {
        ": "
    };
    for (i, (key, value)) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if pretty {
            out.push('\n');
            out.push_str(&"  ".repeat(depth + 1));
        }
        if let Some(key) = key {
            out.push_str(&serde_json::to_string(key).unwrap_or_default());
            out.push_str(colon);
        }
        value.write(out, style, depth + 1);
    }
    if pretty {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    }
    out.push(close);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_spellings() {
        let v = obj([
            ("b", n(1)),
            ("a", arr([s("x"), J::Null, J::Float(0.5)])),
            ("e", obj([])),
        ]);
        assert_eq!(
            obj([("r", raw(&serde_json::json!({"k": [1]})))]).compact(),
            r#"{"r":{"k":[1]}}"#
        );
        assert_eq!(
            arr([J::Float(3.0), J::Float(1.2e-5)]).compact(),
            "[3.0,0.000012]"
        );
        assert_eq!(v.compact(), r#"{"b":1,"a":["x",null,0.5],"e":{}}"#);
        assert_eq!(
            v.google_compact(),
            r#"{"b": 1,"a": ["x",null,0.5],"e": {}}"#
        );
        assert_eq!(
            v.pretty(),
            "{\n  \"b\": 1,\n  \"a\": [\n    \"x\",\n    null,\n    0.5\n  ],\n  \"e\": {}\n}"
        );
    }
}
