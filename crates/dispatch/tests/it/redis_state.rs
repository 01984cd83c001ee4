//! The Redis backend against a real `redis-server`: the same operations on `MemoryState` and
//! `RedisState` give the same answers (the Lua pick matches the pure pick), two `RedisState`s
//! on one Redis act as one, and a dead Redis leaves dispatch working in process.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rotor_dispatch::clock::{Clock, SystemClock};
use rotor_dispatch::lifecycle::{Change, Classified, CredentialRecord, Limits, Trigger};
use rotor_dispatch::pick::Choice;
use rotor_dispatch::state::clients::ClientWindows;
use rotor_dispatch::state::memory::MemoryState;
use rotor_dispatch::state::redis::RedisState;
use rotor_dispatch::state::{
    Candidate, ClientAdmit, PickRequest, PoolKey, Report, StateBackend, Sticky,
};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A private `redis-server` on a free loopback port, killed on drop.
struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "these tests need `redis-server` on PATH (apt-get install redis-server): {e}"
                )
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child: Some(child),
            port,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server, as a crash would.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn replica(server: &RedisServer) -> Arc<RedisState> {
    let state = RedisState::start(&server.url()).await.unwrap();
    assert!(
        state.is_shared(),
        "RedisState did not reach the test's Redis"
    );
    state
}

fn pool() -> PoolKey {
    PoolKey {
        workspace: Uuid::new_v4(),
        model: Uuid::new_v4(),
    }
}

fn answer(trigger: Trigger, status: Option<u16>) -> Classified {
    Classified {
        trigger,
        reset: None,
        status,
        code: None,
    }
}

fn report(answer: &Classified, now_ms: u64) -> Report<'_> {
    Report {
        answer,
        cooldown_seconds: 30,
        quota_cooldown_seconds: 3600,
        now_ms,
    }
}

fn ask<'a>(
    pool: PoolKey,
    candidates: &'a [Candidate],
    limits: &'a [Limits],
    now_ms: u64,
) -> PickRequest<'a> {
    PickRequest {
        pool,
        signature: 7,
        candidates,
        limits,
        tried: &[],
        now_ms,
        sticky: None,
        trial_lease_ms: 5_000,
        client: None,
    }
}

fn served(choice: Choice) -> Option<usize> {
    match choice {
        Choice::Serve(s) => Some(s.index),
        _ => None,
    }
}

// ---- equivalence ----------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Pick {
        pool: usize,
        tried: u8,
        sticky: Option<u64>,
    },
    Record {
        pool: usize,
        cred: usize,
        trigger: u8,
        reset_s: Option<u8>,
    },
    Tokens {
        pool: usize,
        cred: usize,
        tokens: u64,
    },
    Reset {
        pool: usize,
    },
    Recover {
        cred: usize,
    },
    Advance(u64),
}

#[derive(Debug, Clone)]
struct Case {
    /// Per credential: (rpm, tpm), the same in every pool.
    limits: Vec<(Option<u32>, Option<u64>)>,
    /// Per pool: entries (credential index, weight).
    pools: Vec<Vec<(usize, u32)>>,
    ops: Vec<Op>,
    start_ms: u64,
}

const CREDS: usize = 4;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..2usize, any::<u8>(), proptest::option::of(0..3u64))
            .prop_map(|(pool, tried, sticky)| Op::Pick { pool, tried: tried & (tried >> 4), sticky }),
        4 => (0..2usize, 0..CREDS, 0..7u8, proptest::option::of(0..40u8))
            .prop_map(|(pool, cred, trigger, reset_s)| Op::Record { pool, cred, trigger, reset_s }),
        1 => (0..2usize, 0..CREDS, 1..300u64).prop_map(|(pool, cred, tokens)| Op::Tokens { pool, cred, tokens }),
        1 => (0..2usize).prop_map(|pool| Op::Reset { pool }),
        1 => (0..CREDS).prop_map(|cred| Op::Recover { cred }),
        3 => prop_oneof![0..2_000u64, 2_000..40_000u64, 40_000..400_000u64].prop_map(Op::Advance),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let limits = proptest::collection::vec(
        (
            proptest::option::weighted(0.4, 1..5u32),
            proptest::option::weighted(0.3, 1..600u64),
        ),
        CREDS,
    );
    let entries = proptest::collection::vec((0..CREDS, 1..4u32), 1..5);
    (
        limits,
        proptest::collection::vec(entries, 2),
        proptest::collection::vec(op(), 1..70),
        0..MINUTE,
    )
        .prop_map(|(limits, pools, ops, offset)| Case {
            limits,
            pools,
            ops,
            start_ms: 1_800_000_000_000 + offset,
        })
}

