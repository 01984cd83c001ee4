//! The token counts a provider reports, in each family's own words: OpenAI's `usage`
//! (chat, embeddings, and the Responses API's `input_tokens`/`output_tokens`, also inside
//! `response.completed`), Anthropic's `usage` of the answer or of `message_start` and
//! `message_delta`, Gemini's `usageMetadata`. Read from a JSON answer, or found in the `data:`
//! lines of a stream as they are relayed.

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

/// Every field a family may report; an event carries some of them.
#[derive(Debug, Default, serde::Deserialize)]
struct Counts {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    prompt_tokens_details: Option<Cached>,
    input_tokens_details: Option<Cached>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct Cached {
    cached_tokens: Option<u64>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct GeminiCounts {
    prompt_token_count: Option<u64>,
    candidates_token_count: Option<u64>,
    thoughts_token_count: Option<u64>,
    cached_content_token_count: Option<u64>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct Inner {
    usage: Option<Counts>,
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
            let [g] = crate::json_top::members(text, ["usageMetadata"])?;
            let g: GeminiCounts = serde_json::from_slice(g?).ok()?;
            let output = match (g.candidates_token_count, g.thoughts_token_count) {
                (None, None) => None,
                (c, t) => Some(c.unwrap_or(0) + t.unwrap_or(0)),
            };
            return Some(Partial {
                input: g.prompt_token_count,
                output,
                cache_read: g.cached_content_token_count,
                cache_write: None,
            });
        }
        let [usage, message, response] =
            crate::json_top::members(text, ["usage", "message", "response"])?;
        let c = match usage {
            Some(raw) => serde_json::from_slice::<Option<Counts>>(raw).ok()?,
            None => None,
        };
        // Where a member is not the object it should be (an error event's `message` string),
        // it holds no counts.
        let inner = |raw: Option<&[u8]>| {
            serde_json::from_slice::<Inner>(raw?)
                .ok()
                .and_then(|i| i.usage)
        };
        let c = c.or_else(|| inner(message)).or_else(|| inner(response))?;
        let cached = c
            .prompt_tokens_details
            .or(c.input_tokens_details)
            .and_then(|d| d.cached_tokens);
        Some(Partial {
            input: c.prompt_tokens.or(c.input_tokens),
            output: c.completion_tokens.or(c.output_tokens),
            cache_read: c.cache_read_input_tokens.or(cached),
            cache_write: c.cache_creation_input_tokens,
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
