//! `multipart/form-data` (RFC 7578 over RFC 2046's framing) as the mock reads it: OpenAI's
//! audio endpoints take their file and `model` this way. The boundary comes from the content
//! type; each part yields its `Content-Disposition` name and filename, its own content type
//! and its bytes, as slices of the body (a 25 MB upload is not copied).

use bytes::Bytes;

/// One part of a `multipart/form-data` body, as a test reads it back from a recorded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormPart {
    /// The `name` of its `Content-Disposition`.
    pub name: String,
    /// The `filename` of its `Content-Disposition`: set for a file part.
    pub filename: Option<String>,
    /// Its own `Content-Type`, if it has one (a file part's, usually).
    pub content_type: Option<String>,
    /// Its bytes.
    pub data: Bytes,
}

impl FormPart {
    /// Its bytes as text, if they are UTF-8 (a plain field's value).
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.data).ok()
    }
}

/// Why a body is not a form the mock can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FormError {
    /// The content type is absent or not `multipart/form-data`.
    NotMultipart,
    /// The content type names no (usable) boundary.
    NoBoundary,
    /// The body does not follow its boundary's framing, or a part lacks a name.
    Malformed,
}

/// The parts of `body`, sent with `content_type`.
pub(crate) fn parse(content_type: Option<&str>, body: &Bytes) -> Result<Vec<FormPart>, FormError> {
    let boundary = boundary(content_type.ok_or(FormError::NotMultipart)?)?;
    let dash = format!("--{boundary}");
    let delimiter = format!("\r\n{dash}");
    // The first boundary may open the body or follow a preamble (and the CRLF ending it).
    let mut pos = if body.starts_with(dash.as_bytes()) {
        dash.len()
    } else {
        find(body, delimiter.as_bytes(), 0).ok_or(FormError::Malformed)? + delimiter.len()
    };
    let mut parts = Vec::new();
    loop {
        let rest = body.get(pos..).ok_or(FormError::Malformed)?;
        if rest.starts_with(b"--") {
            // The close delimiter; what follows is an epilogue.
            return Ok(parts);
        }
        // Transport padding, then the CRLF that ends the delimiter line.
        let padding = rest
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        if !rest[padding..].starts_with(b"\r\n") {
            return Err(FormError::Malformed);
        }
        let start = pos + padding + 2;
        let next = find(body, delimiter.as_bytes(), start).ok_or(FormError::Malformed)?;
        let region = &body[start..next];
        let (headers, content) = if region.starts_with(b"\r\n") {
            (&region[..0], start + 2)
        } else {
            let end = find(region, b"\r\n\r\n", 0).ok_or(FormError::Malformed)?;
            (&region[..end], start + end + 4)
        };
        parts.push(part(headers, body.slice(content..next))?);
        pos = next + delimiter.len();
    }
}

/// The `boundary` parameter of a `multipart/form-data` content type.
fn boundary(content_type: &str) -> Result<String, FormError> {
    let mut segments = segments(content_type).into_iter();
    let media = segments.next().unwrap_or_default();
    if !media.trim().eq_ignore_ascii_case("multipart/form-data") {
        return Err(FormError::NotMultipart);
    }
    let boundary = segments
        .filter_map(|seg| param(&seg))
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v)
        .ok_or(FormError::NoBoundary)?;
    // RFC 2046: 1 to 70 characters, not ending in a space.
    if boundary.is_empty() || boundary.len() > 70 || boundary.ends_with(' ') {
        return Err(FormError::NoBoundary);
    }
    Ok(boundary)
}

/// A part of `headers` (CRLF-separated `Name: value` lines) and `data`.
fn part(headers: &[u8], data: Bytes) -> Result<FormPart, FormError> {
    let headers = std::str::from_utf8(headers).map_err(|_| FormError::Malformed)?;
    let mut disposition = None;
    let mut content_type = None;
    for line in headers.split("\r\n").filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or(FormError::Malformed)?;
        let value = value.trim();
        if name.trim().eq_ignore_ascii_case("content-disposition") {
            disposition = Some(value);
        } else if name.trim().eq_ignore_ascii_case("content-type") {
            content_type = Some(value.to_owned());
        }
    }
    let mut segments = segments(disposition.ok_or(FormError::Malformed)?).into_iter();
    if !segments
        .next()
        .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("form-data"))
    {
        return Err(FormError::Malformed);
    }
    let params: Vec<(String, String)> = segments.filter_map(|seg| param(&seg)).collect();
    let value = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
    };
    Ok(FormPart {
        name: value("name").ok_or(FormError::Malformed)?,
        filename: value("filename"),
        content_type,
        data,
    })
}

