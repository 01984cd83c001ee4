//! The token counts a provider reports, in each family's own words: OpenAI's `usage`
//! (chat, embeddings, and the Responses API's `input_tokens`/`output_tokens`, also inside
//! `response.completed`), Anthropic's `usage` of the answer or of `message_start` and
//! `message_delta`, Gemini's `usageMetadata`. Read from a JSON answer, or found in the `data:`
//! lines of a stream as they are relayed.

use crate::json_top::members;
use crate::target::Family;

/// What one answer used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Input (prompt) tokens, cached ones included where the provider counts them there.
    pub input: u64,
    /// Output (completion) tokens.
    pub output: u64,
    /// Input tokens read from the provider's prompt cache.
    pub cache_read: u64,
    /// Input tokens written to the prompt cache (Anthropic's cache creation).
    pub cache_write: u64,
}

impl Usage {
    /// Input tokens with the cached ones included (what the usage ledger counts): OpenAI's
    /// `prompt_tokens`/`input_tokens` and Gemini's `promptTokenCount` include them already;
    /// Anthropic's `input_tokens` excludes both cache reads and cache writes, so they are added.
    pub fn input_with_cache(&self, family: Family) -> u64 {
        match family {
            Family::Anthropic => self.input + self.cache_read + self.cache_write,
            Family::OpenAi | Family::Gemini => self.input,
        }
    }
}

/// The fields one answer or event reports (`None`: not reported there).
#[derive(Debug, Default, Clone, Copy)]
struct Partial {
    input: Option<u64>,
    output: Option<u64>,
    cache_read: Option<u64>,
    cache_write: Option<u64>,
}

impl Partial {
    /// The counts of an answer or event: only the top-level members where a family puts
    /// them are parsed (`usage`, Anthropic's `message_start` `message`, the Responses API's
    /// `response`, Gemini's `usageMetadata`); the rest is only delimited.
    fn of(family: Family, text: &[u8]) -> Option<Partial> {
        if family == Family::Gemini {
            let [g] = members(text, ["usageMetadata"])?;
            let [input, candidates, thoughts, cached] = object(g?, GEMINI_FIELDS)??.map(count);
            let output = match (candidates?, thoughts?) {
                (None, None) => None,
                (c, t) => Some(c.unwrap_or(0) + t.unwrap_or(0)),
            };
            return Some(Partial {
                input: input?,
                output,
                cache_read: cached?,
                cache_write: None,
            });
        }
        let [usage, message, response] = members(text, ["usage", "message", "response"])?;
        let top = match usage {
            Some(raw) => object(raw, FIELDS)?,
            None => None,
        };
        // Where a member is not the object it should be (an error event's `message` string),
        // it holds no counts.
        fn inner(raw: Option<&[u8]>) -> Option<[Option<&[u8]>; 8]> {
            let [usage] = members(raw?, ["usage"])?;
            object(usage?, FIELDS).flatten()
        }
        let fields = match top {
            Some(fields) => fields,
            None => inner(message).or_else(|| inner(response))?,
        };
        let [prompt, completion, input, output, cache_read, cache_write, details, input_details] =
            fields;
        let cached = match present(details).or(present(input_details)) {
            Some(d) => object(d, ["cached_tokens"])?.map_or(Some(None), |[c]| count(c))?,
            None => None,
        };
        Some(Partial {
            input: count(prompt)?.or(count(input)?),
            output: count(completion)?.or(count(output)?),
            cache_read: count(cache_read)?.or(cached),
            cache_write: count(cache_write)?,
        })
    }

    /// Later reports win for the fields they carry (Anthropic's `message_delta` brings the
    /// final output count; Gemini's chunks are cumulative).
    fn merge(self, later: Partial) -> Partial {
        Partial {
            input: later.input.or(self.input),
            output: later.output.or(self.output),
            cache_read: later.cache_read.or(self.cache_read),
            cache_write: later.cache_write.or(self.cache_write),
        }
    }

    fn finish(self) -> Option<Usage> {
        if self.input.is_none() && self.output.is_none() {
            return None;
        }
        Some(Usage {
            input: self.input.unwrap_or(0),
            output: self.output.unwrap_or(0),
            cache_read: self.cache_read.unwrap_or(0),
            cache_write: self.cache_write.unwrap_or(0),
        })
    }
}

/// The usage a JSON answer of `family` reports, when it reports one.
pub fn of_body(family: Family, body: &[u8]) -> Option<Usage> {
    Partial::of(family, body)?.finish()
}

/// Finds the usage in a stream's `data:` lines, fed chunk by chunk as they are relayed.
pub struct UsageScanner {
    family: Family,
    line: Vec<u8>,
    seen: Option<Partial>,
}

impl UsageScanner {
    /// Longest part of a line kept across chunks (a longer one is cut, so it never parses).
    const MAX_LINE: usize = 1 << 20;

    /// A scanner for a stream of `family`.
    pub fn new(family: Family) -> Self {
        Self {
            family,
            line: Vec::new(),
            seen: None,
        }
    }

