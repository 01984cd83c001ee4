//! The usage read of every non-streaming answer: the bundled mock's chat completion (what
//! `bench/run` serves) and a longer Anthropic message with a tool call, each as a provider
//! sends it.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rotor_dispatch::target::Family;
use rotor_dispatch::usage::of_body;

const CHAT: &[u8] = br#"{"id":"chatcmpl-mock","object":"chat.completion","created":1700000000,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the mock."},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#;

const MESSAGE: &[u8] = br#"{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"I'll check the weather in San Francisco for you. The forecast service gives hourly data, so I will ask for today's.\n\nOne moment."},{"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"get_weather","input":{"location":"San Francisco, CA","unit":"celsius","days":[1,2,3]}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":2095,"cache_creation_input_tokens":0,"cache_read_input_tokens":1800,"output_tokens":503,"service_tier":"standard"}}"#;

fn bench(c: &mut Criterion) {
    assert!(of_body(Family::OpenAi, CHAT).is_some());
    assert!(of_body(Family::Anthropic, MESSAGE).is_some());
    c.bench_function("usage of the mock's chat completion (265 B)", |b| {
        b.iter(|| of_body(Family::OpenAi, black_box(CHAT)))
    });
    let long = String::from_utf8(CHAT.to_vec()).unwrap().replace(
        "Hello from the mock.",
        &"A long answer, line after line.\\n".repeat(512),
    );
    assert!(of_body(Family::OpenAi, long.as_bytes()).is_some());
    c.bench_function("usage of a 16 KiB chat completion", |b| {
        b.iter(|| of_body(Family::OpenAi, black_box(long.as_bytes())))
    });
    c.bench_function("usage of an Anthropic tool-use message (660 B)", |b| {
        b.iter(|| of_body(Family::Anthropic, black_box(MESSAGE)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
