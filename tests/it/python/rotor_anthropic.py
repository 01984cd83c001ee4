"""The official `anthropic` SDK through Rotor, with only its base URL changed: run by
tests/it/families.rs as `python rotor_anthropic.py SCENARIO CONFIG_JSON` (the config names
Rotor's URL, a workspace API key and the models the test set up). Prints one JSON line of what
the SDK saw (tokens) for the test to compare with the mock's records and Rotor's /metrics;
exits non-zero, with a traceback, when the SDK does not get what a user would expect."""

import json
import sys

import anthropic

from sdk_common import expect

TEXT = "Hello from the mock."
MESSAGES = [{"role": "user", "content": "Say hello"}]


def client(config, key=None, header=False):
    key = key or config["key"]
    if header:
        # The key in `x-api-key`, as the SDK sent it before 2.x (and curl users do).
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        return anthropic.Anthropic(base_url=config["base"], max_retries=0, default_headers=headers)
    # Since 2.x the SDK sends the API key as `Authorization: Bearer`.
    return anthropic.Anthropic(api_key=key, base_url=config["base"], max_retries=0)


def add(seen, usage):
    seen["prompt"] += usage.input_tokens
    seen["completion"] += usage.output_tokens
    seen["cache_read"] += usage.cache_read_input_tokens or 0
    seen["cache_write"] += usage.cache_creation_input_tokens or 0


def pool(config):
    seen = {"prompt": 0, "completion": 0, "cache_read": 0, "cache_write": 0}
    for i in range(6):
        m = client(config, header=i % 2 == 1).messages.create(model="team", max_tokens=64, messages=MESSAGES)
        assert isinstance(m, anthropic.types.Message) and m.content[0].text == TEXT, m
        # The provider's name for the model, as the provider answered.
        assert m.model == "claude-up", m.model
        add(seen, m.usage)
    for _ in range(2):
        with client(config).messages.stream(model="team", max_tokens=64, messages=MESSAGES) as s:
            text = "".join(s.text_stream)
            final = s.get_final_message()
        assert text == "tok0 tok1 tok2 " and final.stop_reason == "end_turn", final
        add(seen, final.usage)
    count = client(config).messages.count_tokens(model="side", messages=MESSAGES)
    assert count.input_tokens == 5, count
    # The model list in Anthropic's shape, with the workspace's Anthropic models only.
    ids = [m.id for m in client(config).models.list()]
    assert "team" in ids and "side" in ids and "stranger" not in ids, ids
    m = client(config, header=True).models.retrieve("team")
    assert (m.id, m.type) == ("team", "model") and m.created_at.year >= 2026, m
    return {"tokens": seen}


def failover(config):
    c = client(config)
    # The first credential answers 429 with its limits' resets (or 529): the SDK sees none of it.
    for model in ("hot", "overloaded"):
        with c.messages.stream(model=model, max_tokens=64, messages=MESSAGES) as s:
            assert "".join(s.text_stream) == "tok0 tok1 tok2 ", model
        raw = c.messages.with_raw_response.create(model=model, max_tokens=8, messages=MESSAGES)
        assert raw.parse().content[0].text == TEXT, model
        assert raw.headers["x-rotor-attempts"] == "1", (model, raw.headers)
    return {}


def create(c, model):
    return lambda: c.messages.create(model=model, max_tokens=8, messages=MESSAGES)


def errors(config):
    for header in (False, True):
        e = expect(anthropic.AuthenticationError, create(client(config, "rk-not-a-key", header), "team"))
        assert (e.status_code, e.type) == (401, "authentication_error"), e
        assert e.body["error"]["message"].startswith("invalid_api_key: "), e.body
    c = client(config)
    e = expect(anthropic.NotFoundError, create(c, "no-such-model"))
    assert e.type == "not_found_error" and e.body["error"]["message"].startswith("model_not_found: "), e.body
    e = expect(anthropic.BadRequestError, create(c, "stranger"))
    assert e.type == "invalid_request_error", e
    assert e.body["error"]["message"].startswith("unsupported_endpoint: "), e.body
    # Both credentials of `cold` answer 429: the first call fails over to the last, whose
    # 429 is relayed; the next finds every credential cooling down.
    expect(anthropic.RateLimitError, create(c, "cold"))
    e = expect(anthropic.RateLimitError, create(c, "cold"))
    assert e.type == "rate_limit_error" and int(e.response.headers["retry-after"]) > 0, e.response.headers
    assert e.body["error"]["message"].startswith("all_credentials_cooling_down: "), e.body

    # The provider's stream breaks after its first event: Rotor ends it with `event: error`,
    # which the SDK raises after the text so far.
    text = []

    def broken_stream():
        with c.messages.stream(model="broken", max_tokens=8, messages=MESSAGES) as s:
            for t in s.text_stream:
                text.append(t)

    e = expect(anthropic.APIStatusError, broken_stream)
    assert e.type == "api_error" and "upstream_stream_error" in str(e), e
    assert "".join(text) in ("", "tok0 "), text
    return {}


def budget(config):
    # A key whose monthly budget is spent, through a client with the SDK's default retries:
    # Rotor says not to retry, so the SDK raises at once (the test counts one refusal).
    c = anthropic.Anthropic(api_key=config["spent_key"], base_url=config["base"])
    e = expect(anthropic.RateLimitError, create(c, "team"))
    assert e.body["error"]["message"].startswith("api_key_budget_exceeded: "), e.body
    assert e.response.headers["x-should-retry"] == "false", e.response.headers
    return {}


if __name__ == "__main__":
    scenario, config = sys.argv[1], json.loads(sys.argv[2])
    out = {"pool": pool, "failover": failover, "errors": errors, "budget": budget}[scenario](config)
    print(json.dumps(out))
