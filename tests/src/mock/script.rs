//! What the mock does for one request, and how a test says so: [`MockKey`] renders a script
//! into the provider API key a credential stores, and the mock reads it back from the key each
//! request carries. The key is the one thing a test controls that travels with a request
//! through Rotor to the provider, so the script rides in it; how it is spelled stays in this
//! module.

use std::fmt;

/// A provider API key for the mock: a label (what tests and logs see) and what the mock is to
/// do with requests carrying it. `MockKey::new("sk_lim").status(429).retry_after(60)`.
///
/// A key without a script is any string whose `_`-separated words are no script words
/// (`"sk_ok"`); [`MockKey::new`] refuses a label that would script the mock by accident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MockKey {
    label: String,
    script: Script,
}

/// The behaviour a key asks for; every field unset is an ordinary, immediate answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Script {
    /// Answer this (non-2xx) status with an OpenAI error body.
    pub status: Option<u16>,
    /// `Retry-After: N` (seconds) on an error answer.
    pub retry_after: Option<u64>,
    /// `Retry-After` as an HTTP date N seconds ahead (wins over `retry_after`).
    pub retry_after_date: Option<u64>,
    /// `retry-after-ms: N` on an error answer.
    pub retry_after_ms: Option<u64>,
    /// `x-ratelimit-reset-requests: D` (a duration such as `6m0s`).
    pub reset_requests: Option<String>,
    /// `x-ratelimit-reset-tokens: D`.
    pub reset_tokens: Option<String>,
    /// Wait this long (ms) before the headers.
    pub delay_ms: Option<u64>,
    /// Wait this long (ms) between stream events.
    pub gap_ms: Option<u64>,
    /// Stream this many content chunks (3 when unset).
    pub chunks: Option<u64>,
    /// Break the stream after this many events.
    pub drop_after: Option<u64>,
    /// A 200 answer of this many MiB without a `Content-Length`.
    pub huge_mib: Option<u64>,
    /// Answer 302 to `/redirected`.
    pub redirect: bool,
}

/// One scripted word of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Word {
    Status(u16),
    RetryAfter(u64),
    RetryAfterDate(u64),
    RetryAfterMs(u64),
    ResetRequests(String),
    ResetTokens(String),
    Delay(u64),
    Gap(u64),
    Chunks(u64),
    Drop(u64),
    Huge(u64),
    Redirect,
}

/// Makes a word of its number.
type MakeWord = fn(u64) -> Word;

/// The numeric words, by prefix. A longer prefix never starts with a shorter one's digits, so
/// `rad20` is not `ra` + `d20`.
const NUMBERS: [(&str, MakeWord); 9] = [
    ("ra", Word::RetryAfter),
    ("rad", Word::RetryAfterDate),
    ("rams", Word::RetryAfterMs),
    ("delay", Word::Delay),
    ("gap", Word::Gap),
    ("chunks", Word::Chunks),
    ("drop", Word::Drop),
    ("huge", Word::Huge),
    ("s", |n| Word::Status(u16::try_from(n).unwrap_or(u16::MAX))),
];

impl Word {
    fn parse(word: &str) -> Option<Word> {
        if word == "redirect" {
            return Some(Word::Redirect);
        }
        for (prefix, make) in NUMBERS {
            if let Some(n) = word.strip_prefix(prefix).and_then(|v| v.parse().ok()) {
                return Some(make(n));
            }
        }
        let duration = |v: &str| {
            (!v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'))
                .then(|| v.to_owned())
        };
        if let Some(d) = word.strip_prefix("rr").and_then(duration) {
            return Some(Word::ResetRequests(d));
        }
        word.strip_prefix("rt")
            .and_then(duration)
            .map(Word::ResetTokens)
    }

    fn render(&self) -> String {
        match self {
            Word::Status(n) => format!("s{n}"),
            Word::RetryAfter(n) => format!("ra{n}"),
            Word::RetryAfterDate(n) => format!("rad{n}"),
            Word::RetryAfterMs(n) => format!("rams{n}"),
            Word::ResetRequests(d) => format!("rr{d}"),
            Word::ResetTokens(d) => format!("rt{d}"),
            Word::Delay(n) => format!("delay{n}"),
            Word::Gap(n) => format!("gap{n}"),
            Word::Chunks(n) => format!("chunks{n}"),
            Word::Drop(n) => format!("drop{n}"),
            Word::Huge(n) => format!("huge{n}"),
            Word::Redirect => "redirect".to_owned(),
        }
    }
}

impl Script {
    /// The script a key carries (its first word of each kind counts).
    pub(crate) fn of(key: &str) -> Script {
        let mut s = Script::default();
        for word in key.split('_').filter_map(Word::parse) {
            match word {
                Word::Status(n) => {
                    s.status.get_or_insert(n);
                }
                Word::RetryAfter(n) => {
                    s.retry_after.get_or_insert(n);
                }
                Word::RetryAfterDate(n) => {
                    s.retry_after_date.get_or_insert(n);
                }
                Word::RetryAfterMs(n) => {
                    s.retry_after_ms.get_or_insert(n);
                }
                Word::ResetRequests(d) => {
                    s.reset_requests.get_or_insert(d);
                }
                Word::ResetTokens(d) => {
                    s.reset_tokens.get_or_insert(d);
                }
                Word::Delay(n) => {
                    s.delay_ms.get_or_insert(n);
                }
                Word::Gap(n) => {
                    s.gap_ms.get_or_insert(n);
                }
                Word::Chunks(n) => {
                    s.chunks.get_or_insert(n);
                }
                Word::Drop(n) => {
                    s.drop_after.get_or_insert(n);
                }
                Word::Huge(n) => {
                    s.huge_mib.get_or_insert(n);
                }
                Word::Redirect => s.redirect = true,
            }
        }
        s
    }

