//! Each family's official Python SDK (`openai`, `anthropic`, `google-genai`) through Rotor
//! with only its base URL changed (tests/it/python/rotor_*.py): plain and streamed calls
//! through a weighted pool of three credentials, the provider's name for the model, each
//! family's rate-limit signal cooling exactly the credential that sent it, failover the SDK
//! never sees, Rotor's own errors raised as the SDK's own exception classes, a stream broken
//! mid-way raised, and the tokens the SDK saw counted in `/metrics`. The test reads what the
//! mock provider got: which key, which model, which headers.

use crate::helpers::*;
use rotor_tests::mock::{MockKey, Recorded};
use serde_json::{json, Value};
use std::collections::HashMap;
use uuid::Uuid;

/// One family as the test sets it up.
struct Fam {
    /// Catalogue id of the provider the models use.
    provider: &'static str,
    /// The script under tests/it/python.
    script: &'static str,
    /// The mock's base URL's path for this provider (`/v1` for OpenAI's shapes).
    base_path: &'static str,
    /// The provider's name for the pooled model.
    upstream: &'static str,
    /// The header the provider's key goes in, and its prefix there.
    key_header: (&'static str, &'static str),
    /// A key that answers 429 with the family's reset signal, cooling it about 40 s.
    hot: fn(MockKey) -> MockKey,
    /// A key the family's failover must skip (500, 529, API_KEY_INVALID).
    flaky: fn(MockKey) -> MockKey,
    /// The seconds `hot` announces.
    hot_for_s: u64,
    /// The SDK retries a 429 by default unless told not to (`x-should-retry: false`).
    retries: bool,
}

const OPENAI: Fam = Fam {
    provider: "openai_compatible",
    script: "rotor_openai.py",
    base_path: "/v1",
    upstream: "gpt-up",
    key_header: ("authorization", "Bearer "),
    hot: |k| k.status(429).reset_requests("40s"),
    flaky: |k| k.status(500),
    hot_for_s: 40,
    retries: true,
};

const ANTHROPIC: Fam = Fam {
    provider: "anthropic",
    script: "rotor_anthropic.py",
    base_path: "",
    upstream: "claude-up",
    key_header: ("x-api-key", ""),
    hot: |k| k.status(429).anthropic_reset(40),
    flaky: |k| k.status(529),
    hot_for_s: 40,
    retries: true,
};

const GEMINI: Fam = Fam {
    provider: "gemini",
    script: "rotor_genai.py",
    base_path: "",
    upstream: "gemini-up",
    key_header: ("x-goog-api-key", ""),
    hot: |k| k.status(429).gemini_retry_delay(37),
    flaky: |k| k.api_key_invalid(),
    hot_for_s: 37,
    retries: false,
};

/// What [`setup`] created.
struct Setup {
    /// The keys of `team`'s pool (weights 2, 1, 1).
    team: [String; 3],
    team_id: String,
    hot_key: String,
    flaky_key: String,
    hot_id: String,
    hot_cred: Uuid,
    ok_cred: Uuid,
    config: Value,
}

async fn cred(w: &World, f: &Fam, name: &str, key: &MockKey) -> Uuid {
    let config = json!({"api_key": key.to_string(), "base_url": w.mock.url(f.base_path)});
    id_of(
        &w.app
            .credential(&w.user, w.ws(), f.provider, name, config)
            .await,
    )
}

