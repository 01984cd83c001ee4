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
    /// Answer this (non-2xx) status with the request's family's error body.
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
    /// Wait this long (ms) between stream events (and the halves of a chat JSON answer).
    pub gap_ms: Option<u64>,
    /// Stream this many content chunks (3 when unset).
    pub chunks: Option<u64>,
    /// Break the stream after this many events.
    pub drop_after: Option<u64>,
    /// A 200 answer of this many MiB without a `Content-Length`.
    pub huge_mib: Option<u64>,
    /// Answer 302 to `/redirected`.
    pub redirect: bool,
    /// `anthropic-ratelimit-<limit>-{limit,remaining,reset}`: per [`AnthropicLimit`] (in its
    /// order), the remaining count and the reset N seconds ahead.
    pub anthropic_limits: [Option<(u64, u64)>; 4],
    /// Anthropic: the 400 "credit balance is too low" answer (with `status` 400).
    pub credit_too_low: bool,
    /// Gemini: the 400 `API_KEY_INVALID` answer (with `status` 400).
    pub api_key_invalid: bool,
    /// Gemini: `RetryInfo.retryDelay` of this many milliseconds on an error answer.
    pub gemini_retry_delay_ms: Option<u64>,
    /// End the stream with the family's error event after this many events.
    pub error_after: Option<u64>,
    /// OpenAI: the 429 `insufficient_quota` answer (with `status` 429).
    pub insufficient_quota: bool,
    /// OpenAI: successes say the request limit is spent (`x-ratelimit-remaining-requests: 0`,
    /// resetting per `reset_requests`).
    pub spent_requests: bool,
}

/// One of Anthropic's rate limits, each reported in `anthropic-ratelimit-<name>-*` headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnthropicLimit {
    /// Requests per minute.
    Requests,
    /// Tokens per minute (the most restrictive of the token limits).
    Tokens,
    /// Input tokens per minute.
    InputTokens,
    /// Output tokens per minute.
    OutputTokens,
}

impl AnthropicLimit {
    /// Every limit, in header order.
    pub const ALL: [AnthropicLimit; 4] = [
        AnthropicLimit::Requests,
        AnthropicLimit::Tokens,
        AnthropicLimit::InputTokens,
        AnthropicLimit::OutputTokens,
    ];

