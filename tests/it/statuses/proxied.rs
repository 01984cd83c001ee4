//! The gateway's proxied endpoints, every family's: one table of endpoints, and every
//! documented status of each generated from it against twin models per family (`gpt`,
//! `a-gpt`, `g-gpt`; `cool`, `a-cool`, `g-cool` …), each twin set up like the OpenAI one.

use super::*;

/// An API family, as the scenarios call it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Fam {
    OpenAi,
    Anthropic,
    Gemini,
}

impl Fam {
    /// The prefix of the family's twins of the fixture's gateway models.
    fn prefix(self) -> &'static str {
        match self {
            Fam::OpenAi => "",
            Fam::Anthropic => "a-",
            Fam::Gemini => "g-",
        }
    }

    /// A model that speaks another family.
    fn stranger(self) -> &'static str {
        match self {
            Fam::OpenAi => "a-gpt",
            Fam::Anthropic | Fam::Gemini => "gpt",
        }
    }
}

/// One proxied endpoint: its documented path (`{model}` for Gemini's), family, and a body
/// it accepts for a model.
pub(super) struct Proxied {
    pub path: &'static str,
    pub family: Fam,
    body: fn(&str) -> Value,
    /// Every answer is a stream (Gemini's `streamGenerateContent`): a too large one is cut
    /// after it started, not refused.
    stream: bool,
    /// The body goes as `multipart/form-data` (its `model` field and a `file`).
    form: bool,
}

const BOUNDARY: &str = "rotor-statuses-form";

/// A transcription form for `model` with a small audio file.
fn audio_form(model: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let part = |name: &str, extra: &str, value: &[u8], out: &mut Vec<u8>| {
        out.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"{extra}\r\n\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    part(
        "file",
        "; filename=\"hi.wav\"\r\nContent-Type: audio/wav",
        b"RIFF\0\0\0\0WAVEfmt ",
        &mut out,
    );
    part("model", "", model.as_bytes(), &mut out);
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

fn gemini_contents(_: &str) -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
}

fn anthropic_messages(model: &str) -> Value {
    json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
}

const fn openai(path: &'static str, body: fn(&str) -> Value) -> Proxied {
    Proxied {
        path,
        family: Fam::OpenAi,
        body,
        stream: false,
        form: false,
    }
}

const fn form(path: &'static str) -> Proxied {
    Proxied {
        form: true,
        ..openai(path, |_| Value::Null)
    }
}

const fn gemini(path: &'static str, body: fn(&str) -> Value, stream: bool) -> Proxied {
    Proxied {
        path,
        family: Fam::Gemini,
        body,
        stream,
        form: false,
    }
}

/// Every proxied endpoint of the document.
pub(super) static PROXIED: [Proxied; 17] = [
    openai("/v1/chat/completions", chat_body),
    openai("/v1/completions", |m| json!({"model": m, "prompt": "hi"})),
    openai("/v1/embeddings", embeddings_body),
    openai("/v1/moderations", |m| json!({"model": m, "input": "hi"})),
    openai(
        "/v1/images/generations",
        |m| json!({"model": m, "prompt": "a cat"}),
    ),
    openai(
        "/v1/audio/speech",
        |m| json!({"model": m, "input": "hi", "voice": "alloy"}),
    ),
    openai(
        "/v1/rerank",
        |m| json!({"model": m, "query": "q", "documents": ["a", "b"]}),
    ),
    form("/v1/audio/transcriptions"),
    form("/v1/audio/translations"),
    openai("/v1/responses", |m| json!({"model": m, "input": "hi"})),
    Proxied {
        path: "/v1/messages",
        family: Fam::Anthropic,
        body: anthropic_messages,
        stream: false,
        form: false,
    },
    Proxied {
        path: "/v1/messages/count_tokens",
        family: Fam::Anthropic,
        body: |m| json!({"model": m, "messages": [{"role": "user", "content": "hi"}]}),
        stream: false,
        form: false,
    },
    gemini(
        "/v1beta/models/{model}:generateContent",
        gemini_contents,
        false,
    ),
    gemini(
        "/v1beta/models/{model}:streamGenerateContent",
        gemini_contents,
        true,
    ),
    gemini("/v1beta/models/{model}:countTokens", gemini_contents, false),
    gemini(
        "/v1beta/models/{model}:embedContent",
        |_| json!({"content": {"parts": [{"text": "hi"}]}}),
        false,
    ),
    gemini(
        "/v1beta/models/{model}:batchEmbedContents",
        |m| json!({"requests": [{"model": format!("models/{m}"), "content": {"parts": [{"text": "hi"}]}}]}),
        false,
    ),
];

