"""The official `google-genai` SDK through Rotor, with only its base URL changed: run by
tests/it/families.rs as `python rotor_genai.py SCENARIO CONFIG_JSON` (the config names Rotor's
URL, a workspace API key and the models the test set up). Prints one JSON line of what the SDK
saw (tokens) for the test to compare with the mock's records and Rotor's /metrics; exits
non-zero, with a traceback, when the SDK does not get what a user would expect."""

import json
import sys

from google import genai
from google.genai import errors, types

from sdk_common import expect

TEXT = "Hello from the mock."


def client(config, key=None, version=None):
    # No retries unless told to (HttpOptions.retry_options is None). Without a version the
    # SDK calls `/v1beta/…`, or `/v1/…` in some versions: Rotor serves both.
    options = types.HttpOptions(base_url=config["base"], api_version=version)
    return genai.Client(api_key=key or config["key"], http_options=options)


def add(seen, u):
    seen["prompt"] += u.prompt_token_count or 0
    seen["completion"] += u.candidates_token_count or 0


def pool(config):
    seen = {"prompt": 0, "completion": 0}
    clients = [client(config, version=v) for v in ("v1beta", "v1")]
    for i in range(6):
        r = clients[i % 2].models.generate_content(model="team", contents="Say hello")
        assert r.text == TEXT, r
        # The provider's name for the model, as the provider answered.
        assert r.model_version == "gemini-up", r.model_version
        add(seen, r.usage_metadata)
    streaming = client(config)  # kept: a dropped client closes its connections
    for _ in range(2):
        chunks = list(streaming.models.generate_content_stream(model="team", contents="Stream please"))
        assert "".join(ch.text for ch in chunks) == "tok0 tok1 tok2 ", chunks
        add(seen, chunks[-1].usage_metadata)
    c = client(config)
    assert c.models.count_tokens(model="side", contents="Say hello").total_tokens == 5
    # The model list in Gemini's shape, with the workspace's Gemini models only, under both
    # API versions.
    for listing in clients:
        names = [m.name for m in listing.models.list()]
        assert "models/team" in names and "models/stranger" not in names, names
    m = c.models.get(model="team")
    assert m.name == "models/team" and "generateContent" in m.supported_actions, m
    # Through batchEmbedContents: each inner request's model is rewritten too.
    e = c.models.embed_content(model="side", contents=["one", "two"])
    assert [x.values for x in e.embeddings] == [[0.1, 0.2, 0.3]] * 2, e
    return {"tokens": seen}


def failover(config):
    c = client(config)
    # The first credential answers 429 with a RetryInfo delay (or API_KEY_INVALID): the SDK
    # sees none of it.
    for model in ("hot", "invalid"):
        chunks = list(c.models.generate_content_stream(model=model, contents="Stream please"))
        assert "".join(ch.text for ch in chunks) == "tok0 tok1 tok2 ", model
        assert c.models.generate_content(model=model, contents="hi").text == TEXT, model
    return {}


def generate(c, model):
    return lambda: c.models.generate_content(model=model, contents="hi")


def errors_(config):
    e = expect(errors.ClientError, generate(client(config, "rk-not-a-key"), "team"))
    assert (e.code, e.status) == (401, "UNAUTHENTICATED") and e.message.startswith("invalid_api_key: "), e
    c = client(config)
    e = expect(errors.ClientError, generate(c, "no-such-model"))
    assert (e.code, e.status) == (404, "NOT_FOUND") and e.message.startswith("model_not_found: "), e
    e = expect(errors.ClientError, generate(c, "stranger"))
    assert (e.code, e.status) == (400, "INVALID_ARGUMENT"), e
    assert e.message.startswith("unsupported_endpoint: "), e
    # Both credentials of `cold` answer 429: the first call fails over to the last, whose
    # 429 is relayed; the next finds every credential cooling down.
    expect(errors.ClientError, generate(c, "cold"))
    e = expect(errors.ClientError, generate(c, "cold"))
    assert (e.code, e.status) == (429, "RESOURCE_EXHAUSTED"), e
    assert e.message.startswith("all_credentials_cooling_down: "), e

    # The provider's stream breaks after its first chunk: Rotor ends it with an error chunk,
    # which the SDK raises after the text so far.
    text = []

    def broken_stream():
        for ch in c.models.generate_content_stream(model="broken", contents="hi"):
            text.append(ch.text)

    e = expect(errors.ServerError, broken_stream)
    assert (e.code, e.status) == (502, "UNAVAILABLE") and "upstream_stream_error" in e.message, e
    assert "".join(text) in ("", "tok0 "), text
    return {}


if __name__ == "__main__":
    scenario, config = sys.argv[1], json.loads(sys.argv[2])
    out = {"pool": pool, "failover": failover, "errors": errors_}[scenario](config)
    print(json.dumps(out))
