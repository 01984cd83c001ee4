//! Legacy completions, moderations, images and rerank.

use super::{get, key, post, sse};
use crate::mock::MockUpstream;
use serde_json::{json, Value};

#[tokio::test]
async fn legacy_completions_answer_and_stream_like_chat() {
    let mock = MockUpstream::start().await.unwrap();
    let k = key("sk_c");
    let r = post(
        &mock,
        "/v1/completions",
        &k,
        json!({"model": "gpt-3.5-turbo-instruct", "prompt": ["a", "b"]}),
    )
    .await;
    let j = r.json();
    assert_eq!(
        (r.status, j["object"].as_str()),
        (200, Some("text_completion"))
    );
    assert_eq!(j["choices"].as_array().unwrap().len(), 2);
    assert_eq!(j["choices"][1]["index"], 1);
    assert_eq!(j["usage"]["total_tokens"], 10 + 14);
    let r = post(
        &mock,
        "/openai/deployments/d/completions?api-version=2024-10-21",
        &k,
        json!({"model": "m", "prompt": "a", "stream": true, "stream_options": {"include_usage": true}}),
    )
    .await;
    assert_eq!(r.content_type, "text/event-stream");
    let events = sse(&r.text());
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let usage: Value = serde_json::from_str(&events[events.len() - 2].1).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 3);
    assert_eq!(usage["choices"], json!([]));
    let stop: Value = serde_json::from_str(&events[3].1).unwrap();
    assert_eq!(stop["choices"][0]["finish_reason"], "stop");
    // Chat is still chat, and the model list still answers any other path.
    let chat = post(&mock, "/v1/chat/completions", &k, json!({"model": "m"})).await;
    assert_eq!(chat.json()["object"], "chat.completion");
    assert_eq!(get(&mock, "/v1/models", &k).await.json()["object"], "list");
    let no_model = post(&mock, "/v1/completions", &k, json!({"prompt": "a"})).await;
    assert_eq!(no_model.status, 400);
    assert_eq!(
        no_model.json()["error"]["message"],
        "you must provide a model parameter"
    );
}

#[tokio::test]
async fn moderations_images_and_rerank_answer_in_their_shapes() {
    let mock = MockUpstream::start().await.unwrap();
    let k = key("sk_m");
    let m = post(
        &mock,
        "/v1/moderations",
        &k,
        json!({"model": "omni-moderation-latest", "input": ["a", "b", "c"]}),
    )
    .await
    .json();
    assert!(m["id"].as_str().unwrap().starts_with("modr-"));
    assert_eq!(m["results"].as_array().unwrap().len(), 3);
    assert_eq!(m["results"][0]["flagged"], false);
    assert_eq!(m["results"][0]["categories"].as_object().unwrap().len(), 13);
    assert_eq!(
        m["results"][0]["category_applied_input_types"]["violence"],
        json!(["text", "image"])
    );
    assert!(m["results"][0]["category_scores"]["self-harm"].is_f64());

    let img = post(
        &mock,
        "/v1/images/generations",
        &k,
        json!({"model": "gpt-image-1", "prompt": "an otter", "n": 2}),
    )
    .await
    .json();
    assert_eq!(img["data"].as_array().unwrap().len(), 2);
    assert_eq!(img["data"][0]["b64_json"], super::super::images::PNG_B64);
    assert_eq!(img["usage"]["output_tokens"], 2 * 1056);
    assert_eq!(img["size"], "1024x1024");
    let dalle = post(
        &mock,
        "/v1/images/generations",
        &k,
        json!({"model": "dall-e-3", "prompt": "an otter"}),
    )
    .await
    .json();
    assert!(dalle["data"][0]["url"]
        .as_str()
        .unwrap()
        .starts_with("https://"));
    assert_eq!(dalle["data"][0]["revised_prompt"], "an otter");
    assert!(dalle.get("usage").is_none());
    let b64 = post(
        &mock,
        "/v1/images/generations",
        &k,
        json!({"model": "dall-e-2", "prompt": "x", "response_format": "b64_json"}),
    )
    .await
    .json();
    assert!(b64["data"][0]["b64_json"].is_string());
    let no_prompt = post(&mock, "/v1/images/generations", &k, json!({})).await;
    assert_eq!(no_prompt.status, 400);
    assert_eq!(no_prompt.json()["error"]["param"], "prompt");

    let rr = post(
        &mock,
        "/v1/rerank",
        &k,
        json!({"model": "jina-reranker-v2", "query": "red fox", "top_n": 2,
               "documents": ["a blue whale", {"text": "the red fox"}, "a red car"]}),
    )
    .await
    .json();
    let results = rr["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(
        (results[0]["index"].as_u64(), results[1]["index"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(results[0]["document"]["text"], "the red fox");
    assert!(results[0]["relevance_score"].as_f64() > results[1]["relevance_score"].as_f64());
    assert_eq!(rr["model"], "jina-reranker-v2");
    assert!(rr["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        mock.requests().last().unwrap().model.as_deref(),
        Some("jina-reranker-v2")
    );
}
