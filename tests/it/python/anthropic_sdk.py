"""The official `anthropic` SDK against the mock provider (no Rotor): run by
tests/it/mock_families.rs as `python anthropic_sdk.py SCENARIO CONFIG_JSON`, where the config
names the mock's base URL and the (scripted) keys. Exits non-zero, with a traceback, when the
SDK does not parse an answer or raise the error class it raises for the real API."""

import json
import sys

import httpx2

import anthropic

from sdk_common import expect

TEXT = "Hello from the mock."
MESSAGES = [{"role": "user", "content": "Say hello"}]


def client(config, key):
    # No retries: each scripted error must reach the test as the SDK first classifies it.
    key = config["keys"][key]
    if config.get("auth") == "x-api-key":
        # The key in `x-api-key` and the version `2023-06-01`, as the SDK sent them before 2.x
        # and as Rotor sends them upstream by default.
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        return anthropic.Anthropic(base_url=config["base"], max_retries=0, default_headers=headers)
    # Since 2.x the SDK sends the API key as `Authorization: Bearer`, and `2026-10-21`.
    return anthropic.Anthropic(api_key=key, base_url=config["base"], max_retries=0)


def check_usage(usage, output_tokens):
    assert usage.input_tokens == 5, usage
    assert usage.output_tokens == output_tokens, usage
    assert usage.cache_creation_input_tokens == 11, usage
    assert usage.cache_read_input_tokens == 13, usage


def plain(config):
    c = client(config, "ok")
    m = c.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=MESSAGES)
    assert isinstance(m, anthropic.types.Message), type(m)
    assert (m.type, m.role, m.model, m.stop_reason) == ("message", "assistant", "claude-sonnet-4-5", "end_turn"), m
    assert m.id.startswith("msg_01") and len(m.id) == 28, m.id
    assert [b.type for b in m.content] == ["text"] and m.content[0].text == TEXT, m.content
    check_usage(m.usage, 7)
    assert m.usage.cache_creation.ephemeral_5m_input_tokens == 11, m.usage

    raw = c.messages.with_raw_response.create(model="claude-haiku-4-5", max_tokens=8, messages=MESSAGES)
    assert raw.headers["request-id"].startswith("req_011C"), raw.headers
    for limit in ("requests", "tokens", "input-tokens", "output-tokens"):
        assert int(raw.headers[f"anthropic-ratelimit-{limit}-remaining"]) > 0, raw.headers
        assert raw.headers[f"anthropic-ratelimit-{limit}-reset"].endswith("Z"), raw.headers
    assert raw.parse().model == "claude-haiku-4-5"

    count = c.messages.count_tokens(model="claude-sonnet-4-5", messages=MESSAGES)
    assert isinstance(count, anthropic.types.MessageTokensCount) and count.input_tokens == 5, count

    models = list(c.models.list())
    assert [m.id for m in models] == ["claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"], models
    assert models[0].display_name == "Claude Sonnet 4.5" and models[0].created_at.year == 2025, models[0]
    assert c.models.retrieve("claude-opus-4-1").id == "claude-opus-4-1"

    # A beta feature: the SDK's `betas` become the `anthropic-beta` header (the test reads it).
    b = c.beta.messages.create(
        model="claude-sonnet-4-5", max_tokens=8, messages=MESSAGES, betas=["context-1m-2025-08-07"]
    )
    assert b.content[0].text == TEXT, b


def stream(config):
    c = client(config, "ok")
    with c.messages.stream(model="claude-sonnet-4-5", max_tokens=64, messages=MESSAGES) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "tok0 tok1 tok2 ", text
    assert final.content[0].text == text and final.stop_reason == "end_turn", final
    check_usage(final.usage, 3)

    events = c.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=MESSAGES, stream=True)
    kinds = [e.type for e in events]  # the SDK drops `ping`
    assert kinds == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ], kinds


def create(c):
    return lambda: c.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=MESSAGES)


def errors(config):
    e = expect(anthropic.RateLimitError, create(client(config, "rate_limited")))
    assert (e.status_code, e.type) == (429, "rate_limit_error"), e
    assert e.request_id.startswith("req_011C"), e.request_id
    assert e.body["type"] == "error" and e.body["request_id"] == e.request_id, e.body
    assert e.response.headers["retry-after"] == "60", e.response.headers
    assert e.response.headers["anthropic-ratelimit-input-tokens-remaining"] == "0", e.response.headers

    e = expect(anthropic.InternalServerError, create(client(config, "overloaded")))
    assert isinstance(e, anthropic.OverloadedError) and (e.status_code, e.type) == (529, "overloaded_error"), e

    e = expect(anthropic.AuthenticationError, create(client(config, "unauthorized")))
    assert (e.status_code, e.type, e.body["error"]["message"]) == (401, "authentication_error", "invalid x-api-key"), e

    e = expect(anthropic.BadRequestError, create(client(config, "no_credit")))
    assert e.type == "invalid_request_error", e
    assert e.body["error"]["message"].startswith("Your credit balance is too low"), e.body

    # A stream that fails after it started: the SDK raises on the `event: error`.
    text = []

    def failing_stream():
        with client(config, "stream_error").messages.stream(
            model="claude-sonnet-4-5", max_tokens=8, messages=MESSAGES
        ) as s:
            for t in s.text_stream:
                text.append(t)

    e = expect(anthropic.APIStatusError, failing_stream)
    assert e.type == "overloaded_error", e
    assert text == ["tok0 "], text

    # A stream whose connection breaks: the transport's error, after the text so far.
    text.clear()

    def broken_stream():
        with client(config, "stream_broken").messages.stream(
            model="claude-sonnet-4-5", max_tokens=8, messages=MESSAGES
        ) as s:
            for t in s.text_stream:
                text.append(t)

    expect(httpx2.RemoteProtocolError, broken_stream)  # "incomplete chunked read"
    assert text == ["tok0 "], text


if __name__ == "__main__":
    scenario, config = sys.argv[1], json.loads(sys.argv[2])
    {"plain": plain, "stream": stream, "errors": errors}[scenario](config)
    print(f"anthropic {anthropic.__version__}: {scenario} ok")
