//! The committed OpenAPI document, read so that tables of routes or statuses follow it: a
//! route added to the code (and so to the generated document) without a test case fails.

use serde_json::Value;

/// `openapi/openapi.json`.
pub fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/openapi.json");
    let text = std::fs::read_to_string(path).expect("read openapi/openapi.json");
    serde_json::from_str(&text).expect("openapi.json is JSON")
}

/// Every operation of the document: (METHOD, path template, operation object).
pub fn operations() -> Vec<(String, String, Value)> {
    let doc = document();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let http = [
                "get", "put", "post", "delete", "patch", "head", "options", "trace",
            ];
            if http.contains(&method.as_str()) {
                out.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    out
}