    /// The `<name>` of its headers.
    pub fn header_name(self) -> &'static str {
        match self {
            AnthropicLimit::Requests => "requests",
            AnthropicLimit::Tokens => "tokens",
            AnthropicLimit::InputTokens => "input-tokens",
            AnthropicLimit::OutputTokens => "output-tokens",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Its letter in a key's script word.
    fn letter(self) -> char {
        match self {
            AnthropicLimit::Requests => 'r',
            AnthropicLimit::Tokens => 't',
            AnthropicLimit::InputTokens => 'i',
            AnthropicLimit::OutputTokens => 'o',
        }
    }

    fn of_letter(c: char) -> Option<AnthropicLimit> {
        AnthropicLimit::ALL.into_iter().find(|l| l.letter() == c)
    }
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
    /// `al<letter><remaining>x<secs>`.
    AnthropicLimit(AnthropicLimit, u64, u64),
    CreditTooLow,
    ApiKeyInvalid,
    GeminiRetryDelayMs(u64),
    ErrorAfter(u64),
    InsufficientQuota,
    SpentRequests,
}

/// Makes a word of its number.
type MakeWord = fn(u64) -> Word;

/// The numeric words, by prefix. A longer prefix never starts with a shorter one's digits, so
/// `rad20` is not `ra` + `d20`.
const NUMBERS: [(&str, MakeWord); 11] = [
    ("ra", Word::RetryAfter),
    ("rad", Word::RetryAfterDate),
    ("rams", Word::RetryAfterMs),
    ("delay", Word::Delay),
    ("gap", Word::Gap),
    ("chunks", Word::Chunks),
    ("drop", Word::Drop),
    ("huge", Word::Huge),
    ("grd", Word::GeminiRetryDelayMs),
    ("errafter", Word::ErrorAfter),
    ("s", |n| Word::Status(u16::try_from(n).unwrap_or(u16::MAX))),
];

impl Word {
    fn parse(word: &str) -> Option<Word> {
        match word {
            "redirect" => return Some(Word::Redirect),
            "credit" => return Some(Word::CreditTooLow),
            "keyinvalid" => return Some(Word::ApiKeyInvalid),
            "noquota" => return Some(Word::InsufficientQuota),
            "spent" => return Some(Word::SpentRequests),
            _ => {}
        }
        if let Some(limit) = Word::anthropic_limit(word) {
            return Some(limit);
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

    /// `al<letter><remaining>x<secs>`, e.g. `alt0x40`.
    fn anthropic_limit(word: &str) -> Option<Word> {
        let rest = word.strip_prefix("al")?;
        let mut chars = rest.chars();
        let limit = AnthropicLimit::of_letter(chars.next()?)?;
        let (remaining, secs) = chars.as_str().split_once('x')?;
        Some(Word::AnthropicLimit(
            limit,
            remaining.parse().ok()?,
            secs.parse().ok()?,
        ))
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
            Word::AnthropicLimit(l, remaining, secs) => {
                format!("al{}{remaining}x{secs}", l.letter())
            }
            Word::CreditTooLow => "credit".to_owned(),
            Word::ApiKeyInvalid => "keyinvalid".to_owned(),
            Word::GeminiRetryDelayMs(n) => format!("grd{n}"),
            Word::ErrorAfter(n) => format!("errafter{n}"),
            Word::InsufficientQuota => "noquota".to_owned(),
            Word::SpentRequests => "spent".to_owned(),
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
                Word::AnthropicLimit(l, remaining, secs) => {
                    s.anthropic_limits[l.index()].get_or_insert((remaining, secs));
                }
                Word::CreditTooLow => s.credit_too_low = true,
                Word::ApiKeyInvalid => s.api_key_invalid = true,
                Word::GeminiRetryDelayMs(n) => {
                    s.gemini_retry_delay_ms.get_or_insert(n);
                }
                Word::ErrorAfter(n) => {
                    s.error_after.get_or_insert(n);
                }
                Word::InsufficientQuota => s.insufficient_quota = true,
                Word::SpentRequests => s.spent_requests = true,
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
        for l in AnthropicLimit::ALL {
            if let Some((remaining, secs)) = self.anthropic_limits[l.index()] {
                w.push(Word::AnthropicLimit(l, remaining, secs));
            }
        }
        if self.credit_too_low {
            w.push(Word::CreditTooLow);
        }
        if self.api_key_invalid {
            w.push(Word::ApiKeyInvalid);
        }
        w.extend(self.gemini_retry_delay_ms.map(Word::GeminiRetryDelayMs));
        w.extend(self.error_after.map(Word::ErrorAfter));
        if self.insufficient_quota {
            w.push(Word::InsufficientQuota);
        }
        if self.spent_requests {
            w.push(Word::SpentRequests);
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

    /// Answer `status` (a non-2xx one) with an error body in the request's family's shape
    /// (OpenAI, Anthropic or Gemini; see the family modules for each status's body).
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
    /// Wait `ms` between stream events (and between the two halves of a chat completion's
    /// JSON answer).
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
    /// Anthropic: report `limit` with `remaining` left, resetting `reset_secs` ahead (its
    /// `anthropic-ratelimit-<limit>-{limit,remaining,reset}` headers, on every answer).
    pub fn anthropic_limit(
        mut self,
        limit: AnthropicLimit,
        remaining: u64,
        reset_secs: u64,
    ) -> Self {
        self.script.anthropic_limits[limit.index()] = Some((remaining, reset_secs));
        self
    }
    /// Anthropic: every rate limit exhausted (remaining 0), resetting `secs` ahead.
    pub fn anthropic_reset(self, secs: u64) -> Self {
        AnthropicLimit::ALL
            .into_iter()
            .fold(self, |key, l| key.anthropic_limit(l, 0, secs))
    }
    /// Anthropic: answer 400 `invalid_request_error` "Your credit balance is too low ...".
    pub fn credit_balance_too_low(mut self) -> Self {
        self.script.status = Some(400);
        self.script.credit_too_low = true;
        self
    }
    /// Gemini: answer 400 `INVALID_ARGUMENT` with the `API_KEY_INVALID` reason.
    pub fn api_key_invalid(mut self) -> Self {
        self.script.status = Some(400);
        self.script.api_key_invalid = true;
        self
    }
    /// Gemini: `RetryInfo.retryDelay: "<secs>s"` in the error answer's details.
    pub fn gemini_retry_delay(self, secs: u64) -> Self {
        self.gemini_retry_delay_ms(secs.saturating_mul(1000))
    }
    /// Gemini: `RetryInfo.retryDelay` of `ms` milliseconds (`"1.500s"`).
    pub fn gemini_retry_delay_ms(mut self, ms: u64) -> Self {
        self.script.gemini_retry_delay_ms = Some(ms);
        self
    }
    /// OpenAI: answer 429 `insufficient_quota` ("You exceeded your current quota …").
    pub fn insufficient_quota(mut self) -> Self {
        self.script.status = Some(429);
        self.script.insufficient_quota = true;
        self
    }

    /// OpenAI: every success says the request limit is spent (`x-ratelimit-remaining-requests:
    /// 0`) and resets in `duration` (`x-ratelimit-reset-requests`, e.g. `"30s"`).
    pub fn spent_requests(mut self, duration: &str) -> Self {
        self.script.spent_requests = true;
        self.reset_requests(duration)
    }

    /// End the stream after `n` events with the family's error event (Anthropic
    /// `event: error` overloaded, Gemini and OpenAI a `data: {"error": ...}` chunk).
    pub fn error_after(mut self, n: u64) -> Self {
        self.script.error_after = Some(n);
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
            .redirect()
            .anthropic_limit(AnthropicLimit::InputTokens, 0, 40)
            .anthropic_limit(AnthropicLimit::Requests, 7, 3600)
            .gemini_retry_delay_ms(1500)
            .error_after(3)
            .insufficient_quota()
            .spent_requests("6m0s");
        let rendered = full.to_string();
        assert_eq!(
            rendered,
            "sk_all_s429_ra30_rad20_rams5000_rr6m0s_rt20ms_delay1500_gap100_chunks5_drop2_huge4_redirect_alr7x3600_ali0x40_grd1500_errafter3_noquota_spent"
        );
        assert_eq!(Script::of(&rendered), full.script);
        let plain = MockKey::new("sk-live-PLAINTEXT-CANARY-x-0123abcd");
        assert_eq!(Script::of(&plain.to_string()), Script::default());
        // The benchmark's hand-written key (bench/run) keeps its meaning.
        let bench = Script::of("sk_gap50_chunks20");
        assert_eq!((bench.gap_ms, bench.chunks), (Some(50), Some(20)));
    }

    #[test]
    fn family_faults_survive_their_rendering() {
        for key in [
            MockKey::new("sk_c").credit_balance_too_low(),
            MockKey::new("sk_g")
                .api_key_invalid()
                .gemini_retry_delay(37),
            MockKey::new("sk_a").status(429).anthropic_reset(60),
        ] {
            assert_eq!(Script::of(&key.to_string()), key.script, "{key}");
        }
        let credit = Script::of(&MockKey::new("sk_c").credit_balance_too_low().to_string());
        assert_eq!((credit.status, credit.credit_too_low), (Some(400), true));
        let reset = Script::of(&MockKey::new("sk_a").anthropic_reset(60).to_string());
        assert_eq!(reset.anthropic_limits, [Some((0, 60)); 4]);
        assert_eq!(
            Script::of("sk_g_grd37000").gemini_retry_delay_ms,
            Some(37_000)
        );
    }

    #[test]
    #[should_panic(expected = "scripts the mock by itself")]
    fn a_label_that_scripts_is_refused() {
        let _ = MockKey::new("sk_lim_s429");
    }
}
