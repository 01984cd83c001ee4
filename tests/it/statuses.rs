//! Every status the OpenAPI document promises can actually be reached.
//!
//! `openapi/openapi.json` lists, for each operation, the statuses it answers. This module
//! holds one hand-written scenario per documented (method, path template, status) — a real
//! request against a real server set up so that exactly that answer is due — and checks:
//!
//! - that the table and the document agree both ways: a route or a status added to the code
//!   (and so to the generated document) without a scenario fails
//!   [`the_table_covers_every_documented_status`], and so does a scenario the document lacks;
//! - that every error code a description names (`"validation_failed or not_enough_entries"`)
//!   is asserted by some scenario of that status;
//! - that each scenario gets exactly its status (and error code):
//!   [`every_documented_status_is_reachable`] runs them all except the 503s of a database
//!   outage, which [`serial_database_outage_statuses_are_reachable`] produces by stopping a
//!   PostgreSQL of its own.
//!
//! The servers: a licensed self-hosted instance (the main one, with a 2 s upstream timeout
//! and a 64 KiB gateway body limit), a saas instance (plans, and a sandbox workspace without
//! the load-balancing feature), an instance licensed for one workspace, one with signup
//! closed, and the mock upstream whose answers the provider API keys script.
//!
//! Scenarios are independent of each other: every destructive one has its own target.

use crate::helpers::*;
use base64::Engine;
use futures_util::StreamExt;
use reqwest::Method;
use rotor_tests::mock::{MockKey, MockUpstream};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

mod proxied;
mod stored;

const MIB: usize = 1024 * 1024;
/// The main server's `ROTOR_GATEWAY_MAX_BODY`.
const GATEWAY_MAX_BODY: usize = 64 * 1024;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Documented statuses that no request can produce (documentation errors), each with the
/// reason. They are left out of the scenario table and reported here so that the gap stays
/// visible; an entry must go as soon as the document or the code is fixed.
///
/// The reverse gap (a status the server answers but the document does not list) is not
/// checked here: the table follows the document. The gateway's `500 credential_unreadable`
/// and its `503 database_unavailable` answers, once missing from it, are documented now and
/// have scenarios below.
const UNREACHABLE: &[(&str, &str, u16, &str)] = &[];

// --- the document -----------------------------------------------------------------------------

type Key = (String, String, u16);

/// Every (METHOD, path template, status) of the document, with its description.
fn documented() -> BTreeMap<Key, String> {
    let mut out = BTreeMap::new();
    for (method, path, op) in openapi::operations() {
        for (status, response) in op["responses"].as_object().expect("responses") {
            let status: u16 = status
                .parse()
                .unwrap_or_else(|_| panic!("{method} {path}: status {status} is not a number"));
            out.insert(
                (method.clone(), path.clone(), status),
                response["description"].as_str().unwrap_or("").to_owned(),
            );
        }
    }
    out
}

/// The error codes a description names: the comma- or `or`-separated snake_case words before
/// any parenthesis (`"license_expired, license_invalid or validation_failed"`); prose such
/// as `"the database does not answer"` names none.
fn named_codes(description: &str) -> Vec<&str> {
    description
        .split('(')
        .next()
        .unwrap_or("")
        .split(',')
        .flat_map(|p| p.split(" or "))
        .map(str::trim)
        .filter(|p| {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                && p.starts_with(|c: char| c.is_ascii_lowercase())
        })
        .collect()
}

// --- requests ---------------------------------------------------------------------------------

/// `method path` to `app`.
fn call(app: &TestApp, method: &str, path: impl Into<String>) -> Req {
    app.req(
        Method::from_bytes(method.as_bytes()).expect("method"),
        &path.into(),
    )
}

/// The body faults every route with a JSON body documents.
trait BodyFaults {
    /// A truncated JSON document, sent as `application/json`: 400 `invalid_json`.
    fn malformed(self) -> Self;
    /// Well-formed JSON sent as `text/plain`: 415 `unsupported_media_type`.
    fn not_json(self) -> Self;
    /// One byte over the management API's 1 MiB: 413 `payload_too_large`.
    fn too_large(self) -> Self;
    /// A JSON body of `size` bytes, sent over a plain connection (the server may answer and
    /// close before reading it).
    fn oversized(self, size: usize) -> Self;
}