/// `team` (a pool of three, weighted 2:1:1, sent upstream as `f.upstream`), `hot` and
/// `overloaded`/`invalid`/`flaky` (a failing key weighted 3 before a good one), `cold` (two
/// keys answering 429), `broken` (its stream breaks after one event), `side` (one key), and
/// `stranger` (a model of another family).
async fn setup(w: &World, f: &Fam) -> Setup {
    let p = f.provider;
    let key = |label: &str| MockKey::new(format!("sk-{p}-{label}-0001"));
    let team_keys = [key("team-a"), key("team-b"), key("team-c")];
    let mut team = Vec::new();
    for (i, k) in team_keys.iter().enumerate() {
        team.push(cred(w, f, &format!("team-{i}"), k).await);
    }
    let team_id = w.model_of(p, "team", f.upstream, "llm", team[0]).await;
    w.pool(
        &team_id,
        &[(Some(team[0]), 2), (Some(team[1]), 1), (Some(team[2]), 1)],
        60,
    )
    .await;

    let ok = cred(w, f, "ok", &key("ok")).await;
    let hot_key = (f.hot)(key("hot"));
    let hot_cred = cred(w, f, "hot", &hot_key).await;
    let hot_id = w.model_of(p, "hot", f.upstream, "llm", hot_cred).await;
    // A short pool cooldown: the provider's longer reset decides.
    w.pool(&hot_id, &[(Some(hot_cred), 3), (Some(ok), 1)], 5)
        .await;
    let flaky_key = (f.flaky)(key("flaky"));
    let flaky = cred(w, f, "flaky", &flaky_key).await;
    let flaky_name = match f.provider {
        "anthropic" => "overloaded",
        "gemini" => "invalid",
        _ => "flaky",
    };
    let flaky_id = w.model_of(p, flaky_name, f.upstream, "llm", flaky).await;
    w.pool(&flaky_id, &[(Some(flaky), 3), (Some(ok), 1)], 60)
        .await;

    let cold_a = cred(w, f, "cold-a", &key("cold-a").status(429).retry_after(60)).await;
    let cold_b = cred(w, f, "cold-b", &key("cold-b").status(429).retry_after(60)).await;
    let cold_id = w.model_of(p, "cold", f.upstream, "llm", cold_a).await;
    w.pool(&cold_id, &[(Some(cold_a), 1), (Some(cold_b), 1)], 60)
        .await;
    let broken = cred(w, f, "broken", &key("broken").drop_after(1)).await;
    w.model_of(p, "broken", f.upstream, "llm", broken).await;
    let side = cred(w, f, "side", &key("side")).await;
    w.model_of(p, "side", &format!("{}-side", f.upstream), "llm", side)
        .await;
    let (stranger_provider, stranger_path) = match f.provider {
        "openai_compatible" => ("anthropic", ""),
        _ => ("openai_compatible", "/v1"),
    };
    let config = json!({"api_key": "sk-stranger-0001", "base_url": w.mock.url(stranger_path)});
    let stranger = w
        .app
        .credential(&w.user, w.ws(), stranger_provider, "stranger", config)
        .await;
    w.model_of(stranger_provider, "stranger", "x", "llm", id_of(&stranger))
        .await;

    Setup {
        team: team_keys.map(|k| k.to_string()),
        team_id,
        hot_key: hot_key.to_string(),
        flaky_key: flaky_key.to_string(),
        hot_id,
        hot_cred,
        ok_cred: ok,
        config: json!({"base": w.app.url(""), "key": w.key}),
    }
}

/// The requests the mock got with one of `keys`.
fn with_keys(w: &World, keys: &[String]) -> Vec<Recorded> {
    w.mock
        .requests()
        .into_iter()
        .filter(|r| r.key.as_ref().is_some_and(|k| keys.contains(k)))
        .collect()
}

/// The `rotor_tokens_total` of `model`, by kind, summed over its credentials.
async fn tokens(w: &World, model: &str) -> HashMap<String, f64> {
    let (status, text) = metrics_text(&w.app, None).await;
    assert_eq!(status, 200, "{text}");
    let ws = w.ws().to_string();
    ["prompt", "completion", "cache_read", "cache_write"]
        .into_iter()
        .map(|kind| {
            let labels = [
                ("workspace_id", ws.as_str()),
                ("model", model),
                ("kind", kind),
            ];
            (
                kind.to_owned(),
                samples(text.lines(), "rotor_tokens_total", &labels)
                    .iter()
                    .sum(),
            )
        })
        .collect()
}