impl Proxied {
    /// A request to this endpoint on `app` for `model`, with `key` where the family's
    /// clients send it.
    pub(super) fn req(&self, app: &TestApp, key: &str, model: &str) -> Req {
        let path = self.path.replace("{model}", model);
        let req = match self.family {
            Fam::OpenAi => call(app, "POST", path).bearer(key),
            Fam::Anthropic => call(app, "POST", path)
                .header("x-api-key", key)
                .header("anthropic-version", "2023-06-01"),
            Fam::Gemini if self.stream => {
                call(app, "POST", format!("{path}?alt=sse")).header("x-goog-api-key", key)
            }
            Fam::Gemini => call(app, "POST", path).header("x-goog-api-key", key),
        };
        if self.form {
            let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
            return req.bytes(Some(&content_type), audio_form(model));
        }
        req.json((self.body)(model))
    }
}

/// The family's twin of one of the fixture's gateway models.
fn twin(family: Fam, base: &str) -> String {
    format!("{}{base}", family.prefix())
}

/// Every documented status of every proxied endpoint.
pub(super) fn live_cases() -> Vec<Case<Fx>> {
    let mut cases = Vec::new();
    for p in &PROXIED {
        let (path, fam) = (p.path, p.family);
        let model = move |base: &str| twin(fam, base);
        let to = move |base: &'static str| {
            let m = model(base);
            move |f: &Fx| p.req(&f.main, &f.key, &m)
        };
        cases.push(live("POST", path, 200, "", to("gpt")));
        cases.push(live("POST", path, 400, "invalid_request_error", move |f| {
            p.req(&f.main, &f.key, &model("gpt"))
                .bytes(Some(JSON), b"not json".to_vec())
        }));
        cases.push(live("POST", path, 400, "unsupported_endpoint", move |f| {
            p.req(&f.main, &f.key, fam.stranger())
        }));
        cases.push(live("POST", path, 401, "invalid_api_key", move |f| {
            p.req(&f.main, "rk-not-a-key", &model("gpt"))
        }));
        cases.push(live("POST", path, 403, "model_not_allowed", move |f| {
            p.req(&f.main, &f.restricted_key, &model("gpt"))
        }));
        cases.push(live("POST", path, 404, "model_not_found", move |f| {
            p.req(&f.main, &f.key, "no-such-model")
        }));
        cases.push(live("POST", path, 413, "payload_too_large", move |f| {
            p.req(&f.main, &f.key, &model("gpt"))
                .oversized(2 * GATEWAY_MAX_BODY)
        }));
        // Both credentials answered 429 during the setup and are cooling for 60 s.
        cases.push(
            live(
                "POST",
                path,
                429,
                "all_credentials_cooling_down",
                to("cool"),
            )
            .then(has_retry_after),
        );
        // Without an effective pool the provider's own 429 is relayed (Google's carries its
        // delay in the body, not in Retry-After).
        let limited = match fam {
            Fam::OpenAi => live("POST", path, 429, "rate_limit_exceeded", to("limited")),
            _ => live("POST", path, 429, "", to("limited")),
        };
        cases.push(match fam {
            Fam::Gemini => limited,
            _ => limited.then(has_retry_after),
        });
        cases.push(live(
            "POST",
            path,
            500,
            "credential_unreadable",
            to("broken"),
        ));
        cases.push(live(
            "POST",
            path,
            502,
            "upstream_unavailable",
            to("unreachable"),
        ));
        cases.push(live(
            "POST",
            path,
            502,
            "upstream_credential_rejected",
            to("rejected"),
        ));
        // Both credentials were refused (401, 403) during the setup: out of the pool.
        cases.push(live(
            "POST",
            path,
            502,
            "all_credentials_rejected",
            to("dead"),
        ));
        cases.push(live(
            "POST",
            path,
            502,
            "upstream_address_blocked",
            to("blocked"),
        ));
        if !p.stream {
            cases.push(live(
                "POST",
                path,
                502,
                "upstream_response_too_large",
                to("huge"),
            ));
        }
        cases.push(live("POST", path, 504, "upstream_timeout", to("slow")));
    }
    cases
}

