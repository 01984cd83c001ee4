//! Reading the Prometheus text `/metrics` serves.

use super::app::TestApp;

/// `/metrics`, with `token` as a bearer when given: (status, text).
pub async fn metrics_text(app: &TestApp, token: Option<&str>) -> (u16, String) {
    let mut req = app.client.get(app.url("/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The samples of `name` carrying every label of `labels` (escaped as in the exposition
/// format), among `lines`.
pub fn samples<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    name: &str,
    labels: &[(&str, &str)],
) -> Vec<f64> {
    lines
        .into_iter()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (head, value) = l.rsplit_once(' ')?;
            let (n, rest) = head.split_once('{').unwrap_or((head, ""));
            (n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().unwrap())
        })
        .collect()
}
