//! The per-(workspace, model, credential) series of `/metrics`, kept here rather than in the
//! `metrics` recorder. Series of deleted models, credentials and workspaces must leave
//! `/metrics` (see SECURITY.md), and the Prometheus exporter cannot delete a series: its idle
//! timeout would drop series of live but quiet models, and orphan the handles routes hold
//! (increments made after it fired would be lost). So a series here is plain atomics behind an
//! `Arc` — the hot path allocates nothing and does no label work — and it stays in the
//! [`Registry`] until [`Registry::forget_dead`] is told its model or credential is gone; never
//! because it was idle or its cached route was dropped. Re-resolving a route gets the same
//! series back.

mod histogram;
mod outcome;
mod registry;
mod render;
mod states;

pub use histogram::{LATENCY_BUCKETS, OVERHEAD_BUCKETS};
pub use outcome::AnswerClass;
pub use registry::{Census, Registry};

use crate::lifecycle::Cause;
use histogram::Histogram;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

/// Which labels a series carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// `workspace_id`.
    pub workspace: Uuid,
    /// `model`: the name clients use.
    pub model: String,
    /// `credential_id`; `None` (an empty label) for answers no credential gave.
    pub credential: Option<Uuid>,
}

fn counters<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

/// The `kind` label of `rotor_tokens_total`, in the order of [`Series::tokens`]: cache
/// reads and writes are counted apart from prompt tokens (Anthropic reports them apart).
pub const TOKEN_KINDS: [&str; 4] = ["prompt", "completion", "cache_read", "cache_write"];

/// The series of one (workspace, model, credential).
#[derive(Debug)]
pub struct Series {
    key: Key,
    /// `workspace_id="…",model="…",credential_id="…"`, escaped once at creation.
    labels: String,
    /// Where `,credential_id=` starts in `labels` (the overhead histogram stops there).
    model_labels: usize,
    /// The registry generation this series was last handed out in (see [`Registry::census`]).
    handed_out: AtomicU64,
    requests: [AtomicU64; AnswerClass::ALL.len()],
    attempts: [AtomicU64; AnswerClass::ALL.len()],
    cooldowns: [AtomicU64; Cause::ALL.len()],
    /// Prompt, completion, cache-read and cache-write tokens (see [`TOKEN_KINDS`]).
    tokens: [AtomicU64; TOKEN_KINDS.len()],
    latency: Histogram,
    overhead: Histogram,
}

impl Series {
    fn new(key: Key, generation: u64) -> Self {
        let mut labels = String::from("workspace_id=\"");
        let _ = write!(labels, "{}", key.workspace);
        labels.push_str("\",model=\"");
        escape_into(&mut labels, &key.model);
        labels.push('"');
        let model_labels = labels.len();
        labels.push_str(",credential_id=\"");
        if let Some(c) = key.credential {
            let _ = write!(labels, "{c}");
        }
        labels.push('"');
        Self {
            key,
            labels,
            model_labels,
            handed_out: AtomicU64::new(generation),
            requests: counters(),
            attempts: counters(),
            cooldowns: counters(),
            tokens: Default::default(),
            latency: Histogram::new(&LATENCY_BUCKETS),
            overhead: Histogram::new(&OVERHEAD_BUCKETS),
        }
    }

    /// Its labels.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Counts a client request answered with `outcome`.
    pub fn request(&self, outcome: AnswerClass) {
        self.requests[outcome.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a call to the provider answered with `outcome`.
    pub fn attempt(&self, outcome: AnswerClass) {
        self.attempts[outcome.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a cooldown started for `reason`.
    pub fn cooldown(&self, reason: Cause) {
        self.cooldowns[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds the tokens a provider reported.
    pub fn tokens(&self, used: crate::usage::Usage) {
        let counts = [used.input, used.output, used.cache_read, used.cache_write];
        for (counter, n) in self.tokens.iter().zip(counts) {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// Records how long the provider took to answer one attempt.
    pub fn latency(&self, seconds: f64) {
        self.latency.record(seconds);
    }

    /// Records the time Rotor itself spent on a request (kept per model: only the series
    /// without a credential shows it).
    pub fn overhead(&self, seconds: f64) {
        self.overhead.record(seconds);
    }

    fn model_labels(&self) -> &str {
        self.labels.get(..self.model_labels).unwrap_or(&self.labels)
    }
}

/// Escapes a label value for the text exposition format 0.0.4: backslash, double quote and
/// line feed (model names are user input).
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}
