//! The per-(workspace, model, credential) series of `/metrics`, kept here rather than in the
//! `metrics` recorder. Series of deleted models, credentials and workspaces must leave
//! `/metrics` (see SECURITY.md), and the Prometheus exporter cannot delete a series: its idle timeout
//! would drop series of live but quiet models, and orphan the handles routes hold (increments
//! made after it fired would be lost). So a series here is plain atomics behind an `Arc` —
//! the hot path allocates nothing and does no label work — and it stays in the [`Registry`]
//! until [`Registry::forget_dead`] is told its model or credential is gone; never because it
//! was idle or its cached route was dropped. Re-resolving a route gets the same series back.

use crate::cooldown::Reason;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use uuid::Uuid;

/// The `outcome` label: the class of an answer. A closed set, so a label can never be
/// misspelt into a series nobody reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerClass {
    /// 2xx/3xx.
    Ok,
    /// A 4xx that is the caller's to see.
    ClientError,
    /// 429, or every credential cooling down.
    RateLimited,
    /// 5xx, an unreachable provider, a rejected or unreadable credential.
    UpstreamError,
    /// No answer in time.
    Timeout,
    /// The address policy refused the provider.
    Blocked,
}

impl AnswerClass {
    /// Every outcome, in the order of a series' outcome counters.
    pub const ALL: [AnswerClass; 6] = [
        AnswerClass::Ok,
        AnswerClass::ClientError,
        AnswerClass::RateLimited,
        AnswerClass::UpstreamError,
        AnswerClass::Timeout,
        AnswerClass::Blocked,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            AnswerClass::Ok => "ok",
            AnswerClass::ClientError => "client_error",
            AnswerClass::RateLimited => "rate_limited",
            AnswerClass::UpstreamError => "upstream_error",
            AnswerClass::Timeout => "timeout",
            AnswerClass::Blocked => "blocked",
        }
    }

    /// The class of an upstream answer with `status`.
    pub fn of_status(status: u16) -> Self {
        match status {
            200..=399 => AnswerClass::Ok,
            429 => AnswerClass::RateLimited,
            400..=499 => AnswerClass::ClientError,
            _ => AnswerClass::UpstreamError,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// AnswerClass label values, in the order of [`AnswerClass::ALL`].
const OUTCOME_LABELS: [&str; 6] = [
    AnswerClass::ALL[0].as_str(),
    AnswerClass::ALL[1].as_str(),
    AnswerClass::ALL[2].as_str(),
    AnswerClass::ALL[3].as_str(),
    AnswerClass::ALL[4].as_str(),
    AnswerClass::ALL[5].as_str(),
];

/// Cooldown reasons, in the order of a series' cooldown counters.
pub const REASONS: [Reason; 6] = [
    Reason::RateLimited,
    Reason::Rejected,
    Reason::UpstreamError,
    Reason::Unreachable,
    Reason::Timeout,
    Reason::StreamError,
];

/// Bucket bounds (seconds) of `rotor_upstream_latency_seconds`.
pub const LATENCY_BUCKETS: [f64; 17] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0,
];

/// Bucket bounds (seconds) of `rotor_overhead_seconds`.
pub const OVERHEAD_BUCKETS: [f64; 9] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05,
];

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

