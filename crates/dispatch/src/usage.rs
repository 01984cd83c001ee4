//! The token counts a provider reports (`usage`), read from a JSON answer or found in the
//! `data:` lines of a stream (the last chunk, when `stream_options.include_usage` is set).

/// Prompt and completion tokens.
pub type Tokens = (u64, u64);

#[derive(serde::Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

#[derive(serde::Deserialize)]
struct WithUsage {
    usage: Option<Usage>,
}

/// The `usage` of a JSON answer, when it has one.
pub fn of_body(body: &[u8]) -> Option<Tokens> {
    match serde_json::from_slice::<WithUsage>(body) {
        Ok(WithUsage { usage: Some(u) }) => Some((u.prompt_tokens, u.completion_tokens)),
        _ => None,
    }
}

/// Finds `usage` in a stream's `data:` lines, fed chunk by chunk as they are relayed.
#[derive(Default)]
pub struct UsageScanner {
    line: Vec<u8>,
    usage: Option<Tokens>,
}

impl UsageScanner {
    /// Longest line kept (a longer one is cut, so it never parses).
    const MAX_LINE: usize = 1 << 20;

    /// Reads the next chunk of the stream.
    pub fn feed(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if b == b'\n' {
                self.line_done();
            } else if self.line.len() < Self::MAX_LINE {
                self.line.push(b);
            }
        }
    }

    fn line_done(&mut self) {
        let line = std::mem::take(&mut self.line);
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        if !data.windows(7).any(|w| w == b"\"usage\"") {
            return;
        }
        if let Some(tokens) = of_body(data) {
            self.usage = Some(tokens);
        }
    }

    /// The last `usage` seen.
    pub fn totals(&self) -> Option<Tokens> {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_found_in_the_final_stream_chunk_even_when_split() {
        let mut s = UsageScanner::default();
        s.feed(b"data: {\"choices\": []}\n\ndata: {\"choices\": [], \"usa");
        s.feed(b"ge\": {\"prompt_tokens\": 5, \"completion_tokens\": 7}}\n\ndata: [DONE]\n\n");
        assert_eq!(s.totals(), Some((5, 7)));
        let mut none = UsageScanner::default();
        none.feed(b"data: {\"usage\": null}\n\n");
        assert_eq!(none.totals(), None);
    }

    #[test]
    fn a_json_answer_reports_its_usage() {
        let body = br#"{"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}"#;
        assert_eq!(of_body(body), Some((3, 4)));
        assert_eq!(of_body(br#"{"usage": {"prompt_tokens": 3}}"#), Some((3, 0)));
        assert_eq!(of_body(br#"{"choices": []}"#), None);
        assert_eq!(of_body(b"not json"), None);
    }
}