    /// Reads the next chunk of the stream: whole lines are looked at where they lie in the
    /// chunk; only a line cut by a chunk boundary is copied (and the buffer is reused).
    pub fn feed(&mut self, mut chunk: &[u8]) {
        while let Some(end) = memchr::memchr(b'\n', chunk) {
            let (head, rest) = (&chunk[..end], &chunk[end + 1..]);
            if self.line.is_empty() {
                self.look_at(head);
            } else {
                self.keep(head);
                let line = std::mem::take(&mut self.line);
                self.look_at(&line);
                self.line = line;
                self.line.clear();
            }
            chunk = rest;
        }
        self.keep(chunk);
    }

    /// Holds the start of a line the next chunk ends, up to [`Self::MAX_LINE`] bytes.
    fn keep(&mut self, part: &[u8]) {
        let room = Self::MAX_LINE.saturating_sub(self.line.len());
        self.line.extend_from_slice(&part[..part.len().min(room)]);
    }

    fn look_at(&mut self, line: &[u8]) {
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        let marker: &[u8] = match self.family {
            Family::Gemini => b"\"usageMetadata\"",
            Family::OpenAi | Family::Anthropic => b"\"usage\"",
        };
        if memchr::memmem::find(data, marker).is_none() {
            return;
        }
        if let Some(p) = Partial::of(self.family, data) {
            self.seen = Some(self.seen.unwrap_or_default().merge(p));
        }
    }

    /// The usage seen so far.
    pub fn totals(&self) -> Option<Usage> {
        self.seen?.finish()
    }
}

/// OpenAI's and Anthropic's count fields, then the two objects that hold cached counts.
const FIELDS: [&str; 8] = [
    "prompt_tokens",
    "completion_tokens",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "prompt_tokens_details",
    "input_tokens_details",
];

/// Gemini's `usageMetadata` fields: prompt, candidates, thoughts, cached.
const GEMINI_FIELDS: [&str; 4] = [
    "promptTokenCount",
    "candidatesTokenCount",
    "thoughtsTokenCount",
    "cachedContentTokenCount",
];

/// The members `keys` of the object `raw`: `Some(None)` for `null` (no counts there),
/// `None` when it is neither.
fn object<'a, const N: usize>(
    raw: &'a [u8],
    keys: [&str; N],
) -> Option<Option<[Option<&'a [u8]>; N]>> {
    match present(Some(raw)) {
        Some(raw) => members(raw, keys).map(Some),
        None => Some(None),
    }
}

/// A raw member unless it is absent or `null`.
fn present(raw: Option<&[u8]>) -> Option<&[u8]> {
    raw.filter(|r| *r != b"null")
}

