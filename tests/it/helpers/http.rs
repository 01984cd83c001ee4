//! One request builder and one answer type for every call the tests make: management,
//! gateway and raw (odd bodies, odd headers, or a plain TCP connection for bodies the server
//! may refuse before reading them).

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use rotor_tests::mock::BODY_CANARY;
use serde_json::Value;
use std::net::SocketAddr;
use uuid::Uuid;

/// `application/json`.
pub const JSON: &str = "application/json";

/// An answer: status, headers, the body as text and as JSON (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Resp {
    /// Reads a whole answer, whatever its status.
    pub async fn read(resp: reqwest::Response) -> Resp {
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("read the answer");
        Resp::of(status, headers, text)
    }

    fn of(status: StatusCode, headers: HeaderMap, text: String) -> Resp {
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            body,
        }
    }

    /// The error code of an error body (`""` when there is none): OpenAI's `error.code`, or
    /// the code Rotor puts in front of the message of its Anthropic- and Gemini-shaped errors
    /// (`"model_not_found: …"`).
    pub fn code(&self) -> &str {
        let error = &self.body["error"];
        if let Some(code) = error["code"].as_str() {
            return code;
        }
        let family_shaped = self.body["type"] == "error" || error["status"].is_string();
        let prefix = error["message"]
            .as_str()
            .and_then(|m| m.split_once(": "))
            .map(|(code, _)| code)
            .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        match prefix {
            Some(code) if family_shaped => code,
            _ => "",
        }
    }

    /// A header's value, when present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `x-rotor-attempts` of a gateway answer.
    #[track_caller]
    pub fn attempts(&self) -> u32 {
        self.header("x-rotor-attempts")
            .unwrap_or_else(|| panic!("no x-rotor-attempts: {:?}", self.headers))
            .parse()
            .unwrap()
    }

    /// `x-rotor-credential-id` of a gateway answer.
    pub fn credential(&self) -> Option<Uuid> {
        self.header("x-rotor-credential-id")
            .map(|v| v.parse().unwrap())
    }

    /// Management answers are never 5xx, except 503 (the database is down, or the server is
    /// busy): gateway errors such as 502/504 are read with [`Req::send`] alone.
    #[track_caller]
    pub fn no_server_error(self) -> Self {
        assert!(
            self.status.as_u16() < 500 || self.status == StatusCode::SERVICE_UNAVAILABLE,
            "server error {}: {}",
            self.status,
            self.text
        );
        self
    }

    #[track_caller]
    pub fn assert(&self, status: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected answer: {}",
            self.text
        );
        self
    }

    /// This status and error code (`""`: none); `case` says what was sent.
    #[track_caller]
    pub fn assert_code(&self, status: u16, code: &str, case: impl std::fmt::Display) -> &Self {
        assert_eq!(
            (self.status.as_u16(), self.code()),
            (status, code),
            "{case}: {}",
            self.text
        );
        self
    }

    /// A JSON error with this status and code, and a message.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        self.assert(status);
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with(JSON)),
            "error is not JSON ({:?}): {}",
            self.header("content-type"),
            self.text
        );
        assert_eq!(self.code(), code, "unexpected error body: {}", self.text);
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "error without message: {}",
            self.text
        );
        self
    }

    /// A 422 error `code` whose `details.fields` names `field`; `case` says what was sent.
    #[track_caller]
    pub fn assert_field(&self, code: &str, field: &str, case: impl std::fmt::Display) -> &Self {
        assert_eq!(
            (self.status.as_u16(), self.code()),
            (422, code),
            "{case} → {}",
            self.text
        );
        self.assert_error(422, code);
        assert!(
            self.body["error"]["details"]["fields"][field].is_string(),
            "{case}: the error should name `{field}`: {}",
            self.text
        );
        self
    }

    /// A gateway error in OpenAI's shape `{"error": {"message", "type", "param", "code"}}`,
    /// echoing nothing of the provider's body.
    #[track_caller]
    pub fn assert_openai_error(&self, status: u16, code: &str) -> &Self {
        self.assert(status);
        let error = self.body["error"]
            .as_object()
            .unwrap_or_else(|| panic!("not an OpenAI error: {}", self.text));
        let mut fields: Vec<&str> = error.keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            ["code", "message", "param", "type"],
            "{}",
            self.text
        );
        assert_eq!(error["code"], code, "{}", self.text);
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(error["type"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(
            !self.text.contains(BODY_CANARY),
            "a gateway error echoes the provider's body: {}",
            self.text
        );
        self
    }
}

enum Payload {
    None,
    Json(Value),
    /// Bytes with this `Content-Type` (none when `None`).
    Bytes(Option<String>, Vec<u8>),
}

/// One request, built synchronously (so tables can hold them), sent with [`Req::send`].
pub struct Req {
    client: reqwest::Client,
    addr: SocketAddr,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    payload: Payload,
    /// Sent over a plain TCP connection: `Some(chunked)`.
    tcp: Option<bool>,
}

impl Req {
    /// `method path` to the server at `addr`.
    pub fn new(client: &reqwest::Client, addr: SocketAddr, method: Method, path: &str) -> Req {
        Req {
            client: client.clone(),
            addr,
            method,
            path: path.to_owned(),
            headers: Vec::new(),
            payload: Payload::None,
            tcp: None,
        }
    }

