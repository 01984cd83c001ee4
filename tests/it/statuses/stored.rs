//! The requests about one stored OpenAI response (retrieve, delete, cancel, input items),
//! which go to the credential that created it: every documented status of each, against
//! responses created through Rotor whose credential was then changed to answer as the
//! scenario needs (or left the pool).

use super::*;

/// The responses the scenarios ask about, by what happens to them.
pub(super) struct Stored {
    /// Answers: read and listed.
    ok: String,
    /// Answers: deleted.
    doomed: String,
    /// Created in the background: cancelled.
    background: String,
    /// Its credential is no longer the model's.
    gone: String,
    /// Its credential is cooling down in its pool.
    cooling: String,
    /// Its credential's key is now refused by the provider.
    rejected: String,
    /// Its credential's server is now unreachable.
    unreachable: String,
    /// Its credential now answers too late.
    slow: String,
}

/// The paths, each with the method and the rest of the path after the id.
const PATHS: [(&str, &str, &str); 4] = [
    ("GET", "/v1/responses/{id}", ""),
    ("DELETE", "/v1/responses/{id}", ""),
    ("POST", "/v1/responses/{id}/cancel", "/cancel"),
    ("GET", "/v1/responses/{id}/input_items", "/input_items"),
];

/// Creates a response of `model` through Rotor; returns its id and the credential that
/// served it.
async fn create(main: &TestApp, key: &str, model: &str, background: bool) -> (String, Uuid) {
    let r = call(main, "POST", "/v1/responses")
        .bearer(key)
        .json(json!({"model": model, "input": "hi", "background": background}))
        .send()
        .await;
    r.assert(200);
    let id = r.body["id"].as_str().expect("a response id").to_owned();
    (id, r.credential().expect("the serving credential"))
}

async fn patch_credential(main: &TestApp, owner: &TestUser, credential: Uuid, config: Value) {
    let path = format!(
        "/api/v1/workspaces/{}/credentials/{credential}",
        owner.workspace
    );
    main.patch(&path, &owner.token, json!({"config": config}))
        .await
        .assert(200);
}

/// Sets up the responses of [`Stored`] in `owner`'s workspace; `other` is a credential the
/// `gone` model switches to.
pub(super) async fn setup(
    main: &TestApp,
    owner: &TestUser,
    key: &str,
    mock_url: &str,
    other: Uuid,
) -> Stored {
    let ws = owner.workspace;
    let cred = |name: &'static str| async move {
        let key = MockKey::new(format!("sk_{name}")).to_string();
        main.compatible_credential(owner, ws, name, &key, mock_url)
            .await
    };
    let model = |name: &'static str, credential: Uuid| async move {
        id_of(
            &main
                .model(owner, ws, "openai_compatible", name, credential)
                .await,
        )
    };
    let ok_cred = cred("r-ok").await;
    model("r-ok", ok_cred).await;
    let (ok, _) = create(main, key, "r-ok", false).await;
    let (doomed, _) = create(main, key, "r-ok", false).await;
    let (background, _) = create(main, key, "r-ok", true).await;

    let gone_cred = cred("r-gone").await;
    let gone_model = model("r-gone", gone_cred).await;
    let (gone, _) = create(main, key, "r-gone", false).await;
    main.patch(
        &format!("/api/v1/workspaces/{ws}/models/{gone_model}"),
        &owner.token,
        json!({"credential_id": other}),
    )
    .await
    .assert(200);

    // A pool whose heavier credential creates the response, then answers 429 for a minute.
    let (hot, spare) = (cred("r-hot").await, cred("r-spare").await);
    let pool = model("r-cool", hot).await;
    main.put(
        &TestApp::lb_path(ws, &pool.to_string()),
        &owner.token,
        json!({"enabled": true, "cooldown_seconds": 60,
               "entries": [{"credential_id": hot, "weight": 100}, {"credential_id": spare}]}),
    )
    .await
    .assert(200);
    let (cooling, by) = create(main, key, "r-cool", false).await;
    assert_eq!(by, hot, "the heavier credential serves first");
    let limited = MockKey::new("sk_r_hot_limited").status(429).retry_after(60);
    patch_credential(main, owner, hot, json!({"api_key": limited.to_string()})).await;
    let first = call(main, "GET", format!("/v1/responses/{cooling}"))
        .bearer(key)
        .send()
        .await;
    first.assert(429);

    let mut changed = Vec::new();
    for (name, config) in [
        (
            "r-rejected",
            json!({"api_key": MockKey::new("sk_r_401").status(401).to_string()}),
        ),
        (
            "r-unreachable",
            json!({"base_url": format!("http://127.0.0.1:{}/v1", free_port()),
                   // Moving a credential takes its secret again.
                   "api_key": MockKey::new("sk_r-unreachable").to_string()}),
        ),
        (
            "r-slow",
            json!({"api_key": MockKey::new("sk_r_slow").delay_ms(6000).to_string()}),
        ),
    ] {
        let c = cred(name).await;
        model(name, c).await;
        let (id, _) = create(main, key, name, false).await;
        patch_credential(main, owner, c, config).await;
        changed.push(id);
    }
    let [rejected, unreachable, slow] = <[String; 3]>::try_from(changed).unwrap();
    Stored {
        ok,
        doomed,
        background,
        gone,
        cooling,
        rejected,
        unreachable,
        slow,
    }
}

