//! The mock provider speaks the Anthropic and Gemini APIs faithfully: the official Python SDKs
//! (`anthropic`, `google-genai`, pinned in scripts/sdk-requirements.txt, installed by
//! scripts/test into a venv under target/) are pointed straight at it, without Rotor, and must
//! parse its plain and streamed answers and usage and raise their own error classes for its
//! scripted errors (tests/it/python/*.py). The wire details no SDK shows (headers, framing,
//! refusals) are checked here with plain HTTP, and so is what the mock records.

use crate::helpers::run_sdk;
use rotor_tests::mock::{AnthropicLimit, Family, MockKey, MockUpstream, Recorded, BODY_CANARY};
use serde_json::{json, Value};

fn keys(pairs: &[(&str, &MockKey)]) -> Value {
    pairs
        .iter()
        .map(|(name, key)| ((*name).to_owned(), Value::from(key.to_string())))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

async fn post(
    mock: &MockUpstream,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> reqwest::Response {
    let mut r = reqwest::Client::new().post(mock.url(path)).json(&body);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap()
}

/// The `(event, data)` pairs of an SSE body.
fn sse_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let field = |name: &str| {
                e.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .unwrap_or_default()
                    .to_owned()
            };
            let data = serde_json::from_str(&field("data: ")).unwrap();
            (field("event: "), data)
        })
        .collect()
}

// --- Anthropic ----------------------------------------------------------------------------

#[tokio::test]
async fn anthropic_sdk_parses_answers_counts_and_models() {
    // The key and version as the SDK sends them (a Bearer, `2026-10-21`), and as it sent them
    // before 2.x (`x-api-key`, `2023-06-01`), as Rotor sends them upstream.
    for (auth, header, value, version) in [
        (
            "bearer",
            "authorization",
            "Bearer sk-ant-api03-ok",
            "2026-10-21",
        ),
        ("x-api-key", "x-api-key", "sk-ant-api03-ok", "2023-06-01"),
    ] {
        let mock = MockUpstream::start().await.unwrap();
        let ok = MockKey::new("sk-ant-api03-ok");
        run_sdk(
            "anthropic_sdk.py",
            "plain",
            json!({"base": mock.url(""), "auth": auth, "keys": keys(&[("ok", &ok)])}),
        )
        .await;
        let seen = mock.requests();
        assert!(
            seen.iter().all(|r| r.header(header) == Some(value)),
            "{auth}: {seen:?}"
        );
        assert!(seen
            .iter()
            .all(|r| r.header("anthropic-version") == Some(version)));
        assert_anthropic_plain_calls(&seen);
    }
}

fn assert_anthropic_plain_calls(seen: &[Recorded]) {
    assert!(
        seen.iter().all(|r| r.family == Family::Anthropic),
        "{seen:?}"
    );
    assert!(seen
        .iter()
        .all(|r| r.key.as_deref() == Some("sk-ant-api03-ok")));
    let calls: Vec<(&str, &str, Option<&str>)> = seen
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str(), r.model.as_deref()))
        .collect();
    assert_eq!(
        calls,
        [
            ("POST", "/v1/messages", Some("claude-sonnet-4-5")),
            ("POST", "/v1/messages", Some("claude-haiku-4-5")),
            (
                "POST",
                "/v1/messages/count_tokens",
                Some("claude-sonnet-4-5")
            ),
            ("GET", "/v1/models", None),
            ("GET", "/v1/models/claude-opus-4-1", None),
            ("POST", "/v1/messages", Some("claude-sonnet-4-5")),
        ]
    );
    let beta = seen.last().unwrap();
    assert_eq!(beta.header("anthropic-beta"), Some("context-1m-2025-08-07"));
    assert!(seen[0].header("anthropic-beta").is_none());
}

#[tokio::test]
async fn anthropic_sdk_parses_the_stream() {
    let mock = MockUpstream::start().await.unwrap();
    let ok = MockKey::new("sk-ant-api03-stream");
    run_sdk(
        "anthropic_sdk.py",
        "stream",
        json!({"base": mock.url(""), "keys": keys(&[("ok", &ok)])}),
    )
    .await;
    let seen = mock.requests();
    assert_eq!(seen.len(), 2);
    let body: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(body["stream"], true);
}

