//! The usage ledger (DESIGN §15): what the gateway served, per API key, model, credential and
//! day, exactly as the usage API reports it (JSON and CSV), across replicas and restarts.

use crate::helpers::*;
use reqwest::Method;
use rotor_tests::mock::MockKey;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// (api key, model, credential) → [requests, errors, input, output, cached].
type Expected = BTreeMap<(String, String, String), [i64; 5]>;

fn add(exp: &mut Expected, key: Uuid, model: &str, cred: Option<Uuid>, counts: [i64; 5]) {
    let cred = cred.map(|c| c.to_string()).unwrap_or_default();
    let row = exp
        .entry((key.to_string(), model.to_owned(), cred))
        .or_default();
    for (a, b) in row.iter_mut().zip(counts) {
        *a += b;
    }
}

/// The rows of a `group_by=api_key,model,credential` report in the shape of [`Expected`].
fn rows_of(body: &Value) -> Expected {
    let mut out = Expected::new();
    for r in body["data"].as_array().unwrap() {
        let s = |f: &str| r[f].as_str().unwrap_or_default().to_owned();
        let n = |f: &str| r[f].as_i64().unwrap();
        let key = (s("api_key_id"), s("model"), s("credential_id"));
        let counts = [
            n("requests"),
            n("errors"),
            n("input_tokens"),
            n("output_tokens"),
            n("cached_input_tokens"),
        ];
        assert!(out.insert(key, counts).is_none(), "duplicate row {r}");
    }
    out
}