/// The 503 of every proxied endpoint with the database down (its model's route not cached).
pub(super) fn outage_cases() -> Vec<Case<Down>> {
    PROXIED
        .iter()
        .map(|p| down("POST", p.path, move |d| p.req(&d.app, &d.key, "gpt")))
        .collect()
}

/// Creates the Anthropic and Gemini twins of the fixture's gateway models in `owner`'s
/// workspace (against the mock at `mock_base`) and returns the credentials whose stored
/// ciphertext the fixture must tamper with (those of `a-broken` and `g-broken`).
pub(super) async fn twins(main: &TestApp, owner: &TestUser, mock_base: &str) -> Vec<Uuid> {
    let ws = owner.workspace;
    let mut tampered = Vec::new();
    for (fam, provider) in [(Fam::Anthropic, "anthropic"), (Fam::Gemini, "gemini")] {
        let cred = |name: &str, base: &str, key: MockKey| {
            let (name, base) = (twin(fam, name), base.to_owned());
            async move {
                let key = key.to_string();
                let config = json!({"api_key": key, "base_url": base});
                id_of(&main.credential(owner, ws, provider, &name, config).await)
            }
        };
        let model = |name: &str, credential: Uuid| {
            let name = twin(fam, name);
            async move { id_of(&main.model(owner, ws, provider, &name, credential).await) }
        };
        let cooling = |label: &str| MockKey::new(label).status(429).retry_after(60);
        let closed = format!("http://127.0.0.1:{}", free_port());
        model("gpt", cred("ok", mock_base, MockKey::new("sk_ok")).await).await;
        let cool_a = cred("cool-a", mock_base, cooling("sk_coola")).await;
        let cool_b = cred("cool-b", mock_base, cooling("sk_coolb")).await;
        let cool = model("cool", cool_a).await;
        let limited = MockKey::new("sk_limited").status(429).retry_after(7);
        model("limited", cred("limited", mock_base, limited).await).await;
        let rejected = MockKey::new("sk_rejected").status(401);
        model("rejected", cred("rejected", mock_base, rejected).await).await;
        let dead_a = cred("dead-a", mock_base, MockKey::new("sk_deada").status(401)).await;
        let dead_b = cred("dead-b", mock_base, MockKey::new("sk_deadb").status(403)).await;
        let dead = model("dead", dead_a).await;
        let slow = MockKey::new("sk").delay_ms(6000);
        model("slow", cred("slow", mock_base, slow).await).await;
        let huge = MockKey::new("sk").huge_mib(4);
        model("huge", cred("huge", mock_base, huge).await).await;
        let unreachable = cred("unreachable", &closed, MockKey::new("sk_x")).await;
        model("unreachable", unreachable).await;
        let blocked = cred("blocked", "http://127.0.0.2:9", MockKey::new("sk_x")).await;
        model("blocked", blocked).await;
        let broken = cred("tampered", mock_base, MockKey::new("sk_tampered")).await;
        model("broken", broken).await;
        tampered.push(broken);
        for (pool, a, b) in [(cool, cool_a, cool_b), (dead, dead_a, dead_b)] {
            main.put(
                &TestApp::lb_path(ws, &pool.to_string()),
                &owner.token,
                json!({"enabled": true, "cooldown_seconds": 60,
                       "entries": [{"credential_id": a}, {"credential_id": b}]}),
            )
            .await
            .assert(200);
        }
    }
    tampered
}

/// One endpoint per family, to set pools up through.
fn first_of_each_family() -> impl Iterator<Item = &'static Proxied> {
    PROXIED.iter().filter(|p| {
        p.path.ends_with("chat/completions")
            || p.path == "/v1/messages"
            || p.path.ends_with(":generateContent")
    })
}

/// Cools every credential of each family's `cool` pool (each answers 429 with Retry-After: 60)
/// and gets both of each `dead` pool refused (401 and 403).
pub(super) async fn cool_down(main: &TestApp, key: &str) {
    for p in first_of_each_family() {
        let cool = p.req(main, key, &twin(p.family, "cool")).send().await;
        cool.assert(429);
        let dead = p.req(main, key, &twin(p.family, "dead")).send().await;
        dead.assert(502);
    }
}