const MINUTE: u64 = 60_000;

fn classified(trigger: u8, reset_s: Option<u8>) -> Classified {
    let (trigger, status, code) = match trigger {
        0 | 1 => (Trigger::Success, Some(200), None),
        2 => (Trigger::RateLimited, Some(429), Some("rate_limit_exceeded")),
        3 => (Trigger::Transient, Some(503), None),
        4 => (Trigger::Rejected, Some(401), None),
        5 => (
            Trigger::QuotaExhausted,
            Some(429),
            Some("insufficient_quota"),
        ),
        _ => (Trigger::Other, Some(400), None),
    };
    Classified {
        trigger,
        reset: reset_s
            .filter(|s| *s < 20)
            .map(|s| Duration::from_secs(u64::from(s))),
        status,
        code: code.map(str::to_owned),
    }
}

/// Runs one case on both backends and compares every answer and the final records.
async fn equivalent(server: &RedisServer, case: Case) {
    let memory = MemoryState::default();
    let redis = replica(server).await;
    let workspace = Uuid::new_v4();
    let creds: Vec<Uuid> = (0..CREDS).map(|_| Uuid::new_v4()).collect();
    let pools: Vec<PoolKey> = (0..2)
        .map(|_| PoolKey {
            workspace,
            model: Uuid::new_v4(),
        })
        .collect();
    let candidates: Vec<Vec<Candidate>> = case
        .pools
        .iter()
        .map(|entries| {
            entries
                .iter()
                .map(|&(c, weight)| Candidate {
                    credential: creds[c],
                    weight,
                })
                .collect()
        })
        .collect();
    let limit_of = |c: usize| Limits {
        rpm: case.limits[c].0,
        tpm: case.limits[c].1,
    };
    let limits: Vec<Vec<Limits>> = case
        .pools
        .iter()
        .map(|entries| entries.iter().map(|&(c, _)| limit_of(c)).collect())
        .collect();
    let mut now = case.start_ms;
    for (step, op) in case.ops.iter().enumerate() {
        match op.clone() {
            Op::Pick {
                pool,
                tried,
                sticky,
            } => {
                let tried: Vec<Uuid> = (0..CREDS)
                    .filter(|i| tried & (1 << i) != 0)
                    .map(|i| creds[i])
                    .collect();
                let request = PickRequest {
                    pool: pools[pool],
                    signature: 11 + pool as u64,
                    candidates: &candidates[pool],
                    limits: &limits[pool],
                    tried: &tried,
                    now_ms: now,
                    sticky: sticky.map(|key| Sticky {
                        key,
                        ttl_ms: 30_000,
                    }),
                    trial_lease_ms: 5_000,
                    client: None,
                };
                let m = memory.pick(request).await;
                let r = redis.pick(request).await;
                assert_eq!(m, r, "step {step}: {op:?}");
            }
            Op::Record {
                pool,
                cred,
                trigger,
                reset_s,
            } => {
                let answer = classified(trigger, reset_s);
                let report = Report {
                    answer: &answer,
                    cooldown_seconds: 5,
                    quota_cooldown_seconds: 60,
                    now_ms: now,
                };
                let m = memory.record(pools[pool], creds[cred], report).await;
                let r = redis.record(pools[pool], creds[cred], report).await;
                assert_eq!(m, r, "step {step}: {op:?}");
            }
            Op::Tokens { pool, cred, tokens } => {
                if limit_of(cred).tpm.is_some() {
                    memory
                        .count_tokens(pools[pool], creds[cred], tokens, now)
                        .await;
                    redis
                        .count_tokens(pools[pool], creds[cred], tokens, now)
                        .await;
                }
            }
            Op::Reset { pool } => {
                let of_pool: Vec<Uuid> = candidates[pool].iter().map(|c| c.credential).collect();
                let m = memory.reset(pools[pool], &of_pool, now).await;
                let r = redis.reset(pools[pool], &of_pool, now).await;
                assert_eq!(m, r, "step {step}: {op:?}");
            }
            Op::Recover { cred } => {
                let m = memory.recover(workspace, creds[cred], now).await;
                let r = redis.recover(workspace, creds[cred], now).await;
                assert_eq!(m, r, "step {step}: {op:?}");
            }
            Op::Advance(ms) => now += ms,
        }
    }
    for pool in &pools {
        let (m, r) = (memory.book(*pool).await, redis.book(*pool).await);
        for (i, c) in creds.iter().enumerate() {
            let me = m.get(*c).cloned().unwrap_or_default();
            let re = r.get(*c).cloned().unwrap_or_default();
            assert_eq!(me.circuit, re.circuit, "circuit of {i}");
            assert_eq!(me.last_error, re.last_error, "last_error of {i}");
            if limit_of(i).any() {
                assert_eq!(me.window.at(now), re.window.at(now), "window of {i}");
                assert_eq!(me.state(limit_of(i), now), re.state(limit_of(i), now));
            }
        }
    }
    let sorted = |mut v: Vec<(Uuid, CredentialRecord)>| {
        v.sort_by_key(|(c, _)| *c);
        v
    };
    assert_eq!(
        sorted(memory.credentials(workspace, &creds).await),
        sorted(redis.credentials(workspace, &creds).await)
    );
    let flagged = |v: Vec<rotor_dispatch::state::Flagged>| {
        let mut v: Vec<(Uuid, CredentialRecord)> = v
            .into_iter()
            .filter(|f| f.workspace == workspace)
            .map(|f| (f.credential, f.record))
            .collect();
        v.sort_by_key(|(c, _)| *c);
        v
    };
    assert_eq!(
        flagged(memory.flagged().await),
        flagged(redis.flagged().await)
    );
}