/// Runs every scenario of `f`'s SDK script and checks what the mock and Rotor saw.
async fn through_rotor(f: &Fam) -> (World, Setup) {
    let w = World::licensed().await;
    let s = setup(&w, f).await;

    // Plain and streamed calls through the pool of three.
    let seen = run_sdk(f.script, "pool", s.config.clone()).await;
    let team = with_keys(&w, &s.team);
    assert_eq!(team.len(), 8, "{team:?}");
    let count = |k: &String| team.iter().filter(|r| r.key.as_ref() == Some(k)).count();
    assert_eq!(
        s.team.iter().map(count).collect::<Vec<_>>(),
        [4, 2, 2],
        "weighted 2:1:1 rotation"
    );
    let (header, prefix) = f.key_header;
    for r in &team {
        assert_eq!(r.model.as_deref(), Some(f.upstream), "{}", r.uri);
        let key = r.key.as_deref().unwrap_or_default();
        assert_eq!(r.header(header), Some(format!("{prefix}{key}").as_str()));
        for (name, value) in &r.headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            assert!(
                !value.contains(&w.key),
                "the client's key went upstream in {name}"
            );
        }
        assert!(
            !r.uri.contains(&w.key),
            "the client's key went upstream in {}",
            r.uri
        );
    }
    let counted = tokens(&w, "team").await;
    for (kind, n) in seen["tokens"].as_object().expect("the SDK's token totals") {
        let n = n.as_f64().unwrap();
        assert!(n > 0.0, "the SDK saw no {kind} tokens");
        assert_eq!(
            counted[kind], n,
            "{kind} tokens in /metrics vs what the SDK saw"
        );
    }

    // A 429 with the family's reset signal cools exactly that credential; failover (and a
    // failing key) stay invisible to the SDK.
    run_sdk(f.script, "failover", s.config.clone()).await;
    assert_eq!(with_keys(&w, std::slice::from_ref(&s.hot_key)).len(), 1);
    assert_eq!(with_keys(&w, std::slice::from_ref(&s.flaky_key)).len(), 1);
    let lb = w.lb(&s.hot_id).await;
    let status_of = |c: Uuid| {
        lb["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["credential_id"] == c.to_string())
            .map(|e| e["status"].clone())
            .unwrap()
    };
    let hot = status_of(s.hot_cred);
    assert_eq!(hot["state"], "cooling_down", "{lb}");
    let remaining = hot["cooldown_remaining_s"].as_u64().unwrap();
    assert!(
        (f.hot_for_s - 5..=f.hot_for_s).contains(&remaining),
        "cooling for the provider's {} s, not the pool's 5: {remaining}",
        f.hot_for_s
    );
    assert_eq!(status_of(s.ok_cred)["state"], "available", "{lb}");

    // Rotor's own errors as the SDK's exception classes, and a broken stream raised.
    run_sdk(f.script, "errors", s.config.clone()).await;
    if f.retries {
        // A spent budget: the SDK with its default retries asks once.
        let (_, spent) = w
            .app
            .api_key_with(
                &w.user,
                w.ws(),
                json!({"name": "spent", "monthly_token_budget": 1}),
            )
            .await;
        // Spent on an OpenAI-shaped model of the workspace: a budget spans the key's models.
        let c = w.cred("spender", "sk_spender").await;
        w.model("spender", "spender", c).await;
        w.app.chat(&spent, "spender").await.assert(200);
        let refusals = || async {
            let (_, text) = metrics_text(&w.app, None).await;
            let n = samples(
                text.lines(),
                "rotor_api_key_refusals_total",
                &[("reason", "budget_exceeded")],
            );
            n.first().copied().unwrap_or(0.0)
        };
        let before = refusals().await;
        let mut config = s.config.clone();
        config["spent_key"] = json!(spent);
        run_sdk(f.script, "budget", config).await;
        assert_eq!(refusals().await - before, 1.0, "the SDK did not retry");
    }
    let _ = &s.team_id;
    (w, s)
}

#[tokio::test]
async fn openai_sdk_through_rotor() {
    let (w, _) = through_rotor(&OPENAI).await;
    // A mixed pool: an openai key, an Azure deployment and a compatible server, each with
    // its own name for the model.
    let base = w.mock.url("/v1");
    let mk = |provider: &'static str, name: &'static str, config: Value| {
        let w = &w;
        async move {
            id_of(
                &w.app
                    .credential(&w.user, w.ws(), provider, name, config)
                    .await,
            )
        }
    };
    let oa = mk(
        "openai",
        "mixed-oa",
        json!({"api_key": "sk-mixed-oa-0001", "base_url": base}),
    )
    .await;
    let az = mk(
        "azure_openai",
        "mixed-az",
        json!({"api_key": "sk-mixed-az-0001", "endpoint": w.mock.url(""), "api_version": "2024-06-01"}),
    )
    .await;
    let compat = mk(
        "openai_compatible",
        "mixed-compat",
        json!({"api_key": "sk-mixed-compat-0001", "base_url": base}),
    )
    .await;
    let mixed = w.model_of("openai", "mixed", "gpt-mixed", "llm", oa).await;
    let r = w
        .app
        .put(
            &w.lb_path(&mixed),
            &w.user.token,
            json!({"enabled": true, "entries": [
                {"credential_id": oa},
                {"credential_id": az, "upstream_model": "dep-az"},
                {"credential_id": compat, "upstream_model": "gpt-compat"}]}),
        )
        .await;
    r.assert(200);
    w.mock.reset();
    run_sdk(
        OPENAI.script,
        "mixed",
        json!({"base": w.app.url(""), "key": w.key}),
    )
    .await;
    let seen: Vec<(String, String, String)> = w
        .mock
        .requests()
        .iter()
        .map(|r| {
            (
                r.key.clone().unwrap_or_default(),
                r.model.clone().unwrap_or_default(),
                r.path.clone(),
            )
        })
        .collect();
    let expected = [
        ("sk-mixed-oa-0001", "gpt-mixed", "/v1/chat/completions"),
        (
            "sk-mixed-az-0001",
            "dep-az",
            "/openai/deployments/dep-az/chat/completions",
        ),
        ("sk-mixed-compat-0001", "gpt-compat", "/v1/chat/completions"),
    ];
    assert_eq!(seen.len(), 6, "{seen:?}");
    for (i, got) in seen.iter().enumerate() {
        let (k, m, p) = expected[i % 3];
        assert_eq!(
            (got.0.as_str(), got.1.as_str(), got.2.as_str()),
            (k, m, p),
            "{seen:?}"
        );
    }
}