#[tokio::test]
async fn anthropic_sdk_raises_its_error_classes_for_scripted_errors() {
    let mock = MockUpstream::start().await.unwrap();
    let k = |label: &str| MockKey::new(label);
    let config = json!({"base": mock.url(""), "keys": keys(&[
        ("rate_limited", &k("sk-ant-rl").status(429).retry_after(60).anthropic_limit(AnthropicLimit::InputTokens, 0, 60)),
        ("overloaded", &k("sk-ant-busy").status(529)),
        ("unauthorized", &k("sk-ant-bad").status(401)),
        ("no_credit", &k("sk-ant-poor").credit_balance_too_low()),
        // message_start, content_block_start, ping, one delta; then the error / the break.
        ("stream_error", &k("sk-ant-fails").error_after(4)),
        ("stream_broken", &k("sk-ant-drops").drop_after(4)),
    ])});
    run_sdk("anthropic_sdk.py", "errors", config).await;
    assert_eq!(mock.requests().len(), 6, "no retries");
}

#[tokio::test]
async fn anthropic_refuses_what_the_api_refuses_and_sends_its_headers() {
    let mock = MockUpstream::start().await.unwrap();
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]});
    let version = ("anthropic-version", "2023-06-01");
    for (headers, status, kind, message) in [
        (
            vec![version],
            401,
            "authentication_error",
            "x-api-key header is required".to_owned(),
        ),
        (
            vec![("x-api-key", "sk-ant-x")],
            400,
            "invalid_request_error",
            "anthropic-version: header is required".to_owned(),
        ),
        (
            vec![
                ("x-api-key", "sk-ant-x"),
                ("anthropic-version", "2024-01-01"),
            ],
            400,
            "invalid_request_error",
            r#"anthropic-version: "2024-01-01" is not a valid version"#.to_owned(),
        ),
    ] {
        let r = post(&mock, "/v1/messages", &headers, body.clone()).await;
        assert_eq!(r.status().as_u16(), status, "{headers:?}");
        let request_id = r.headers()["request-id"].to_str().unwrap().to_owned();
        let e: Value = r.json().await.unwrap();
        assert_eq!(
            (
                e["type"].as_str(),
                e["error"]["type"].as_str(),
                e["error"]["message"].as_str()
            ),
            (Some("error"), Some(kind), Some(message.as_str()))
        );
        assert_eq!(e["request_id"], request_id.as_str());
        assert!(request_id.starts_with("req_011C") && request_id.contains(BODY_CANARY));
    }
    let no_max = json!({"model": "claude-sonnet-4-5", "messages": []});
    let r = post(
        &mock,
        "/v1/messages",
        &[("x-api-key", "sk-ant-x"), version],
        no_max,
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["message"],
        "max_tokens: Field required"
    );

    // A 429 whose token limit is spent: its reset (RFC 3339) is ahead; a limit with requests
    // left resets later, and says so.
    let key = MockKey::new("sk-ant-lim")
        .status(429)
        .anthropic_limit(AnthropicLimit::Tokens, 0, 40)
        .anthropic_limit(AnthropicLimit::Requests, 5, 3600)
        .to_string();
    let r = post(
        &mock,
        "/v1/messages",
        &[("x-api-key", &key), version],
        body.clone(),
    )
    .await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_none());
    let h = |name: &str| r.headers()[name].to_str().unwrap().to_owned();
    let ahead = |name: &str| {
        let at = chrono::DateTime::parse_from_rfc3339(&h(name)).unwrap();
        (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds()
    };
    assert_eq!(h("anthropic-ratelimit-tokens-remaining"), "0");
    assert!((38..=40).contains(&ahead("anthropic-ratelimit-tokens-reset")));
    assert_eq!(h("anthropic-ratelimit-requests-remaining"), "5");
    assert!((3598..=3600).contains(&ahead("anthropic-ratelimit-requests-reset")));
    assert_eq!(h("anthropic-ratelimit-output-tokens-limit"), "400000");
    assert!(h("anthropic-ratelimit-input-tokens-reset").ends_with('Z'));
    let text = r.text().await.unwrap();
    assert!(text.contains(BODY_CANARY) && text.contains("rate_limit_error"));

    // The stream's exact event sequence, `ping` included, each event's data typed by its name.
    let mut stream = body.clone();
    stream["stream"] = json!(true);
    let key = MockKey::new("sk-ant-two").chunks(2).to_string();
    let r = post(
        &mock,
        "/v1/messages",
        &[("x-api-key", &key), version],
        stream.clone(),
    )
    .await;
    assert_eq!(
        r.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    assert!(r.headers()["request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_011C"));
    let events = sse_events(&r.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert!(events.iter().all(|(e, d)| d["type"] == e.as_str()));
    let start = &events[0].1["message"];
    assert_eq!(start["usage"]["input_tokens"], 5);
    assert_eq!(start["usage"]["cache_read_input_tokens"], 13);
    assert_eq!(start["model"], "claude-sonnet-4-5");
    assert_eq!(
        events[4].1["delta"],
        json!({"type": "text_delta", "text": "tok1 "})
    );
    assert_eq!(events[6].1["usage"]["output_tokens"], 2);
    assert_eq!(events[6].1["delta"]["stop_reason"], "end_turn");

    let key = MockKey::new("sk-ant-err").error_after(3).to_string();
    let r = post(
        &mock,
        "/v1/messages",
        &[("x-api-key", &key), version],
        stream,
    )
    .await;
    let events = sse_events(&r.text().await.unwrap());
    let (last, data) = events.last().unwrap();
    assert_eq!((events.len(), last.as_str()), (4, "error"));
    assert_eq!(data["error"]["type"], "overloaded_error");
}

// --- Gemini -------------------------------------------------------------------------------

#[tokio::test]
async fn gemini_sdk_parses_answers_on_v1beta_and_v1() {
    for version in ["v1beta", "v1"] {
        let mock = MockUpstream::start().await.unwrap();
        let ok = MockKey::new("AIzaSy-ok");
        run_sdk(
            "genai_sdk.py",
            "plain",
            json!({"base": mock.url(""), "version": version, "keys": keys(&[("ok", &ok)])}),
        )
        .await;
        let seen = mock.requests();
        assert!(seen.iter().all(|r| r.family == Family::Gemini), "{seen:?}");
        assert!(seen
            .iter()
            .all(|r| r.header("x-goog-api-key") == Some("AIzaSy-ok")));
        assert!(seen.iter().all(|r| r.key.as_deref() == Some("AIzaSy-ok")));
        let calls: Vec<(&str, &str, Option<&str>)> = seen
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str(), r.model.as_deref()))
            .collect();
        let p = |rest: &str| format!("/{version}/models{rest}");
        let (generate, count, embed, list, get) = (
            p("/gemini-2.0-flash:generateContent"),
            p("/gemini-2.0-flash:countTokens"),
            p("/text-embedding-004:batchEmbedContents"),
            p(""),
            p("/gemini-2.0-flash"),
        );
        assert_eq!(
            calls,
            [
                ("POST", generate.as_str(), Some("gemini-2.0-flash")),
                ("POST", count.as_str(), Some("gemini-2.0-flash")),
                ("POST", embed.as_str(), Some("text-embedding-004")),
                ("GET", list.as_str(), None),
                ("GET", get.as_str(), Some("gemini-2.0-flash")),
            ],
            "{version}"
        );
        assert_eq!(seen[2].inner_models, ["models/text-embedding-004"; 2]);
    }
}