    fn words(&self) -> Vec<Word> {
        let mut w = Vec::new();
        w.extend(self.status.map(Word::Status));
        w.extend(self.retry_after.map(Word::RetryAfter));
        w.extend(self.retry_after_date.map(Word::RetryAfterDate));
        w.extend(self.retry_after_ms.map(Word::RetryAfterMs));
        w.extend(self.reset_requests.clone().map(Word::ResetRequests));
        w.extend(self.reset_tokens.clone().map(Word::ResetTokens));
        w.extend(self.delay_ms.map(Word::Delay));
        w.extend(self.gap_ms.map(Word::Gap));
        w.extend(self.chunks.map(Word::Chunks));
        w.extend(self.drop_after.map(Word::Drop));
        w.extend(self.huge_mib.map(Word::Huge));
        if self.redirect {
            w.push(Word::Redirect);
        }
        w
    }
}

impl MockKey {
    /// A key labelled `label` that the mock answers normally until scripted.
    ///
    /// # Panics
    /// When a `_`-separated word of `label` is itself a script word (`"sk_s429"`): scripts are
    /// written with the methods below, never by hand.
    pub fn new(label: impl Into<String>) -> MockKey {
        let label = label.into();
        let scripted: Vec<&str> = label
            .split('_')
            .filter(|w| Word::parse(w).is_some())
            .collect();
        assert!(
            scripted.is_empty(),
            "the label {label:?} scripts the mock by itself ({scripted:?}): use the MockKey methods"
        );
        MockKey {
            label,
            script: Script::default(),
        }
    }

    /// Answer `status` (a non-2xx one) with an OpenAI error body.
    pub fn status(mut self, status: u16) -> Self {
        self.script.status = Some(status);
        self
    }
    /// `Retry-After: secs` on the error answer.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.script.retry_after = Some(secs);
        self
    }
    /// `Retry-After` as an HTTP date `secs` ahead.
    pub fn retry_after_date(mut self, secs: u64) -> Self {
        self.script.retry_after_date = Some(secs);
        self
    }
    /// `retry-after-ms: ms`.
    pub fn retry_after_ms(mut self, ms: u64) -> Self {
        self.script.retry_after_ms = Some(ms);
        self
    }
    /// `x-ratelimit-reset-requests: duration` (`"6m0s"`).
    pub fn reset_requests(mut self, duration: &str) -> Self {
        self.script.reset_requests = Some(duration.to_owned());
        self
    }
    /// `x-ratelimit-reset-tokens: duration` (`"20ms"`).
    pub fn reset_tokens(mut self, duration: &str) -> Self {
        self.script.reset_tokens = Some(duration.to_owned());
        self
    }
    /// Wait `ms` before answering.
    pub fn delay_ms(mut self, ms: u64) -> Self {
        self.script.delay_ms = Some(ms);
        self
    }
    /// Wait `ms` between stream events.
    pub fn gap_ms(mut self, ms: u64) -> Self {
        self.script.gap_ms = Some(ms);
        self
    }
    /// Stream `n` content chunks.
    pub fn chunks(mut self, n: u64) -> Self {
        self.script.chunks = Some(n);
        self
    }
    /// Break the stream after `n` events.
    pub fn drop_after(mut self, n: u64) -> Self {
        self.script.drop_after = Some(n);
        self
    }
    /// Answer 200 with `mib` MiB, sent without a `Content-Length`.
    pub fn huge_mib(mut self, mib: u64) -> Self {
        self.script.huge_mib = Some(mib);
        self
    }
    /// Answer 302 to `/redirected`.
    pub fn redirect(mut self) -> Self {
        self.script.redirect = true;
        self
    }
}

impl fmt::Display for MockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)?;
        for word in self.script.words() {
            write!(f, "_{}", word.render())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_survives_its_rendering() {
        let full = MockKey::new("sk_all")
            .status(429)
            .retry_after(30)
            .retry_after_date(20)
            .retry_after_ms(5000)
            .reset_requests("6m0s")
            .reset_tokens("20ms")
            .delay_ms(1500)
            .gap_ms(100)
            .chunks(5)
            .drop_after(2)
            .huge_mib(4)
            .redirect();
        let rendered = full.to_string();
        assert_eq!(
            rendered,
            "sk_all_s429_ra30_rad20_rams5000_rr6m0s_rt20ms_delay1500_gap100_chunks5_drop2_huge4_redirect"
        );
        assert_eq!(Script::of(&rendered), full.script);
        let plain = MockKey::new("sk-live-PLAINTEXT-CANARY-x-0123abcd");
        assert_eq!(Script::of(&plain.to_string()), Script::default());
        // The benchmark's hand-written key (bench/run) keeps its meaning.
        let bench = Script::of("sk_gap50_chunks20");
        assert_eq!((bench.gap_ms, bench.chunks), (Some(50), Some(20)));
    }

    #[test]
    #[should_panic(expected = "scripts the mock by itself")]
    fn a_label_that_scripts_is_refused() {
        let _ = MockKey::new("sk_lim_s429");
    }
}