#[test]
fn the_redis_pick_and_records_match_the_in_process_ones() {
    let server = RedisServer::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&case(), |case| {
            rt.block_on(equivalent(&server, case));
            Ok(())
        })
        .unwrap();
}

// ---- two replicas ---------------------------------------------------------------------------

#[tokio::test]
async fn a_rejection_on_one_replica_stops_the_others_picks_within_a_second() {
    let server = RedisServer::start();
    let (a, b) = (replica(&server).await, replica(&server).await);
    let pool = pool();
    let (x, y) = (Uuid::new_v4(), Uuid::new_v4());
    let candidates = [
        Candidate {
            credential: x,
            weight: 1,
        },
        Candidate {
            credential: y,
            weight: 1,
        },
    ];
    let clock = SystemClock;
    // B has a fresh copy of the workspace's credential states.
    assert!(served(b.pick(ask(pool, &candidates, &[], clock.now_ms())).await).is_some());
    let rejected = answer(Trigger::Rejected, Some(401));
    let recorded = a.record(pool, x, report(&rejected, clock.now_ms())).await;
    assert_eq!(recorded.change, Some(Change::Rejected));
    let t0 = Instant::now();
    let mut clean = 0;
    while clean < 20 {
        let choice = b.pick(ask(pool, &candidates, &[], clock.now_ms())).await;
        if served(choice) == Some(0) {
            assert!(
                t0.elapsed() < Duration::from_secs(1),
                "B still serves the rejected credential after {:?}",
                t0.elapsed()
            );
            clean = 0;
            tokio::time::sleep(Duration::from_millis(20)).await;
        } else {
            assert_eq!(served(choice), Some(1));
            clean += 1;
        }
    }
}

