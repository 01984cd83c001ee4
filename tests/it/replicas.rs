//! Several `rotor serve` processes on one Postgres and one Redis behave as one: one rotation,
//! one set of cooldowns, one view of the configuration; Redis going away fails open.

use crate::helpers::*;
use rotor_tests::mock::MockUpstream;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

struct Cluster {
    admin: TestApp,
    a: RotorProcess,
    b: RotorProcess,
    user: TestUser,
    key: String,
    key_id: Uuid,
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

/// Two replicas, a pool of credentials with `keys` (all enabled, weight 1), and an API key.
async fn cluster(
    redis_url: &str,
    mock: &MockUpstream,
    keys: &[&str],
    cooldown_seconds: u32,
) -> Cluster {
    let database_url = fresh_database().await;
    let a = RotorProcess::start(&vars(&database_url, redis_url)).await;
    let b = RotorProcess::start(&vars(&database_url, redis_url)).await;
    let admin = TestApp {
        addr: format!("127.0.0.1:{}", a.port).parse().unwrap(),
        db: sqlx::PgPool::connect(&database_url).await.unwrap(),
        database_url: database_url.clone(),
        client: reqwest::Client::new(),
    };
    let user = admin.user("owner").await;
    let mut creds = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        creds.push(
            admin
                .compatible_credential(
                    &user,
                    user.workspace,
                    &format!("key-{i}"),
                    k,
                    &mock.url("/v1"),
                )
                .await,
        );
    }
    let model = admin
        .model(&user, user.workspace, "openai_compatible", "gpt", creds[0])
        .await;
    let model_path = TestApp::lb_path(user.workspace, model["id"].as_str().unwrap());
    let entries: Vec<Value> = creds.iter().map(|c| json!({"credential_id": c})).collect();
    admin
        .put(
            &model_path,
            &user.token,
            json!({"enabled": true, "cooldown_seconds": cooldown_seconds, "entries": entries}),
        )
        .await
        .assert(200);
    let (key_id, key) = admin.api_key(&user, user.workspace, "app").await;
    Cluster {
        admin,
        a,
        b,
        user,
        key,
        key_id,
        model_path,
        creds,
    }
}