#[tokio::test]
async fn gemini_sdk_parses_the_stream() {
    let mock = MockUpstream::start().await.unwrap();
    let ok = MockKey::new("AIzaSy-stream");
    run_sdk(
        "genai_sdk.py",
        "stream",
        json!({"base": mock.url(""), "version": "v1beta", "keys": keys(&[("ok", &ok)])}),
    )
    .await;
    let seen = mock.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].path,
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
    );
    assert_eq!(seen[0].query.as_deref(), Some("alt=sse"));
}

#[tokio::test]
async fn gemini_sdk_raises_its_errors_for_scripted_errors() {
    let mock = MockUpstream::start().await.unwrap();
    let k = |label: &str| MockKey::new(label);
    let config = json!({"base": mock.url(""), "version": "v1beta", "keys": keys(&[
        ("rate_limited", &k("AIzaSy-rl").status(429).gemini_retry_delay(37)),
        ("key_invalid", &k("AIzaSy-bad").api_key_invalid()),
        ("suspended", &k("AIzaSy-gone").status(403)),
        ("unavailable", &k("AIzaSy-busy").status(503)),
        ("stream_error", &k("AIzaSy-fails").error_after(2)),
        ("stream_broken", &k("AIzaSy-drops").drop_after(1)),
    ])});
    run_sdk("genai_sdk.py", "errors", config).await;
    assert_eq!(mock.requests().len(), 6, "no retries");
}

