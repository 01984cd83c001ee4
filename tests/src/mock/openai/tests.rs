//! The OpenAI endpoints over HTTP, as a client sees them (no SDK: the wire itself), with the
//! helpers the test modules share.

mod audio;
mod endpoints;
mod responses;

use crate::mock::{MockKey, MockUpstream};
use reqwest::Method;
use serde_json::Value;

pub(super) struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: bytes::Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub(super) async fn send(
    mock: &MockUpstream,
    method: Method,
    path: &str,
    key: &str,
    body: Option<(&str, Vec<u8>)>,
) -> Answer {
    let mut req = reqwest::Client::new()
        .request(method, mock.url(path))
        .bearer_auth(key);
    if let Some((content_type, body)) = body {
        req = req.header("content-type", content_type).body(body);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    Answer {
        status,
        content_type,
        body: r.bytes().await.unwrap(),
    }
}

pub(super) async fn post(mock: &MockUpstream, path: &str, key: &str, body: Value) -> Answer {
    let body = Some(("application/json", body.to_string().into_bytes()));
    send(mock, Method::POST, path, key, body).await
}

pub(super) async fn get(mock: &MockUpstream, path: &str, key: &str) -> Answer {
    send(mock, Method::GET, path, key, None).await
}

/// The `data:` payloads of an SSE body, with the `event:` name of each, if any.
pub(super) fn sse(body: &str) -> Vec<(Option<String>, String)> {
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let event = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .map(str::to_owned);
            let data = e
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap()
                .to_owned();
            (event, data)
        })
        .collect()
}

pub(super) fn key(label: &str) -> String {
    MockKey::new(label).to_string()
}
