//! OpenAI's multipart bodies (audio transcriptions and translations): the `model` form field
//! found without copying the upload, and the body written back byte for byte with only that
//! field's value replaced, so the file part reaches the provider as the client sent it.

use bytes::Bytes;
use memchr::memmem;
use std::ops::Range;

/// Why a multipart body cannot be dispatched (answered 400 by the gateway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormError {
    /// The content type is not `multipart/form-data` with a boundary.
    NotMultipart,
    /// The parts are not delimited as the boundary says.
    Malformed,
    /// No `model` field, or one that is not text.
    NoModel,
    /// `model` given twice.
    DuplicateModel,
}

impl FormError {
    /// The message for the client.
    pub fn message(self) -> &'static str {
        match self {
            FormError::NotMultipart => {
                "the request body must be multipart/form-data with a boundary"
            }
            FormError::Malformed => "the multipart body is malformed",
            FormError::NoModel => "the `model` form field is required and must be text",
            FormError::DuplicateModel => "the `model` form field appears more than once",
        }
    }
}

/// A multipart body with its `model` field located.
#[derive(Debug)]
pub struct Form<'a> {
    body: &'a [u8],
    model_at: Range<usize>,
    /// The Rotor model name the client asked for.
    pub model: String,
    /// Whether the client asked for server-sent events (`stream=true`).
    pub stream: bool,
}

/// The boundary of a `multipart/form-data` content type (quoted or not).
fn boundary(content_type: &str) -> Option<&str> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (name, value) = p.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        // RFC 2046: 1 to 70 characters.
        (1..=70).contains(&value.len()).then_some(value)
    })
}

/// The `name` of a part's `Content-Disposition: form-data; name="…"` header, and whether the
/// part is a file (has a `filename`).
fn field_name(headers: &[u8]) -> Option<(&[u8], bool)> {
    let text = std::str::from_utf8(headers).ok()?;
    let line = text.split("\r\n").find(|l| {
        l.split_once(':')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case("content-disposition"))
    })?;
    let (_, value) = line.split_once(':')?;
    let mut name = None;
    let mut file = false;
    for param in value.split(';').skip(1) {
        let Some((k, v)) = param.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        match k.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(v.as_bytes()),
            "filename" | "filename*" => file = true,
            _ => {}
        }
    }
    Some((name?, file))
}

/// Finds the `model` (and `stream`) fields of `body` sent as `content_type`.
pub fn scan<'a>(content_type: &str, body: &'a [u8]) -> Result<Form<'a>, FormError> {
    let boundary = boundary(content_type).ok_or(FormError::NotMultipart)?;
    let first = format!("--{boundary}");
    let next = format!("\r\n--{boundary}");
    let finder = memmem::Finder::new(next.as_bytes());
    // The first delimiter may open the body (no preamble) or follow one.
    let mut at = if body.starts_with(first.as_bytes()) {
        first.len()
    } else {
        finder.find(body).ok_or(FormError::Malformed)? + next.len()
    };
    let mut model_at = None;
    let mut stream = false;
    loop {
        let rest = body.get(at..).ok_or(FormError::Malformed)?;
        if rest.starts_with(b"--") {
            break; // the closing delimiter
        }
        // Transport padding, then the line break that ends the delimiter line.
        let line_end = memmem::find(rest, b"\r\n").ok_or(FormError::Malformed)?;
        if rest[..line_end].iter().any(|b| !matches!(b, b' ' | b'\t')) {
            return Err(FormError::Malformed);
        }
        let part = at + line_end + 2;
        let headers_len = memmem::find(&body[part..], b"\r\n\r\n").ok_or(FormError::Malformed)?;
        let content = part + headers_len + 4;
        let len = finder.find(&body[content..]).ok_or(FormError::Malformed)?;
        let value = content..content + len;
        match field_name(&body[part..part + headers_len]) {
            Some((b"model", false)) if model_at.is_some() => return Err(FormError::DuplicateModel),
            Some((b"model", false)) => model_at = Some(value.clone()),
            Some((b"model", true)) => return Err(FormError::NoModel),
            Some((b"stream", false)) => stream = body[value.clone()].eq_ignore_ascii_case(b"true"),
            _ => {}
        }
        at = value.end + next.len();
    }
    let model_at = model_at.ok_or(FormError::NoModel)?;
    let model = std::str::from_utf8(&body[model_at.clone()])
        .map_err(|_| FormError::NoModel)?
        .to_owned();
    Ok(Form {
        body,
        model_at,
        model,
        stream,
    })
}