/// A count: `Some(None)` when absent or `null`, `None` when it is not a whole number of
/// tokens (the report is then not trusted at all, as a parse would refuse it).
fn count(raw: Option<&[u8]>) -> Option<Option<u64>> {
    let Some(raw) = present(raw) else {
        return Some(None);
    };
    let digits = raw.iter().all(u8::is_ascii_digit) && !(raw.len() > 1 && raw[0] == b'0');
    if !digits {
        return None;
    }
    std::str::from_utf8(raw).ok()?.parse().ok().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, output: u64, cache_read: u64, cache_write: u64) -> Option<Usage> {
        Some(Usage {
            input,
            output,
            cache_read,
            cache_write,
        })
    }

    #[test]
    fn anthropic_input_counts_its_cache_reads_and_writes_the_others_include_them() {
        let used = Usage {
            input: 5,
            output: 7,
            cache_read: 13,
            cache_write: 11,
        };
        assert_eq!(used.input_with_cache(Family::Anthropic), 29);
        assert_eq!(used.input_with_cache(Family::OpenAi), 5);
        assert_eq!(used.input_with_cache(Family::Gemini), 5);
    }

    #[test]
    fn openai_usage_is_found_in_the_final_stream_chunk_even_when_split() {
        let mut s = UsageScanner::new(Family::OpenAi);
        s.feed(b"data: {\"choices\": []}\n\ndata: {\"choices\": [], \"usa");
        s.feed(b"ge\": {\"prompt_tokens\": 5, \"completion_tokens\": 7}}\n\ndata: [DONE]\n\n");
        assert_eq!(s.totals(), usage(5, 7, 0, 0));
        let mut none = UsageScanner::new(Family::OpenAi);
        none.feed(b"data: {\"usage\": null}\n\n");
        assert_eq!(none.totals(), None);
    }

    #[test]
    fn a_json_answer_reports_its_usage_in_each_family() {
        let body = br#"{"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4,
            "prompt_tokens_details": {"cached_tokens": 2}}}"#;
        assert_eq!(of_body(Family::OpenAi, body), usage(3, 4, 2, 0));
        assert_eq!(
            of_body(Family::OpenAi, br#"{"usage": {"prompt_tokens": 3}}"#),
            usage(3, 0, 0, 0)
        );
        let responses = br#"{"object": "response", "usage": {"input_tokens": 9, "output_tokens": 2,
            "input_tokens_details": {"cached_tokens": 8}}}"#;
        assert_eq!(of_body(Family::OpenAi, responses), usage(9, 2, 8, 0));
        assert_eq!(of_body(Family::OpenAi, br#"{"choices": []}"#), None);
        assert_eq!(of_body(Family::OpenAi, b"not json"), None);
        let anthropic = br#"{"type": "message", "usage": {"input_tokens": 10, "output_tokens": 20,
            "cache_read_input_tokens": 300, "cache_creation_input_tokens": 40}}"#;
        assert_eq!(
            of_body(Family::Anthropic, anthropic),
            usage(10, 20, 300, 40)
        );
        let gemini = br#"{"candidates": [], "usageMetadata": {"promptTokenCount": 11,
            "candidatesTokenCount": 6, "thoughtsTokenCount": 4, "cachedContentTokenCount": 5}}"#;
        assert_eq!(of_body(Family::Gemini, gemini), usage(11, 10, 5, 0));
    }

    #[test]
    fn only_top_level_counts_are_read() {
        // A tool call whose arguments hold a `usage` object is not the answer's usage.
        let nested = br#"{"type": "message", "content": [{"type": "tool_use", "input":
            {"usage": {"input_tokens": 999, "output_tokens": 999}}}],
            "usage": {"input_tokens": 1, "output_tokens": 2}}"#;
        assert_eq!(of_body(Family::Anthropic, nested), usage(1, 2, 0, 0));
        let only_nested = br#"{"content": [{"input": {"usage": {"input_tokens": 5}}}]}"#;
        assert_eq!(of_body(Family::Anthropic, only_nested), None);
        // Text that merely contains the key, and a truncated answer, report nothing.
        let quoted = br#"{"text": "\"usage\": {\"prompt_tokens\": 3}"}"#;
        assert_eq!(of_body(Family::OpenAi, quoted), None);
        assert_eq!(
            of_body(Family::OpenAi, br#"{"usage": {"prompt_tokens": 3}"#),
            None
        );
    }

    #[test]
    fn a_count_is_a_whole_number_or_null_else_the_report_is_not_trusted() {
        let of = |usage: &str| {
            of_body(
                Family::OpenAi,
                format!(r#"{{"usage": {usage}}}"#).as_bytes(),
            )
        };
        assert_eq!(
            of(r#"{"prompt_tokens": 0, "completion_tokens": 18446744073709551615}"#),
            usage(0, u64::MAX, 0, 0)
        );
        assert_eq!(
            of(r#"{"prompt_tokens": null, "completion_tokens": 4}"#),
            usage(0, 4, 0, 0)
        );
        assert_eq!(
            of(
                r#"{"input_tokens": 9, "prompt_tokens_details": null, "input_tokens_details": {"cached_tokens": 3}}"#
            ),
            usage(9, 0, 3, 0)
        );
        for bad in [
            r#"{"prompt_tokens": 5.0}"#,
            r#"{"prompt_tokens": -5}"#,
            r#"{"prompt_tokens": "5"}"#,
            r#"{"prompt_tokens": 05}"#,
            r#"{"prompt_tokens": 18446744073709551616}"#,
            r#"{"prompt_tokens": 1, "prompt_tokens_details": {"cached_tokens": true}}"#,
            r#"[1, 2]"#,
        ] {
            assert_eq!(of(bad), None, "{bad}");
        }
        assert_eq!(of("null"), None);
        let gemini = br#"{"usageMetadata": {"promptTokenCount": 2.5}}"#;
        assert_eq!(of_body(Family::Gemini, gemini), None);
    }

    #[test]
    fn stream_usage_of_anthropic_and_gemini_and_the_responses_api() {
        let mut a = UsageScanner::new(Family::Anthropic);
        a.feed(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":25,\"cache_read_input_tokens\":100,\"cache_creation_input_tokens\":0,\"output_tokens\":1}}}\n\n");
        a.feed(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n");
        a.feed(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\n");
        assert_eq!(a.totals(), usage(25, 15, 100, 0));
        let mut g = UsageScanner::new(Family::Gemini);
        g.feed(b"data: {\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":8,\"candidatesTokenCount\":2}}\r\n\r\n");
        g.feed(b"data: {\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":8,\"candidatesTokenCount\":9}}\r\n\r\n");
        assert_eq!(g.totals(), usage(8, 9, 0, 0));
        let mut r = UsageScanner::new(Family::OpenAi);
        r.feed(b"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"usage\":{\"input_tokens\":4,\"output_tokens\":6}}}\n\n");
        assert_eq!(r.totals(), usage(4, 6, 0, 0));
    }

    #[test]
    fn a_stream_split_at_any_byte_or_byte_by_byte_reports_the_same_usage() {
        let stream: &[u8] = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\nevent: ping\ndata: {\"type\":\"ping\"}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n";
        for cut in 0..=stream.len() {
            let mut s = UsageScanner::new(Family::Anthropic);
            s.feed(&stream[..cut]);
            s.feed(&stream[cut..]);
            assert_eq!(s.totals(), usage(25, 15, 0, 0), "cut at {cut}");
        }
        let mut bytes = UsageScanner::new(Family::Anthropic);
        for b in stream.chunks(1) {
            bytes.feed(b);
        }
        assert_eq!(bytes.totals(), usage(25, 15, 0, 0));
    }
}