#[tokio::test]
async fn openai_sdk_reaches_every_openai_endpoint_through_a_pool() {
    let w = World::licensed().await;
    let keys = ["sk-endpoints-a-0001", "sk-endpoints-b-0002"];
    let c = w.creds(keys).await;
    let team = w.model("team", "up-model", c[0]).await;
    w.pool(&team, &[(Some(c[0]), 1), (Some(c[1]), 1)], 60).await;
    // A WAV header, a NUL and bytes that are not UTF-8: the upload must arrive unchanged.
    let audio: Vec<u8> =
        b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\xff\xfe\r\n--x\r\n".to_vec();
    let latin1: String = audio.iter().map(|b| char::from(*b)).collect();
    let config = json!({"base": w.app.url(""), "key": w.key, "audio": latin1});
    run_sdk(OPENAI.script, "endpoints", config).await;
    let seen = w.mock.requests();
    let paths: Vec<&str> = seen.iter().map(|r| r.path.as_str()).collect();
    for path in [
        "/v1/completions",
        "/v1/moderations",
        "/v1/images/generations",
        "/v1/audio/speech",
        "/v1/audio/transcriptions",
        "/v1/audio/translations",
    ] {
        assert!(paths.contains(&path), "{path} not reached: {paths:?}");
    }
    for r in &seen {
        assert_eq!(r.model.as_deref(), Some("up-model"), "{}", r.path);
    }
    let used: std::collections::HashSet<_> = seen.iter().filter_map(|r| r.key.clone()).collect();
    assert_eq!(used.len(), 2, "the pool rotated: {used:?}");
    for r in seen
        .iter()
        .filter(|r| r.path.starts_with("/v1/audio/trans"))
    {
        let file = r.form_field("file").expect("the file part");
        assert_eq!(&file.data[..], &audio[..], "the upload, byte for byte");
        assert_eq!(file.filename.as_deref(), Some("hello.wav"));
        assert_eq!(r.form_text("model"), Some("up-model"));
    }
}

#[tokio::test]
async fn anthropic_sdk_through_rotor() {
    let (w, s) = through_rotor(&ANTHROPIC).await;
    // The SDK's `anthropic-version` went upstream in place of Rotor's default.
    let team = with_keys(&w, &s.team);
    assert!(team.iter().all(|r| r.header("anthropic-version").is_some()));
    let versions: Vec<_> = team
        .iter()
        .filter_map(|r| r.header("anthropic-version"))
        .collect();
    assert!(versions.iter().any(|v| *v != "2023-06-01"), "{versions:?}");
    assert!(versions.contains(&"2023-06-01"), "{versions:?}");
    let side = w
        .mock
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/messages/count_tokens")
        .expect("count_tokens went upstream");
    assert_eq!(side.model.as_deref(), Some("claude-up-side"));
}

#[tokio::test]
async fn genai_sdk_through_rotor() {
    let (w, s) = through_rotor(&GEMINI).await;
    // Both API versions the SDK may use reached the provider as its own v1beta path.
    let team = with_keys(&w, &s.team);
    assert!(
        team.iter()
            .all(|r| r.path.starts_with("/v1beta/models/gemini-up:")),
        "{team:?}"
    );
    // batchEmbedContents: the path's model and every inner request's.
    let batch = w
        .mock
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with(":batchEmbedContents"))
        .expect("the SDK embeds through batchEmbedContents");
    assert_eq!(batch.model.as_deref(), Some("gemini-up-side"));
    assert_eq!(batch.inner_models, ["models/gemini-up-side"; 2]);
    // A key in `?key=` is Rotor's; the provider gets the credential's in its header, and no
    // query key.
    w.mock.reset();
    let r = w
        .app
        .req(
            reqwest::Method::POST,
            &format!("/v1beta/models/side:generateContent?key={}", w.key),
        )
        .json(json!({"contents": [{"parts": [{"text": "hi"}]}]}))
        .send()
        .await;
    r.assert(200);
    let got = w.mock.requests().pop().unwrap();
    assert_eq!(got.query, None, "{}", got.uri);
    assert_eq!(got.header("x-goog-api-key"), got.key.as_deref());
    assert!(got.key.is_some_and(|k| k.starts_with("sk-gemini-side")));
}