/// A histogram with fixed buckets: a count per bucket (the last one past every bound) and the
/// sum in nanoseconds, so recording is two relaxed additions. The total count is the sum of
/// the buckets, so a scrape never shows a `+Inf` bucket that disagrees with `_count`.
#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    buckets: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn record(&self, seconds: f64) {
        // The first bucket whose bound is >= the value (`le` is inclusive).
        let i = self.bounds.partition_point(|b| *b < seconds);
        if let Some(bucket) = self.buckets.get(i) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        // `as` saturates: negative and NaN become 0.
        let nanos = (seconds * 1e9) as u64;
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0u64;
        for (bound, bucket) in self.bounds.iter().zip(self.buckets.iter()) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        if let Some(last) = self.buckets.last() {
            cumulative += last.load(Ordering::Relaxed);
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

fn counters<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

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
    requests: [AtomicU64; 6],
    attempts: [AtomicU64; 6],
    cooldowns: [AtomicU64; 6],
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
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
            prompt_tokens: AtomicU64::new(0),
            completion_tokens: AtomicU64::new(0),
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
    pub fn cooldown(&self, reason: Reason) {
        let i = REASONS.iter().position(|r| *r == reason).unwrap_or(0);
        self.cooldowns[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds the tokens a provider reported.
    pub fn tokens(&self, prompt: u64, completion: u64) {
        self.prompt_tokens.fetch_add(prompt, Ordering::Relaxed);
        self.completion_tokens
            .fetch_add(completion, Ordering::Relaxed);
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

/// What the registry held when a liveness check started: the keys to check, and the
/// generation that tells series handed out since (by a route resolved meanwhile) from the rest.
#[derive(Debug)]
pub struct Census {
    generation: u64,
    keys: Vec<Key>,
}

impl Census {
    /// Whether there is nothing to check.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The distinct (workspace, model name) pairs, as two parallel arrays (for `unnest`).
    pub fn models(&self) -> (Vec<Uuid>, Vec<String>) {
        let pairs: HashSet<(Uuid, &str)> = self
            .keys
            .iter()
            .map(|k| (k.workspace, k.model.as_str()))
            .collect();
        pairs.into_iter().map(|(w, m)| (w, m.to_owned())).unzip()
    }

    /// The distinct (workspace, credential) pairs, as two parallel arrays (for `unnest`).
    pub fn credentials(&self) -> (Vec<Uuid>, Vec<Uuid>) {
        let pairs: HashSet<(Uuid, Uuid)> = self
            .keys
            .iter()
            .filter_map(|k| k.credential.map(|c| (k.workspace, c)))
            .collect();
        pairs.into_iter().unzip()
    }
}

/// Every series of one server, by labels.
#[derive(Debug, Default)]
pub struct Registry {
    series: RwLock<HashMap<Key, Arc<Series>>>,
    /// Bumped by every [`Registry::census`].
    generation: AtomicU64,
}

impl Registry {
    /// The series of these labels: the existing one, or a new one at zero.
    pub fn series(&self, workspace: Uuid, model: &str, credential: Option<Uuid>) -> Arc<Series> {
        let key = Key {
            workspace,
            model: model.to_owned(),
            credential,
        };
        {
            let map = self.series.read().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = map.get(&key) {
                s.handed_out
                    .fetch_max(self.generation.load(Ordering::SeqCst), Ordering::SeqCst);
                return s.clone();
            }
        }
        let mut map = self.series.write().unwrap_or_else(|e| e.into_inner());
        let generation = self.generation.load(Ordering::SeqCst);
        let s = map
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Series::new(key, generation)));
        s.handed_out.fetch_max(generation, Ordering::SeqCst);
        s.clone()
    }

    /// The keys of `workspace` (or of all workspaces) to check against the database. Take it
    /// before querying: series handed out after it are kept by [`Registry::forget_dead`] even
    /// if the answer says they are dead (their route was resolved after the query may have
    /// looked), so a live route never holds a forgotten series; the next check settles them.
    pub fn census(&self, workspace: Option<Uuid>) -> Census {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst);
        let map = self.series.read().unwrap_or_else(|e| e.into_inner());
        let keys = map
            .keys()
            .filter(|k| workspace.is_none_or(|w| k.workspace == w))
            .cloned()
            .collect();
        Census { generation, keys }
    }

    /// Forgets the series of `census` whose model is not in `models` or whose credential is
    /// not in `credentials` (both as the database had them after the census was taken).
    /// Returns how many were forgotten.
    pub fn forget_dead(
        &self,
        census: &Census,
        models: &HashSet<(Uuid, String)>,
        credentials: &HashSet<(Uuid, Uuid)>,
    ) -> usize {
        let dead = |k: &Key| {
            !models.contains(&(k.workspace, k.model.clone()))
                || k.credential
                    .is_some_and(|c| !credentials.contains(&(k.workspace, c)))
        };
        let mut map = self.series.write().unwrap_or_else(|e| e.into_inner());
        let mut forgotten = 0;
        for key in census.keys.iter().filter(|k| dead(k)) {
            let stale = map
                .get(key)
                .is_some_and(|s| s.handed_out.load(Ordering::SeqCst) <= census.generation);
            if stale {
                map.remove(key);
                forgotten += 1;
            }
        }
        forgotten
    }

    /// How many series there are.
    pub fn len(&self) -> usize {
        self.series.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends every series in the Prometheus text format 0.0.4, one `HELP`/`TYPE` per family.
    /// The series without a credential show only requests and overhead (the others never
    /// move); overhead is per model, so only they show it.
    pub fn render(&self, out: &mut String) {
        let mut all: Vec<Arc<Series>> = self
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        if all.is_empty() {
            return;
        }
        all.sort_by(|a, b| a.key.cmp(&b.key));
        let (route, entries): (Vec<&Series>, Vec<&Series>) = all
            .iter()
            .map(|s| &**s)
            .partition(|s| s.key.credential.is_none());

        family(
            out,
            "rotor_requests_total",
            "counter",
            "Gateway requests answered, by the answer's class (credential_id is empty when no credential answered).",
        );
        for s in &all {
            labelled(
                out,
                "rotor_requests_total",
                &s.labels,
                "outcome",
                &OUTCOME_LABELS,
                &s.requests,
            );
        }
        if !entries.is_empty() {
            family(
                out,
                "rotor_upstream_attempts_total",
                "counter",
                "Calls to a provider, by the answer's class.",
            );
            for s in &entries {
                labelled(
                    out,
                    "rotor_upstream_attempts_total",
                    &s.labels,
                    "outcome",
                    &OUTCOME_LABELS,
                    &s.attempts,
                );
            }
            family(
                out,
                "rotor_cooldowns_started_total",
                "counter",
                "Cooldowns started on a credential, by reason.",
            );
            let reasons = REASONS.map(Reason::as_str);
            for s in &entries {
                labelled(
                    out,
                    "rotor_cooldowns_started_total",
                    &s.labels,
                    "reason",
                    &reasons,
                    &s.cooldowns,
                );
            }
            family(
                out,
                "rotor_tokens_total",
                "counter",
                "Tokens the provider reported using, by kind.",
            );
            for s in &entries {
                let values = [&s.prompt_tokens, &s.completion_tokens];
                for (kind, v) in ["prompt", "completion"].iter().zip(values) {
                    let v = v.load(Ordering::Relaxed);
                    let _ = writeln!(
                        out,
                        "rotor_tokens_total{{{},kind=\"{kind}\"}} {v}",
                        s.labels
                    );
                }
            }
            family(
                out,
                "rotor_upstream_latency_seconds",
                "histogram",
                "Time until a provider answered one attempt (headers received).",
            );
            for s in &entries {
                s.latency
                    .render(out, "rotor_upstream_latency_seconds", &s.labels);
            }
        }
        if !route.is_empty() {
            family(
                out,
                "rotor_overhead_seconds",
                "histogram",
                "Time Rotor itself spent on a request, the provider's time excluded.",
            );
            for s in &route {
                s.overhead
                    .render(out, "rotor_overhead_seconds", s.model_labels());
            }
        }
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn labelled(
    out: &mut String,
    name: &str,
    labels: &str,
    label: &str,
    values: &[&str],
    counters: &[AtomicU64],
) {
    for (value, counter) in values.iter().zip(counters) {
        let n = counter.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}{{{labels},{label}=\"{value}\"}} {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(r: &Registry) -> String {
        let mut out = String::new();
        r.render(&mut out);
        out
    }

    type Alive = (HashSet<(Uuid, String)>, HashSet<(Uuid, Uuid)>);

    fn live(models: &[(Uuid, &str)], credentials: &[(Uuid, Uuid)]) -> Alive {
        (
            models.iter().map(|(w, m)| (*w, (*m).to_owned())).collect(),
            credentials.iter().copied().collect(),
        )
    }

    #[test]
    fn counters_render_with_help_type_and_labels() {
        let r = Registry::default();
        let (ws, c) = (Uuid::new_v4(), Uuid::new_v4());
        let s = r.series(ws, "gpt", Some(c));
        s.request(AnswerClass::Ok);
        s.request(AnswerClass::Ok);
        s.request(AnswerClass::UpstreamError);
        s.attempt(AnswerClass::RateLimited);
        s.cooldown(Reason::RateLimited);
        s.tokens(5, 7);
        let text = rendered(&r);
        let labels = format!("workspace_id=\"{ws}\",model=\"gpt\",credential_id=\"{c}\"");
        for line in [
            "# HELP rotor_requests_total Gateway requests answered".to_owned(),
            "# TYPE rotor_requests_total counter\n".to_owned(),
            format!("rotor_requests_total{{{labels},outcome=\"ok\"}} 2\n"),
            format!("rotor_requests_total{{{labels},outcome=\"upstream_error\"}} 1\n"),
            format!("rotor_requests_total{{{labels},outcome=\"timeout\"}} 0\n"),
            format!("rotor_upstream_attempts_total{{{labels},outcome=\"rate_limited\"}} 1\n"),
            format!("rotor_cooldowns_started_total{{{labels},reason=\"rate_limited\"}} 1\n"),
            format!("rotor_cooldowns_started_total{{{labels},reason=\"stream_error\"}} 0\n"),
            format!("rotor_tokens_total{{{labels},kind=\"prompt\"}} 5\n"),
            format!("rotor_tokens_total{{{labels},kind=\"completion\"}} 7\n"),
            "# TYPE rotor_upstream_latency_seconds histogram\n".to_owned(),
        ] {
            assert!(text.contains(&line), "no `{line}` in\n{text}");
        }
        assert_eq!(text.matches("# TYPE rotor_requests_total ").count(), 1);
        // No credential-less series, so no overhead family.
        assert!(!text.contains("rotor_overhead_seconds"), "{text}");
    }

    #[test]
    fn histograms_render_cumulative_buckets_sum_and_count() {
        let r = Registry::default();
        let (ws, c) = (Uuid::new_v4(), Uuid::new_v4());
        let s = r.series(ws, "gpt", Some(c));
        s.latency(0.001); // on a bound: counted in it (`le`)
        s.latency(0.2);
        s.latency(500.0); // past every bound
        let text = rendered(&r);
        let labels = format!("workspace_id=\"{ws}\",model=\"gpt\",credential_id=\"{c}\"");
        let name = "rotor_upstream_latency_seconds";
        for (le, n) in [
            ("0.0005", 0),
            ("0.001", 1),
            ("0.1", 1),
            ("0.25", 2),
            ("120", 2),
            ("+Inf", 3),
        ] {
            let line = format!("{name}_bucket{{{labels},le=\"{le}\"}} {n}\n");
            assert!(text.contains(&line), "no `{line}` in\n{text}");
        }
        assert!(
            text.contains(&format!("{name}_count{{{labels}}} 3\n")),
            "{text}"
        );
        let sum: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}_sum{{{labels}}} ")))
            .unwrap()
            .parse()
            .unwrap();
        assert!((sum - 500.201).abs() < 1e-6, "{sum}");
        assert_eq!(
            text.matches(&format!("{name}_bucket{{{labels},")).count(),
            18
        );
    }

    #[test]
    fn the_credentialless_series_shows_requests_and_per_model_overhead() {
        let r = Registry::default();
        let ws = Uuid::new_v4();
        let s = r.series(ws, "gpt", None);
        s.request(AnswerClass::RateLimited);
        s.overhead(0.0002);
        let text = rendered(&r);
        let model = format!("workspace_id=\"{ws}\",model=\"gpt\"");
        assert!(text.contains(&format!(
            "rotor_requests_total{{{model},credential_id=\"\",outcome=\"rate_limited\"}} 1\n"
        )));
        assert!(text.contains(&format!(
            "rotor_overhead_seconds_bucket{{{model},le=\"0.00025\"}} 1\n"
        )));
        assert!(text.contains(&format!("rotor_overhead_seconds_count{{{model}}} 1\n")));
        assert!(!text.contains("rotor_upstream_attempts_total"), "{text}");
        assert!(!text.contains("rotor_tokens_total"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        let r = Registry::default();
        let ws = Uuid::new_v4();
        r.series(ws, "a\\b\"c\nd", None).request(AnswerClass::Ok);
        let text = rendered(&r);
        assert!(
            text.contains(r#"model="a\\b\"c\nd",credential_id="""#),
            "{text}"
        );
        // Every sample stays on one line.
        assert!(text
            .lines()
            .all(|l| l.starts_with('#') || l.starts_with("rotor_")));
    }

    #[test]
    fn the_same_labels_get_the_same_series() {
        let r = Registry::default();
        let (ws, c) = (Uuid::new_v4(), Uuid::new_v4());
        let a = r.series(ws, "gpt", Some(c));
        a.request(AnswerClass::Ok);
        drop(a); // the route is dropped from a cache: the series stays
        let b = r.series(ws, "gpt", Some(c));
        b.request(AnswerClass::Ok);
        assert_eq!(b.requests[0].load(Ordering::Relaxed), 2);
        assert!(!Arc::ptr_eq(&b, &r.series(ws, "gpt", None)));
        assert!(!Arc::ptr_eq(&b, &r.series(ws, "other", Some(c))));
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn dead_models_and_credentials_are_forgotten_live_ones_kept() {
        let r = Registry::default();
        let (ws, other) = (Uuid::new_v4(), Uuid::new_v4());
        let (c1, c2) = (Uuid::new_v4(), Uuid::new_v4());
        let kept = r.series(ws, "kept", Some(c1));
        kept.request(AnswerClass::Ok);
        r.series(ws, "kept", None);
        r.series(ws, "kept", Some(c2)); // c2 deleted
        r.series(ws, "gone", Some(c1)); // model deleted
        r.series(ws, "gone", None);
        r.series(other, "kept", Some(c1)); // another workspace: not in this census

        let census = r.census(Some(ws));
        let (ws_ids, names) = census.models();
        assert!(ws_ids.iter().all(|w| *w == ws));
        let mut names = names;
        names.sort();
        assert_eq!(names, ["gone", "kept"]);
        let (_, mut creds) = census.credentials();
        creds.sort();
        let mut want = vec![c1, c2];
        want.sort();
        assert_eq!(creds, want);

        let (models, credentials) = live(&[(ws, "kept")], &[(ws, c1)]);
        assert_eq!(r.forget_dead(&census, &models, &credentials), 3);
        let text = rendered(&r);
        assert!(!text.contains("model=\"gone\""), "{text}");
        assert!(!text.contains(&c2.to_string()), "{text}");
        assert!(text.contains(&other.to_string()), "{text}");
        // The kept series is the one routes hold, its count intact.
        assert!(Arc::ptr_eq(&kept, &r.series(ws, "kept", Some(c1))));
        assert!(text.contains(&format!(
            "rotor_requests_total{{workspace_id=\"{ws}\",model=\"kept\",credential_id=\"{c1}\",outcome=\"ok\"}} 1\n"
        )));
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn a_series_handed_out_after_the_census_is_not_forgotten() {
        let r = Registry::default();
        let ws = Uuid::new_v4();
        r.series(ws, "recreated", None);
        let census = r.census(None);
        // The model is recreated and its route resolved while the database is asked.
        let held = r.series(ws, "recreated", None);
        let (models, credentials) = live(&[], &[]);
        assert_eq!(r.forget_dead(&census, &models, &credentials), 0);
        assert!(Arc::ptr_eq(&held, &r.series(ws, "recreated", None)));
        // The next check, with nothing handed out meanwhile, settles it.
        drop(held);
        let census = r.census(None);
        assert_eq!(r.forget_dead(&census, &models, &credentials), 1);
        assert!(r.is_empty());
        assert_eq!(rendered(&r), "");
    }
}