async fn chat(client: &reqwest::Client, base: &RotorProcess, key: &str) -> reqwest::Response {
    client
        .post(base.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
}

fn counts(mock: &MockUpstream) -> std::collections::HashMap<String, usize> {
    let mut m = std::collections::HashMap::new();
    for k in mock.keys() {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

#[tokio::test]
async fn replicas_share_one_rotation_and_one_set_of_cooldowns() {
    let redis =
        std::env::var("ROTOR_TEST_REDIS_URL").expect("ROTOR_TEST_REDIS_URL: run scripts/test");
    let mock = MockUpstream::start().await.unwrap();
    let c = cluster(&redis, &mock, &["sk_rep_a", "sk_rep_b", "sk_rep_c"], 60).await;
    let client = reqwest::Client::new();
    for i in 0..30 {
        let replica = if i % 2 == 0 { &c.a } else { &c.b };
        let r = chat(&client, replica, &c.key).await;
        assert_eq!(r.status(), 200);
    }
    let seen = counts(&mock);
    for k in ["sk_rep_a", "sk_rep_b", "sk_rep_c"] {
        assert_eq!(
            seen.get(k),
            Some(&10),
            "one shared rotation across replicas: {seen:?}"
        );
    }

    // A cooldown caused through one replica is honoured by the other.
    let rl = RedisAndMock::cooled_pool(&c, &mock).await;
    mock.reset();
    let r = chat(&client, &c.a, &c.key).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        mock.keys(),
        [rl.clone(), "sk_rep_b".to_owned()],
        "A tried the rate-limited key first and failed over"
    );
    mock.reset();
    for _ in 0..6 {
        assert_eq!(chat(&client, &c.b, &c.key).await.status(), 200);
    }
    assert!(
        !mock.keys().contains(&rl),
        "replica B used a key cooling on replica A: {:?}",
        mock.keys()
    );
    // Both replicas report the shared cooldown.
    for replica in [&c.a, &c.b] {
        let status: Value = client
            .get(replica.url(&c.model_path))
            .bearer_auth(&c.user.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            status["entries"][0]["status"]["state"], "cooling_down",
            "{status}"
        );
        assert_eq!(status["entries"][0]["status"]["last_error"]["status"], 429);
    }
}

struct RedisAndMock;

impl RedisAndMock {
    /// Replaces the pool's first credential with a rate-limited one (through replica A) and
    /// returns its key.
    async fn cooled_pool(c: &Cluster, mock: &MockUpstream) -> String {
        let key = "sk_rep_s429_ra30".to_owned();
        let rl = c
            .admin
            .compatible_credential(&c.user, c.user.workspace, "rl", &key, &mock.url("/v1"))
            .await;
        c.admin
            .put(
                &c.model_path,
                &c.user.token,
                json!({"enabled": true, "entries": [{"credential_id": rl}, {"credential_id": c.creds[1]}]}),
            )
            .await
            .assert(200);
        key
    }
}

#[tokio::test]
async fn a_change_through_one_replica_is_applied_by_the_other_within_a_second() {
    let redis =
        std::env::var("ROTOR_TEST_REDIS_URL").expect("ROTOR_TEST_REDIS_URL: run scripts/test");
    let mock = MockUpstream::start().await.unwrap();
    let c = cluster(&redis, &mock, &["sk_chg_a", "sk_chg_b", "sk_chg_c"], 60).await;
    let client = reqwest::Client::new();
    // B has the route cached.
    for _ in 0..3 {
        assert_eq!(chat(&client, &c.b, &c.key).await.status(), 200);
    }
    // A pool change through A.
    c.admin
        .put(&c.model_path, &c.user.token, json!({"enabled": true, "entries": [{"credential_id": c.creds[1]}, {"credential_id": c.creds[2]}]}))
        .await
        .assert(200);
    let changed = Instant::now();
    loop {
        mock.reset();
        for _ in 0..4 {
            assert_eq!(chat(&client, &c.b, &c.key).await.status(), 200);
        }
        if !mock.keys().contains(&"sk_chg_a".to_owned()) {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "replica B still used the old pool after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A key revoked through A stops working on B.
    c.admin
        .delete(
            &format!(
                "/api/v1/workspaces/{}/api-keys/{}",
                c.user.workspace, c.key_id
            ),
            &c.user.token,
        )
        .await
        .assert(204);
    let revoked = Instant::now();
    loop {
        let status = chat(&client, &c.b, &c.key).await.status();
        if status == 401 {
            break;
        }
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
    let mock = MockUpstream::start().await.unwrap();
    let c = cluster(&redis.url(), &mock, &["sk_fo_a", "sk_fo_b"], 60).await;
    let client = reqwest::Client::new();
    for i in 0..10 {
        let replica = if i % 2 == 0 { &c.a } else { &c.b };
        assert_eq!(chat(&client, replica, &c.key).await.status(), 200);
    }
    assert!(
        redis
            .cli(&["--scan", "--pattern", "rotor:*"])
            .contains(":rot"),
        "picks went to Redis"
    );

    redis.stop();
    for i in 0..40 {
        let replica = if i % 2 == 0 { &c.a } else { &c.b };
        let r = chat(&client, replica, &c.key).await;
        assert_eq!(r.status(), 200, "a request failed while Redis was down");
    }

    let port = redis.port;
    let restarted = RedisProcess::start_on(port);
    let back = Instant::now();
    loop {
        for i in 0..4 {
            let replica = if i % 2 == 0 { &c.a } else { &c.b };
            assert_eq!(chat(&client, replica, &c.key).await.status(), 200);
        }
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
    let mock = MockUpstream::start().await.unwrap();
    let c = cluster(&redis.url(), &mock, &["sk_rt_a", "sk_rt_b", "sk_rt_c"], 60).await;
    let client = reqwest::Client::new();
    // Warm up: routes resolved, script cached in Redis.
    for _ in 0..3 {
        assert_eq!(chat(&client, &c.a, &c.key).await.status(), 200);
    }
    redis.cli(&["CONFIG", "RESETSTAT"]);
    let n = 25;
    for _ in 0..n {
        assert_eq!(chat(&client, &c.a, &c.key).await.status(), 200);
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
    // show up as extra calls or other commands.
    assert_eq!(calls("evalsha"), n, "one EVALSHA per pick: {stats}");
    for inner in ["get", "hgetall", "set"] {
        assert_eq!(calls(inner), n, "{inner} inside the pick script: {stats}");
    }
    let others: Vec<&str> = stats
        .lines()
        .filter(|l| l.starts_with("cmdstat_"))
        .filter(|l| {
            ![
                "cmdstat_evalsha:",
                "cmdstat_get:",
                "cmdstat_hgetall:",
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
async fn a_replica_whose_listen_connection_drops_reconnects_and_reloads() {
    let redis =
        std::env::var("ROTOR_TEST_REDIS_URL").expect("ROTOR_TEST_REDIS_URL: run scripts/test");
    let mock = MockUpstream::start().await.unwrap();
    let c = cluster(&redis, &mock, &["sk_ls_a", "sk_ls_b"], 60).await;
    let client = reqwest::Client::new();
    assert_eq!(chat(&client, &c.b, &c.key).await.status(), 200);
    // Cut every LISTEN connection of this database (both replicas'), then revoke the key at
    // once: the notification may well be lost, so only the reconnect-and-reload saves B.
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .fetch_all(&c.admin.db)
    .await
    .unwrap();
    assert!(
        killed.len() >= 2,
        "both replicas were listening: {killed:?}"
    );
    sqlx::query("DELETE FROM api_keys WHERE id = $1")
        .bind(c.key_id)
        .execute(&c.admin.db)
        .await
        .unwrap();
    let cut = Instant::now();
    loop {
        let status = chat(&client, &c.b, &c.key).await.status();
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