/// Polls `GET …/usage?{query}` until `done` holds for the body (the ledger is written every
/// 5 s); the last body either way.
async fn usage_until(
    app: &TestApp,
    token: &str,
    ws: Uuid,
    query: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = app
            .get(&format!("/api/v1/workspaces/{ws}/usage?{query}"), token)
            .await;
        r.assert(200);
        if done(&r.body) || Instant::now() > deadline {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

const BY_ALL: &str = "group_by=api_key,model,credential,day";

/// A chat-completion stream that reports its usage (5 in, 3 out at the mock).
async fn openai_stream(app: &TestApp, key: &str, model: &str) -> Resp {
    let body = json!({"model": model, "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "hi"}]});
    let r = app
        .req(Method::POST, "/v1/chat/completions")
        .bearer(key)
        .json(body)
        .send()
        .await;
    r.assert(200);
    assert!(r.text.contains("\"usage\""), "{}", r.text);
    r
}

/// An Anthropic message, streamed or not.
async fn anthropic(app: &TestApp, key: &str, model: &str, stream: bool) -> Resp {
    let body = json!({"model": model, "max_tokens": 16, "stream": stream,
                      "messages": [{"role": "user", "content": "hi"}]});
    let r = app
        .req(Method::POST, "/v1/messages")
        .header("x-api-key", key)
        .json(body)
        .send()
        .await;
    r.assert(200);
    r
}

#[tokio::test]
async fn usage_rows_per_key_model_credential_and_day_match_what_was_served() {
    let w = World::licensed().await;
    let app = &w.app;
    let (key2_id, key2) = app.api_key(&w.user, w.ws(), "second").await;
    let creds = w.creds(["sk_a", "sk_b"]).await;
    w.pooled_model("gpt", &creds, 60).await;
    w.model_of(
        "openai_compatible",
        "emb",
        "emb",
        "text-embedding",
        creds[0],
    )
    .await;
    let bad = w.cred("bad", MockKey::new("sk_x").status(400)).await;
    w.model("bad", "bad", bad).await;
    let hot = vec![
        w.cred("hot-1", MockKey::new("sk_h1").status(429).retry_after(60))
            .await,
        w.cred("hot-2", MockKey::new("sk_h2").status(429).retry_after(60))
            .await,
    ];
    w.pooled_model("hot", &hot, 60).await;
    let ant = app
        .credential(
            &w.user,
            w.ws(),
            "anthropic",
            "claude-key",
            json!({"api_key": "sk-ant-0123456789abcdef", "base_url": w.mock.url("")}),
        )
        .await;
    let ant = id_of(&ant);
    w.model_of("anthropic", "claude", "claude-up", "llm", ant)
        .await;
    let mut exp = Expected::new();

    // Two chats through the pool (one per credential), and a stream that reports its usage.
    for _ in 0..2 {
        let r = w.chat("gpt").await;
        r.assert(200);
        add(&mut exp, w.key_id, "gpt", r.credential(), [1, 0, 5, 7, 0]);
    }
    let r = openai_stream(app, &w.key, "gpt").await;
    add(&mut exp, w.key_id, "gpt", r.credential(), [1, 0, 5, 3, 0]);
    // Embeddings with the second key.
    for _ in 0..2 {
        let r = app
            .req(Method::POST, "/v1/embeddings")
            .bearer(&key2)
            .json(json!({"model": "emb", "input": "hi"}))
            .send()
            .await;
        r.assert(200);
        add(&mut exp, key2_id, "emb", Some(creds[0]), [1, 0, 3, 0, 0]);
    }
    // A provider's 400 is an error of its credential.
    app.chat(&key2, "bad").await.assert(400);
    add(&mut exp, key2_id, "bad", Some(bad), [1, 1, 0, 0, 0]);
    // Both hot keys answer 429 (relayed from the last), then Rotor refuses by itself.
    let r = w.chat("hot").await;
    r.assert(429);
    add(&mut exp, w.key_id, "hot", r.credential(), [1, 1, 0, 0, 0]);
    w.chat("hot")
        .await
        .assert_openai_error(429, "all_credentials_cooling_down");
    add(&mut exp, w.key_id, "hot", None, [1, 1, 0, 0, 0]);
    // Anthropic: input 5 + cache writes 11 + cache reads 13, of which 13 cached.
    anthropic(app, &key2, "claude", false).await;
    add(&mut exp, key2_id, "claude", Some(ant), [1, 0, 29, 7, 13]);
    let r = anthropic(app, &key2, "claude", true).await;
    assert!(r.text.contains("message_stop"), "{}", r.text);
    add(&mut exp, key2_id, "claude", Some(ant), [1, 0, 29, 3, 13]);
    // Refused before a route resolves: not counted.
    app.chat(&key2, "no-such-model").await.assert(404);
    app.chat("rk-not-a-key", "gpt").await.assert(401);

    let body = usage_until(app, &w.user.token, w.ws(), BY_ALL, |b| rows_of(b) == exp).await;
    assert_eq!(rows_of(&body), exp, "{body}");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    for row in body["data"].as_array().unwrap() {
        assert_eq!(row["day"], today.as_str());
        assert!(row["cost_usd"].is_null(), "no prices: {row}");
        let key_name = if row["api_key_id"] == w.key_id.to_string() {
            "app"
        } else {
            "second"
        };
        assert_eq!(row["api_key_name"], key_name);
        match row["credential_id"].as_str() {
            None => assert!(row["credential_name"].is_null(), "{row}"),
            Some(_) => assert!(row["credential_name"].is_string(), "{row}"),
        }
    }

    // The same report as CSV: a header row, then the same numbers.
    let r = app
        .get(&w.w(&format!("/usage?{BY_ALL}&format=csv")), &w.user.token)
        .await;
    r.assert(200);
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    let mut lines = r.text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        header,
        [
            "api_key_id",
            "api_key_name",
            "model",
            "credential_id",
            "credential_name",
            "day",
            "requests",
            "errors",
            "input_tokens",
            "output_tokens",
            "cached_input_tokens",
            "cost_usd"
        ]
    );
    let mut from_csv = Expected::new();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let n = |i: usize| cells[i].parse::<i64>().unwrap();
        let key = (
            cells[0].to_owned(),
            cells[2].to_owned(),
            cells[3].to_owned(),
        );
        from_csv.insert(key, [n(6), n(7), n(8), n(9), n(10)]);
        assert_eq!(cells[5], today);
    }
    assert_eq!(from_csv, exp);

    // Grouped by day alone (the default): one row, the sums.
    let r = app.get(&w.w("/usage"), &w.user.token).await;
    r.assert(200);
    let rows = r.body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{}", r.body);
    let requests: i64 = exp.values().map(|c| c[0]).sum();
    assert_eq!(rows[0]["requests"], requests);
    assert_eq!(rows[0]["day"], today.as_str());
    assert!(rows[0].get("api_key_id").is_none());
}

#[tokio::test]
async fn usage_costs_follow_the_model_prices() {
    let w = World::new(&[]).await;
    let c = w.cred("c", "sk_a").await;
    let r = w
        .app
        .post(
            &w.w("/models"),
            &w.user.token,
            json!({"provider": "openai_compatible", "name": "priced", "model_type": "llm",
                   "credential_id": c, "input_usd_per_mtok": 2.5, "output_usd_per_mtok": 10}),
        )
        .await;
    r.assert(201);
    assert_eq!(r.body["input_usd_per_mtok"], 2.5);
    assert_eq!(r.body["output_usd_per_mtok"], 10.0);
    let priced = id_of(&r.body);
    w.model("free", "free", c).await;
    for _ in 0..3 {
        w.chat("priced").await.assert(200);
    }
    w.chat("free").await.assert(200);
    let done = |b: &Value| b["data"].as_array().is_some_and(|d| d.len() == 2);
    let body = usage_until(&w.app, &w.user.token, w.ws(), "group_by=model", done).await;
    let rows = body["data"].as_array().unwrap();
    let row = |m: &str| rows.iter().find(|r| r["model"] == m).unwrap().clone();
    // 15 input tokens at $2.5 and 21 output tokens at $10 per million.
    assert_eq!(
        row("priced")["cost_usd"].as_f64(),
        Some(0.0002475),
        "{body}"
    );
    assert!(row("free")["cost_usd"].is_null(), "{body}");
    // A row over both models sums what is priced.
    let r = w.app.get(&w.w("/usage"), &w.user.token).await;
    assert_eq!(r.body["data"][0]["cost_usd"].as_f64(), Some(0.0002475));

    // PATCH changes a price (audited); the report uses the current one.
    let path = w.w(&format!("/models/{priced}"));
    let r = w
        .app
        .patch(&path, &w.user.token, json!({"input_usd_per_mtok": 1}))
        .await;
    r.assert(200);
    assert_eq!(r.body["input_usd_per_mtok"], 1.0);
    assert_eq!(r.body["output_usd_per_mtok"], 10.0);
    let body = usage_until(&w.app, &w.user.token, w.ws(), "group_by=model", done).await;
    let priced_row = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["model"] == "priced")
        .unwrap()
        .clone();
    assert_eq!(priced_row["cost_usd"].as_f64(), Some(0.000225));
    let audit = w.app.get(&w.w("/audit-events"), &w.user.token).await;
    let updated = &audit.body["data"][0];
    assert_eq!(updated["action"], "model.updated");
    assert_eq!(updated["details"]["input_usd_per_mtok"]["from"], 2.5);
    assert_eq!(updated["details"]["input_usd_per_mtok"]["to"], 1.0);

    // Out-of-range prices are refused, naming the field; null removes a price.
    for bad in [json!(-1), json!(1e9), json!("cheap")] {
        let r = w
            .app
            .patch(&path, &w.user.token, json!({"output_usd_per_mtok": bad}))
            .await;
        r.assert(422);
    }
    let r = w
        .app
        .patch(&path, &w.user.token, json!({"output_usd_per_mtok": -1}))
        .await;
    assert!(
        r.body["error"]["details"]["fields"]["output_usd_per_mtok"].is_string(),
        "{}",
        r.body
    );
    let r = w
        .app
        .patch(&path, &w.user.token, json!({"output_usd_per_mtok": null}))
        .await;
    r.assert(200);
    assert!(r.body["output_usd_per_mtok"].is_null());
    assert_eq!(r.body["input_usd_per_mtok"], 1.0);
}

#[tokio::test]
async fn usage_sums_exactly_across_two_replicas_of_one_database() {
    let w = World::new(&[]).await;
    let b = spawn_app_on(&w.app.database_url, &[]).await;
    let c = w.cred("c", "sk_a").await;
    w.model("gpt", "gpt", c).await;
    for _ in 0..3 {
        w.chat("gpt").await.assert(200);
    }
    for _ in 0..4 {
        b.chat(&w.key, "gpt").await.assert(200);
    }
    let done = |b: &Value| b["data"][0]["requests"] == 7;
    let body = usage_until(&w.app, &w.user.token, w.ws(), "group_by=model", done).await;
    let row = &body["data"][0];
    assert_eq!(row["requests"], 7, "{body}");
    assert_eq!(row["input_tokens"], 35);
    assert_eq!(row["output_tokens"], 49);
    // Either replica answers the same sums.
    let r = b.get(&w.w("/usage?group_by=model"), &w.user.token).await;
    assert_eq!(r.body, body);
}

#[tokio::test]
async fn usage_of_requests_just_before_a_sigterm_survives_the_restart() {
    let database_url = fresh_database().await;
    let vars = vec![
        ("DATABASE_URL", database_url.clone()),
        ("ROTOR_MASTER_KEY", master_key(3)),
        ("ROTOR_JWT_SECRET", JWT_SECRET.to_owned()),
        ("ROTOR_SIGNUP", "open".to_owned()),
        ("ROTOR_UPSTREAM_ALLOW", "127.0.0.0/8".to_owned()),
    ];
    let mut rotor = RotorProcess::start(&vars).await;
    let w = World::on(&rotor.app(&database_url).await).await;
    let c = w.cred("c", "sk_a").await;
    w.model("gpt", "gpt", c).await;
    for _ in 0..3 {
        w.chat("gpt").await.assert(200);
    }
    // Well within the 5 s flush interval: only the shutdown flush can have written these.
    assert!(rotor.terminate().success());
    let again = RotorProcess::start(&vars).await;
    let app = again.app(&database_url).await;
    let r = app.get(&w.w("/usage?group_by=model"), &w.user.token).await;
    r.assert(200);
    assert_eq!(r.body["data"][0]["requests"], 3, "{}", r.body);
    assert_eq!(r.body["data"][0]["output_tokens"], 21);
}

#[tokio::test]
async fn usage_queries_are_checked_readable_by_every_member_and_scoped() {
    let w = World::new(&[]).await;
    let bad = [
        ("from=yesterday", "from"),
        ("from=2026-01-01T00:00:00Z&to=2026-06-01T00:00:00Z", "to"),
        ("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("group_by=week", "group_by"),
        ("group_by=day,", "group_by"),
        ("format=xml", "format"),
    ];
    for (query, field) in bad {
        let r = w
            .app
            .get(&w.w(&format!("/usage?{query}")), &w.user.token)
            .await;
        r.assert(422);
        assert_eq!(r.body["error"]["code"], "validation_failed");
        assert!(
            r.body["error"]["details"]["fields"][field].is_string(),
            "{query}: {}",
            r.body
        );
    }
    let ok = "from=2026-01-01T00:00:00Z&to=2026-04-03T00:00:00Z&group_by=hour";
    let r = w
        .app
        .get(&w.w(&format!("/usage?{ok}")), &w.user.token)
        .await;
    r.assert(200);
    assert_eq!(r.body["data"], json!([]));

    // The lowest role reads it; another tenant cannot tell the workspace exists.
    let member = w.app.user("normal").await;
    w.app.add_member(&w.user, w.ws(), &member, "normal").await;
    w.app.get(&w.w("/usage"), &member.token).await.assert(200);
    let stranger = w.app.user("stranger").await;
    let r = w.app.get(&w.w("/usage"), &stranger.token).await;
    r.assert_error(404, "not_found");
}

#[tokio::test]
async fn usage_older_than_the_retention_is_deleted() {
    let w = World::new(&[]).await;
    let insert = "INSERT INTO usage_minutes (workspace_id, minute, api_key_id, model_id, \
                  credential_id, model_name, requests) VALUES ($1, $2, $3, $3, $3, 'old', 1)";
    for days in [500, 10] {
        sqlx::query(insert)
            .bind(w.ws())
            .bind(chrono::Utc::now() - chrono::Duration::days(days))
            .bind(Uuid::new_v4())
            .execute(&w.app.db)
            .await
            .unwrap();
    }
    // A server starting on the database sweeps at once.
    let _sweeper = spawn_app_on(&w.app.database_url, &[("ROTOR_USAGE_RETENTION_DAYS", "30")]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while w.app.count("usage_minutes").await != 1 {
        assert!(Instant::now() < deadline, "the old row was not deleted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_92_day_report_over_a_busy_workspace_answers_within_200_ms() {
    let w = World::new(&[]).await;
    // A busy workspace: 20 keys × 10 models every hour of 92 days (442k hourly rows, their daily
    // rollup), the minutes of the range's first hour, and another workspace's rows alongside.
    let seed = "INSERT INTO usage_hours (workspace_id, hour, api_key_id, model_id, credential_id, \
                  model_name, requests, errors, input_tokens, output_tokens, cached_input_tokens) \
                SELECT $1, date_trunc('hour', now()) - make_interval(hours => h), \
                  md5('k' || k)::uuid, md5('m' || m)::uuid, md5('c' || m)::uuid, 'model-' || m, \
                  3, 1, 500, 200, 50 \
                FROM generate_series(1, 2208) h, generate_series(1, 20) k, generate_series(1, 10) m";
    let other = Uuid::new_v4();
    sqlx::query("INSERT INTO workspaces (id, name) VALUES ($1, 'other')")
        .bind(other)
        .execute(&w.app.db)
        .await
        .unwrap();
    for ws in [w.ws(), other] {
        sqlx::query(seed).bind(ws).execute(&w.app.db).await.unwrap();
    }
    let minutes = "INSERT INTO usage_minutes (workspace_id, minute, api_key_id, model_id, \
                     credential_id, model_name, requests) \
                   SELECT $1, date_trunc('hour', now()) - make_interval(hours => 2208, mins => -mi), \
                     md5('k' || k)::uuid, md5('m1')::uuid, md5('c1')::uuid, 'model-1', 1 \
                   FROM generate_series(0, 59) mi, generate_series(1, 20) k";
    sqlx::query(minutes)
        .bind(w.ws())
        .execute(&w.app.db)
        .await
        .unwrap();
    // The writer keeps the daily rollup of the same counts.
    sqlx::query(
        "INSERT INTO usage_days (workspace_id, day, api_key_id, model_id, credential_id, \
           model_name, requests, errors, input_tokens, output_tokens, cached_input_tokens) \
         SELECT workspace_id, date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', \
           api_key_id, model_id, credential_id, min(model_name), sum(requests), sum(errors), \
           sum(input_tokens), sum(output_tokens), sum(cached_input_tokens) \
         FROM usage_hours GROUP BY 1, 2, 3, 4, 5",
    )
    .execute(&w.app.db)
    .await
    .unwrap();
    for table in ["usage_hours", "usage_minutes", "usage_days"] {
        sqlx::query(&format!("ANALYZE {table}"))
            .execute(&w.app.db)
            .await
            .unwrap();
    }
    let to = chrono::Utc::now();
    let from = to - chrono::Duration::days(92);
    let query = format!(
        "/usage?from={}&to={}&group_by=model,day",
        from.format("%Y-%m-%dT%H:%M:%SZ"),
        to.format("%Y-%m-%dT%H:%M:%SZ")
    );
    let mut best = Duration::MAX;
    let mut body = Value::Null;
    for _ in 0..3 {
        let started = Instant::now();
        let r = w.app.get(&w.w(&query), &w.user.token).await;
        best = best.min(started.elapsed());
        r.assert(200);
        body = r.body;
    }
    let rows = body["data"].as_array().unwrap();
    assert!(
        rows.len() >= 10 * 92,
        "every model, every day: {}",
        rows.len()
    );
    let requests: i64 = rows.iter().map(|r| r["requests"].as_i64().unwrap()).sum();
    assert!(
        requests >= 3 * 20 * 10 * 2200,
        "{requests}: this workspace's rows only, summed"
    );
    assert!(
        requests < 2 * 3 * 20 * 10 * 2208,
        "another workspace's rows are not in it"
    );
    assert!(
        best < Duration::from_millis(200),
        "92 days answered in {best:?}"
    );
}
