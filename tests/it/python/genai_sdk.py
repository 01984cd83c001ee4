"""The official `google-genai` SDK against the mock provider (no Rotor): run by
tests/it/mock_families.rs as `python genai_sdk.py SCENARIO CONFIG_JSON`, where the config names
the mock's base URL, the API version to use and the (scripted) keys. Exits non-zero, with a
traceback, when the SDK does not parse an answer or raise the error it raises for the real API."""

import json
import sys

import httpx2

from google import genai
from google.genai import errors, types

from sdk_common import expect

TEXT = "Hello from the mock."
MODEL = "gemini-2.0-flash"


def client(config, key):
    # The SDK retries nothing unless told to (HttpOptions.retry_options is None).
    options = types.HttpOptions(base_url=config["base"], api_version=config["version"])
    return genai.Client(api_key=config["keys"][key], http_options=options)


def plain(config):
    c = client(config, "ok")
    r = c.models.generate_content(model=MODEL, contents="Say hello")
    assert r.text == TEXT, r
    assert r.candidates[0].finish_reason == types.FinishReason.STOP, r.candidates
    u = r.usage_metadata
    assert (u.prompt_token_count, u.candidates_token_count, u.total_token_count) == (5, 7, 12), u
    assert r.model_version == MODEL and r.response_id, r

    count = c.models.count_tokens(model=MODEL, contents="Say hello")
    assert count.total_tokens == 5, count

    # The SDK embeds through `batchEmbedContents`, one inner request per content.
    e = c.models.embed_content(model="text-embedding-004", contents=["one", "two"])
    assert [x.values for x in e.embeddings] == [[0.1, 0.2, 0.3]] * 2, e

    names = [m.name for m in c.models.list()]
    assert names == ["models/gemini-2.0-flash", "models/text-embedding-004"], names
    m = c.models.get(model=MODEL)
    assert (m.name, m.input_token_limit) == (f"models/{MODEL}", 1048576), m


def stream(config):
    c = client(config, "ok")
    chunks = list(c.models.generate_content_stream(model=MODEL, contents="Stream please"))
    assert "".join(ch.text for ch in chunks) == "tok0 tok1 tok2 ", chunks
    *first, last = chunks
    assert all(ch.usage_metadata.candidates_token_count is None for ch in first), first
    assert all(ch.candidates[0].finish_reason is None for ch in first), first
    assert last.candidates[0].finish_reason == types.FinishReason.STOP, last
    u = last.usage_metadata
    assert (u.prompt_token_count, u.candidates_token_count, u.total_token_count) == (5, 3, 8), u


def generate(c):
    return lambda: c.models.generate_content(model=MODEL, contents="hi")


def detail(e, kind):
    found = [d for d in e.details["error"]["details"] if d["@type"] == f"type.googleapis.com/google.rpc.{kind}"]
    assert len(found) == 1, e.details
    return found[0]


def errors_(config):
    e = expect(errors.ClientError, generate(client(config, "rate_limited")))
    assert (e.code, e.status) == (429, "RESOURCE_EXHAUSTED"), e
    assert detail(e, "RetryInfo")["retryDelay"] == "37s", e.details
    assert detail(e, "QuotaFailure")["violations"][0]["quotaDimensions"]["model"] == MODEL, e.details

    e = expect(errors.ClientError, generate(client(config, "key_invalid")))
    assert (e.code, e.status, e.message) == (400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."), e
    assert detail(e, "ErrorInfo")["reason"] == "API_KEY_INVALID", e.details

    e = expect(errors.ClientError, generate(client(config, "suspended")))
    assert (e.code, e.status) == (403, "PERMISSION_DENIED"), e
    assert detail(e, "ErrorInfo")["reason"] == "CONSUMER_SUSPENDED", e.details

    e = expect(errors.ServerError, generate(client(config, "unavailable")))
    assert (e.code, e.status) == (503, "UNAVAILABLE"), e

    # A stream that fails after it started: the SDK raises on the error chunk.
    text = []

    failing = client(config, "stream_error")  # kept: a dropped client closes its connections

    def failing_stream():
        for ch in failing.models.generate_content_stream(model=MODEL, contents="hi"):
            text.append(ch.text)

    e = expect(errors.ServerError, failing_stream)
    assert (e.code, e.status) == (500, "INTERNAL"), e
    assert text == ["tok0 ", "tok1 "], text

    # A stream whose connection breaks: the transport's error, after the chunks so far.
    text.clear()

    broken = client(config, "stream_broken")

    def broken_stream():
        for ch in broken.models.generate_content_stream(model=MODEL, contents="hi"):
            text.append(ch.text)

    expect(httpx2.RemoteProtocolError, broken_stream)  # "incomplete chunked read"
    assert text == ["tok0 "], text


if __name__ == "__main__":
    scenario, config = sys.argv[1], json.loads(sys.argv[2])
    {"plain": plain, "stream": stream, "errors": errors_}[scenario](config)
    print(f"google-genai {genai.__version__} ({config['version']}): {scenario} ok")