/// A server whose `full` pools (one per family, two entries of `rpm: 1`) are full for the
/// current UTC minute.
pub(super) struct Cap {
    app: TestApp,
    key: String,
    /// A key with an rpm of 1, used once this minute.
    rate_key: String,
    /// A key with a monthly token budget of 1, spent.
    spent_key: String,
}

impl Cap {
    /// Sets the pools up, waits for a minute with time left, and fills them.
    pub(super) async fn new() -> Cap {
        let w = World::licensed().await;
        let ws = w.ws();
        for (fam, provider, base) in [
            (Fam::OpenAi, "openai_compatible", w.mock.url("/v1")),
            (Fam::Anthropic, "anthropic", w.mock.url("")),
            (Fam::Gemini, "gemini", w.mock.url("")),
        ] {
            let mut ids = Vec::new();
            for n in ["a", "b"] {
                let name = twin(fam, &format!("full-{n}"));
                let config = json!({"api_key": format!("sk_full{n}"), "base_url": base});
                ids.push(id_of(
                    &w.app.credential(&w.user, ws, provider, &name, config).await,
                ));
            }
            let m = w
                .app
                .model(&w.user, ws, provider, &twin(fam, "full"), ids[0])
                .await;
            let entries: Vec<Value> = ids
                .iter()
                .map(|c| json!({"credential_id": c, "enabled": true, "rpm": 1}))
                .collect();
            w.app
                .put(
                    &TestApp::lb_path(ws, m["id"].as_str().unwrap()),
                    &w.user.token,
                    json!({"enabled": true, "entries": entries}),
                )
                .await
                .assert(200);
        }
        let into = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 60_000;
        if into > 40_000 {
            let left = u64::try_from(60_000 - into).unwrap() + 200;
            tokio::time::sleep(std::time::Duration::from_millis(left)).await;
        }
        for p in first_of_each_family() {
            for _ in 0..2 {
                p.req(&w.app, &w.key, &twin(p.family, "full"))
                    .send()
                    .await
                    .assert(200);
            }
        }
        // The keys' own limits, reached on a model of no pool (12 tokens a chat at the mock).
        let plain = w.cred("plain", "sk_plain").await;
        w.model("plain", "plain", plain).await;
        let (_, rate_key) = w
            .app
            .api_key_with(&w.user, ws, json!({"name": "rate", "rpm": 1}))
            .await;
        let (_, spent_key) = w
            .app
            .api_key_with(
                &w.user,
                ws,
                json!({"name": "spent", "monthly_token_budget": 1}),
            )
            .await;
        for key in [&rate_key, &spent_key] {
            w.app.chat(key, "plain").await.assert(200);
        }
        Cap {
            app: w.app.clone(),
            key: w.key.clone(),
            rate_key,
            spent_key,
        }
    }
}

/// Every proxied endpoint's 429 `all_credentials_at_capacity`, against [`Cap`].
pub(super) fn capacity_cases() -> Vec<Case<Cap>> {
    let mut cases: Vec<Case<Cap>> = Vec::new();
    for p in PROXIED.iter() {
        cases.push(Case {
            method: "POST",
            path: p.path,
            status: 429,
            code: "all_credentials_at_capacity",
            build: Box::new(move |c: &Cap| p.req(&c.app, &c.key, &twin(p.family, "full"))),
            check: Some(has_retry_after),
        });
        cases.push(Case {
            method: "POST",
            path: p.path,
            status: 429,
            code: "api_key_rate_limited",
            build: Box::new(move |c: &Cap| p.req(&c.app, &c.rate_key, &twin(p.family, "full"))),
            check: Some(has_retry_after),
        });
        cases.push(Case {
            method: "POST",
            path: p.path,
            status: 429,
            code: "api_key_budget_exceeded",
            build: Box::new(move |c: &Cap| p.req(&c.app, &c.spent_key, &twin(p.family, "full"))),
            check: Some(told_not_to_retry),
        });
    }
    cases
}

/// `x-should-retry: false`: the official SDKs give up at once.
fn told_not_to_retry(r: &Resp) -> Result<(), String> {
    match r
        .headers
        .get("x-should-retry")
        .and_then(|v| v.to_str().ok())
    {
        Some("false") => Ok(()),
        other => Err(format!("x-should-retry {other:?}")),
    }
}
