//! The pick budget: a pool of 16 entries with 2 cooling, in-process state, at most 25 ns
//! median. Measures the whole in-process pick (pool lookup, lock, rotation, cooldown
//! checks) and the bare rotation for comparison.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rotor_dispatch::balancer::Rotation;
use rotor_dispatch::lifecycle::{Classified, Trigger};
use rotor_dispatch::state::memory::MemoryState;
use rotor_dispatch::state::{Candidate, PickRequest, PoolKey, Report, StateBackend};
use uuid::Uuid;

fn pool() -> (PoolKey, Vec<Candidate>) {
    let key = PoolKey {
        workspace: Uuid::new_v4(),
        model: Uuid::new_v4(),
    };
    let candidates = (0..16)
        .map(|i| Candidate {
            credential: Uuid::new_v4(),
            weight: 1 + (i % 4),
        })
        .collect();
    (key, candidates)
}

fn bench(c: &mut Criterion) {
    let (key, candidates) = pool();
    let state = MemoryState::default();
    let now = 1_000_000u64;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let limited = Classified {
        trigger: Trigger::RateLimited,
        reset: None,
        status: Some(429),
        code: None,
    };
    for cooled in [&candidates[3], &candidates[11]] {
        let report = Report {
            answer: &limited,
            cooldown_seconds: 60,
            quota_cooldown_seconds: 3600,
            now_ms: now,
        };
        rt.block_on(state.record(key, cooled.credential, report));
    }
    let (sticky, client) = (None, None);
    c.bench_function("pick: in-process state, pool of 16, 2 cooling", |b| {
        // Each input read through an opaque reference, as the engine reads its route: the
        // optimizer can fold nothing, and no copy is of the benchmark's own making (a
        // black-boxed value is rebuilt byte by byte, then read back in one stalled load).
        b.iter(|| {
            black_box(state.pick_now(PickRequest {
                pool: *black_box(&key),
                signature: *black_box(&7),
                candidates: black_box(&candidates),
                limits: black_box(&[]),
                tried: black_box(&[]),
                now_ms: *black_box(&now),
                sticky: *black_box(&sticky),
                trial_lease_ms: *black_box(&300_000),
                client: *black_box(&client),
            }))
        })
    });
    let weights: Vec<u32> = candidates.iter().map(|c| c.weight).collect();
    let mut rotation = Rotation::new(16);
    c.bench_function("rotation only: 16 entries, 2 skipped", |b| {
        b.iter(|| black_box(rotation.pick(black_box(&weights), |i| i != 3 && i != 11)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