impl Form<'_> {
    /// The body again with the `model` field's value replaced by `upstream_model`.
    pub fn rewrite(&self, upstream_model: &str) -> Bytes {
        let (head, tail) = (
            &self.body[..self.model_at.start],
            &self.body[self.model_at.end..],
        );
        let mut out = Vec::with_capacity(head.len() + upstream_model.len() + tail.len());
        out.extend_from_slice(head);
        out.extend_from_slice(upstream_model.as_bytes());
        out.extend_from_slice(tail);
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=XyZ";

    fn form(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, filename, value) in parts {
            out.extend_from_slice(b"--XyZ\r\n");
            let disposition = match filename {
                Some(f) => format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: audio/wav\r\n"),
                None => format!("Content-Disposition: form-data; name=\"{name}\"\r\n"),
            };
            out.extend_from_slice(disposition.as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--XyZ--\r\n");
        out
    }

    #[test]
    fn the_model_field_alone_is_rewritten() {
        // A file that holds the delimiter's start and CRLFs, before and after the model.
        let audio: &[u8] = b"RIFF\r\n--Xy\r\n\0\xff--XyZ-not\r\n";
        let body = form(&[
            ("file", Some("a.wav"), audio),
            ("model", None, b"whisper-team"),
            ("stream", None, b"true"),
            ("language", None, b"en"),
        ]);
        let f = scan(CT, &body).unwrap();
        assert_eq!(f.model, "whisper-team");
        assert!(f.stream);
        let out = f.rewrite("whisper-1");
        let expected = form(&[
            ("file", Some("a.wav"), audio),
            ("model", None, b"whisper-1"),
            ("stream", None, b"true"),
            ("language", None, b"en"),
        ]);
        assert_eq!(&out[..], &expected[..]);
        let quoted = "multipart/form-data; charset=utf-8; boundary=\"XyZ\"";
        assert_eq!(scan(quoted, &body).unwrap().model, "whisper-team");
    }

    #[test]
    fn bad_forms_are_named() {
        let body = form(&[("model", None, b"m")]);
        assert_eq!(
            scan("application/json", &body).err(),
            Some(FormError::NotMultipart)
        );
        assert_eq!(
            scan("multipart/form-data", &body).err(),
            Some(FormError::NotMultipart)
        );
        assert_eq!(
            scan("multipart/form-data; boundary=other", &body).err(),
            Some(FormError::Malformed)
        );
        let no_model = form(&[("file", Some("a.wav"), b"x")]);
        assert_eq!(scan(CT, &no_model).err(), Some(FormError::NoModel));
        let file_model = form(&[("model", Some("m.txt"), b"x")]);
        assert_eq!(scan(CT, &file_model).err(), Some(FormError::NoModel));
        let twice = form(&[("model", None, b"a"), ("model", None, b"b")]);
        assert_eq!(scan(CT, &twice).err(), Some(FormError::DuplicateModel));
        let cut = &body[..body.len() - 12];
        assert_eq!(scan(CT, cut).err(), Some(FormError::Malformed));
        let not_utf8 = form(&[("model", None, b"\xff")]);
        assert_eq!(scan(CT, &not_utf8).err(), Some(FormError::NoModel));
        assert_eq!(scan(CT, b"").err(), Some(FormError::Malformed));
    }
}
