"""The official `openai` SDK through Rotor, with only its base URL changed: run by
tests/it/families.rs as `python rotor_openai.py SCENARIO CONFIG_JSON` (the config names
Rotor's URL, a workspace API key and the models the test set up). Prints one JSON line of what
the SDK saw (tokens) for the test to compare with the mock's records and Rotor's /metrics;
exits non-zero, with a traceback, when the SDK does not get what a user would expect."""

import json
import sys

import openai

from sdk_common import expect

TEXT = "Hello from the mock."
MESSAGES = [{"role": "user", "content": "Say hello"}]


def client(config, key=None):
    # No retries: each error must reach the test as the SDK first classifies it.
    return openai.OpenAI(api_key=key or config["key"], base_url=config["base"] + "/v1", max_retries=0)


def add(seen, usage):
    seen["prompt"] += usage.prompt_tokens
    seen["completion"] += usage.completion_tokens


def chat(c, model):
    return c.chat.completions.create(model=model, messages=MESSAGES)


def streamed(c, model):
    s = c.chat.completions.create(
        model=model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(s)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    return text, chunks[-1].usage


def pool(config):
    c = client(config)
    seen = {"prompt": 0, "completion": 0}
    for _ in range(6):
        r = chat(c, "team")
        assert r.choices[0].message.content == TEXT, r
        # The provider's name for the model, as the provider answered.
        assert r.model == "gpt-up", r.model
        add(seen, r.usage)
    for _ in range(2):
        text, usage = streamed(c, "team")
        assert text, text
        add(seen, usage)
    e = c.embeddings.create(model="side", input="hi")
    assert e.data[0].embedding == [0.1, 0.2, 0.3], e
    return {"tokens": seen}


def mixed(config):
    # An openai key, an Azure deployment and a compatible server serve one model, each
    # under its own name for it.
    c = client(config)
    for _ in range(6):
        assert chat(c, "mixed").choices[0].message.content == TEXT
    return {}


def failover(config):
    c = client(config)
    # The first credential answers 429 with x-ratelimit-reset-* (or 500): the SDK sees none of it.
    for model in ("hot", "flaky"):
        text, _ = streamed(c, model)
        assert text, model
        raw = c.chat.completions.with_raw_response.create(model=model, messages=MESSAGES)
        assert raw.parse().choices[0].message.content == TEXT, model
        assert raw.headers["x-rotor-attempts"] == "1", (model, raw.headers)
    return {}


def errors(config):
    e = expect(openai.AuthenticationError, lambda: chat(client(config, "rk-not-a-key"), "team"))
    assert (e.status_code, e.code) == (401, "invalid_api_key"), e
    c = client(config)
    e = expect(openai.NotFoundError, lambda: chat(c, "no-such-model"))
    assert e.code == "model_not_found", e
    e = expect(openai.BadRequestError, lambda: chat(c, "stranger"))
    assert e.code == "unsupported_endpoint", e
    # Both credentials of `cold` answer 429: the first call fails over to the last, whose
    # 429 is relayed; the next finds every credential cooling down.
    expect(openai.RateLimitError, lambda: chat(c, "cold"))
    e = expect(openai.RateLimitError, lambda: chat(c, "cold"))
    assert e.code == "all_credentials_cooling_down" and int(e.response.headers["retry-after"]) > 0, e

    # The provider's stream breaks after its first chunk: Rotor ends it with an error chunk,
    # which the SDK raises.
    e = expect(openai.APIError, lambda: streamed(c, "broken"))
    assert e.code == "upstream_stream_error", e
    return {}


def responses(config):
    # Two replicas: every request about a response goes through the one that did not create it.
    a, b = (openai.OpenAI(api_key=config["key"], base_url=u + "/v1", max_retries=0) for u in config["bases"])
    made = []
    for i in range(4):
        creator, reader = (a, b) if i % 2 == 0 else (b, a)
        if i % 2:
            events = list(creator.responses.create(model="gpt", input="Stream please", stream=True))
            assert events[0].type == "response.created", events[0]
            done = events[-1]
            assert done.type == "response.completed" and done.response.usage.input_tokens > 0, done
            rid = done.response.id
            assert events[0].response.id == rid
        else:
            r = creator.responses.create(model="gpt", input="Say hello")
            assert r.status == "completed" and r.output_text, r
            rid = r.id
        got = reader.responses.retrieve(rid)
        assert got.id == rid and got.status == "completed", got
        items = reader.responses.input_items.list(rid)
        assert items.data, items
        # The continuation reaches the organisation that holds the response it continues.
        follow = reader.responses.create(model="gpt", input="And more", previous_response_id=rid)
        assert follow.previous_response_id == rid, follow
        made += [rid, follow.id]
    bg = a.responses.create(model="gpt", input="Take your time", background=True)
    assert bg.status == "queued", bg
    cancelled = b.responses.cancel(bg.id)
    assert cancelled.status == "cancelled", cancelled
    b.responses.delete(made[0])
    # Rotor forgets a deleted response: asking again is its own 404.
    try:
        a.responses.retrieve(made[0])
        raise AssertionError("a deleted response was found")
    except openai.NotFoundError as e:
        assert e.code == "response_not_found", e
    return {"ids": made + [bg.id]}


def budget(config):
    # A key whose monthly budget is spent, through a client with the SDK's default retries:
    # Rotor says not to retry, so the SDK raises at once (the test counts one refusal).
    c = openai.OpenAI(api_key=config["spent_key"], base_url=config["base"] + "/v1")
    e = expect(openai.RateLimitError, lambda: chat(c, "team"))
    assert e.code == "api_key_budget_exceeded", e
    assert e.response.headers["x-should-retry"] == "false", e.response.headers
    return {}


def endpoints(config):
    # The rest of OpenAI's API, each through the pool of `team` (its model rewritten).
    c = client(config)
    done = c.completions.create(model="team", prompt="Say hello")
    assert done.choices[0].text and done.usage.total_tokens > 0, done
    text = "".join(ch.choices[0].text for ch in c.completions.create(model="team", prompt="hi", stream=True) if ch.choices)
    assert text, text
    mod = c.moderations.create(model="team", input="hello")
    assert mod.results[0].flagged is False, mod
    img = c.images.generate(model="team", prompt="a cat", response_format="b64_json")
    assert img.data[0].b64_json, img
    speech = c.audio.speech.create(model="team", input="hello", voice="alloy", response_format="wav")
    assert speech.content[:4] == b"RIFF", speech.content[:16]
    # Multipart: the upload reaches the provider byte for byte, its `model` field rewritten.
    audio = bytes(config["audio"], "latin-1")
    t = c.audio.transcriptions.create(model="team", file=("hello.wav", audio, "audio/wav"))
    assert t.text, t
    tr = c.audio.translations.create(model="team", file=("hello.wav", audio, "audio/wav"))
    assert tr.text, tr
    return {}


if __name__ == "__main__":
    scenario, config = sys.argv[1], json.loads(sys.argv[2])
    out = {
        "pool": pool,
        "mixed": mixed,
        "failover": failover,
        "errors": errors,
        "budget": budget,
        "responses": responses,
        "endpoints": endpoints,
    }[scenario](config)
    print(json.dumps(out))