impl BodyFaults for Req {
    fn malformed(self) -> Self {
        self.bytes(Some(JSON), br#"{"name": "#.to_vec())
    }
    fn not_json(self) -> Self {
        self.bytes(Some("text/plain"), br#"{"name": "x"}"#.to_vec())
    }
    fn too_large(self) -> Self {
        self.oversized(MIB + 1)
    }
    fn oversized(self, size: usize) -> Self {
        self.bytes(Some(JSON), padded_json(size)).over_tcp(false)
    }
}

// --- scenarios --------------------------------------------------------------------------------

type Check = fn(&Resp) -> Result<(), String>;

/// One scenario: the documented operation and status, the error code expected in the body
/// (empty for successes and for bodies without a code), and how to send the request.
struct Case<F> {
    method: &'static str,
    path: &'static str,
    status: u16,
    code: &'static str,
    build: Box<dyn Fn(&F) -> Req>,
    check: Option<Check>,
}

impl<F> Case<F> {
    fn then(mut self, check: Check) -> Self {
        self.check = Some(check);
        self
    }
    fn key(&self) -> Key {
        (self.method.to_owned(), self.path.to_owned(), self.status)
    }
    fn name(&self) -> String {
        let code = if self.code.is_empty() {
            String::new()
        } else {
            format!(" {}", self.code)
        };
        format!("{} {} → {}{code}", self.method, self.path, self.status)
    }
}

/// A scenario against the servers of [`Fx`].
fn live(
    method: &'static str,
    path: &'static str,
    status: u16,
    code: &'static str,
    build: impl Fn(&Fx) -> Req + 'static,
) -> Case<Fx> {
    Case {
        method,
        path,
        status,
        code,
        build: Box::new(build),
        check: None,
    }
}

/// A request a route would accept (but for its body).
type Target = fn(&Fx) -> Req;

/// The 400 `invalid_json`, 413 `payload_too_large` and 415 `unsupported_media_type` every route
/// with a JSON body documents, sent as `target` would be.
fn body_faults(method: &'static str, path: &'static str, target: Target) -> [Case<Fx>; 3] {
    [
        live(method, path, 400, "invalid_json", move |f| {
            target(f).malformed()
        }),
        live(method, path, 413, "payload_too_large", move |f| {
            target(f).too_large()
        }),
        live(method, path, 415, "unsupported_media_type", move |f| {
            target(f).not_json()
        }),
    ]
}

/// A scenario against the server of [`Down`] once its database is stopped: 503
/// `database_unavailable`.
fn down(
    method: &'static str,
    path: &'static str,
    build: impl Fn(&Down) -> Req + 'static,
) -> Case<Down> {
    Case {
        method,
        path,
        status: 503,
        code: "database_unavailable",
        build: Box::new(build),
        check: None,
    }
}

/// Runs `case` and describes what went wrong, if anything.
async fn run<F>(fx: &F, case: &Case<F>) -> Option<String> {
    let call = (case.build)(fx);
    let sent = call.describe();
    let r = call.send().await;
    let mut problems = Vec::new();
    if r.status.as_u16() != case.status {
        problems.push(format!("status {}", r.status.as_u16()));
    }
    if !case.code.is_empty() && r.code() != case.code {
        problems.push(format!("code {:?}", r.code()));
    }
    if case.status >= 400 && !case.code.is_empty() && !r.body["error"]["message"].is_string() {
        problems.push("no error message".to_owned());
    }
    if let Some(check) = case.check {
        if let Err(e) = check(&r) {
            problems.push(e);
        }
    }
    (!problems.is_empty()).then(|| {
        format!(
            "{}\n    sent {sent}\n    got {}: {}",
            case.name(),
            problems.join(", "),
            r.body
        )
    })
}

fn has_retry_after(r: &Resp) -> Result<(), String> {
    match r.headers.get("retry-after").and_then(|v| v.to_str().ok()) {
        Some(v) if v.parse::<u64>().is_ok_and(|s| s > 0) => Ok(()),
        other => Err(format!("Retry-After {other:?}")),
    }
}

fn embeddings_body(model: &str) -> Value {
    json!({"model": model, "input": "hi"})
}

// --- the servers of the live scenarios ---------------------------------------------------------

/// Everything the live scenarios need, set up once.
struct Fx {
    /// Self-hosted, licensed for load balancing, upstream timeout 2 s, gateway bodies ≤ 64 KiB.
    main: TestApp,
    /// saas mode, no license.
    saas: TestApp,
    /// Licensed for one workspace, which its only user already has.
    limit: TestApp,
    /// `ROTOR_SIGNUP=closed`, with its first user signed up.
    closed: TestApp,
    _mock: MockUpstream,
    mock_url: String,

    // main: users
    /// The first user: instance admin.
    admin: TestUser,
    /// Owner of the workspace most scenarios use (`owner.workspace`), its only owner.
    owner: TestUser,
    editor: TestUser,
    /// Has the `admin` role in the owner's workspace (cannot grant `admin`).
    ws_admin: TestUser,
    /// Member of no workspace but their own.
    stranger: TestUser,
    /// Not a member: the owner adds them.
    joiner: TestUser,
    /// A `normal` member whose role the owner changes.
    to_promote: TestUser,
    /// A `normal` member the owner removes.
    to_remove: TestUser,
    /// Changes their password.
    changes_password: TestUser,
    /// Ten failed logins and ten wrong current passwords: throttled.
    throttled: TestUser,

    // main: the owner's workspace
    c1: Uuid,
    c2: Uuid,
    /// Used by no model: deleted.
    spare_credential: Uuid,
    /// Its stored ciphertext has a flipped byte.
    tampered_credential: Uuid,
    /// Default credential of the gateway model `gpt`.
    gpt: Uuid,
    /// A model without a pool.
    solo: Uuid,
    /// Patched.
    spare_model: Uuid,
    /// Deleted.
    doomed_model: Uuid,
    /// Gateway key for every model.
    key: String,
    key_id: Uuid,
    /// Gateway key for `only-this` only.
    restricted_key: String,
    /// Revoked.
    doomed_key: Uuid,
    /// The owner's personal access token to revoke.
    doomed_token: Uuid,
    /// A second workspace of the owner whose wrapped data key has a flipped byte, and a
    /// credential in it.
    unwrappable_ws: Uuid,
    unwrappable_credential: Uuid,

    // saas
    s_admin: TestUser,
    /// A sandbox workspace's owner and a model in it.
    s_owner: TestUser,
    s_model: Uuid,

    // license for one workspace
    l_user: TestUser,

    valid_license: String,
    expired_license: String,
    /// Responses created through the gateway, for the paths about one of them.
    stored: stored::Stored,
}

impl Fx {
    async fn new() -> Fx {
        let mock = MockUpstream::start().await.unwrap();
        let mock_url = mock.url("/v1");
        let licensed = lb_license();
        let one_workspace = license_token(&["load_balancing"], 24 * 3600, Some(1));
        let main_vars = [
            ("ROTOR_LICENSE", licensed.as_str()),
            ("ROTOR_UPSTREAM_TIMEOUT", "2"),
            ("ROTOR_GATEWAY_MAX_BODY", "64KiB"),
            ("ROTOR_UPSTREAM_MAX_BODY", "1MiB"),
            // A refused address on loopback: were the policy wrong, nothing outside is reached.
            ("ROTOR_UPSTREAM_DENY", "127.0.0.2/32"),
        ];
        let saas_vars = [("ROTOR_DEPLOYMENT", "saas")];
        let limit_vars = [("ROTOR_LICENSE", one_workspace.as_str())];
        let closed_vars = [("ROTOR_SIGNUP", "closed")];
        let (main, saas, limit, closed) = tokio::join!(
            spawn_app_with(&main_vars),
            spawn_app_with(&saas_vars),
            spawn_app_with(&limit_vars),
            spawn_app_with(&closed_vars),
        );

        // main: users and roles.
        let admin = main.user("admin").await;
        let owner = main.user("owner").await;
        let ws = owner.workspace;
        let editor = main.user("editor").await;
        let ws_admin = main.user("ws-admin").await;
        let stranger = main.user("stranger").await;
        let joiner = main.user("joiner").await;
        let to_promote = main.user("to-promote").await;
        let to_remove = main.user("to-remove").await;
        let changes_password = main.user("changes-password").await;
        let throttled = main.user("throttled").await;
        main.add_member(&owner, ws, &editor, "editor").await;
        main.add_member(&owner, ws, &ws_admin, "admin").await;
        main.add_member(&owner, ws, &to_promote, "normal").await;
        main.add_member(&owner, ws, &to_remove, "normal").await;
        for _ in 0..10 {
            main.login(&throttled.email, "not the password")
                .await
                .assert_error(401, "invalid_credentials");
            main.post(
                "/api/v1/me/password",
                &throttled.token,
                json!({"current_password": "not the password", "new_password": "a brand new password"}),
            )
            .await
            .assert_error(422, "validation_failed");
        }

        // main: credentials and models.
        let cred = |name: &'static str, key: MockKey| {
            let (main, owner, mock_url) = (&main, &owner, mock_url.clone());
            async move {
                main.compatible_credential(owner, ws, name, &key.to_string(), &mock_url)
                    .await
            }
        };
        let c1 = cred("c1", MockKey::new("sk_one")).await;
        let c2 = cred("c2", MockKey::new("sk_two")).await;
        let spare_credential = cred("spare", MockKey::new("sk_spare")).await;
        let tampered_credential = cred("tampered", MockKey::new("sk_tampered")).await;
        let cooling = |label: &str| MockKey::new(label).status(429).retry_after(60);
        let cool_a = cred("cool-a", cooling("sk_coola")).await;
        let cool_b = cred("cool-b", cooling("sk_coolb")).await;
        let limited = cred(
            "limited",
            MockKey::new("sk_limited").status(429).retry_after(7),
        )
        .await;
        let rejected = cred("rejected", MockKey::new("sk_rejected").status(401)).await;
        let dead_a = cred("dead-a", MockKey::new("sk_deada").status(401)).await;
        let dead_b = cred("dead-b", MockKey::new("sk_deadb").status(403)).await;
        let slow = cred("slow", MockKey::new("sk").delay_ms(6000)).await;
        let huge = cred("huge", MockKey::new("sk").huge_mib(4)).await;
        let closed_port = format!("http://127.0.0.1:{}/v1", free_port());
        let unreachable = main
            .compatible_credential(&owner, ws, "unreachable", "sk_x", &closed_port)
            .await;
        let blocked = main
            .compatible_credential(&owner, ws, "blocked", "sk_x", "http://127.0.0.2:9/v1")
            .await;
        let model = |name: &'static str, credential: Uuid| {
            let (main, owner) = (&main, &owner);
            async move {
                let m = main
                    .model(owner, ws, "openai_compatible", name, credential)
                    .await;
                m["id"].as_str().unwrap().parse::<Uuid>().unwrap()
            }
        };
        let gpt = model("gpt", c1).await;
        let solo = model("solo", c1).await;
        let spare_model = model("spare-model", c1).await;
        let doomed_model = model("doomed", c1).await;
        let cool = model("cool", cool_a).await;
        let dead = model("dead", dead_a).await;
        model("limited", limited).await;
        model("rejected", rejected).await;
        model("slow", slow).await;
        model("huge", huge).await;
        model("unreachable", unreachable).await;
        model("blocked", blocked).await;
        // Its only credential is tampered with below: the gateway cannot decrypt it.
        model("broken", tampered_credential).await;
        let family_tampered = proxied::twins(&main, &owner, &mock.url("")).await;
        for (pool, a, b) in [(cool, cool_a, cool_b), (dead, dead_a, dead_b)] {
            main.put(
                &TestApp::lb_path(ws, &pool.to_string()),
                &owner.token,
                json!({"enabled": true, "cooldown_seconds": 60,
                       "entries": [{"credential_id": a}, {"credential_id": b}]}),
            )
            .await
            .assert(200);
        }

        // main: keys and tokens.
        let (key_id, key) = main.api_key(&owner, ws, "all").await;
        let restricted = main
            .post(
                &format!("/api/v1/workspaces/{ws}/api-keys"),
                &owner.token,
                json!({"name": "restricted", "allowed_models": ["only-this"]}),
            )
            .await;
        restricted.assert(201);
        let restricted_key = restricted.body["key"].as_str().unwrap().to_owned();
        let (doomed_key, _) = main.api_key(&owner, ws, "doomed").await;
        let token = main
            .post("/api/v1/me/tokens", &owner.token, json!({"name": "doomed"}))
            .await;
        token.assert(201);
        let doomed_token = token.body["id"].as_str().unwrap().parse().unwrap();

        // Every credential of each family's `cool` answers 429 with Retry-After: 60 and is
        // cooling now; every credential of each `dead` is rejected.
        proxied::cool_down(&main, &key).await;

        let stored = stored::setup(&main, &owner, &key, &mock_url, c2).await;

        // Tampered ciphertexts: one flipped byte in the stored api_key.
        for credential in std::iter::once(tampered_credential).chain(family_tampered) {
            let secrets: Value =
                sqlx::query_scalar("SELECT secrets FROM credentials WHERE id = $1")
                    .bind(credential)
                    .fetch_one(&main.db)
                    .await
                    .unwrap();
            let mut sealed = B64
                .decode(secrets["api_key"].as_str().expect("api_key ciphertext"))
                .unwrap();
            sealed[15] ^= 0x01;
            let mut tampered = secrets.clone();
            tampered["api_key"] = Value::String(B64.encode(&sealed));
            sqlx::query("UPDATE credentials SET secrets = $2 WHERE id = $1")
                .bind(credential)
                .bind(&tampered)
                .execute(&main.db)
                .await
                .unwrap();
        }

        // A workspace whose wrapped data key has a flipped byte.
        let created = main
            .post(
                "/api/v1/workspaces",
                &owner.token,
                json!({"name": "unwrappable"}),
            )
            .await;
        created.assert(201);
        let unwrappable_ws: Uuid = created.body["id"].as_str().unwrap().parse().unwrap();
        let unwrappable_credential = main
            .compatible_credential(&owner, unwrappable_ws, "c", "sk_u", &mock_url)
            .await;
        let mut wrapped: Vec<u8> =
            sqlx::query_scalar("SELECT wrapped_key FROM workspace_keys WHERE workspace_id = $1")
                .bind(unwrappable_ws)
                .fetch_one(&main.db)
                .await
                .unwrap();
        let middle = wrapped.len() / 2;
        wrapped[middle] ^= 0x01;
        sqlx::query("UPDATE workspace_keys SET wrapped_key = $2 WHERE workspace_id = $1")
            .bind(unwrappable_ws)
            .bind(&wrapped)
            .execute(&main.db)
            .await
            .unwrap();

        // saas: an instance admin, and a sandbox workspace with a model.
        let s_admin = saas.user("s-admin").await;
        let s_owner = saas.user("s-owner").await;
        let s_cred = saas
            .compatible_credential(&s_owner, s_owner.workspace, "c", "sk_s", &mock_url)
            .await;
        let s_model = saas
            .model(
                &s_owner,
                s_owner.workspace,
                "openai_compatible",
                "m",
                s_cred,
            )
            .await["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();

        let l_user = limit.user("l").await;
        closed.user("first").await;

        Fx {
            main,
            saas,
            limit,
            closed,
            _mock: mock,
            mock_url,
            admin,
            owner,
            editor,
            ws_admin,
            stranger,
            joiner,
            to_promote,
            to_remove,
            changes_password,
            throttled,
            c1,
            c2,
            spare_credential,
            tampered_credential,
            gpt,
            solo,
            spare_model,
            doomed_model,
            key,
            key_id,
            restricted_key,
            doomed_key,
            doomed_token,
            unwrappable_ws,
            unwrappable_credential,
            s_admin,
            s_owner,
            s_model,
            l_user,
            valid_license: lb_license(),
            expired_license: license_token(&["load_balancing"], -3600, None),
            stored,
        }
    }

    /// A main-server request without a token.
    fn anon(&self, method: &str, path: impl Into<String>) -> Req {
        call(&self.main, method, path)
    }
    /// A main-server request as `who`.
    fn by(&self, who: &TestUser, method: &str, path: impl Into<String>) -> Req {
        call(&self.main, method, path).bearer(&who.token)
    }
    /// A path in the owner's workspace.
    fn w(&self, rest: &str) -> String {
        format!("/api/v1/workspaces/{}{rest}", self.owner.workspace)
    }
    fn cred(&self, id: Uuid) -> String {
        self.w(&format!("/credentials/{id}"))
    }
    fn model(&self, id: Uuid) -> String {
        self.w(&format!("/models/{id}"))
    }
    fn member(&self, id: Uuid) -> String {
        self.w(&format!("/members/{id}"))
    }
    fn lb(&self, model: Uuid) -> String {
        self.w(&format!("/models/{model}/load-balancing"))
    }
    /// A gateway request with `key`.
    fn gw(&self, key: &str, method: &str, path: &str) -> Req {
        call(&self.main, method, path).bearer(key)
    }
    fn saas_admin(&self, method: &str, path: impl Into<String>) -> Req {
        call(&self.saas, method, path).bearer(&self.s_admin.token)
    }
    fn plan_path(&self) -> String {
        format!("/api/v1/admin/workspaces/{}/plan", self.s_admin.workspace)
    }
}

fn random() -> Uuid {
    Uuid::new_v4()
}

fn unique_email(label: &str) -> String {
    format!("{label}-{}@example.com", Uuid::new_v4().simple())
}

/// The live scenarios, in the document's order; the body faults of every route with a JSON
/// body (400, 413 and 415) come last.
fn live_cases() -> Vec<Case<Fx>> {
    const AUDIT: &str = "/api/v1/admin/audit-events";
    const LICENSE: &str = "/api/v1/admin/license";
    const ALL_WS: &str = "/api/v1/admin/workspaces";
    const PLAN: &str = "/api/v1/admin/workspaces/{ws}/plan";
    const LOGIN: &str = "/api/v1/auth/login";
    const SIGNUP: &str = "/api/v1/auth/signup";
    const ME: &str = "/api/v1/me";
    const PASSWORD_PATH: &str = "/api/v1/me/password";
    const TOKENS: &str = "/api/v1/me/tokens";
    const TOKEN: &str = "/api/v1/me/tokens/{id}";
    const PROVIDERS: &str = "/api/v1/providers";
    const WORKSPACES: &str = "/api/v1/workspaces";
    const WS: &str = "/api/v1/workspaces/{ws}";
    const KEYS: &str = "/api/v1/workspaces/{ws}/api-keys";
    const KEY: &str = "/api/v1/workspaces/{ws}/api-keys/{id}";
    const WS_AUDIT: &str = "/api/v1/workspaces/{ws}/audit-events";
    const USAGE: &str = "/api/v1/workspaces/{ws}/usage";
    const CREDS: &str = "/api/v1/workspaces/{ws}/credentials";
    const CRED: &str = "/api/v1/workspaces/{ws}/credentials/{id}";
    const VALIDATE: &str = "/api/v1/workspaces/{ws}/credentials/{id}/validate";
    const MEMBERS: &str = "/api/v1/workspaces/{ws}/members";
    const MEMBER: &str = "/api/v1/workspaces/{ws}/members/{user_id}";
    const MODELS: &str = "/api/v1/workspaces/{ws}/models";
    const MODEL: &str = "/api/v1/workspaces/{ws}/models/{id}";
    const LB: &str = "/api/v1/workspaces/{ws}/models/{id}/load-balancing";
    const COOLDOWNS: &str = "/api/v1/workspaces/{ws}/models/{id}/load-balancing/cooldowns";
    const GW_MODELS: &str = "/v1/models";
    const GW_MODEL: &str = "/v1/models/{name}";
    const GEMINI_MODELS: &str = "/v1beta/models";
    const GEMINI_MODEL: &str = "/v1beta/models/{name}";

    let mut cases = vec![
        // --- /admin/audit-events
        live("GET", AUDIT, 200, "", |f| f.by(&f.admin, "GET", AUDIT)),
        live("GET", AUDIT, 401, "unauthorized", |f| f.anon("GET", AUDIT)),
        live("GET", AUDIT, 403, "forbidden", |f| {
            f.by(&f.owner, "GET", AUDIT)
        }),
        live("GET", AUDIT, 422, "validation_failed", |f| {
            f.by(&f.admin, "GET", format!("{AUDIT}?limit=0"))
        }),
        // --- /admin/license
        live("GET", LICENSE, 200, "", |f| f.by(&f.admin, "GET", LICENSE)),
        live("GET", LICENSE, 401, "unauthorized", |f| {
            f.anon("GET", LICENSE)
        }),
        live("GET", LICENSE, 403, "forbidden", |f| {
            f.by(&f.owner, "GET", LICENSE)
        }),
        live("PUT", LICENSE, 200, "", |f| {
            f.by(&f.admin, "PUT", LICENSE)
                .json(json!({"license": f.valid_license}))
        }),
        live("PUT", LICENSE, 401, "unauthorized", |f| {
            f.anon("PUT", LICENSE)
                .json(json!({"license": f.valid_license}))
        }),
        live("PUT", LICENSE, 403, "forbidden", |f| {
            f.by(&f.owner, "PUT", LICENSE)
                .json(json!({"license": f.valid_license}))
        }),
        live("PUT", LICENSE, 422, "license_expired", |f| {
            f.by(&f.admin, "PUT", LICENSE)
                .json(json!({"license": f.expired_license}))
        }),
        live("PUT", LICENSE, 422, "license_invalid", |f| {
            f.by(&f.admin, "PUT", LICENSE)
                .json(json!({"license": "not.a.license"}))
        }),
        live("PUT", LICENSE, 422, "license_not_saas", |f| {
            f.saas_admin("PUT", LICENSE)
                .json(json!({"license": lb_license()}))
        }),
        live("PUT", LICENSE, 422, "validation_failed", |f| {
            f.by(&f.admin, "PUT", LICENSE).json(json!({"license": 5}))
        }),
        // --- /admin/workspaces
        live("GET", ALL_WS, 200, "", |f| f.by(&f.admin, "GET", ALL_WS)),
        live("GET", ALL_WS, 401, "unauthorized", |f| {
            f.anon("GET", ALL_WS)
        }),
        live("GET", ALL_WS, 403, "forbidden", |f| {
            f.by(&f.owner, "GET", ALL_WS)
        }),
        live("GET", ALL_WS, 422, "validation_failed", |f| {
            f.by(&f.admin, "GET", format!("{ALL_WS}?limit=201"))
        }),
        // --- /admin/workspaces/{ws}/plan (saas, except the self-hosted 409)
        live("PUT", PLAN, 200, "", |f| {
            f.saas_admin("PUT", f.plan_path())
                .json(json!({"plan": "team"}))
        }),
        live("PUT", PLAN, 401, "unauthorized", |f| {
            call(&f.saas, "PUT", f.plan_path()).json(json!({"plan": "team"}))
        }),
        live("PUT", PLAN, 403, "forbidden", |f| {
            call(&f.saas, "PUT", f.plan_path())
                .bearer(&f.s_owner.token)
                .json(json!({"plan": "team"}))
        }),
        live("PUT", PLAN, 404, "not_found", |f| {
            f.saas_admin("PUT", format!("/api/v1/admin/workspaces/{}/plan", random()))
                .json(json!({"plan": "team"}))
        }),
        live("PUT", PLAN, 409, "plans_not_available", |f| {
            f.by(
                &f.admin,
                "PUT",
                format!("/api/v1/admin/workspaces/{}/plan", f.owner.workspace),
            )
            .json(json!({"plan": "team"}))
        }),
        live("PUT", PLAN, 422, "validation_failed", |f| {
            f.saas_admin("PUT", f.plan_path())
                .json(json!({"plan": "platinum"}))
        }),
        // --- /auth/login
        live("POST", LOGIN, 200, "", |f| {
            f.anon("POST", LOGIN)
                .json(json!({"email": f.owner.email, "password": PASSWORD}))
        }),
        live("POST", LOGIN, 401, "invalid_credentials", |f| {
            f.anon("POST", LOGIN)
                .json(json!({"email": unique_email("nobody"), "password": PASSWORD}))
        }),
        live("POST", LOGIN, 422, "validation_failed", |f| {
            f.anon("POST", LOGIN).json(json!({"email": f.owner.email}))
        }),
        // Ten failed logins for this email: even the right password is refused for a while.
        live("POST", LOGIN, 429, "too_many_requests", |f| {
            f.anon("POST", LOGIN)
                .json(json!({"email": f.throttled.email, "password": PASSWORD}))
        })
        .then(has_retry_after),
        // --- /auth/signup
        live("POST", SIGNUP, 201, "", |f| {
            f.anon("POST", SIGNUP)
                .json(json!({"email": unique_email("new"), "password": PASSWORD, "name": "New"}))
        }),
        live("POST", SIGNUP, 403, "signup_closed", |f| {
            call(&f.closed, "POST", SIGNUP)
                .json(json!({"email": unique_email("late"), "password": PASSWORD, "name": "Late"}))
        }),
        live("POST", SIGNUP, 403, "license_limit_reached", |f| {
            call(&f.limit, "POST", SIGNUP).json(
                json!({"email": unique_email("extra"), "password": PASSWORD, "name": "Extra"}),
            )
        }),
        live("POST", SIGNUP, 409, "email_taken", |f| {
            f.anon("POST", SIGNUP)
                .json(json!({"email": f.owner.email, "password": PASSWORD, "name": "Again"}))
        }),
        live("POST", SIGNUP, 422, "validation_failed", |f| {
            f.anon("POST", SIGNUP)
                .json(json!({"email": unique_email("short"), "password": "short", "name": "S"}))
        }),
        // --- /me
        live("GET", ME, 200, "", |f| f.by(&f.owner, "GET", ME)),
        live("GET", ME, 401, "unauthorized", |f| f.anon("GET", ME)),
        // --- /me/password
        live("POST", PASSWORD_PATH, 204, "", |f| {
            f.by(&f.changes_password, "POST", PASSWORD_PATH)
                .json(json!({"current_password": PASSWORD, "new_password": "a brand new password"}))
        }),
        live("POST", PASSWORD_PATH, 401, "unauthorized", |f| {
            f.anon("POST", PASSWORD_PATH)
                .json(json!({"current_password": PASSWORD, "new_password": "a brand new password"}))
        }),
        live("POST", PASSWORD_PATH, 422, "validation_failed", |f| {
            f.by(&f.stranger, "POST", PASSWORD_PATH).json(
                json!({"current_password": "not the password", "new_password": "a brand new password"}),
            )
        }),
        live("POST", PASSWORD_PATH, 429, "too_many_requests", |f| {
            f.by(&f.throttled, "POST", PASSWORD_PATH)
                .json(json!({"current_password": PASSWORD, "new_password": "a brand new password"}))
        })
        .then(has_retry_after),
        // --- /me/tokens
        live("GET", TOKENS, 200, "", |f| f.by(&f.owner, "GET", TOKENS)),
        live("GET", TOKENS, 401, "unauthorized", |f| {
            f.anon("GET", TOKENS)
        }),
        live("GET", TOKENS, 422, "validation_failed", |f| {
            f.by(&f.owner, "GET", format!("{TOKENS}?cursor=garbage"))
        }),
        live("POST", TOKENS, 201, "", |f| {
            f.by(&f.owner, "POST", TOKENS).json(json!({"name": "ci"}))
        }),
        live("POST", TOKENS, 401, "unauthorized", |f| {
            f.anon("POST", TOKENS).json(json!({"name": "ci"}))
        }),
        live("POST", TOKENS, 422, "validation_failed", |f| {
            f.by(&f.owner, "POST", TOKENS)
                .json(json!({"name": "ci", "expires_at": "2001-01-01T00:00:00Z"}))
        }),
        // --- /me/tokens/{id}
        live("DELETE", TOKEN, 204, "", |f| {
            f.by(&f.owner, "DELETE", format!("{TOKENS}/{}", f.doomed_token))
        }),
        live("DELETE", TOKEN, 401, "unauthorized", |f| {
            f.anon("DELETE", format!("{TOKENS}/{}", f.doomed_token))
        }),
        live("DELETE", TOKEN, 404, "not_found", |f| {
            f.by(&f.owner, "DELETE", format!("{TOKENS}/{}", random()))
        }),
        // --- /providers
        live("GET", PROVIDERS, 200, "", |f| {
            f.by(&f.owner, "GET", PROVIDERS)
        }),
        live("GET", PROVIDERS, 401, "unauthorized", |f| {
            f.anon("GET", PROVIDERS)
        }),
        // --- /workspaces
        live("GET", WORKSPACES, 200, "", |f| {
            f.by(&f.owner, "GET", WORKSPACES)
        }),
        live("GET", WORKSPACES, 401, "unauthorized", |f| {
            f.anon("GET", WORKSPACES)
        }),
        live("GET", WORKSPACES, 422, "validation_failed", |f| {
            f.by(&f.owner, "GET", format!("{WORKSPACES}?limit=abc"))
        }),
        live("POST", WORKSPACES, 201, "", |f| {
            f.by(&f.owner, "POST", WORKSPACES)
                .json(json!({"name": "Research"}))
        }),
        live("POST", WORKSPACES, 401, "unauthorized", |f| {
            f.anon("POST", WORKSPACES).json(json!({"name": "Research"}))
        }),
        live("POST", WORKSPACES, 403, "license_limit_reached", |f| {
            call(&f.limit, "POST", WORKSPACES)
                .bearer(&f.l_user.token)
                .json(json!({"name": "one too many"}))
        }),
        live("POST", WORKSPACES, 422, "validation_failed", |f| {
            f.by(&f.owner, "POST", WORKSPACES).json(json!({"name": ""}))
        }),
        // --- /workspaces/{ws}
        live("GET", WS, 200, "", |f| f.by(&f.owner, "GET", f.w(""))),
        live("GET", WS, 401, "unauthorized", |f| f.anon("GET", f.w(""))),
        live("GET", WS, 404, "not_found", |f| {
            f.by(&f.stranger, "GET", f.w(""))
        }),
        live("PATCH", WS, 200, "", |f| {
            f.by(&f.owner, "PATCH", f.w(""))
                .json(json!({"name": "Renamed"}))
        }),
        live("PATCH", WS, 401, "unauthorized", |f| {
            f.anon("PATCH", f.w("")).json(json!({"name": "Renamed"}))
        }),
        live("PATCH", WS, 403, "forbidden", |f| {
            f.by(&f.editor, "PATCH", f.w(""))
                .json(json!({"name": "Renamed"}))
        }),
        live("PATCH", WS, 404, "not_found", |f| {
            f.by(&f.stranger, "PATCH", f.w(""))
                .json(json!({"name": "Renamed"}))
        }),
        live("PATCH", WS, 422, "validation_failed", |f| {
            f.by(&f.owner, "PATCH", f.w("")).json(json!({"name": ""}))
        }),
        // --- /workspaces/{ws}/api-keys
        live("GET", KEYS, 200, "", |f| {
            f.by(&f.editor, "GET", f.w("/api-keys"))
        }),
        live("GET", KEYS, 401, "unauthorized", |f| {
            f.anon("GET", f.w("/api-keys"))
        }),
        live("GET", KEYS, 404, "not_found", |f| {
            f.by(&f.stranger, "GET", f.w("/api-keys"))
        }),
        live("GET", KEYS, 422, "validation_failed", |f| {
            f.by(&f.owner, "GET", f.w("/api-keys?limit=0"))
        }),
        live("POST", KEYS, 201, "", |f| {
            f.by(&f.owner, "POST", f.w("/api-keys"))
                .json(json!({"name": "new"}))
        }),
        live("POST", KEYS, 401, "unauthorized", |f| {
            f.anon("POST", f.w("/api-keys"))
                .json(json!({"name": "new"}))
        }),
        live("POST", KEYS, 403, "forbidden", |f| {
            f.by(&f.editor, "POST", f.w("/api-keys"))
                .json(json!({"name": "new"}))
        }),
        live("POST", KEYS, 404, "not_found", |f| {
            f.by(&f.stranger, "POST", f.w("/api-keys"))
                .json(json!({"name": "new"}))
        }),
        live("POST", KEYS, 422, "validation_failed", |f| {
            f.by(&f.owner, "POST", f.w("/api-keys"))
                .json(json!({"name": "new", "allowed_models": "gpt"}))
        }),
        // --- /workspaces/{ws}/api-keys/{id}
        live("DELETE", KEY, 204, "", |f| {
            f.by(
                &f.owner,
                "DELETE",
                f.w(&format!("/api-keys/{}", f.doomed_key)),
            )
        }),
        live("DELETE", KEY, 401, "unauthorized", |f| {
            f.anon("DELETE", f.w(&format!("/api-keys/{}", f.key_id)))
        }),
        live("DELETE", KEY, 403, "forbidden", |f| {
            f.by(&f.editor, "DELETE", f.w(&format!("/api-keys/{}", f.key_id)))
        }),
        live("DELETE", KEY, 404, "not_found", |f| {
            f.by(&f.owner, "DELETE", f.w(&format!("/api-keys/{}", random())))
        }),
        live("GET", KEY, 200, "", |f| {
            f.by(&f.editor, "GET", f.w(&format!("/api-keys/{}", f.key_id)))
        }),
        live("GET", KEY, 401, "unauthorized", |f| {
            f.anon("GET", f.w(&format!("/api-keys/{}", f.key_id)))
        }),
        live("GET", KEY, 404, "not_found", |f| {
            f.by(&f.owner, "GET", f.w(&format!("/api-keys/{}", random())))
        }),
        live("PATCH", KEY, 200, "", |f| {
            f.by(&f.owner, "PATCH", f.w(&format!("/api-keys/{}", f.key_id)))
                .json(json!({"rpm": null}))
        }),
        live("PATCH", KEY, 401, "unauthorized", |f| {
            f.anon("PATCH", f.w(&format!("/api-keys/{}", f.key_id)))
                .json(json!({"rpm": null}))
        }),
        live("PATCH", KEY, 403, "forbidden", |f| {
            f.by(&f.editor, "PATCH", f.w(&format!("/api-keys/{}", f.key_id)))
                .json(json!({"rpm": null}))
        }),
        live("PATCH", KEY, 404, "not_found", |f| {
            f.by(&f.owner, "PATCH", f.w(&format!("/api-keys/{}", random())))
                .json(json!({"rpm": null}))
        }),
        live("PATCH", KEY, 422, "validation_failed", |f| {
            f.by(&f.owner, "PATCH", f.w(&format!("/api-keys/{}", f.key_id)))
                .json(json!({"rpm": 0}))
        }),
        // --- /workspaces/{ws}/usage
        live("GET", USAGE, 200, "", |f| {
            f.by(&f.editor, "GET", f.w("/usage"))
        }),
        live("GET", USAGE, 401, "unauthorized", |f| {
            f.anon("GET", f.w("/usage"))
        }),
        live("GET", USAGE, 404, "not_found", |f| {
            f.by(&f.stranger, "GET", f.w("/usage"))
        }),
        live("GET", USAGE, 422, "validation_failed", |f| {
            f.by(&f.owner, "GET", f.w("/usage?group_by=week"))
        }),
        // --- /workspaces/{ws}/audit-events
        live("GET", WS_AUDIT, 200, "", |f| {
            f.by(&f.editor, "GET", f.w("/audit-events"))
        }),
        live("GET", WS_AUDIT, 401, "unauthorized", |f| {
            f.anon("GET", f.w("/audit-events"))
        }),
        live("GET", WS_AUDIT, 404, "not_found", |f| {
            f.by(&f.stranger, "GET", f.w("/audit-events"))
        }),
        live("GET", WS_AUDIT, 422, "validation_failed", |f| {
            f.by(&f.owner, "GET", f.w("/audit-events?limit=-1"))
        }),
        // --- /workspaces/{ws}/credentials
        live("GET", CREDS, 200, "", |f| {
            f.by(&f.editor, "GET", f.w("/credentials"))
        }),
        live("GET", CREDS, 401, "unauthorized", |f| {
            f.anon("GET", f.w("/credentials"))
        }),
        live("GET", CREDS, 404, "not_found", |f| {
            f.by(&f.stranger, "GET", f.w("/credentials"))
        }),
        live("GET", CREDS, 422, "validation_failed", |f| {
            f.by(&f.owner, "GET", f.w("/credentials?limit=1.5"))
        }),
        live("POST", CREDS, 201, "", |f| {
            f.by(&f.owner, "POST", f.w("/credentials")).json(json!({
                "provider": "openai_compatible", "name": "created",
                "config": {"api_key": "sk_created", "base_url": f.mock_url}}))
        }),
        live("POST", CREDS, 401, "unauthorized", |f| {
            f.anon("POST", f.w("/credentials")).json(json!({
                "provider": "openai_compatible", "name": "created",
                "config": {"api_key": "sk_created", "base_url": f.mock_url}}))
        }),
        live("POST", CREDS, 403, "forbidden", |f| {
            f.by(&f.editor, "POST", f.w("/credentials")).json(json!({
                "provider": "openai_compatible", "name": "by-editor",
                "config": {"api_key": "sk_created", "base_url": f.mock_url}}))
        }),
        live("POST", CREDS, 404, "not_found", |f| {
            f.by(&f.stranger, "POST", f.w("/credentials")).json(json!({
                "provider": "openai_compatible", "name": "by-stranger",
                "config": {"api_key": "sk_created", "base_url": f.mock_url}}))
        }),
        live("POST", CREDS, 409, "credential_exists", |f| {
            f.by(&f.owner, "POST", f.w("/credentials")).json(json!({
                "provider": "openai_compatible", "name": "c1",
                "config": {"api_key": "sk_created", "base_url": f.mock_url}}))
        }),
        live("POST", CREDS, 422, "validation_failed", |f| {
            f.by(&f.owner, "POST", f.w("/credentials")).json(json!({
                "provider": "no-such-provider", "name": "x", "config": {"api_key": "sk_x"}}))
        }),
        // --- /workspaces/{ws}/credentials/{id}
        live("GET", CRED, 200, "", |f| {
            f.by(&f.editor, "GET", f.cred(f.c1))
        }),
        live("GET", CRED, 401, "unauthorized", |f| {
            f.anon("GET", f.cred(f.c1))
        }),
        live("GET", CRED, 404, "not_found", |f| {
            f.by(&f.owner, "GET", f.cred(random()))
        }),
        live("GET", CRED, 500, "credential_unreadable", |f| {
            f.by(&f.owner, "GET", f.cred(f.tampered_credential))
        }),
        live("DELETE", CRED, 204, "", |f| {
            f.by(&f.owner, "DELETE", f.cred(f.spare_credential))
        }),
        live("DELETE", CRED, 401, "unauthorized", |f| {
            f.anon("DELETE", f.cred(f.c2))
        }),
        live("DELETE", CRED, 403, "forbidden", |f| {
            f.by(&f.editor, "DELETE", f.cred(f.c2))
        }),
        live("DELETE", CRED, 404, "not_found", |f| {
            f.by(&f.owner, "DELETE", f.cred(random()))
        }),
        live("DELETE", CRED, 409, "credential_in_use", |f| {
            f.by(&f.owner, "DELETE", f.cred(f.c1))
        })
        .then(|r| {
            let models = &r.body["error"]["details"]["models"];
            if models.as_array().is_some_and(|m| m.contains(&json!("gpt"))) {
                Ok(())
            } else {
                Err(format!("details.models {models}"))
            }
        }),
        live("PATCH", CRED, 200, "", |f| {
            f.by(&f.owner, "PATCH", f.cred(f.c2))
                .json(json!({"name": "c2-renamed"}))
        }),
        live("PATCH", CRED, 401, "unauthorized", |f| {
            f.anon("PATCH", f.cred(f.c2)).json(json!({"name": "x"}))
        }),
        live("PATCH", CRED, 403, "forbidden", |f| {
            f.by(&f.editor, "PATCH", f.cred(f.c2))
                .json(json!({"name": "x"}))
        }),
        live("PATCH", CRED, 404, "not_found", |f| {
            f.by(&f.owner, "PATCH", f.cred(random()))
                .json(json!({"name": "x"}))
        }),
        live("PATCH", CRED, 409, "credential_exists", |f| {
            f.by(&f.owner, "PATCH", f.cred(f.c2))
                .json(json!({"name": "c1"}))
        }),
        live("PATCH", CRED, 422, "validation_failed", |f| {
            f.by(&f.owner, "PATCH", f.cred(f.c2))
                .json(json!({"config": {"no_such_field": "x"}}))
        }),
        // A new host with the secret left masked: the stored key may not follow it there.
        live("PATCH", CRED, 422, "secret_required", |f| {
            f.by(&f.owner, "PATCH", f.cred(f.c2))
                .json(json!({"config": {"base_url": "http://127.0.0.1:9/v1"}}))
        }),
        // The workspace's data key cannot be unwrapped: nothing can be re-encrypted.
        live("PATCH", CRED, 500, "credential_unreadable", |f| {
            f.by(
                &f.owner,
                "PATCH",
                format!(
                    "/api/v1/workspaces/{}/credentials/{}",
                    f.unwrappable_ws, f.unwrappable_credential
                ),
            )
            .json(json!({"name": "renamed"}))
        }),
        // --- /workspaces/{ws}/credentials/{id}/validate
        live("POST", VALIDATE, 200, "", |f| {
            f.by(&f.owner, "POST", format!("{}/validate", f.cred(f.c1)))
        })
        .then(|r| {
            if r.body == json!({"valid": true}) {
                Ok(())
            } else {
                Err("not valid".to_owned())
            }
        }),
        live("POST", VALIDATE, 401, "unauthorized", |f| {
            f.anon("POST", format!("{}/validate", f.cred(f.c1)))
        }),
        live("POST", VALIDATE, 403, "forbidden", |f| {
            f.by(&f.editor, "POST", format!("{}/validate", f.cred(f.c1)))
        }),
        live("POST", VALIDATE, 404, "not_found", |f| {
            f.by(&f.owner, "POST", format!("{}/validate", f.cred(random())))
        }),
        live("POST", VALIDATE, 500, "credential_unreadable", |f| {
            f.by(
                &f.owner,
                "POST",
                format!("{}/validate", f.cred(f.tampered_credential)),
            )
        }),
        // --- /workspaces/{ws}/members
        live("GET", MEMBERS, 200, "", |f| {
            f.by(&f.editor, "GET", f.w("/members"))
        }),
        live("GET", MEMBERS, 401, "unauthorized", |f| {
            f.anon("GET", f.w("/members"))
        }),
        live("GET", MEMBERS, 404, "not_found", |f| {
            f.by(&f.stranger, "GET", f.w("/members"))
        }),
        live("GET", MEMBERS, 422, "validation_failed", |f| {
            f.by(&f.owner, "GET", f.w("/members?limit=0"))
        }),
        live("POST", MEMBERS, 201, "", |f| {
            f.by(&f.owner, "POST", f.w("/members"))
                .json(json!({"email": f.joiner.email, "role": "normal"}))
        }),
        live("POST", MEMBERS, 401, "unauthorized", |f| {
            f.anon("POST", f.w("/members"))
                .json(json!({"email": f.joiner.email, "role": "normal"}))
        }),
        live("POST", MEMBERS, 403, "forbidden", |f| {
            f.by(&f.editor, "POST", f.w("/members"))
                .json(json!({"email": f.stranger.email, "role": "normal"}))
        }),
        // Only owners grant the admin role.
        live("POST", MEMBERS, 403, "forbidden", |f| {
            f.by(&f.ws_admin, "POST", f.w("/members"))
                .json(json!({"email": f.stranger.email, "role": "admin"}))
        }),
        live("POST", MEMBERS, 404, "not_found", |f| {
            f.by(&f.stranger, "POST", f.w("/members"))
                .json(json!({"email": f.joiner.email, "role": "normal"}))
        }),
        live("POST", MEMBERS, 404, "user_not_found", |f| {
            f.by(&f.owner, "POST", f.w("/members"))
                .json(json!({"email": unique_email("nobody"), "role": "normal"}))
        }),
        live("POST", MEMBERS, 409, "member_exists", |f| {
            f.by(&f.owner, "POST", f.w("/members"))
                .json(json!({"email": f.editor.email, "role": "normal"}))
        }),
        live("POST", MEMBERS, 422, "validation_failed", |f| {
            f.by(&f.owner, "POST", f.w("/members"))
                .json(json!({"email": f.stranger.email, "role": "king"}))
        }),
        // --- /workspaces/{ws}/members/{user_id}
        live("DELETE", MEMBER, 204, "", |f| {
            f.by(&f.owner, "DELETE", f.member(f.to_remove.id))
        }),
        live("DELETE", MEMBER, 401, "unauthorized", |f| {
            f.anon("DELETE", f.member(f.to_promote.id))
        }),
        live("DELETE", MEMBER, 403, "forbidden", |f| {
            f.by(&f.editor, "DELETE", f.member(f.to_promote.id))
        }),
        live("DELETE", MEMBER, 404, "not_found", |f| {
            f.by(&f.owner, "DELETE", f.member(random()))
        }),
        // The only owner leaving.
        live("DELETE", MEMBER, 409, "last_owner", |f| {
            f.by(&f.owner, "DELETE", f.member(f.owner.id))
        }),
        live("PATCH", MEMBER, 200, "", |f| {
            f.by(&f.owner, "PATCH", f.member(f.to_promote.id))
                .json(json!({"role": "editor"}))
        }),
        live("PATCH", MEMBER, 401, "unauthorized", |f| {
            f.anon("PATCH", f.member(f.to_promote.id))
                .json(json!({"role": "editor"}))
        }),
        live("PATCH", MEMBER, 403, "forbidden", |f| {
            f.by(&f.editor, "PATCH", f.member(f.to_promote.id))
                .json(json!({"role": "editor"}))
        }),
        live("PATCH", MEMBER, 404, "not_found", |f| {
            f.by(&f.owner, "PATCH", f.member(random()))
                .json(json!({"role": "editor"}))
        }),
        // The only owner demoting themself.
        live("PATCH", MEMBER, 409, "last_owner", |f| {
            f.by(&f.owner, "PATCH", f.member(f.owner.id))
                .json(json!({"role": "admin"}))
        }),
        live("PATCH", MEMBER, 422, "validation_failed", |f| {
            f.by(&f.owner, "PATCH", f.member(f.to_promote.id))
                .json(json!({"role": "king"}))
        }),
        // --- /workspaces/{ws}/models
        live("GET", MODELS, 200, "", |f| {
            f.by(&f.editor, "GET", f.w("/models"))
        }),
        live("GET", MODELS, 401, "unauthorized", |f| {
            f.anon("GET", f.w("/models"))
        }),
        live("GET", MODELS, 404, "not_found", |f| {
            f.by(&f.stranger, "GET", f.w("/models"))
        }),
        live("GET", MODELS, 422, "validation_failed", |f| {
            f.by(&f.owner, "GET", f.w("/models?cursor=garbage"))
        }),
        live("POST", MODELS, 201, "", |f| {
            f.by(&f.owner, "POST", f.w("/models")).json(json!({
                "provider": "openai_compatible", "name": "fresh", "model_type": "llm",
                "credential_id": f.c1}))
        }),
        live("POST", MODELS, 401, "unauthorized", |f| {
            f.anon("POST", f.w("/models")).json(json!({
                "provider": "openai_compatible", "name": "fresh", "model_type": "llm",
                "credential_id": f.c1}))
        }),
        live("POST", MODELS, 403, "forbidden", |f| {
            f.by(&f.editor, "POST", f.w("/models")).json(json!({
                "provider": "openai_compatible", "name": "by-editor", "model_type": "llm",
                "credential_id": f.c1}))
        }),
        live("POST", MODELS, 404, "not_found", |f| {
            f.by(&f.stranger, "POST", f.w("/models")).json(json!({
                "provider": "openai_compatible", "name": "by-stranger", "model_type": "llm",
                "credential_id": f.c1}))
        }),
        live("POST", MODELS, 409, "model_exists", |f| {
            f.by(&f.owner, "POST", f.w("/models")).json(json!({
                "provider": "openai_compatible", "name": "gpt", "model_type": "llm",
                "credential_id": f.c1}))
        }),
        live("POST", MODELS, 422, "validation_failed", |f| {
            f.by(&f.owner, "POST", f.w("/models")).json(json!({
                "provider": "no-such-provider", "name": "odd", "model_type": "llm",
                "credential_id": f.c1}))
        }),
        // --- /workspaces/{ws}/models/{id}
        live("GET", MODEL, 200, "", |f| {
            f.by(&f.editor, "GET", f.model(f.gpt))
        }),
        live("GET", MODEL, 401, "unauthorized", |f| {
            f.anon("GET", f.model(f.gpt))
        }),
        live("GET", MODEL, 404, "not_found", |f| {
            f.by(&f.owner, "GET", f.model(random()))
        }),
        live("DELETE", MODEL, 204, "", |f| {
            f.by(&f.owner, "DELETE", f.model(f.doomed_model))
        }),
        live("DELETE", MODEL, 401, "unauthorized", |f| {
            f.anon("DELETE", f.model(f.gpt))
        }),
        live("DELETE", MODEL, 403, "forbidden", |f| {
            f.by(&f.editor, "DELETE", f.model(f.gpt))
        }),
        live("DELETE", MODEL, 404, "not_found", |f| {
            f.by(&f.owner, "DELETE", f.model(random()))
        }),
        live("PATCH", MODEL, 200, "", |f| {
            f.by(&f.owner, "PATCH", f.model(f.spare_model))
                .json(json!({"upstream_model": "spare-upstream"}))
        }),
        live("PATCH", MODEL, 401, "unauthorized", |f| {
            f.anon("PATCH", f.model(f.spare_model))
                .json(json!({"upstream_model": "x"}))
        }),
        live("PATCH", MODEL, 403, "forbidden", |f| {
            f.by(&f.editor, "PATCH", f.model(f.spare_model))
                .json(json!({"upstream_model": "x"}))
        }),
        live("PATCH", MODEL, 404, "not_found", |f| {
            f.by(&f.owner, "PATCH", f.model(random()))
                .json(json!({"upstream_model": "x"}))
        }),
        live("PATCH", MODEL, 422, "validation_failed", |f| {
            f.by(&f.owner, "PATCH", f.model(f.spare_model))
                .json(json!({"upstream_model": "has white space"}))
        }),
        // --- /workspaces/{ws}/models/{id}/load-balancing
        live("GET", LB, 200, "", |f| f.by(&f.editor, "GET", f.lb(f.gpt))).then(|r| {
            if r.headers.contains_key("etag") {
                Ok(())
            } else {
                Err("no ETag".to_owned())
            }
        }),
        live("GET", LB, 401, "unauthorized", |f| {
            f.anon("GET", f.lb(f.gpt))
        }),
        live("GET", LB, 404, "not_found", |f| {
            f.by(&f.owner, "GET", f.lb(random()))
        }),
        live("PUT", LB, 200, "", |f| {
            f.by(&f.owner, "PUT", f.lb(f.gpt)).json(json!({
                "enabled": true,
                "entries": [{"credential_id": f.c1}, {"credential_id": f.c2}]}))
        }),
        live("PUT", LB, 401, "unauthorized", |f| {
            f.anon("PUT", f.lb(f.gpt))
                .json(json!({"enabled": false, "entries": []}))
        }),
        live("PUT", LB, 403, "forbidden", |f| {
            f.by(&f.editor, "PUT", f.lb(f.gpt))
                .json(json!({"enabled": false, "entries": []}))
        }),
        // A sandbox workspace of the saas instance has no load balancing.
        live("PUT", LB, 403, "feature_not_available", |f| {
            call(
                &f.saas,
                "PUT",
                TestApp::lb_path(f.s_owner.workspace, &f.s_model.to_string()),
            )
            .bearer(&f.s_owner.token)
            .json(json!({"enabled": true, "entries": []}))
        }),
        live("PUT", LB, 404, "not_found", |f| {
            f.by(&f.owner, "PUT", f.lb(random()))
                .json(json!({"enabled": false, "entries": []}))
        }),
        live("PUT", LB, 412, "version_conflict", |f| {
            f.by(&f.owner, "PUT", f.lb(f.gpt))
                .header("if-match", "\"9999\"")
                .json(json!({
                    "enabled": true,
                    "entries": [{"credential_id": f.c1}, {"credential_id": f.c2}]}))
        }),
        live("PUT", LB, 422, "validation_failed", |f| {
            f.by(&f.owner, "PUT", f.lb(f.solo))
                .json(json!({"enabled": false, "cooldown_seconds": 0, "entries": []}))
        }),
        // The Default Config and the same credential again are one distinct credential.
        live("PUT", LB, 422, "not_enough_entries", |f| {
            f.by(&f.owner, "PUT", f.lb(f.solo)).json(json!({
                "enabled": true,
                "entries": [{"credential_id": null}, {"credential_id": f.c1}]}))
        }),
        live("PATCH", LB, 200, "", |f| {
            f.by(&f.owner, "PATCH", f.lb(f.gpt))
                .json(json!({"max_attempts": 2}))
        }),
        live("PATCH", LB, 401, "unauthorized", |f| {
            f.anon("PATCH", f.lb(f.gpt))
                .json(json!({"max_attempts": 2}))
        }),
        live("PATCH", LB, 403, "forbidden", |f| {
            f.by(&f.editor, "PATCH", f.lb(f.gpt))
                .json(json!({"max_attempts": 2}))
        }),
        live("PATCH", LB, 403, "feature_not_available", |f| {
            call(
                &f.saas,
                "PATCH",
                TestApp::lb_path(f.s_owner.workspace, &f.s_model.to_string()),
            )
            .bearer(&f.s_owner.token)
            .json(json!({"enabled": true}))
        }),
        live("PATCH", LB, 404, "not_found", |f| {
            f.by(&f.owner, "PATCH", f.lb(random()))
                .json(json!({"max_attempts": 2}))
        }),
        live("PATCH", LB, 412, "version_conflict", |f| {
            f.by(&f.owner, "PATCH", f.lb(f.gpt))
                .header("if-match", "\"9999\"")
                .json(json!({"max_attempts": 2}))
        }),
        live("PATCH", LB, 422, "validation_failed", |f| {
            f.by(&f.owner, "PATCH", f.lb(f.solo))
                .json(json!({"max_attempts": 11}))
        }),
        live("PATCH", LB, 422, "not_enough_entries", |f| {
            f.by(&f.owner, "PATCH", f.lb(f.solo))
                .json(json!({"enabled": true}))
        }),
        // --- /workspaces/{ws}/models/{id}/load-balancing/cooldowns
        live("DELETE", COOLDOWNS, 204, "", |f| {
            f.by(&f.owner, "DELETE", format!("{}/cooldowns", f.lb(f.gpt)))
        }),
        live("DELETE", COOLDOWNS, 401, "unauthorized", |f| {
            f.anon("DELETE", format!("{}/cooldowns", f.lb(f.gpt)))
        }),
        live("DELETE", COOLDOWNS, 403, "forbidden", |f| {
            f.by(&f.editor, "DELETE", format!("{}/cooldowns", f.lb(f.gpt)))
        }),
        live("DELETE", COOLDOWNS, 404, "not_found", |f| {
            f.by(&f.owner, "DELETE", format!("{}/cooldowns", f.lb(random())))
        }),
        // --- health
        live("GET", "/healthz", 200, "", |f| f.anon("GET", "/healthz")),
        live("GET", "/readyz", 200, "", |f| f.anon("GET", "/readyz")),
        // --- gateway: /v1/models
        live("GET", GW_MODELS, 200, "", |f| {
            f.gw(&f.key, "GET", GW_MODELS)
        }),
        live("GET", GW_MODELS, 401, "invalid_api_key", |f| {
            f.gw("rk-not-a-key", "GET", GW_MODELS)
        }),
        live("GET", GW_MODEL, 200, "", |f| {
            f.gw(&f.key, "GET", "/v1/models/gpt")
        }),
        live("GET", GW_MODEL, 401, "invalid_api_key", |f| {
            call(&f.main, "GET", "/v1/models/gpt")
        }),
        live("GET", GW_MODEL, 403, "model_not_allowed", |f| {
            f.gw(&f.restricted_key, "GET", "/v1/models/gpt")
        }),
        live("GET", GW_MODEL, 404, "model_not_found", |f| {
            f.gw(&f.key, "GET", "/v1/models/no-such-model")
        }),
        // --- gateway: Gemini's model list
        live("GET", GEMINI_MODELS, 200, "", |f| {
            call(&f.main, "GET", GEMINI_MODELS).header("x-goog-api-key", &f.key)
        }),
        live("GET", GEMINI_MODELS, 401, "invalid_api_key", |f| {
            call(&f.main, "GET", "/v1beta/models?key=rk-not-a-key")
        }),
        live("GET", GEMINI_MODEL, 200, "", |f| {
            call(&f.main, "GET", "/v1beta/models/g-gpt").header("x-goog-api-key", &f.key)
        }),
        live("GET", GEMINI_MODEL, 401, "invalid_api_key", |f| {
            call(&f.main, "GET", "/v1beta/models/g-gpt").bearer(&f.key)
        }),
        live("GET", GEMINI_MODEL, 403, "model_not_allowed", |f| {
            call(&f.main, "GET", "/v1beta/models/g-gpt").header("x-goog-api-key", &f.restricted_key)
        }),
        // An OpenAI model is not a Gemini client's.
        live("GET", GEMINI_MODEL, 404, "model_not_found", |f| {
            call(&f.main, "GET", "/v1beta/models/gpt").header("x-goog-api-key", &f.key)
        }),
    ];
    // Each sent where the route would otherwise accept it.
    let body_routes: [(&str, &str, Target); 18] = [
        ("PUT", LICENSE, |f| f.by(&f.admin, "PUT", LICENSE)),
        ("PUT", PLAN, |f| f.saas_admin("PUT", f.plan_path())),
        ("POST", LOGIN, |f| f.anon("POST", LOGIN)),
        ("POST", SIGNUP, |f| f.anon("POST", SIGNUP)),
        ("POST", PASSWORD_PATH, |f| {
            f.by(&f.owner, "POST", PASSWORD_PATH)
        }),
        ("POST", TOKENS, |f| f.by(&f.owner, "POST", TOKENS)),
        ("POST", WORKSPACES, |f| f.by(&f.owner, "POST", WORKSPACES)),
        ("PATCH", WS, |f| f.by(&f.owner, "PATCH", f.w(""))),
        ("POST", KEYS, |f| f.by(&f.owner, "POST", f.w("/api-keys"))),
        ("PATCH", KEY, |f| {
            f.by(&f.owner, "PATCH", f.w(&format!("/api-keys/{}", f.key_id)))
        }),
        ("POST", CREDS, |f| {
            f.by(&f.owner, "POST", f.w("/credentials"))
        }),
        ("PATCH", CRED, |f| f.by(&f.owner, "PATCH", f.cred(f.c2))),
        ("POST", MEMBERS, |f| f.by(&f.owner, "POST", f.w("/members"))),
        ("PATCH", MEMBER, |f| {
            f.by(&f.owner, "PATCH", f.member(f.to_promote.id))
        }),
        ("POST", MODELS, |f| f.by(&f.owner, "POST", f.w("/models"))),
        ("PATCH", MODEL, |f| {
            f.by(&f.owner, "PATCH", f.model(f.spare_model))
        }),
        ("PUT", LB, |f| f.by(&f.owner, "PUT", f.lb(f.gpt))),
        ("PATCH", LB, |f| f.by(&f.owner, "PATCH", f.lb(f.gpt))),
    ];
    for (method, path, target) in body_routes {
        cases.extend(body_faults(method, path, target));
    }
    cases.extend(proxied::live_cases());
    cases.extend(stored::live_cases());
    cases.extend(stored::continuation_cases());
    cases
}

// --- the server of the outage scenarios -------------------------------------------------------

/// A server on a PostgreSQL of its own, which the test stops.
struct Down {
    app: TestApp,
    /// The first user: instance admin, owner of `user.workspace`.
    user: TestUser,
    credential: Uuid,
    model: Uuid,
    key_id: Uuid,
    token_id: Uuid,
    /// A gateway key whose model was never called (so its route is not cached).
    key: String,
    /// A response relayed before the outage.
    response: String,
}

impl Down {
    fn anon(&self, method: &str, path: impl Into<String>) -> Req {
        call(&self.app, method, path)
    }
    fn by(&self, method: &str, path: impl Into<String>) -> Req {
        call(&self.app, method, path).bearer(&self.user.token)
    }
    fn w(&self, rest: &str) -> String {
        format!("/api/v1/workspaces/{}{rest}", self.user.workspace)
    }
    fn cred(&self) -> String {
        self.w(&format!("/credentials/{}", self.credential))
    }
    fn model(&self) -> String {
        self.w(&format!("/models/{}", self.model))
    }
    fn member(&self) -> String {
        self.w(&format!("/members/{}", self.user.id))
    }
}

/// The outage scenarios: every documented 503, with the database stopped.
fn outage_cases() -> Vec<Case<Down>> {
    let lb = "/api/v1/workspaces/{ws}/models/{id}/load-balancing";
    let mut cases = proxied::outage_cases();
    cases.extend(stored::outage_cases());
    cases.extend([
        down("GET", "/api/v1/admin/audit-events", |d| {
            d.by("GET", "/api/v1/admin/audit-events")
        }),
        down("GET", "/api/v1/admin/license", |d| {
            d.by("GET", "/api/v1/admin/license")
        }),
        down("PUT", "/api/v1/admin/license", |d| {
            d.by("PUT", "/api/v1/admin/license")
                .json(json!({"license": lb_license()}))
        }),
        down("GET", "/api/v1/admin/workspaces", |d| {
            d.by("GET", "/api/v1/admin/workspaces")
        }),
        down("PUT", "/api/v1/admin/workspaces/{ws}/plan", |d| {
            d.by(
                "PUT",
                format!("/api/v1/admin/workspaces/{}/plan", d.user.workspace),
            )
            .json(json!({"plan": "team"}))
        }),
        down("POST", "/api/v1/auth/login", |d| {
            d.anon("POST", "/api/v1/auth/login")
                .json(json!({"email": d.user.email, "password": PASSWORD}))
        }),
        down("POST", "/api/v1/auth/signup", |d| {
            d.anon("POST", "/api/v1/auth/signup").json(
                json!({"email": unique_email("during"), "password": PASSWORD, "name": "During"}),
            )
        }),
        down("GET", "/api/v1/me", |d| d.by("GET", "/api/v1/me")),
        down("GET", "/v1beta/models", |d| {
            d.anon("GET", "/v1beta/models")
                .header("x-goog-api-key", &d.key)
        }),
        down("GET", "/v1beta/models/{name}", |d| {
            d.anon("GET", "/v1beta/models/gpt")
                .header("x-goog-api-key", &d.key)
        }),
        down("GET", "/v1/models", |d| {
            d.anon("GET", "/v1/models").bearer(&d.key)
        }),
        down("GET", "/v1/models/{name}", |d| {
            d.anon("GET", "/v1/models/gpt").bearer(&d.key)
        }),
        down("POST", "/api/v1/me/password", |d| {
            d.by("POST", "/api/v1/me/password")
                .json(json!({"current_password": PASSWORD, "new_password": "a brand new password"}))
        }),
        down("GET", "/api/v1/me/tokens", |d| {
            d.by("GET", "/api/v1/me/tokens")
        }),
        down("POST", "/api/v1/me/tokens", |d| {
            d.by("POST", "/api/v1/me/tokens")
                .json(json!({"name": "during"}))
        }),
        down("DELETE", "/api/v1/me/tokens/{id}", |d| {
            d.by("DELETE", format!("/api/v1/me/tokens/{}", d.token_id))
        }),
        down("GET", "/api/v1/providers", |d| {
            d.by("GET", "/api/v1/providers")
        }),
        down("GET", "/api/v1/workspaces", |d| {
            d.by("GET", "/api/v1/workspaces")
        }),
        down("POST", "/api/v1/workspaces", |d| {
            d.by("POST", "/api/v1/workspaces")
                .json(json!({"name": "during"}))
        }),
        down("GET", "/api/v1/workspaces/{ws}", |d| d.by("GET", d.w(""))),
        down("PATCH", "/api/v1/workspaces/{ws}", |d| {
            d.by("PATCH", d.w("")).json(json!({"name": "during"}))
        }),
        down("GET", "/api/v1/workspaces/{ws}/api-keys", |d| {
            d.by("GET", d.w("/api-keys"))
        }),
        down("POST", "/api/v1/workspaces/{ws}/api-keys", |d| {
            d.by("POST", d.w("/api-keys"))
                .json(json!({"name": "during"}))
        }),
        down("DELETE", "/api/v1/workspaces/{ws}/api-keys/{id}", |d| {
            d.by("DELETE", d.w(&format!("/api-keys/{}", d.key_id)))
        }),
        down("GET", "/api/v1/workspaces/{ws}/api-keys/{id}", |d| {
            d.by("GET", d.w(&format!("/api-keys/{}", d.key_id)))
        }),
        down("PATCH", "/api/v1/workspaces/{ws}/api-keys/{id}", |d| {
            d.by("PATCH", d.w(&format!("/api-keys/{}", d.key_id)))
                .json(json!({"name": "during"}))
        }),
        down("GET", "/api/v1/workspaces/{ws}/usage", |d| {
            d.by("GET", d.w("/usage"))
        }),
        down("GET", "/api/v1/workspaces/{ws}/audit-events", |d| {
            d.by("GET", d.w("/audit-events"))
        }),
        down("GET", "/api/v1/workspaces/{ws}/credentials", |d| {
            d.by("GET", d.w("/credentials"))
        }),
        down("POST", "/api/v1/workspaces/{ws}/credentials", |d| {
            d.by("POST", d.w("/credentials")).json(json!({
                "provider": "openai_compatible", "name": "during",
                "config": {"api_key": "sk_during", "base_url": "http://127.0.0.1:9/v1"}}))
        }),
        down("GET", "/api/v1/workspaces/{ws}/credentials/{id}", |d| {
            d.by("GET", d.cred())
        }),
        down("DELETE", "/api/v1/workspaces/{ws}/credentials/{id}", |d| {
            d.by("DELETE", d.cred())
        }),
        down("PATCH", "/api/v1/workspaces/{ws}/credentials/{id}", |d| {
            d.by("PATCH", d.cred()).json(json!({"name": "during"}))
        }),
        down(
            "POST",
            "/api/v1/workspaces/{ws}/credentials/{id}/validate",
            |d| d.by("POST", format!("{}/validate", d.cred())),
        ),
        down("GET", "/api/v1/workspaces/{ws}/members", |d| {
            d.by("GET", d.w("/members"))
        }),
        down("POST", "/api/v1/workspaces/{ws}/members", |d| {
            d.by("POST", d.w("/members"))
                .json(json!({"email": unique_email("during"), "role": "normal"}))
        }),
        down("DELETE", "/api/v1/workspaces/{ws}/members/{user_id}", |d| {
            d.by("DELETE", d.member())
        }),
        down("PATCH", "/api/v1/workspaces/{ws}/members/{user_id}", |d| {
            d.by("PATCH", d.member()).json(json!({"role": "owner"}))
        }),
        down("GET", "/api/v1/workspaces/{ws}/models", |d| {
            d.by("GET", d.w("/models"))
        }),
        down("POST", "/api/v1/workspaces/{ws}/models", |d| {
            d.by("POST", d.w("/models")).json(json!({
                "provider": "openai_compatible", "name": "during", "model_type": "llm",
                "credential_id": d.credential}))
        }),
        down("GET", "/api/v1/workspaces/{ws}/models/{id}", |d| {
            d.by("GET", d.model())
        }),
        down("DELETE", "/api/v1/workspaces/{ws}/models/{id}", |d| {
            d.by("DELETE", d.model())
        }),
        down("PATCH", "/api/v1/workspaces/{ws}/models/{id}", |d| {
            d.by("PATCH", d.model())
                .json(json!({"upstream_model": "during"}))
        }),
        down("GET", lb, |d| {
            d.by("GET", format!("{}/load-balancing", d.model()))
        }),
        down("PUT", lb, |d| {
            d.by("PUT", format!("{}/load-balancing", d.model()))
                .json(json!({"enabled": false, "entries": []}))
        }),
        down("PATCH", lb, |d| {
            d.by("PATCH", format!("{}/load-balancing", d.model()))
                .json(json!({"max_attempts": 2}))
        }),
        down(
            "DELETE",
            "/api/v1/workspaces/{ws}/models/{id}/load-balancing/cooldowns",
            |d| d.by("DELETE", format!("{}/load-balancing/cooldowns", d.model())),
        ),
        Case {
            code: "",
            ..down("GET", "/readyz", |d| d.anon("GET", "/readyz"))
        }
        .then(|r| {
            if r.body["status"] == "unavailable" {
                Ok(())
            } else {
                Err("status is not \"unavailable\"".to_owned())
            }
        }),
    ]);
    cases
}

// --- the tests --------------------------------------------------------------------------------

#[test]
fn the_table_covers_every_documented_status() {
    let doc = documented();
    let mut table: BTreeMap<Key, BTreeSet<&str>> = BTreeMap::new();
    let live = live_cases();
    let outage = outage_cases();
    let capacity = proxied::capacity_cases();
    let keys = live
        .iter()
        .map(|c| (c.key(), c.code))
        .chain(outage.iter().map(|c| (c.key(), c.code)))
        .chain(capacity.iter().map(|c| (c.key(), c.code)));
    for (key, code) in keys {
        table.entry(key).or_default().insert(code);
    }
    let allowed: BTreeSet<Key> = UNREACHABLE
        .iter()
        .map(|(m, p, s, _)| ((*m).to_owned(), (*p).to_owned(), *s))
        .collect();

    let mut problems = Vec::new();
    for (key, description) in &doc {
        let (method, path, status) = key;
        if allowed.contains(key) {
            if table.contains_key(key) {
                problems.push(format!(
                    "{method} {path} {status} is in UNREACHABLE but has a scenario: drop it from UNREACHABLE"
                ));
            }
            continue;
        }
        let Some(codes) = table.get(key) else {
            problems.push(format!(
                "{method} {path} {status} ({description:?}) is documented but has no scenario"
            ));
            continue;
        };
        if *status >= 400 {
            for named in named_codes(description) {
                if !codes.contains(named) {
                    problems.push(format!(
                        "{method} {path} {status}: the document names `{named}` but no scenario asserts it"
                    ));
                }
            }
        }
    }
    for key in table.keys().chain(allowed.iter()) {
        if !doc.contains_key(key) {
            let (method, path, status) = key;
            problems.push(format!(
                "{method} {path} {status} has a scenario (or an UNREACHABLE entry) but is not documented"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) between openapi/openapi.json and the scenarios:\n{}",
        problems.len(),
        problems.join("\n")
    );
    // The count the report quotes.
    assert_eq!(
        doc.len(),
        table.len() + allowed.len(),
        "documented triples vs scenarios"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_status_is_reachable() {
    let fx = Fx::new().await;
    let cases = live_cases();
    // Independent scenarios, a few at a time: the upstream timeouts (2 s each) overlap.
    let answers: Vec<Option<String>> = futures_util::stream::iter(cases.iter())
        .map(|case| run(&fx, case))
        .buffered(8)
        .collect()
        .await;
    let failures: Vec<String> = answers.into_iter().flatten().collect();
    assert!(
        failures.is_empty(),
        "{} of {} scenarios did not get their documented answer:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn every_at_capacity_status_is_reachable() {
    // Limits count per UTC minute: the pools are filled and every case sent in one.
    let cap = proxied::Cap::new().await;
    let cases = proxied::capacity_cases();
    let mut failures = Vec::new();
    for case in &cases {
        failures.extend(run(&cap, case).await);
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios did not get their documented answer:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_database_outage_statuses_are_reachable() {
    let pg = PgProcess::start();
    let app = spawn_app_on(&pg.url(), &[]).await;
    let user = app.user("owner").await;
    let ws = user.workspace;
    let credential = app
        .compatible_credential(&user, ws, "c", "sk_c", "http://127.0.0.1:9/v1")
        .await;
    let model = app
        .model(&user, ws, "openai_compatible", "gpt", credential)
        .await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (key_id, key) = app.api_key(&user, ws, "k").await;
    let token = app
        .post("/api/v1/me/tokens", &user.token, json!({"name": "t"}))
        .await;
    token.assert(201);
    let token_id = token.body["id"].as_str().unwrap().parse().unwrap();
    let mock = MockUpstream::start().await.unwrap();
    let response = stored::before_outage(&app, &user, &key, &mock.url("/v1")).await;
    let down_fx = Down {
        response,
        app,
        user,
        credential,
        model,
        key_id,
        token_id,
        key,
    };
    // Before the outage the server is ready.
    let ready = down_fx.anon("GET", "/readyz").send().await;
    ready.assert(200);

    pg.stop();
    let cases = outage_cases();
    let answers = futures_util::future::join_all(cases.iter().map(|c| run(&down_fx, c))).await;
    let failures: Vec<String> = answers.into_iter().flatten().collect();
    assert!(
        failures.is_empty(),
        "{} of {} scenarios did not get their documented answer with the database down:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
