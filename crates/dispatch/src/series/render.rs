//! `/metrics` text for the registry's series: the Prometheus text format 0.0.4, one
//! `HELP`/`TYPE` per family.

use super::{AnswerClass, Registry, Series};
use crate::lifecycle::Cause;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

impl Registry {
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
        let outcomes = AnswerClass::ALL.map(AnswerClass::as_str);
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
                &outcomes,
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
                    &outcomes,
                    &s.attempts,
                );
            }
            family(
                out,
                "rotor_cooldowns_started_total",
                "counter",
                "Cooldowns started on a credential, by reason.",
            );
            let reasons = Cause::ALL.map(Cause::as_str);
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
                for (kind, v) in super::TOKEN_KINDS.iter().zip(&s.tokens) {
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
impl Registry {
    /// Everything [`Registry::render`] writes.
    pub(super) fn rendered(&self) -> String {
        let mut out = String::new();
        self.render(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::AnswerClass;
    use crate::lifecycle::Cause;
    use crate::series::Registry;
    use uuid::Uuid;

    fn rendered(r: &Registry) -> String {
        r.rendered()
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
        s.cooldown(Cause::RateLimited);
        s.tokens(crate::usage::Usage {
            input: 5,
            output: 7,
            cache_read: 3,
            cache_write: 0,
        });
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
            format!("rotor_cooldowns_started_total{{{labels},reason=\"rejected\"}} 0\n"),
            format!("rotor_tokens_total{{{labels},kind=\"prompt\"}} 5\n"),
            format!("rotor_tokens_total{{{labels},kind=\"completion\"}} 7\n"),
            format!("rotor_tokens_total{{{labels},kind=\"cache_read\"}} 3\n"),
            format!("rotor_tokens_total{{{labels},kind=\"cache_write\"}} 0\n"),
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
}
