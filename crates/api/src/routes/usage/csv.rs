//! The usage report as CSV (RFC 4180): a header row naming the grouped fields and the sums,
//! then one line per row; an absent value is an empty cell.

use super::UsageView;
use rotor_storage::usage::Grouping;
use std::fmt::Write;

/// A cell, quoted when it holds a comma, a quote or a line break.
fn cell(out: &mut String, value: &str) {
    if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// The report `data` grouped by `by` as CSV text.
pub(super) fn render(by: Grouping, data: &[UsageView]) -> String {
    let mut columns: Vec<&str> = Vec::new();
    if by.api_key {
        columns.extend(["api_key_id", "api_key_name"]);
    }
    if by.model {
        columns.push("model");
    }
    if by.credential {
        columns.extend(["credential_id", "credential_name"]);
    }
    if by.day {
        columns.push("day");
    }
    if by.hour {
        columns.push("hour");
    }
    columns.extend([
        "requests",
        "errors",
        "input_tokens",
        "output_tokens",
        "cached_input_tokens",
        "cost_usd",
    ]);
    let mut out = columns.join(",");
    out.push_str("\r\n");
    for row in data {
        let mut cells: Vec<String> = Vec::with_capacity(columns.len());
        if by.api_key {
            cells.push(row.api_key_id.map(|id| id.to_string()).unwrap_or_default());
            cells.push(row.api_key_name.clone().flatten().unwrap_or_default());
        }
        if by.model {
            cells.push(row.model.clone().unwrap_or_default());
        }
        if by.credential {
            let id = row.credential_id.flatten();
            cells.push(id.map(|id| id.to_string()).unwrap_or_default());
            cells.push(row.credential_name.clone().flatten().unwrap_or_default());
        }
        if by.day {
            cells.push(row.day.clone().unwrap_or_default());
        }
        if by.hour {
            let hour = row
                .hour
                .map(|h| h.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            cells.push(hour.unwrap_or_default());
        }
        for n in [
            row.requests,
            row.errors,
            row.input_tokens,
            row.output_tokens,
            row.cached_input_tokens,
        ] {
            cells.push(n.to_string());
        }
        cells.push(row.cost_usd.map(|c| c.to_string()).unwrap_or_default());
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            cell(&mut out, c);
        }
        let _ = write!(out, "\r\n");
    }
    out
}
