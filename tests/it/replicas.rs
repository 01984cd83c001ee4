//! Several `rotor serve` processes on one Postgres and one Redis behave as one: one rotation,
//! one set of cooldowns, one view of the configuration; Redis going away fails open.

use crate::helpers::*;
use rotor_tests::mock::MockKey;
use serde_json::json;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Two replicas on one database and one Redis; the world (through replica A) has a pool of
/// credentials and an API key.
struct Cluster {
    w: World,
    /// Replicas A and B, stopped when the cluster is dropped.
    _processes: [RotorProcess; 2],
    /// Replica B, to call through.
    via_b: TestApp,
    model_path: String,
    creds: Vec<Uuid>,
}

fn vars(database_url: &str, redis_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", database_url.to_owned()),
        ("REDIS_URL", redis_url.to_owned()),
        ("ROTOR_MASTER_KEY", master_key(7)),
        ("ROTOR_JWT_SECRET", JWT_SECRET.to_owned()),
        ("ROTOR_LICENSE", lb_license()),
        ("ROTOR_SIGNUP", "open".to_owned()),
        ("ROTOR_UPSTREAM_ALLOW", "127.0.0.0/8".to_owned()),
    ]
}

/// Two replicas, a pool of credentials with `keys` at the world's mock (all enabled, weight 1;
/// the model `gpt`), and an API key.
async fn cluster(redis_url: &str, keys: &[&str]) -> Cluster {
    let database_url = fresh_database().await;
    let a = RotorProcess::start(&vars(&database_url, redis_url)).await;
    let b = RotorProcess::start(&vars(&database_url, redis_url)).await;
    let w = World::on(&a.app(&database_url).await).await;
    let via_b = b.app(&database_url).await;
    let creds = w.creds(keys).await;
    let model_path = w.lb_path(&w.pooled_model("gpt", &creds, 60).await);
    Cluster {
        w,
        _processes: [a, b],
        via_b,
        model_path,
        creds,
    }
}

impl Cluster {
    /// The replicas: A, then B.
    fn replicas(&self) -> [&TestApp; 2] {
        [&self.w.app, &self.via_b]
    }

    /// A chat completion with the world's key through `replica`: its status.
    async fn chat(&self, replica: &TestApp) -> u16 {
        replica.chat(&self.w.key, "gpt").await.status.as_u16()
    }

    /// `n` chat completions, alternating between the replicas (A first); all must succeed.
    async fn chats(&self, n: usize, what: &str) {
        for i in 0..n {
            assert_eq!(self.chat(self.replicas()[i % 2]).await, 200, "{what}");
        }
    }
}

#[tokio::test]
async fn replicas_share_one_rotation_and_one_set_of_cooldowns() {
    let keys = ["sk_rep_a", "sk_rep_b", "sk_rep_c"];
    let c = cluster(&shared_redis_url(), &keys).await;
    let mock = &c.w.mock;
    c.chats(30, "through either replica").await;
    let seen = key_counts(mock);
    for k in keys {
        assert_eq!(
            seen.get(k),
            Some(&10),
            "one shared rotation across replicas: {seen:?}"
        );
    }

    // A cooldown caused through one replica is honoured by the other: the pool's first
    // credential is replaced (through replica A) by a rate-limited one.
    let rl = MockKey::new("sk_rep")
        .status(429)
        .retry_after(30)
        .to_string();
    let limited = c.w.cred("rl", &rl).await;
    c.w.app
        .put(
            &c.model_path,
            &c.w.user.token,
            json!({"enabled": true, "entries": [{"credential_id": limited}, {"credential_id": c.creds[1]}]}),
        )
        .await
        .assert(200);
    mock.reset();
    assert_eq!(c.chat(&c.w.app).await, 200);
    assert_eq!(
        mock.keys(),
        [rl.as_str(), "sk_rep_b"],
        "A tried the rate-limited key first and failed over"
    );
    mock.reset();
    for _ in 0..6 {
        assert_eq!(c.chat(&c.via_b).await, 200);
    }
    assert!(
        !mock.keys().contains(&rl),
        "replica B used a key cooling on replica A: {:?}",
        mock.keys()
    );
    // Both replicas report the shared cooldown.
    for replica in c.replicas() {
        let status = replica.get(&c.model_path, &c.w.user.token).await.body;
        assert_eq!(
            status["entries"][0]["status"]["state"], "cooling_down",
            "{status}"
        );
        assert_eq!(status["entries"][0]["status"]["last_error"]["status"], 429);
    }
}

