//! Speech, and transcriptions and translations with their multipart forms.

use super::{key, post, send, sse, Answer};
use crate::mock::MockUpstream;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn speech_is_audio_in_the_format_asked() {
    let mock = MockUpstream::start().await.unwrap();
    let k = key("sk_tts");
    for (format, content_type) in [
        (None, "audio/mpeg"),
        (Some("wav"), "audio/wav"),
        (Some("opus"), "audio/opus"),
        (Some("aac"), "audio/aac"),
        (Some("flac"), "audio/flac"),
        (Some("pcm"), "audio/pcm"),
    ] {
        let mut body = json!({"model": "tts-1", "input": "hi", "voice": "alloy"});
        if let Some(f) = format {
            body["response_format"] = json!(f);
        }
        let r = post(&mock, "/v1/audio/speech", &k, body).await;
        assert_eq!((r.status, r.content_type.as_str()), (200, content_type));
        assert!(!r.body.is_empty());
    }
    let bad = post(
        &mock,
        "/v1/audio/speech",
        &k,
        json!({"model": "tts-1", "input": "hi", "voice": "alloy", "response_format": "ogg"}),
    )
    .await;
    assert_eq!(
        (bad.status, bad.json()["error"]["code"].as_str()),
        (400, Some("invalid_value"))
    );
    let no_voice = post(
        &mock,
        "/v1/audio/speech",
        &k,
        json!({"model": "tts-1", "input": "hi"}),
    )
    .await;
    assert_eq!(
        no_voice.json()["error"]["message"],
        "Missing required parameter: 'voice'."
    );
}

/// A form as an SDK sends it: `fields`, then a file part.
fn form(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "6b1f0b6d7c3e4c1a9d2f";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    if let Some((filename, data)) = file {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: audio/mpeg\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(
    mock: &MockUpstream,
    path: &str,
    fields: &[(&str, &str)],
    file: Option<(&str, &[u8])>,
) -> Answer {
    let (content_type, body) = form(fields, file);
    send(
        mock,
        Method::POST,
        path,
        &key("sk_stt"),
        Some((&content_type, body)),
    )
    .await
}

#[tokio::test]
async fn transcriptions_read_the_form_and_answer_each_format() {
    let mock = MockUpstream::start().await.unwrap();
    let audio = b"ID3\x04\x00\r\n--not-the-boundary\r\n\xff\xfb";
    let path = "/v1/audio/transcriptions";
    let r = upload(
        &mock,
        path,
        &[("model", "gpt-4o-transcribe")],
        Some(("speech.mp3", audio)),
    )
    .await;
    let j = r.json();
    assert_eq!(j["text"], "Hello from the mock.");
    assert_eq!(j["usage"]["type"], "tokens");
    assert_eq!(j["usage"]["total_tokens"], 21);
    let seen = mock.requests().pop().unwrap();
    assert_eq!(seen.model.as_deref(), Some("gpt-4o-transcribe"));
    let file = seen.form_field("file").unwrap();
    assert_eq!(file.filename.as_deref(), Some("speech.mp3"));
    assert_eq!(file.data.len(), audio.len());
    assert_eq!(seen.form_text("model"), Some("gpt-4o-transcribe"));

    let whisper = upload(
        &mock,
        path,
        &[("model", "whisper-1")],
        Some(("a.mp3", audio)),
    )
    .await;
    assert_eq!(
        whisper.json()["usage"],
        json!({"type": "duration", "seconds": 3})
    );
    let text = upload(
        &mock,
        path,
        &[("model", "whisper-1"), ("response_format", "text")],
        Some(("a.mp3", audio)),
    )
    .await;
    assert_eq!(
        (text.content_type.as_str(), text.text().as_str()),
        ("text/plain; charset=utf-8", "Hello from the mock.\n")
    );
    let verbose = upload(
        &mock,
        path,
        &[("model", "whisper-1"), ("response_format", "verbose_json")],
        Some(("a.mp3", audio)),
    )
    .await
    .json();
    assert_eq!(
        (verbose["task"].as_str(), verbose["language"].as_str()),
        (Some("transcribe"), Some("english"))
    );
    assert_eq!(verbose["duration"], 3.0);
    assert_eq!(verbose["segments"][0]["end"], 3.0);
    let translated = upload(
        &mock,
        "/openai/deployments/w/audio/translations",
        &[("model", "whisper-1")],
        Some(("a.mp3", audio)),
    )
    .await
    .json();
    assert_eq!(translated, json!({"text": "Hello from the mock."}));

    let streamed = upload(
        &mock,
        path,
        &[("model", "gpt-4o-mini-transcribe"), ("stream", "true")],
        Some(("a.mp3", audio)),
    )
    .await;
    let events = sse(&streamed.text());
    assert_eq!(events.len(), 4);
    let done: Value = serde_json::from_str(&events[3].1).unwrap();
    assert_eq!(
        (done["type"].as_str(), done["text"].as_str()),
        (Some("transcript.text.done"), Some("tok0 tok1 tok2 "))
    );
    assert_eq!(done["usage"]["type"], "tokens");
}

#[tokio::test]
async fn a_body_that_is_not_a_whole_form_is_refused_as_openai_does() {
    let mock = MockUpstream::start().await.unwrap();
    let path = "/v1/audio/transcriptions";
    let json = post(&mock, path, &key("sk_stt"), json!({"model": "whisper-1"})).await;
    assert_eq!(json.status, 400);
    assert_eq!(
        json.json()["error"]["message"],
        "Invalid Content-Type header (application/json), expected multipart/form-data. (HINT: If you're using curl, you can pass -H 'Content-Type: multipart/form-data')"
    );
    let no_file = upload(&mock, path, &[("model", "whisper-1")], None).await;
    assert_eq!(no_file.status, 400);
    assert!(no_file.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("body -> file"));
    let no_model = upload(&mock, path, &[], Some(("a.mp3", b"x"))).await;
    assert_eq!(
        no_model.json()["error"]["message"],
        "you must provide a model parameter"
    );
    let broken = send(
        &mock,
        Method::POST,
        path,
        &key("sk_stt"),
        Some((
            "multipart/form-data; boundary=zz",
            b"--zz\r\nno headers end".to_vec(),
        )),
    )
    .await;
    assert_eq!(
        (broken.status, broken.json()["error"]["type"].as_str()),
        (400, Some("invalid_request_error"))
    );
    assert!(mock.requests().last().unwrap().form.is_empty());
}
