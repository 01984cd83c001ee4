//! Reranking, `POST /rerank`, in the shape OpenAI-compatible servers serve it: Jina's
//! (`{model, usage: {total_tokens}, results: [{index, document: {text}, relevance_score}]}`)
//! with the `id` vLLM adds, which Cohere-style clients read as well. Each document (a string
//! or `{"text"}`) scores by the share of the query's words it holds, best first, the first
//! `top_n` of them; `return_documents: false` leaves the documents out.

use super::super::json::{arr, n, obj, s, J};
use super::super::{id_chars, next_serial, Incoming};
use super::{body, ok_json, refusal};
use axum::http::StatusCode;
use axum::response::Response;

/// The answer to `POST /rerank`.
pub(super) fn answer(req: &Incoming) -> Response {
    let json = match body(req, &["model", "query", "documents"]) {
        Ok(json) => json,
        Err(refused) => return *refused,
    };
    let query = req.json_str("/query").unwrap_or_default();
    // A body too large to parse (json `None`) is answered as if it had no documents.
    let documents = json.and_then(|j| j.get("documents")).map(|d| {
        d.as_array().and_then(|docs| {
            docs.iter()
                .map(document_text)
                .collect::<Option<Vec<&str>>>()
        })
    });
    let documents = match documents {
        None => Vec::new(),
        Some(Some(docs)) => docs,
        Some(None) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                "Invalid 'documents': expected a list of strings or of objects with a 'text'.",
                Some("documents"),
                Some("invalid_type"),
            )
        }
    };
    let words =
        |text: &str| -> Vec<String> { text.split_whitespace().map(|w| w.to_lowercase()).collect() };
    let query_words = words(query);
    let mut scored: Vec<(usize, f64, &str)> = documents
        .iter()
        .enumerate()
        .map(|(i, doc)| {
            let doc_words = words(doc);
            let shared = query_words.iter().filter(|w| doc_words.contains(w)).count();
            let score = (shared as f64 + 0.5) / (query_words.len() as f64 + 1.0);
            (i, score, *doc)
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let top_n = json
        .and_then(|j| j.get("top_n"))
        .and_then(|v| v.as_u64())
        .map_or(scored.len(), |t| usize::try_from(t).unwrap_or(usize::MAX));
    scored.truncate(top_n);
    let return_documents = json
        .and_then(|j| j.get("return_documents"))
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    let tokens: usize = documents
        .iter()
        .map(|d| query_words.len() + d.split_whitespace().count())
        .sum();
    let result = |(index, score, doc): (usize, f64, &str)| {
        let mut fields = vec![("index", n(index as u64))];
        if return_documents {
            fields.push(("document", obj([("text", s(doc))])));
        }
        fields.push(("relevance_score", J::Float(score)));
        J::Obj(fields)
    };
    ok_json(obj([
        ("id", s(format!("rerank-{}", id_chars(next_serial(), 32)))),
        ("model", s(req.model.as_deref().unwrap_or_default())),
        ("usage", obj([("total_tokens", n(tokens as u64))])),
        ("results", arr(scored.into_iter().map(result))),
    ]))
}

/// A document's text: the document itself, or its `text`.
fn document_text(d: &serde_json::Value) -> Option<&str> {
    d.as_str().or_else(|| d.get("text")?.as_str())
}