/// `method path` with `id` in it, as `key`.
fn about(f: &Fx, key: &str, method: &str, tail: &str, id: &str) -> Req {
    call(&f.main, method, format!("/v1/responses/{id}{tail}")).bearer(key)
}

/// Every documented status of every path about a stored response.
pub(super) fn live_cases() -> Vec<Case<Fx>> {
    let mut cases = Vec::new();
    for (method, path, tail) in PATHS {
        let on = move |pick: fn(&Stored) -> &String| {
            move |f: &Fx| about(f, &f.key, method, tail, pick(&f.stored))
        };
        let success: fn(&Stored) -> &String = match (method, tail) {
            ("DELETE", _) => |s| &s.doomed,
            (_, "/cancel") => |s| &s.background,
            _ => |s| &s.ok,
        };
        cases.push(live(method, path, 200, "", on(success)));
        cases.push(live(method, path, 401, "invalid_api_key", move |f| {
            about(f, "rk-not-a-key", method, tail, &f.stored.ok)
        }));
        cases.push(live(method, path, 403, "model_not_allowed", move |f| {
            about(f, &f.restricted_key, method, tail, &f.stored.ok)
        }));
        cases.push(live(method, path, 404, "response_not_found", move |f| {
            about(f, &f.key, method, tail, "resp_never_relayed")
        }));
        cases.push(live(
            method,
            path,
            404,
            "response_credential_gone",
            on(|s| &s.gone),
        ));
        cases.push(
            live(
                method,
                path,
                429,
                "all_credentials_cooling_down",
                on(|s| &s.cooling),
            )
            .then(has_retry_after),
        );
        cases.push(live(
            method,
            path,
            502,
            "upstream_credential_rejected",
            on(|s| &s.rejected),
        ));
        cases.push(live(
            method,
            path,
            502,
            "upstream_unavailable",
            on(|s| &s.unreachable),
        ));
        cases.push(live(method, path, 504, "upstream_timeout", on(|s| &s.slow)));
    }
    cases
}

/// The continuation of a response whose credential left the model's pool.
pub(super) fn continuation_cases() -> Vec<Case<Fx>> {
    vec![live(
        "POST",
        "/v1/responses",
        404,
        "response_credential_gone",
        |f| {
            call(&f.main, "POST", "/v1/responses").bearer(&f.key).json(
                json!({"model": "r-gone", "input": "more", "previous_response_id": f.stored.gone}),
            )
        },
    )]
}

/// Creates a response on the outage server before its database stops (its credential at
/// `mock_url`); returns its id.
pub(super) async fn before_outage(
    app: &TestApp,
    user: &TestUser,
    key: &str,
    mock_url: &str,
) -> String {
    let c = app
        .compatible_credential(user, user.workspace, "r", "sk_r", mock_url)
        .await;
    app.model(user, user.workspace, "openai_compatible", "r", c)
        .await;
    create(app, key, "r", false).await.0
}

/// The 503 of every path about a stored response with the database down.
pub(super) fn outage_cases() -> Vec<Case<Down>> {
    PATHS
        .iter()
        .map(|&(method, path, tail)| {
            down(method, path, move |d| {
                d.anon(method, format!("/v1/responses/{}{tail}", d.response))
                    .bearer(&d.key)
            })
        })
        .collect()
}