    /// What the request is, for messages: `POST /path`.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// `Authorization: Bearer token`.
    pub fn bearer(self, token: &str) -> Self {
        self.authorization(&format!("Bearer {token}"))
    }

    /// `Authorization: value`, as is.
    pub fn authorization(self, value: &str) -> Self {
        self.header("authorization", value)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A JSON body.
    pub fn json(mut self, body: Value) -> Self {
        self.payload = Payload::Json(body);
        self
    }

    /// `bytes` as the body, with this `Content-Type` (none when `None`).
    pub fn bytes(mut self, content_type: Option<&str>, bytes: impl Into<Vec<u8>>) -> Self {
        self.payload = Payload::Bytes(content_type.map(str::to_owned), bytes.into());
        self
    }

    /// Sends over a plain TCP connection with `Connection: close` and reads the answer even
    /// when the server answers and closes before the whole body was sent, as it may for an
    /// oversized one (an HTTP client library then often reports "broken pipe" instead).
    /// `chunked` sends the body with `Transfer-Encoding: chunked` instead of a
    /// `Content-Length`.
    pub fn over_tcp(mut self, chunked: bool) -> Self {
        self.tcp = Some(chunked);
        self
    }

    /// Sends the request and reads the answer, whatever its status.
    pub async fn send(self) -> Resp {
        if let Some(chunked) = self.tcp {
            return self.send_over_tcp(chunked).await;
        }
        let mut req = self
            .client
            .request(self.method, format!("http://{}{}", self.addr, self.path));
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        req = match self.payload {
            Payload::None => req,
            Payload::Json(v) => req.json(&v),
            Payload::Bytes(content_type, bytes) => match content_type {
                Some(ct) => req.header(CONTENT_TYPE, ct).body(bytes),
                None => req.body(bytes),
            },
        };
        Resp::read(req.send().await.expect("request")).await
    }

    async fn send_over_tcp(self, chunked: bool) -> Resp {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let what = self.describe();
        let (content_type, body) = match self.payload {
            Payload::None => (None, Vec::new()),
            Payload::Json(v) => (Some(JSON.to_owned()), serde_json::to_vec(&v).unwrap()),
            Payload::Bytes(ct, bytes) => (ct, bytes),
        };
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\n",
            self.method, self.path, self.addr
        );
        let mut headers = self.headers;
        headers.extend(content_type.map(|ct| ("content-type".to_owned(), ct)));
        for (k, v) in &headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if chunked {
            head.push_str("Transfer-Encoding: chunked\r\n");
        } else {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("Connection: close\r\n\r\n");
        let stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let (mut reader, mut writer) = stream.into_split();
        // The task hands the write half back rather than dropping it: closing our side early
        // would make the server drop the connection before answering. Write errors are
        // expected once the server has answered and closed.
        let writing = tokio::spawn(async move {
            if writer.write_all(head.as_bytes()).await.is_err() {
                return writer;
            }
            if chunked {
                for chunk in body.chunks(64 * 1024) {
                    let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
                    framed.extend_from_slice(chunk);
                    framed.extend_from_slice(b"\r\n");
                    if writer.write_all(&framed).await.is_err() {
                        return writer;
                    }
                }
                let _ = writer.write_all(b"0\r\n\r\n").await;
            } else {
                let _ = writer.write_all(&body).await;
            }
            writer
        });
        // Read until the head and the `Content-Length` bytes of the answer are in.
        let mut answer = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        let resp = loop {
            if let Some(resp) = parse_answer(&answer) {
                break resp;
            }
            let n = reader
                .read(&mut buf)
                .await
                .unwrap_or_else(|e| panic!("{what}: connection failed before a whole answer: {e}"));
            assert!(
                n > 0,
                "{what}: connection closed before a whole answer: {}",
                String::from_utf8_lossy(&answer)
            );
            answer.extend_from_slice(&buf[..n]);
        };
        writing.abort();
        resp
    }
}

/// Sends every request at once, each from a task of its own; the answers in the same order.
pub async fn in_parallel(requests: impl IntoIterator<Item = Req>) -> Vec<Resp> {
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|r| tokio::spawn(r.send()))
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("request task"));
    }
    answers
}

/// The answer in `raw`, once its head and `Content-Length` bytes of body are all there.
fn parse_answer(raw: &[u8]) -> Option<Resp> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.trim().as_bytes()),
                HeaderValue::from_str(v.trim()),
            ) {
                headers.append(k, v);
            }
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let body = raw.get(end + 4..end + 4 + length)?;
    Some(Resp::of(
        StatusCode::from_u16(status).expect("status"),
        headers,
        String::from_utf8_lossy(body).into_owned(),
    ))
}

/// A JSON object `{"name": "aaa…"}` of exactly `size` bytes.
pub fn padded_json(size: usize) -> Vec<u8> {
    let mut body = br#"{"name": ""#.to_vec();
    let tail = br#""}"#;
    body.resize(size - tail.len(), b'a');
    body.extend_from_slice(tail);
    assert_eq!(body.len(), size);
    body
}