#[tokio::test]
async fn a_change_through_one_replica_is_applied_by_the_other_within_a_second() {
    let c = cluster(&shared_redis_url(), &["sk_chg_a", "sk_chg_b", "sk_chg_c"]).await;
    // B has the route cached.
    for _ in 0..3 {
        assert_eq!(c.chat(&c.via_b).await, 200);
    }
    // A pool change through A.
    c.w.app
        .put(&c.model_path, &c.w.user.token, json!({"enabled": true, "entries": [{"credential_id": c.creds[1]}, {"credential_id": c.creds[2]}]}))
        .await
        .assert(200);
    let changed = Instant::now();
    loop {
        c.w.mock.reset();
        for _ in 0..4 {
            assert_eq!(c.chat(&c.via_b).await, 200);
        }
        if !c.w.mock.keys().iter().any(|k| k == "sk_chg_a") {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "replica B still used the old pool after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A key revoked through A stops working on B.
    c.w.app
        .delete(
            &c.w.w(&format!("/api-keys/{}", c.w.key_id)),
            &c.w.user.token,
        )
        .await
        .assert(204);
    let revoked = Instant::now();
    while c.chat(&c.via_b).await != 401 {
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "replica B still accepted a revoked key after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn serial_redis_going_away_fails_open_and_shared_state_resumes() {
    let mut redis = RedisProcess::start();
    let c = cluster(&redis.url(), &["sk_fo_a", "sk_fo_b"]).await;
    c.chats(10, "with Redis").await;
    assert!(
        redis
            .cli(&["--scan", "--pattern", "rotor:*"])
            .contains(":rot"),
        "picks went to Redis"
    );

    redis.stop();
    c.chats(40, "a request failed while Redis was down").await;

    let port = redis.port;
    let restarted = RedisProcess::start_on(port);
    let back = Instant::now();
    loop {
        c.chats(4, "after Redis came back").await;
        if restarted
            .cli(&["--scan", "--pattern", "rotor:*"])
            .contains(":rot")
        {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "dispatch did not return to Redis within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn serial_a_pick_is_one_redis_round_trip() {
    let redis = RedisProcess::start();
    let c = cluster(&redis.url(), &["sk_rt_a", "sk_rt_b", "sk_rt_c"]).await;
    // Warm up: routes resolved, script cached in Redis.
    for _ in 0..3 {
        assert_eq!(c.chat(&c.w.app).await, 200);
    }
    redis.cli(&["CONFIG", "RESETSTAT"]);
    let started = Instant::now();
    let n = 25;
    for _ in 0..n {
        assert_eq!(c.chat(&c.w.app).await, 200);
    }
    let stats = redis.cli(&["INFO", "commandstats"]);
    let calls = |cmd: &str| -> u64 {
        stats
            .lines()
            .find(|l| l.starts_with(&format!("cmdstat_{cmd}:")))
            .and_then(|l| l.split("calls=").nth(1))
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    // Commands run inside the script are counted too; everything else a client sent would
    // show up as extra calls or other commands. Inside a pick: the cursor (GET, SET), the
    // entry records and minute windows (HMGET each) and the keys' lifetime (PEXPIRE).
    assert_eq!(calls("evalsha"), n, "one EVALSHA per pick: {stats}");
    for (inner, per_pick) in [("get", 1), ("set", 1), ("hmget", 1), ("pexpire", 1)] {
        assert_eq!(
            calls(inner),
            per_pick * n,
            "{inner} inside the pick script: {stats}"
        );
    }
    // Outside the picks, at most the credential states' refresh (HGETALL, twice a second).
    assert!(
        calls("hgetall") <= 2 + 2 * started.elapsed().as_secs(),
        "{stats}"
    );
    let others: Vec<&str> = stats
        .lines()
        .filter(|l| l.starts_with("cmdstat_"))
        .filter(|l| {
            ![
                "cmdstat_evalsha:",
                "cmdstat_get:",
                "cmdstat_hmget:",
                "cmdstat_hgetall:",
                "cmdstat_pexpire:",
                "cmdstat_set:",
                "cmdstat_config|resetstat:",
                "cmdstat_info:",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .collect();
    assert!(others.is_empty(), "no other round trips: {others:?}");
}

#[tokio::test]
async fn serial_a_limited_keys_admission_rides_in_the_picks_round_trip_a_lease_at_a_time() {
    let redis = RedisProcess::start();
    let c = cluster(&redis.url(), &["sk_rtl_a", "sk_rtl_b"]).await;
    let (_, key) =
        c.w.app
            .api_key_with(&c.w.user, c.w.ws(), json!({"name": "limited", "rpm": 1000}))
            .await;
    for _ in 0..3 {
        c.w.app.chat(&key, "gpt").await.assert(200);
    }
    redis.cli(&["CONFIG", "RESETSTAT"]);
    let n = 20;
    for _ in 0..n {
        c.w.app.chat(&key, "gpt").await.assert(200);
    }
    let stats = redis.cli(&["INFO", "commandstats"]);
    let calls = |cmd: &str| -> u64 {
        stats
            .lines()
            .find(|l| l.starts_with(&format!("cmdstat_{cmd}:")))
            .and_then(|l| l.split("calls=").nth(1))
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    // The key's window is read and counted inside the pick, a share of its minute at a time
    // (an eighth of what is left, at most 100): one call per request and no more.
    assert_eq!(calls("evalsha"), n, "one EVALSHA per request: {stats}");
    // Inside: the cursor (GET, SET), the entries' lifetime; the key's window once at most.
    assert!(calls("get") <= n + 1, "{stats}");
    assert!(calls("set") <= n + 1, "{stats}");
    assert_eq!(calls("pexpire"), n, "{stats}");
}

#[tokio::test]
async fn a_replica_whose_listen_connection_drops_reconnects_and_reloads() {
    let c = cluster(&shared_redis_url(), &["sk_ls_a", "sk_ls_b"]).await;
    assert_eq!(c.chat(&c.via_b).await, 200);
    // Cut every LISTEN connection of this database (both replicas'), then revoke the key at
    // once: the notification may well be lost, so only the reconnect-and-reload saves B.
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .fetch_all(&c.w.app.db)
    .await
    .unwrap();
    assert!(
        killed.len() >= 2,
        "both replicas were listening: {killed:?}"
    );
    sqlx::query("DELETE FROM api_keys WHERE id = $1")
        .bind(c.w.key_id)
        .execute(&c.w.app.db)
        .await
        .unwrap();
    let cut = Instant::now();
    loop {
        let status = c.chat(&c.via_b).await;
        if status == 401 {
            break;
        }
        assert_eq!(
            status, 200,
            "the replica kept serving from its cache meanwhile"
        );
        assert!(
            cut.elapsed() < Duration::from_secs(5),
            "replica B did not reload after its listen connection dropped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn responses_stay_on_their_credential_across_replicas() {
    // The official openai SDK creates responses through one replica and retrieves, lists,
    // continues, cancels and deletes them through the other; the mock keeps each response
    // with the key that created it (as OpenAI keeps it per organisation) and answers 404
    // to any other, so every call succeeding means every call reached its creator.
    let keys = ["sk_resp_a", "sk_resp_b", "sk_resp_c"];
    let c = cluster(&shared_redis_url(), &keys).await;
    let config = json!({"bases": [c.w.app.url(""), c.via_b.url("")], "key": c.w.key});
    let out = run_sdk("rotor_openai.py", "responses", config).await;
    let ids: Vec<&str> = out["ids"]
        .as_array()
        .expect("the response ids")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let requests = c.w.mock.requests();
    let mut creators = std::collections::HashSet::new();
    let mut checked = 0;
    for id in &ids {
        let Some(creator) = c.w.mock.response_key(id) else {
            // Deleted through the SDK (the first one): its requests are checked no further.
            assert_eq!(id, &ids[0], "only the deleted response is gone");
            continue;
        };
        creators.insert(creator.clone());
        let about: Vec<_> = requests
            .iter()
            .filter(|r| {
                r.path.contains(id)
                    || String::from_utf8_lossy(&r.body).contains(&format!("\"{id}\""))
            })
            .collect();
        checked += about.len();
        for r in about {
            assert_eq!(r.key.as_ref(), Some(&creator), "{} {}", r.method, r.uri);
        }
    }
    // Three retrieves, input-item lists and continuations of the three kept responses, and
    // the cancel of the background one.
    assert_eq!(checked, 3 * 3 + 1, "requests about a response");
    assert!(creators.len() >= 2, "new responses rotate: {creators:?}");
}

#[tokio::test]
async fn a_key_rejected_through_one_replica_is_out_on_the_other_within_a_second() {
    let keys = ["sk_rj_a", "sk_rj_b"];
    let c = cluster(&shared_redis_url(), &keys).await;
    let mock = &c.w.mock;
    mock.refuse("sk_rj_a");
    // Through A, until the refused key has been met (the rotation may start with either).
    for _ in 0..2 {
        assert_eq!(c.chat(&c.w.app).await, 200);
    }
    assert_eq!(key_counts(mock).get("sk_rj_a"), Some(&1));
    let met = Instant::now();
    // B stops sending to it within a second: one more request at most reaches it, and only
    // in that first second.
    tokio::time::sleep(Duration::from_millis(1_000).saturating_sub(met.elapsed())).await;
    for _ in 0..6 {
        assert_eq!(c.chat(&c.via_b).await, 200);
    }
    let seen = key_counts(mock);
    assert_eq!(seen.get("sk_rj_a"), Some(&1), "B never tried it: {seen:?}");
    // Both replicas show it rejected, and a validation through B brings it back on A.
    for replica in c.replicas() {
        let lb = replica.get(&c.model_path, &c.w.user.token).await;
        lb.assert(200);
        assert_eq!(
            lb.body["entries"][0]["status"]["state"], "rejected",
            "{}",
            lb.body
        );
    }
    mock.accept("sk_rj_a");
    let validate = c.w.w(&format!("/credentials/{}/validate", c.creds[0]));
    let v = c.via_b.post(&validate, &c.w.user.token, json!({})).await;
    assert_eq!(v.body["valid"], true, "{}", v.body);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    for _ in 0..4 {
        assert_eq!(c.chat(&c.w.app).await, 200);
    }
    assert!(
        key_counts(mock)["sk_rj_a"] >= 2,
        "back on A after B's validation"
    );
}

#[tokio::test]
async fn an_entry_rpm_holds_across_replicas() {
    let keys = ["sk_rpm_a", "sk_rpm_b"];
    let c = cluster(&shared_redis_url(), &keys).await;
    let entries = json!([
        {"credential_id": c.creds[0], "enabled": true, "weight": 50, "rpm": 4},
        {"credential_id": c.creds[1], "enabled": true, "weight": 1},
    ]);
    c.w.app
        .put(
            &c.model_path,
            &c.w.user.token,
            json!({"enabled": true, "entries": entries}),
        )
        .await
        .assert(200);
    // Both replicas see the new pool (a change reaches the other within a second).
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let into = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 60_000;
    if into > 45_000 {
        tokio::time::sleep(Duration::from_millis(60_000 - into as u64 + 200)).await;
    }
    c.w.mock.reset();
    c.chats(12, "no client error: the full entry is steered around")
        .await;
    let seen = key_counts(&c.w.mock);
    assert_eq!(
        (seen.get("sk_rpm_a"), seen.get("sk_rpm_b")),
        (Some(&4), Some(&8)),
        "4 a minute in total, not per replica: {seen:?}"
    );
}

#[tokio::test]
async fn a_key_rpm_holds_across_replicas_and_a_patch_applies_on_both() {
    let c = cluster(&shared_redis_url(), &["sk_krpm_a", "sk_krpm_b"]).await;
    let w = &c.w;
    let (id, key) = w
        .app
        .api_key_with(&w.user, w.ws(), json!({"name": "limited", "rpm": 4}))
        .await;
    // Both replicas know the key (a change reaches the other within a second).
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    crate::key_limits::room_in_minute(20).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let r = c.replicas()[i % 2].chat(&key, "gpt").await;
        statuses.push(r.status.as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        4,
        "4 a minute in total, not per replica: {statuses:?}"
    );
    assert!(statuses[4..].iter().all(|s| *s == 429), "{statuses:?}");
    // Raised through A: B admits the next request, and counts it with A's.
    let path = w.w(&format!("/api-keys/{id}"));
    w.app
        .patch(&path, &w.user.token, json!({"rpm": 6}))
        .await
        .assert(200);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    c.via_b.chat(&key, "gpt").await.assert(200);
    w.app.chat(&key, "gpt").await.assert(200);
    let r = c.via_b.chat(&key, "gpt").await;
    r.assert_openai_error(429, "api_key_rate_limited");
    assert!(r.header("retry-after").is_some());
}
