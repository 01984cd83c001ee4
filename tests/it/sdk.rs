//! A real OpenAI client that nobody here wrote (the `async-openai` crate) runs a chat
//! completion, a streamed one and an embedding through Rotor unchanged, with only its base URL
//! pointed at Rotor, and sees Rotor's errors in the shape it understands.

use crate::helpers::*;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::{
    ChatCompletionRequestUserMessageArgs, ChatCompletionStreamOptions, CreateChatCompletionRequest,
    CreateChatCompletionRequestArgs, CreateEmbeddingRequestArgs,
};
use async_openai::Client;
use futures_util::StreamExt;

/// A one-message chat completion request for `model`, streamed or not.
fn chat_request(model: &str, content: &str, stream: bool) -> CreateChatCompletionRequest {
    let message = ChatCompletionRequestUserMessageArgs::default()
        .content(content)
        .build()
        .unwrap();
    let mut request = CreateChatCompletionRequestArgs::default();
    request.model(model).messages([message.into()]);
    if stream {
        request
            .stream(true)
            .stream_options(ChatCompletionStreamOptions {
                include_usage: true,
            });
    }
    request.build().unwrap()
}

fn client(app: &TestApp, key: &str) -> Client<OpenAIConfig> {
    Client::with_config(
        OpenAIConfig::new()
            .with_api_key(key)
            .with_api_base(app.url("/v1")),
    )
}

#[tokio::test]
async fn async_openai_runs_chat_stream_and_embeddings_through_rotor() {
    let w = World::licensed().await;
    let c = w.creds(["sk_sdk_a_0001", "sk_sdk_b_0002"]).await;
    let model = w.model("team-gpt", "team-gpt", c[0]).await;
    w.pool(&model, &[(None, 1), (Some(c[1]), 1)], 60).await;
    w.model_of(
        "openai_compatible",
        "embedder",
        "text-embedding-3-small",
        "text-embedding",
        c[0],
    )
    .await;
    let mock = &w.mock;
    let openai = client(&w.app, &w.key);

    for _ in 0..2 {
        let response = openai
            .chat()
            .create(chat_request("team-gpt", "Say hello", false))
            .await
            .expect("chat completion through Rotor");
        assert_eq!(
            response.choices[0].message.content.as_deref(),
            Some("Hello from the mock.")
        );
        assert_eq!(response.usage.unwrap().total_tokens, 12);
    }
    assert_eq!(
        mock.keys(),
        ["sk_sdk_a_0001", "sk_sdk_b_0002"],
        "the two requests were balanced"
    );
    assert!(mock
        .requests()
        .iter()
        .all(|r| r.model.as_deref() == Some("team-gpt")));

    let mut stream = openai
        .chat()
        .create_stream(chat_request("team-gpt", "Stream please", true))
        .await
        .expect("stream through Rotor");
    let mut text = String::new();
    let mut usage = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("a well-formed chunk");
        for choice in &chunk.choices {
            text.push_str(choice.delta.content.as_deref().unwrap_or(""));
        }
        if chunk.usage.is_some() {
            usage = chunk.usage;
        }
    }
    assert_eq!(text, "tok0 tok1 tok2 ");
    assert_eq!(usage.unwrap().completion_tokens, 3);

    let embedding = openai
        .embeddings()
        .create(
            CreateEmbeddingRequestArgs::default()
                .model("embedder")
                .input("hello")
                .build()
                .unwrap(),
        )
        .await
        .expect("embedding through Rotor");
    assert_eq!(embedding.data[0].embedding, [0.1, 0.2, 0.3]);
    let last = mock.requests().pop().unwrap();
    assert_eq!(
        (last.uri.as_str(), last.model.as_deref()),
        ("/v1/embeddings", Some("text-embedding-3-small"))
    );

    let models = openai.models().list().await.expect("model list");
    let mut ids: Vec<String> = models.data.into_iter().map(|m| m.id).collect();
    ids.sort();
    assert_eq!(ids, ["embedder", "team-gpt"]);
}

#[tokio::test]
async fn async_openai_sees_rotor_errors_in_openai_shape() {
    let app = spawn_app().await;
    let bad = client(&app, "rk-not-a-real-key");
    match bad
        .chat()
        .create(chat_request("anything", "hi", false))
        .await
    {
        Err(OpenAIError::ApiError(e)) => {
            assert_eq!(e.code.as_deref(), Some("invalid_api_key"));
            assert_eq!(e.r#type.as_deref(), Some("authentication_error"));
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    let u = app.user("u").await;
    let (_, key) = app.api_key(&u, u.workspace, "k").await;
    let request = chat_request("no-such-model", "hi", false);
    match client(&app, &key).chat().create(request).await {
        Err(OpenAIError::ApiError(e)) => assert_eq!(e.code.as_deref(), Some("model_not_found")),
        other => panic!("expected model_not_found, got {other:?}"),
    }
}