/// `value` split at the semicolons outside quoted strings (quotes and escapes kept).
fn segments(value: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let (mut quoted, mut escaped) = (false, false);
    for c in value.chars() {
        match c {
            ';' if !quoted => {
                out.push(String::new());
                continue;
            }
            '"' if !escaped => quoted = !quoted,
            _ => {}
        }
        escaped = quoted && c == '\\' && !escaped;
        if let Some(last) = out.last_mut() {
            last.push(c);
        }
    }
    out
}

/// `key=value` or `key="quoted \" value"` as (key, value).
fn param(segment: &str) -> Option<(String, String)> {
    let (key, value) = segment.split_once('=')?;
    let value = value.trim();
    let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' { chars.next()? } else { c });
            }
            out
        }
        None => value.to_owned(),
    };
    Some((key.trim().to_owned(), value))
}

/// Where `needle` first occurs in `haystack` at or after `from`.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=b0undary";

    fn parts(body: &'static [u8]) -> Result<Vec<FormPart>, FormError> {
        parse(Some(CT), &Bytes::from_static(body))
    }

    #[test]
    fn fields_and_files_come_out_whole() {
        let body: &[u8] = b"--b0undary\r\n\
            Content-Disposition: form-data; name=\"model\"\r\n\
            \r\n\
            whisper-1\r\n\
            --b0undary\r\n\
            Content-Disposition: form-data; name=\"file\"; filename=\"a;b \\\"c\\\".mp3\"\r\n\
            Content-Type: audio/mpeg\r\n\
            \r\n\
            ID3\x00\r\n--b0undar\xff\r\n\
            --b0undary--\r\n";
        let parts = parts(body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].name.as_str(), parts[0].text()),
            ("model", Some("whisper-1"))
        );
        assert_eq!(parts[0].filename, None);
        assert_eq!(parts[1].name, "file");
        assert_eq!(parts[1].filename.as_deref(), Some("a;b \"c\".mp3"));
        assert_eq!(parts[1].content_type.as_deref(), Some("audio/mpeg"));
        // A CRLF and a near-boundary inside the data are data.
        assert_eq!(&parts[1].data[..], b"ID3\x00\r\n--b0undar\xff");
    }

    #[test]
    fn preamble_padding_empty_values_and_epilogue_are_read_as_the_rfc_says() {
        let body: &[u8] = b"a preamble\r\n--b0undary  \r\n\
            content-disposition: FORM-DATA; NAME=prompt\r\n\
            \r\n\
            \r\n--b0undary\r\n\
            Content-Disposition: form-data; name=\"language\"\r\n\
            \r\n\
            en\r\n--b0undary--\r\nan epilogue";
        let parts = parts(body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].name.as_str(), parts[0].text()),
            ("prompt", Some(""))
        );
        assert_eq!(parts[1].text(), Some("en"));
    }

    #[test]
    fn the_boundary_is_read_from_the_content_type() {
        assert_eq!(
            boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b;c\"").unwrap(),
            "a b;c"
        );
        assert_eq!(boundary("application/json"), Err(FormError::NotMultipart));
        assert_eq!(boundary("multipart/form-data"), Err(FormError::NoBoundary));
        assert_eq!(
            boundary(&format!("multipart/form-data; boundary={}", "x".repeat(71))),
            Err(FormError::NoBoundary)
        );
        assert_eq!(parse(None, &Bytes::new()), Err(FormError::NotMultipart));
    }

    #[test]
    fn broken_framing_is_malformed() {
        for body in [
            &b""[..],
            b"--b0undary\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno close",
            b"--b0undary\r\nContent-Disposition: form-data; name=\"a\"\r\nno blank line\r\n--b0undary--",
            b"--b0undary\r\nContent-Type: text/plain\r\n\r\nno disposition\r\n--b0undary--",
            b"--b0undary\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--b0undary--",
            b"--b0undary\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--b0undary--",
            b"--b0undaryX\r\n",
        ] {
            let got = parse(Some(CT), &Bytes::copy_from_slice(body));
            assert_eq!(got, Err(FormError::Malformed), "{:?}", String::from_utf8_lossy(body));
        }
    }
}