#[tokio::test]
async fn rpm_counts_across_replicas() {
    let server = RedisServer::start();
    let (a, b) = (replica(&server).await, replica(&server).await);
    let pool = pool();
    let candidates = [Candidate {
        credential: Uuid::new_v4(),
        weight: 1,
    }];
    let limits = [Limits {
        rpm: Some(4),
        tpm: None,
    }];
    let now = 1_800_000_000_000;
    let mut admitted = 0;
    for i in 0..10 {
        let replica = if i % 2 == 0 { &a } else { &b };
        match replica.pick(ask(pool, &candidates, &limits, now + i)).await {
            Choice::Serve(_) => admitted += 1,
            Choice::AllAtCapacity { retry_after_ms } => assert!(retry_after_ms >= 1),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(admitted, 4);
    // The next minute has room again.
    let next = ask(pool, &candidates, &limits, now + MINUTE);
    assert!(served(b.pick(next).await).is_some());
}

#[tokio::test]
async fn a_clients_rpm_is_admitted_in_the_pick_across_replicas_and_in_process_alike() {
    let server = RedisServer::start();
    let (a, b) = (replica(&server).await, replica(&server).await);
    let memory = MemoryState::default();
    let pool = pool();
    let candidates: Vec<Candidate> = (0..2)
        .map(|_| Candidate {
            credential: Uuid::new_v4(),
            weight: 1,
        })
        .collect();
    let client = ClientAdmit {
        workspace: pool.workspace,
        key: Uuid::new_v4(),
        limits: Limits {
            rpm: Some(3),
            tpm: Some(100),
        },
    };
    let now = 1_800_000_000_000;
    let minute_end = (now / MINUTE + 1) * MINUTE;
    let mut shared = Vec::new();
    let mut local = Vec::new();
    for i in 0..5 {
        let mut request = ask(pool, &candidates, &[], now + i);
        request.client = Some(client);
        let replica = if i % 2 == 0 { &a } else { &b };
        shared.push(replica.pick(request).await);
        local.push(memory.pick(request).await);
    }
    assert_eq!(shared, local, "Redis decides as the in-process state does");
    assert_eq!(shared.iter().filter(|c| served(**c).is_some()).count(), 3);
    assert_eq!(
        shared[3],
        Choice::ClientFull {
            until_ms: minute_end
        }
    );
    // The client's tokens fill its minute too (added in Redis within ~100 ms).
    let next = minute_end + 1;
    let mut request = ask(pool, &candidates, &[], next);
    request.client = Some(client);
    assert!(served(a.pick(request).await).is_some());
    a.count_client_tokens(pool.workspace, client.key, 100, next)
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(
        matches!(b.pick(request).await, Choice::ClientFull { .. }),
        "another replica sees the tokens"
    );
}

#[tokio::test]
async fn leased_shares_of_a_clients_minute_add_up_to_its_rpm_exactly() {
    let server = RedisServer::start();
    let (a, b) = (replica(&server).await, replica(&server).await);
    let pool = pool();
    let candidates = [Candidate {
        credential: Uuid::new_v4(),
        weight: 1,
    }];
    let client = ClientAdmit {
        workspace: pool.workspace,
        key: Uuid::new_v4(),
        limits: Limits {
            rpm: Some(80),
            tpm: None,
        },
    };
    let start = 1_800_000_000_000 / MINUTE * MINUTE;
    let pick = |replica: &Arc<RedisState>, at: u64| {
        let replica = replica.clone();
        async move {
            let mut request = ask(pool, &candidates, &[], at);
            request.client = Some(client);
            replica.pick(request).await
        }
    };
    // A takes a lease (an eighth of 80), uses one request of it and goes quiet.
    assert!(served(pick(&a, start + 10).await).is_some());
    // B, after A's lease went stale, gets every request A did not reserve.
    let mut by_b = 0;
    while served(pick(&b, start + 2_000 + by_b).await).is_some() {
        by_b += 1;
        assert!(by_b <= 80, "B admitted more than the rpm");
    }
    // A comes back: it gives back what it did not use, and may use exactly that.
    let mut by_a = 0;
    while served(pick(&a, start + 3_000 + by_a).await).is_some() {
        by_a += 1;
        assert!(by_a <= 80);
    }
    assert_eq!(1 + by_b + by_a, 80, "B {by_b}, A {by_a} more");
    assert!(matches!(
        pick(&b, start + 4_000).await,
        Choice::ClientFull { .. }
    ));
    // Many requests, few calls: the lease is an eighth of what is left.
    assert!(by_b >= 60, "{by_b}");
}

#[tokio::test]
async fn concurrent_requests_of_a_leased_client_admit_exactly_its_rpm() {
    let server = RedisServer::start();
    let a = replica(&server).await;
    let pool = pool();
    let candidates = Arc::new(vec![Candidate {
        credential: Uuid::new_v4(),
        weight: 1,
    }]);
    let client = ClientAdmit {
        workspace: pool.workspace,
        key: Uuid::new_v4(),
        limits: Limits {
            rpm: Some(1000),
            tpm: None,
        },
    };
    let at = 1_800_000_000_000 / MINUTE * MINUTE + 10;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (a, candidates) = (a.clone(), candidates.clone());
            tokio::spawn(async move {
                let mut admitted = 0u32;
                loop {
                    let mut request = ask(pool, &candidates, &[], at);
                    request.client = Some(client);
                    match a.pick(request).await {
                        Choice::Serve(_) => admitted += 1,
                        Choice::ClientFull { .. } => return admitted,
                        other => panic!("{other:?}"),
                    }
                }
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    // What concurrent grants left on this replica's lease is still its to use.
    loop {
        let mut request = ask(pool, &candidates, &[], at);
        request.client = Some(client);
        match a.pick(request).await {
            Choice::Serve(_) => total += 1,
            _ => break,
        }
    }
    assert_eq!(total, 1000, "exactly the rpm, however the requests raced");
}

#[tokio::test]
async fn the_weighted_rotation_is_exact_across_replicas() {
    let server = RedisServer::start();
    let (a, b) = (replica(&server).await, replica(&server).await);
    let pool = pool();
    let candidates = [
        Candidate {
            credential: Uuid::new_v4(),
            weight: 2,
        },
        Candidate {
            credential: Uuid::new_v4(),
            weight: 1,
        },
    ];
    let now = 1_800_000_000_000;
    let mut seq = Vec::new();
    for i in 0..30 {
        let replica = if i % 2 == 0 { &a } else { &b };
        seq.push(served(replica.pick(ask(pool, &candidates, &[], now)).await).unwrap());
    }
    assert_eq!(seq.iter().filter(|i| **i == 0).count(), 20);
    assert_eq!(seq.iter().filter(|i| **i == 1).count(), 10);
    assert_eq!(
        &seq[..6],
        &[0, 1, 0, 0, 1, 0],
        "interleaved, as nginx's SWRR"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_of_two_racing_rejections_is_the_change() {
    let server = RedisServer::start();
    let (a, b) = (replica(&server).await, replica(&server).await);
    let rejected = answer(Trigger::Rejected, Some(401));
    for _ in 0..20 {
        let pool = pool();
        let credential = Uuid::new_v4();
        let now = SystemClock.now_ms();
        let (ra, rb) = tokio::join!(
            a.record(pool, credential, report(&rejected, now)),
            b.record(pool, credential, report(&rejected, now)),
        );
        let changes: Vec<_> = [ra.change, rb.change].into_iter().flatten().collect();
        assert_eq!(changes, vec![Change::Rejected]);
        let flagged = a.flagged().await;
        assert!(flagged.iter().any(|f| f.credential == credential));
        assert_eq!(
            b.recover(pool.workspace, credential, now).await,
            Some(Change::Recovered)
        );
        assert_eq!(a.recover(pool.workspace, credential, now).await, None);
        assert!(!a.flagged().await.iter().any(|f| f.credential == credential));
    }
}

#[tokio::test]
async fn one_replica_leads_at_a_time() {
    let server = RedisServer::start();
    let (a, b) = (replica(&server).await, replica(&server).await);
    let name = format!("probe-{}", Uuid::new_v4().simple());
    assert!(a.lead(&name, 200).await);
    assert!(!b.lead(&name, 200).await);
    assert!(a.lead(&name, 200).await, "the holder extends its lock");
    let deadline = Instant::now() + Duration::from_secs(3);
    while !b.lead(&name, 60_000).await {
        assert!(Instant::now() < deadline, "the lock never expired");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(!a.lead(&name, 200).await);
}

#[tokio::test]
async fn garbled_values_in_redis_read_as_available() {
    let server = RedisServer::start();
    let state = replica(&server).await;
    let pool = pool();
    let credential = Uuid::new_v4();
    let candidates = [Candidate {
        credential,
        weight: 1,
    }];
    let limits = [Limits {
        rpm: Some(1),
        tpm: Some(1),
    }];
    let tag = format!(
        "{{{}}}:pool:{}",
        pool.workspace.simple(),
        pool.model.simple()
    );
    let c = credential.simple().to_string();
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut pipe = redis::pipe();
    pipe.cmd("SET")
        .arg(format!("rotor:{tag}:rot"))
        .arg("7|x,,y");
    pipe.cmd("HSET")
        .arg(format!("rotor:{tag}:ent"))
        .arg(&c)
        .arg("t:zz:1|nonsense");
    pipe.cmd("HSET")
        .arg(format!("rotor:{tag}:win"))
        .arg(&c)
        .arg("what");
    pipe.cmd("SET")
        .arg(format!("rotor:{tag}:aff:0000000000000001"))
        .arg("|||");
    pipe.cmd("HSET")
        .arg(format!("rotor:{{{}}}:cred", pool.workspace.simple()))
        .arg(&c)
        .arg("x:notanumber");
    let () = pipe.query_async(&mut conn).await.unwrap();
    let mut request = ask(pool, &candidates, &limits, 1_800_000_000_000);
    request.sticky = Some(Sticky {
        key: 1,
        ttl_ms: 1_000,
    });
    let choice = state.pick(request).await;
    assert_eq!(served(choice), Some(0), "{choice:?}");
    assert!(state.is_shared(), "garbage is no reason to leave Redis");
}

// ---- fallback -------------------------------------------------------------------------------

#[tokio::test]
async fn with_redis_gone_picks_and_records_go_on_in_process() {
    let mut server = RedisServer::start();
    let state = replica(&server).await;
    let pool = pool();
    let (x, y) = (Uuid::new_v4(), Uuid::new_v4());
    let candidates = [
        Candidate {
            credential: x,
            weight: 1,
        },
        Candidate {
            credential: y,
            weight: 1,
        },
    ];
    let now = SystemClock.now_ms();
    // Recorded while Redis is up: mirrored in process.
    let rejected = answer(Trigger::Rejected, Some(401));
    let recorded = state.record(pool, x, report(&rejected, now)).await;
    assert_eq!(recorded.change, Some(Change::Rejected));
    server.stop();
    for i in 0..6 {
        let choice = state.pick(ask(pool, &candidates, &[], now + i)).await;
        assert_eq!(served(choice), Some(1), "the rejection survives the outage");
    }
    assert!(!state.is_shared());
    let transient = answer(Trigger::Transient, Some(503));
    let recorded = state.record(pool, y, report(&transient, now + 10)).await;
    assert!(recorded.cooled.is_some());
    let choice = state.pick(ask(pool, &candidates, &[], now + 20)).await;
    assert!(matches!(choice, Choice::AllCooling { .. }), "{choice:?}");
    state.count_tokens(pool, y, 10, now).await;
    assert!(state.book(pool).await.get(y).is_some());
    assert_eq!(
        state.reset(pool, &[x, y], now + 30).await,
        Vec::<Uuid>::new()
    );
    assert_eq!(
        state.recover(pool.workspace, x, now + 40).await,
        Some(Change::Recovered)
    );
    assert!(state.lead("probe", 1_000).await);
}

/// Redis's count of `command` calls so far.
fn calls(server: &RedisServer, command: &str) -> u64 {
    let out = Command::new("redis-cli")
        .args(["-p", &server.port.to_string(), "info", "commandstats"])
        .output()
        .expect("redis-cli runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let prefix = format!("cmdstat_{command}:calls=");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// `count` picks at once, half on each replica; what each was given.
async fn concurrent_picks(
    replicas: [&Arc<RedisState>; 2],
    pool: PoolKey,
    candidates: &Arc<[Candidate]>,
    now: u64,
    count: usize,
) -> Vec<Choice> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let (state, candidates) = (Arc::clone(replicas[i % 2]), Arc::clone(candidates));
        tasks.spawn(async move { state.pick(ask(pool, &candidates, &[], now)).await });
    }
    tasks.join_all().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn picks_that_wait_together_go_in_one_call_and_stay_exact() {
    let server = RedisServer::start();
    let (a, b) = (replica(&server).await, replica(&server).await);
    let pool = pool();
    let candidates: Arc<[Candidate]> = Arc::from(vec![
        Candidate {
            credential: Uuid::new_v4(),
            weight: 3,
        },
        Candidate {
            credential: Uuid::new_v4(),
            weight: 1,
        },
    ]);
    let now = 1_800_000_000_000;
    let before = calls(&server, "evalsha");
    let choices = concurrent_picks([&a, &b], pool, &candidates, now, 400).await;
    let scripts = calls(&server, "evalsha") - before;
    let picked: Vec<usize> = choices.iter().filter_map(|c| served(*c)).collect();
    assert_eq!(picked.len(), 400, "every pick served: {choices:?}");
    assert_eq!(
        picked.iter().filter(|i| **i == 0).count(),
        300,
        "the 3:1 weights exactly"
    );
    assert!(
        scripts < 400,
        "picks that waited shared calls: {scripts} script calls for 400 picks"
    );

    // The second entry fails and cools; once its cooldown is over, however many picks come at
    // once, exactly one of them is its half-open trial.
    let failed = answer(Trigger::Transient, Some(503));
    a.record(pool, candidates[1].credential, report(&failed, now))
        .await;
    let later = now + 11_000;
    let choices = concurrent_picks([&a, &b], pool, &candidates, later, 200).await;
    let trials: Vec<&Choice> = choices
        .iter()
        .filter(|c| matches!(c, Choice::Serve(s) if s.trial))
        .collect();
    assert_eq!(trials.len(), 1, "one trial: {choices:?}");
    assert!(matches!(trials[0], Choice::Serve(s) if s.index == 1));
    let to_second = choices.iter().filter(|c| served(**c) == Some(1)).count();
    assert_eq!(to_second, 1, "nothing else goes to the entry on trial");

    // Clients that hang up mid-pick (a load generator stopping) leave no pick waiting behind.
    for round in 0..20 {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..100 {
            let (state, candidates) = (
                Arc::clone(if i % 2 == 0 { &a } else { &b }),
                Arc::clone(&candidates),
            );
            tasks.spawn(async move { state.pick(ask(pool, &candidates, &[], later)).await });
        }
        tokio::time::sleep(Duration::from_micros(50 * round)).await;
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    let after = tokio::time::timeout(
        Duration::from_secs(2),
        concurrent_picks([&a, &b], pool, &candidates, later, 50),
    )
    .await
    .expect("picks after hung-up ones are answered");
    assert!(after.iter().all(|c| served(*c).is_some()), "{after:?}");
}