#[tokio::test]
async fn gemini_answers_as_google_does_on_the_wire() {
    let mock = MockUpstream::start().await.unwrap();
    let contents = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let generate = "/v1beta/models/gemini-2.0-flash:generateContent";

    // The key in `?key=`, escaped by its client; the answer pretty-printed.
    let key = MockKey::new("AIzaSy-q").to_string();
    let r = post(
        &mock,
        &format!("{generate}?key={}", key.replace('-', "%2D")),
        &[],
        contents.clone(),
    )
    .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.starts_with("{\n  \"candidates\": [\n"), "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["usageMetadata"]["totalTokenCount"], 12);
    assert_eq!(answer["modelVersion"], "gemini-2.0-flash");
    let last = mock.requests().pop().unwrap();
    assert_eq!(
        (last.key.as_deref(), last.family),
        (Some(key.as_str()), Family::Gemini)
    );

    // No key: refused as Google refuses unregistered callers.
    let r = post(&mock, generate, &[], contents.clone()).await;
    assert_eq!(r.status(), 403);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["status"], "PERMISSION_DENIED");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Method doesn't allow unregistered callers"));

    let goog = [("x-goog-api-key", "AIzaSy-h")];
    let r = post(
        &mock,
        "/v1/models/text-embedding-004:embedContent",
        &goog,
        json!({"content": {"parts": [{"text": "hi"}]}}),
    )
    .await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"embedding": {"values": [0.1, 0.2, 0.3]}})
    );
    assert_eq!(
        mock.requests().pop().unwrap().model.as_deref(),
        Some("text-embedding-004")
    );

    // batchEmbedContents: every inner request names the path's model, or 400.
    let batch = json!({"requests": [
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}},
        {"model": "models/other", "content": {"parts": [{"text": "b"}]}},
    ]});
    let r = post(
        &mock,
        "/v1beta/models/text-embedding-004:batchEmbedContents",
        &goog,
        batch,
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["status"],
        "INVALID_ARGUMENT"
    );
    assert_eq!(
        mock.requests().pop().unwrap().inner_models,
        ["models/text-embedding-004", "models/other"]
    );

    // SSE: one-line chunks ended by CRLF CRLF; the prompt count in each, the rest at the end.
    let stream = "/v1beta/models/gemini-2.0-flash:streamGenerateContent";
    let r = post(&mock, &format!("{stream}?alt=sse"), &goog, contents.clone()).await;
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let body = r.text().await.unwrap();
    let chunks: Vec<Value> = body
        .split_terminator("\r\n\r\n")
        .map(|c| serde_json::from_str(c.strip_prefix("data: ").unwrap()).unwrap())
        .collect();
    assert_eq!(chunks.len(), 3, "{body}");
    assert!(body
        .starts_with("data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"tok0 \"}]"));
    assert_eq!(
        chunks[0]["usageMetadata"],
        json!({"promptTokenCount": 5, "totalTokenCount": 5, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 5}]})
    );
    assert_eq!(chunks[2]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(chunks[2]["usageMetadata"]["candidatesTokenCount"], 3);

    // Without alt=sse: a JSON array.
    let r = post(&mock, stream, &goog, contents.clone()).await;
    let array: Value = r.json().await.unwrap();
    assert_eq!(array.as_array().unwrap().len(), 3);

    // A 429 with a fractional retry delay, in Google's indented shape, with the canary.
    let key = MockKey::new("AIzaSy-rl")
        .status(429)
        .gemini_retry_delay_ms(1500)
        .to_string();
    let r = post(
        &mock,
        generate,
        &[("x-goog-api-key", &key)],
        contents.clone(),
    )
    .await;
    assert_eq!(r.status(), 429);
    let text = r.text().await.unwrap();
    assert!(
        text.starts_with("{\n  \"error\": {\n    \"code\": 429,\n"),
        "{text}"
    );
    assert!(text.contains(BODY_CANARY));
    let e: Value = serde_json::from_str(&text).unwrap();
    let details = e["error"]["details"].as_array().unwrap();
    assert!(details.contains(
        &json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.500s"})
    ));

    // Google names the suspended key in its message; Rotor must not pass that on.
    let key = MockKey::new("AIzaSy-gone").status(403).to_string();
    let r = post(&mock, generate, &[("x-goog-api-key", &key)], contents).await;
    let e: Value = r.json().await.unwrap();
    assert_eq!(
        e["error"]["message"],
        format!("Permission denied: Consumer 'api_key:{key}' has been suspended.")
    );
}
