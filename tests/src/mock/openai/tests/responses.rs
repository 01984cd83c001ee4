//! The Responses API: its store per key, its stream, background responses.

use super::{get, key, post, send, sse};
use crate::mock::{MockKey, MockUpstream};
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn responses_are_kept_per_key_retrieved_continued_and_deleted() {
    let mock = MockUpstream::start().await.unwrap();
    let (a, b) = (key("sk_a"), key("sk_b"));
    let created = post(
        &mock,
        "/v1/responses",
        &a,
        json!({"model": "gpt-4.1", "input": "hello", "metadata": {"k": "v"}}),
    )
    .await
    .json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("resp_") && id[5..].chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(created["status"], "completed");
    assert_eq!(
        created["output"][0]["content"][0]["text"],
        "tok0 tok1 tok2 "
    );
    assert_eq!(created["usage"]["input_tokens_details"]["cached_tokens"], 3);
    assert_eq!(
        created["usage"]["output_tokens_details"]["reasoning_tokens"],
        2
    );
    assert_eq!(created["usage"]["total_tokens"], 11 + 5);
    assert_eq!(created["metadata"], json!({"k": "v"}));
    assert_eq!(mock.response_key(&id).as_deref(), Some(a.as_str()));

    let path = format!("/v1/responses/{id}");
    assert_eq!(get(&mock, &path, &a).await.json(), created);
    let not_found = json!({"error": {"message": format!("Response with id '{id}' not found."),
        "type": "invalid_request_error", "param": null, "code": null}});
    for (method, p) in [
        (Method::GET, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::POST, format!("{path}/cancel")),
        (Method::GET, format!("{path}/input_items")),
    ] {
        let r = send(&mock, method.clone(), &p, &b, None).await;
        assert_eq!(
            (r.status, r.json()),
            (404, not_found.clone()),
            "{method} {p}"
        );
    }
    let continued = post(
        &mock,
        "/v1/responses",
        &b,
        json!({"model": "gpt-4.1", "previous_response_id": id}),
    )
    .await;
    assert_eq!(continued.status, 404);
    assert_eq!(
        continued.json()["error"],
        json!({"message": format!("Previous response with id '{id}' not found."), "type": "invalid_request_error",
            "param": "previous_response_id", "code": "previous_response_not_found"})
    );
    let next = post(
        &mock,
        "/v1/responses",
        &a,
        json!({"model": "gpt-4.1", "previous_response_id": id}),
    )
    .await
    .json();
    assert_eq!(next["previous_response_id"], id.as_str());

    let items = get(&mock, &format!("{path}/input_items"), &a).await.json();
    assert_eq!(items["object"], "list");
    assert_eq!(
        items["data"][0]["content"],
        json!([{"type": "input_text", "text": "hello"}])
    );
    assert_eq!(items["first_id"], items["data"][0]["id"]);
    assert_eq!(items["has_more"], false);

    let cancel = send(&mock, Method::POST, &format!("{path}/cancel"), &a, None).await;
    assert_eq!(
        (cancel.status, cancel.json()["error"]["message"].as_str()),
        (400, Some("Cannot cancel a synchronous response."))
    );
    let deleted = send(&mock, Method::DELETE, &path, &a, None).await.json();
    assert_eq!(
        deleted,
        json!({"id": id, "object": "response.deleted", "deleted": true})
    );
    assert_eq!(get(&mock, &path, &a).await.status, 404);
    assert_eq!(mock.response_key(&id), None);

    let unstored = post(
        &mock,
        "/v1/responses",
        &a,
        json!({"model": "m", "store": false}),
    )
    .await
    .json();
    assert_eq!(unstored["store"], false);
    let unstored_id = unstored["id"].as_str().unwrap();
    assert_eq!(
        get(&mock, &format!("/v1/responses/{unstored_id}"), &a)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn input_items_page_in_either_order() {
    let mock = MockUpstream::start().await.unwrap();
    let a = key("sk_a");
    let input = json!([
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": [{"type": "input_text", "text": "one"}]},
        {"type": "function_call_output", "call_id": "call_1", "output": "42"},
    ]);
    let id = post(
        &mock,
        "/v1/responses",
        &a,
        json!({"model": "m", "input": input}),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = get(
        &mock,
        &format!("/v1/responses/{id}/input_items?limit=2"),
        &a,
    )
    .await
    .json();
    assert_eq!(page["data"][0]["type"], "function_call_output");
    assert_eq!(page["data"][1]["role"], "user");
    assert_eq!(page["has_more"], true);
    let last = page["last_id"].as_str().unwrap();
    let rest = get(
        &mock,
        &format!("/v1/responses/{id}/input_items?limit=2&after={last}"),
        &a,
    )
    .await
    .json();
    assert_eq!(
        rest["data"][0]["content"],
        json!([{"type": "input_text", "text": "be brief"}])
    );
    assert_eq!(rest["has_more"], false);
    let asc = get(
        &mock,
        &format!("/v1/responses/{id}/input_items?order=asc"),
        &a,
    )
    .await
    .json();
    assert_eq!(asc["data"][0]["role"], "developer");
    assert_eq!(asc["data"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn the_responses_stream_is_openais_event_sequence() {
    let mock = MockUpstream::start().await.unwrap();
    let k = MockKey::new("sk_s").chunks(2).to_string();
    let r = post(
        &mock,
        "/openai/responses?api-version=2025-04-01-preview",
        &k,
        json!({"model": "m", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(r.content_type, "text/event-stream");
    let events = sse(&r.text());
    let kinds: Vec<&str> = events.iter().map(|(e, _)| e.as_deref().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let data: Vec<Value> = events
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    for (i, (event, kind)) in data.iter().zip(&kinds).enumerate() {
        assert_eq!(
            (event["type"].as_str(), event["sequence_number"].as_u64()),
            (Some(*kind), Some(i as u64))
        );
    }
    assert_eq!(data[0]["response"]["status"], "in_progress");
    assert_eq!(data[0]["response"]["usage"], Value::Null);
    assert_eq!(data[4]["delta"], "tok0 ");
    assert_eq!(data[6]["text"], "tok0 tok1 ");
    let done = &data[9]["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["usage"]["output_tokens"], 2 + 2);
    let id = done["id"].as_str().unwrap();
    // Azure's path to the same store.
    let again = get(
        &mock,
        &format!("/openai/responses/{id}?api-version=2025-04-01-preview"),
        &k,
    )
    .await
    .json();
    assert_eq!(&again, done);
    let deleted = send(
        &mock,
        Method::DELETE,
        &format!("/openai/responses/{id}?api-version=x"),
        &k,
        None,
    )
    .await;
    assert_eq!(deleted.json()["object"], "response");

    let failing = MockKey::new("sk_f").error_after(3).to_string();
    let r = post(
        &mock,
        "/v1/responses",
        &failing,
        json!({"model": "m", "stream": true}),
    )
    .await;
    let events = sse(&r.text());
    assert_eq!(events.len(), 4);
    let failed: Value = serde_json::from_str(&events[3].1).unwrap();
    assert_eq!(
        (failed["type"].as_str(), failed["sequence_number"].as_u64()),
        (Some("response.failed"), Some(3))
    );
    assert_eq!(failed["response"]["error"]["code"], "server_error");
    let id = failed["response"]["id"].as_str().unwrap();
    assert_eq!(
        get(&mock, &format!("/v1/responses/{id}"), &failing)
            .await
            .json()["status"],
        "failed"
    );
}

#[tokio::test]
async fn a_background_response_is_polled_to_completion_or_cancelled() {
    let mock = MockUpstream::start().await.unwrap();
    let k = key("sk_bg");
    let create = || {
        post(
            &mock,
            "/v1/responses",
            &k,
            json!({"model": "m", "background": true}),
        )
    };
    let queued = create().await.json();
    assert_eq!(
        (queued["status"].as_str(), queued["background"].as_bool()),
        (Some("queued"), Some(true))
    );
    let path = format!("/v1/responses/{}", queued["id"].as_str().unwrap());
    assert_eq!(get(&mock, &path, &k).await.json()["status"], "in_progress");
    let completed = get(&mock, &path, &k).await.json();
    assert_eq!(completed["status"], "completed");
    assert!(completed["usage"].is_object());
    let after = send(&mock, Method::POST, &format!("{path}/cancel"), &k, None)
        .await
        .json();
    assert_eq!(
        after["status"], "completed",
        "a finished response stays as it is"
    );

    let path = format!(
        "/v1/responses/{}/cancel",
        create().await.json()["id"].as_str().unwrap()
    );
    for _ in 0..2 {
        let cancelled = send(&mock, Method::POST, &path, &k, None).await;
        assert_eq!(
            (cancelled.status, cancelled.json()["status"].as_str()),
            (200, Some("cancelled"))
        );
    }
}

#[tokio::test]
async fn responses_follow_the_script_and_refuse_what_openai_refuses() {
    let mock = MockUpstream::start().await.unwrap();
    let limited = MockKey::new("sk_l").status(429).retry_after(7).to_string();
    let r = post(&mock, "/v1/responses", &limited, json!({"model": "m"})).await;
    assert_eq!(r.status, 429);
    assert_eq!(mock.requests().last().unwrap().model.as_deref(), Some("m"));
    let k = key("sk_r");
    let invalid = send(&mock, Method::PUT, "/v1/responses/resp_1", &k, None).await;
    assert_eq!(
        (invalid.status, invalid.json()["error"]["message"].as_str()),
        (404, Some("Invalid URL (PUT /v1/responses/resp_1)"))
    );
    let no_model = post(&mock, "/v1/responses", &k, json!({"input": "x"})).await;
    assert_eq!(
        no_model.json()["error"]["code"],
        "missing_required_parameter"
    );
    let not_json = send(
        &mock,
        Method::POST,
        "/v1/responses",
        &k,
        Some(("application/json", b"{".to_vec())),
    )
    .await;
    assert_eq!(not_json.status, 400);
    assert!(not_json.json()["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("We could not parse the JSON body"));
}
