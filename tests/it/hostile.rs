//! Hostile input: malformed, oversized or mistyped bodies, odd path ids, unknown routes, forged
//! or stale tokens and bad list parameters all get the documented 4xx (never a 5xx:
//! `Resp::no_server_error` checks that) and change nothing. Also the order in which errors
//! are checked.

use crate::helpers::*;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

const MIB: usize = 1024 * 1024;

/// Sends `body` as is, with the given `Authorization` header value and content type.
async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    auth: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<Vec<u8>>,
) -> Resp {
    let mut req = app.req(method, path).bytes(content_type, body);
    if let Some(a) = auth {
        req = req.authorization(a);
    }
    req.send().await.no_server_error()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The cases of a table-driven test that were not answered as documented, reported all at
/// once so one failure shows every affected case.
#[derive(Default)]
struct Mismatches(Vec<String>);

impl Mismatches {
    /// Expects `status` with error `code`.
    fn check(&mut self, what: &str, r: &Resp, status: u16, code: &str) {
        if (r.status.as_u16(), r.code()) != (status, code) {
            self.0.push(format!(
                "{what}: expected {status} {code}, got {} {}",
                r.status.as_u16(),
                r.body
            ));
        }
    }

    /// Expects 422 `validation_failed` naming `field` in `details.fields`.
    fn check_field(&mut self, what: &str, r: &Resp, field: &str) {
        self.check(what, r, 422, "validation_failed");
        if r.status.as_u16() == 422 && !r.body["error"]["details"]["fields"][field].is_string() {
            self.0.push(format!(
                "{what}: the error should name `{field}`: {}",
                r.body
            ));
        }
    }

    #[track_caller]
    fn assert_none(self) {
        assert!(
            self.0.is_empty(),
            "{} case(s) not answered as documented:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

/// A signed-up owner A (whose workspace WA also has a normal member N) and a stranger B.
struct Setup {
    app: TestApp,
    a: TestUser,
    n: TestUser,
    b: TestUser,
}

async fn setup() -> Setup {
    let app = spawn_app().await;
    let a = app.user("alice").await;
    let n = app.user("norma").await;
    let b = app.user("bob").await;
    app.add_member(&a, a.workspace, &n, "normal").await;
    Setup { app, a, n, b }
}

impl Setup {
    fn ws(&self, rest: &str) -> String {
        format!("/api/v1/workspaces/{}{rest}", self.a.workspace)
    }

    /// Routes that take a JSON body, callable by A, with a valid body for each.
    fn json_routes(&self) -> Vec<(Method, String, Value)> {
        vec![
            (Method::POST, self.ws("/api-keys"), json!({"name": "k"})),
            (
                Method::POST,
                "/api/v1/workspaces".into(),
                json!({"name": "w"}),
            ),
            (Method::PATCH, self.ws(""), json!({"name": "renamed"})),
            (
                Method::POST,
                self.ws("/members"),
                json!({"email": self.b.email, "role": "normal"}),
            ),
            (
                Method::PATCH,
                self.ws(&format!("/members/{}", self.n.id)),
                json!({"role": "editor"}),
            ),
            (
                Method::POST,
                "/api/v1/me/tokens".into(),
                json!({"name": "t"}),
            ),
            (
                Method::POST,
                self.ws("/credentials"),
                json!({"provider": "openai_compatible", "name": "c",
                       "config": {"api_key": "sk-0123456789abcdef", "base_url": "http://127.0.0.1:9/v1"}}),
            ),
            (
                Method::POST,
                self.ws("/models"),
                json!({"provider": "openai_compatible", "name": "m", "model_type": "llm",
                       "credential_id": Uuid::new_v4()}),
            ),
        ]
    }
}

#[tokio::test]
async fn malformed_json_is_400_invalid_json_and_creates_nothing() {
    let s = setup().await;
    let token = bearer(&s.a.token);
    let counts = s.app.row_counts().await;
    let bodies: [(&str, &[u8]); 11] = [
        ("truncated", br#"{"name": "#),
        ("empty", b""),
        ("whitespace only", b"   \n"),
        ("trailing garbage", br#"{"name": "x"} garbage"#),
        ("two documents", br#"{"name": "x"}{"name": "y"}"#),
        ("form encoded", b"name=x"),
        ("single quotes", b"{'name': 'x'}"),
        ("trailing comma", br#"{"name": "x",}"#),
        ("bare word", b"nul"),
        ("invalid UTF-8", b"{\"name\": \"\xff\xfe\"}"),
        ("unterminated string", br#"{"name": "sk-do-not-echo-me"#),
    ];
    let mut bad = Mismatches::default();
    for (method, path, _) in s.json_routes() {
        for (what, body) in bodies {
            let r = raw(
                &s.app,
                method.clone(),
                &path,
                Some(&token),
                Some(JSON),
                body.to_vec(),
            )
            .await;
            bad.check(
                &format!("{what} to {method} {path}"),
                &r,
                400,
                "invalid_json",
            );
            assert!(!r.body.to_string().contains("sk-do-not-echo-me"));
        }
    }
    // Signup and login too, without a token.
    for path in ["/api/v1/auth/signup", "/api/v1/auth/login"] {
        for (what, body) in bodies {
            let r = raw(&s.app, Method::POST, path, None, Some(JSON), body.to_vec()).await;
            bad.check(&format!("{what} to {path}"), &r, 400, "invalid_json");
        }
    }
    bad.assert_none();
    assert_eq!(s.app.row_counts().await, counts);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415_unsupported_media_type() {
    let s = setup().await;
    let token = bearer(&s.a.token);
    let counts = s.app.row_counts().await;
    for (method, path, body) in s.json_routes() {
        let bytes = serde_json::to_vec(&body).unwrap();
        for ct in [
            Some("text/plain"),
            None,
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/jsonx"),
            Some("text/json"),
        ] {
            let r = raw(
                &s.app,
                method.clone(),
                &path,
                Some(&token),
                ct,
                bytes.clone(),
            )
            .await;
            r.assert_code(
                415,
                "unsupported_media_type",
                format_args!("{ct:?} to {method} {path}"),
            );
        }
    }
    assert_eq!(s.app.row_counts().await, counts);

    // The same body as JSON (with a charset parameter) works.
    let r = raw(
        &s.app,
        Method::POST,
        &s.ws("/api-keys"),
        Some(&token),
        Some("application/json; charset=utf-8"),
        br#"{"name": "fine"}"#.to_vec(),
    )
    .await;
    r.assert(201);
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_413_payload_too_large() {
    let s = setup().await;
    let path = s.ws("/api-keys");
    let send = |size: usize, chunked: bool| {
        s.app
            .req(Method::POST, &path)
            .bearer(&s.a.token)
            .bytes(Some(JSON), padded_json(size))
            .over_tcp(chunked)
            .send()
    };
    let counts = s.app.row_counts().await;

    for (what, size, chunked) in [
        ("declared one byte over", MIB + 1, false),
        ("declared far over", 3 * MIB, false),
        ("streamed one byte over", MIB + 1, true),
        ("streamed far over", 3 * MIB, true),
    ] {
        let r = send(size, chunked).await;
        r.assert_code(413, "payload_too_large", what);
    }
    assert_eq!(s.app.row_counts().await, counts);

    // Exactly 1 MiB is read and judged on its content: the name is far too long.
    for chunked in [false, true] {
        let r = send(MIB, chunked).await;
        assert_eq!(r.status, 422, "{}", r.text);
        assert!(
            r.body["error"]["details"]["fields"]["name"].is_string(),
            "{}",
            r.text
        );
    }
    assert_eq!(s.app.row_counts().await, counts);

    // The server is still fine afterwards.
    s.app
        .post(&path, &s.a.token, json!({"name": "after"}))
        .await
        .assert(201);
}

#[tokio::test]
async fn long_strings_within_the_size_limit_are_422_naming_the_field() {
    let s = setup().await;
    let counts = s.app.row_counts().await;
    let huge = "x".repeat(900 * 1024);
    let cases = [
        (
            Method::POST,
            s.ws("/api-keys"),
            json!({"name": huge}),
            "name",
        ),
        (
            Method::POST,
            s.ws("/api-keys"),
            json!({"name": "k", "allowed_models": [huge]}),
            "allowed_models[0]",
        ),
        (
            Method::POST,
            "/api/v1/workspaces".into(),
            json!({"name": huge}),
            "name",
        ),
        (Method::PATCH, s.ws(""), json!({"name": huge}), "name"),
        (
            Method::POST,
            s.ws("/members"),
            json!({"email": format!("{huge}@example.com"), "role": "normal"}),
            "email",
        ),
        (
            Method::POST,
            "/api/v1/me/tokens".into(),
            json!({"name": huge}),
            "name",
        ),
    ];
    for (method, path, body, field) in cases {
        let r = s
            .app
            .call(method.clone(), &path, Some(&s.a.token), Some(body))
            .await;
        r.assert_field(
            "validation_failed",
            field,
            format!("900 KB {field} to {method} {path}"),
        );
        assert!(
            r.body.to_string().len() < 4096,
            "the error echoes the input: {} bytes",
            r.body.to_string().len()
        );
    }
    // A huge password at signup is refused without hashing 900 KB for long either way.
    let r = s.app.signup_raw("huge@example.com", &huge, "Huge").await;
    assert!(r.status.is_client_error(), "{}", r.status);
    assert_eq!(s.app.row_counts().await, counts);
}

#[tokio::test]
async fn wrong_types_missing_and_unknown_fields_are_422_naming_the_field() {
    let s = setup().await;
    let counts = s.app.row_counts().await;
    let members = s.ws("/members");
    let keys = s.ws("/api-keys");
    let ws = s.ws("");
    let member = s.ws(&format!("/members/{}", s.n.id));
    let email = s.b.email.clone();
    let cases: Vec<(Method, &str, Value, &str)> = vec![
        // Wrong types.
        (
            Method::POST,
            &members,
            json!({"email": 5, "role": "normal"}),
            "email",
        ),
        (
            Method::POST,
            &members,
            json!({"email": null, "role": "normal"}),
            "email",
        ),
        (
            Method::POST,
            &members,
            json!({"email": [email], "role": "normal"}),
            "email",
        ),
        (
            Method::POST,
            &members,
            json!({"email": email, "role": 5}),
            "role",
        ),
        (
            Method::POST,
            &members,
            json!({"email": email, "role": ["admin"]}),
            "role",
        ),
        (
            Method::POST,
            &members,
            json!({"email": email, "role": {"name": "admin"}}),
            "role",
        ),
        (Method::POST, &members, json!("a@example.com"), "body"),
        (Method::POST, &members, json!(42), "body"),
        (Method::POST, &members, json!(null), "body"),
        (Method::POST, &keys, json!({"name": 5}), "name"),
        (Method::POST, &keys, json!({"name": true}), "name"),
        (Method::POST, &keys, json!({"name": {"a": 1}}), "name"),
        (
            Method::POST,
            &keys,
            json!({"name": "k", "allowed_models": "gpt-4o"}),
            "allowed_models",
        ),
        (
            Method::POST,
            &keys,
            json!({"name": "k", "allowed_models": [1]}),
            "allowed_models[0]",
        ),
        (
            Method::POST,
            &keys,
            json!({"name": "k", "expires_at": 5}),
            "expires_at",
        ),
        (
            Method::POST,
            &keys,
            json!({"name": "k", "expires_at": "tomorrow"}),
            "expires_at",
        ),
        (Method::PATCH, &ws, json!({"name": 5}), "name"),
        (Method::PATCH, &member, json!({"role": 1}), "role"),
        (Method::PATCH, &member, json!({"role": null}), "role"),
        (
            Method::POST,
            "/api/v1/workspaces",
            json!({"name": ["w"]}),
            "name",
        ),
        // Unknown enum values.
        (
            Method::POST,
            &members,
            json!({"email": email, "role": "superuser"}),
            "role",
        ),
        (
            Method::POST,
            &members,
            json!({"email": email, "role": ""}),
            "role",
        ),
        (Method::PATCH, &member, json!({"role": "root"}), "role"),
        // Missing fields.
        (Method::POST, &members, json!({"role": "normal"}), "email"),
        (Method::POST, &members, json!({"email": email}), "role"),
        (Method::POST, &keys, json!({}), "name"),
        (
            Method::POST,
            &keys,
            json!({"allowed_models": ["gpt-4o"]}),
            "name",
        ),
        (Method::PATCH, &member, json!({}), "role"),
        (Method::POST, "/api/v1/workspaces", json!({}), "name"),
        // Unknown fields: nobody sets what the API does not offer.
        (
            Method::POST,
            &keys,
            json!({"name": "k", "admin": true}),
            "admin",
        ),
        (
            Method::POST,
            &members,
            json!({"email": email, "role": "normal", "is_admin": true}),
            "is_admin",
        ),
        (Method::PATCH, &ws, json!({"plan": "enterprise"}), "plan"),
        (
            Method::PATCH,
            &ws,
            json!({"name": "x", "id": Uuid::new_v4()}),
            "id",
        ),
        (
            Method::POST,
            "/api/v1/workspaces",
            json!({"name": "w", "plan": "enterprise"}),
            "plan",
        ),
        (
            Method::PATCH,
            &member,
            json!({"role": "normal", "user_id": s.a.id}),
            "user_id",
        ),
    ];
    let mut bad = Mismatches::default();
    for (method, path, body, field) in cases {
        let r = s
            .app
            .call(method.clone(), path, Some(&s.a.token), Some(body.clone()))
            .await;
        bad.check_field(&format!("{method} {path} {body}"), &r, field);
    }
    // Every missing field of an empty object is named, or at least the first one.
    let r = s.app.post(&members, &s.a.token, json!({})).await;
    r.assert_error(422, "validation_failed");
    let fields = &r.body["error"]["details"]["fields"];
    assert!(
        fields["email"].is_string() || fields["role"].is_string(),
        "{}",
        r.body
    );

    // Signup cannot make anyone an instance admin.
    for (what, body, field) in [
        (
            "signup with is_admin",
            json!({"email": "sneaky@example.com", "password": PASSWORD, "name": "S", "is_admin": true}),
            "is_admin",
        ),
        (
            "signup with a number for email",
            json!({"email": 5, "password": PASSWORD, "name": "S"}),
            "email",
        ),
    ] {
        let r = s
            .app
            .call(Method::POST, "/api/v1/auth/signup", None, Some(body))
            .await;
        bad.check_field(what, &r, field);
    }

    // Error messages name the field, never the value sent.
    let r = s
        .app
        .post(
            &members,
            &s.a.token,
            json!({"email": email, "role": "sk-do-not-echo"}),
        )
        .await;
    bad.check_field("secret-looking role", &r, "role");
    assert!(!r.body.to_string().contains("sk-do-not-echo"), "{}", r.body);

    bad.assert_none();
    assert_eq!(s.app.row_counts().await, counts);
    let roles = s.app.get(&members, &s.a.token).await;
    assert!(roles.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["user_id"] == s.n.id.to_string() && m["role"] == "normal"));
}

#[tokio::test]
async fn a_json_array_is_not_an_object_even_with_the_fields_in_order() {
    // A body is an object: `[email, role]` must not be read as `{email, role}`.
    let s = setup().await;
    let before = s.app.get(&s.ws(""), &s.a.token).await.body;
    let members_before = s.app.get(&s.ws("/members"), &s.a.token).await.body;
    let counts = s.app.row_counts().await;
    let members = s.ws("/members");
    let member = s.ws(&format!("/members/{}", s.n.id));
    let cases: Vec<(Method, String, Value)> = vec![
        (Method::POST, members.clone(), json!([])),
        (Method::POST, members.clone(), json!([s.b.email, "normal"])),
        (
            Method::POST,
            members,
            json!(["nobody@example.com", "normal"]),
        ),
        (Method::PATCH, member.clone(), json!(["admin"])),
        (Method::PATCH, member, json!([])),
        (Method::PATCH, s.ws(""), json!(["renamed by array"])),
        (
            Method::POST,
            s.ws("/api-keys"),
            json!(["positional", null, null]),
        ),
        (Method::POST, s.ws("/api-keys"), json!([])),
        (
            Method::POST,
            "/api/v1/workspaces".into(),
            json!(["by array"]),
        ),
        (
            Method::POST,
            "/api/v1/me/tokens".into(),
            json!(["by array", null]),
        ),
    ];
    let mut bad = Mismatches::default();
    for (method, path, body) in cases {
        let r = s
            .app
            .call(method.clone(), &path, Some(&s.a.token), Some(body.clone()))
            .await;
        bad.check_field(&format!("{method} {path} {body}"), &r, "body");
    }
    bad.assert_none();
    assert_eq!(s.app.get(&s.ws(""), &s.a.token).await.body, before);
    assert_eq!(
        s.app.get(&s.ws("/members"), &s.a.token).await.body,
        members_before
    );
    assert_eq!(s.app.row_counts().await, counts);
}

#[tokio::test]
async fn an_unknown_plan_is_422() {
    let app = spawn_app_with(&[("ROTOR_DEPLOYMENT", "saas")]).await;
    let admin = app.user("root").await;
    let path = format!("/api/v1/admin/workspaces/{}/plan", admin.workspace);
    let mut bad = Mismatches::default();
    for (body, field) in [
        (json!({"plan": "gold"}), "plan"),
        (json!({"plan": "Enterprise"}), "plan"),
        (json!({"plan": 3}), "plan"),
        (json!({}), "plan"),
        (json!({"plan": "team", "seats": 5}), "seats"),
    ] {
        let r = app.put(&path, &admin.token, body.clone()).await;
        bad.check_field(&body.to_string(), &r, field);
    }
    bad.assert_none();
    let ws = app.workspace(&admin).await;
    assert_eq!(ws.body["plan"], "sandbox");
    let changes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'workspace.plan_changed'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(changes, 0);
}

#[tokio::test]
async fn path_ids_that_are_not_uuids_are_404() {
    let s = setup().await;
    let (key, _) = s.app.api_key(&s.a, s.a.workspace, "keep").await;
    let counts = s.app.row_counts().await;
    let wa = s.a.workspace;
    let long = "a".repeat(2000);
    let mut cases: Vec<(Method, String, Option<Value>)> = Vec::new();
    for bad in [
        "abc",
        "1",
        "..%2F",
        "%2E%2E%2Fx",
        &format!("{wa}x"),
        &format!("{wa}0"),
        &format!("{wa}%00"),
        &format!("{wa}%20"),
        &format!("x{wa}"),
        "00000000-0000-0000-0000-00000000000g",
        "%00",
        &long,
    ] {
        let w = format!("/api/v1/workspaces/{bad}");
        // Target ids inside A's own workspace, too.
        let own = format!("/api/v1/workspaces/{wa}");
        let member = json!({"email": s.b.email, "role": "normal"});
        cases.extend([
            (Method::GET, w.clone(), None),
            (Method::PATCH, w.clone(), Some(json!({"name": "x"}))),
            (Method::GET, format!("{w}/members"), None),
            (Method::POST, format!("{w}/members"), Some(member)),
            (Method::GET, format!("{w}/api-keys"), None),
            (
                Method::POST,
                format!("{w}/api-keys"),
                Some(json!({"name": "x"})),
            ),
            (Method::DELETE, format!("{w}/api-keys/{key}"), None),
            (Method::GET, format!("{w}/audit-events"), None),
            (Method::DELETE, format!("{own}/api-keys/{bad}"), None),
            (
                Method::PATCH,
                format!("{own}/members/{bad}"),
                Some(json!({"role": "editor"})),
            ),
            (Method::DELETE, format!("{own}/members/{bad}"), None),
            (Method::DELETE, format!("/api/v1/me/tokens/{bad}"), None),
        ]);
    }
    for extra in [format!("{key}x"), format!("{key}/x")] {
        cases.push((
            Method::DELETE,
            format!("/api/v1/workspaces/{wa}/api-keys/{extra}"),
            None,
        ));
    }
    // Dot segments: the client resolves them, whatever route they land on is not a resource.
    cases.push((Method::GET, "/api/v1/workspaces/../".into(), None));
    cases.push((
        Method::DELETE,
        format!("/api/v1/workspaces/{wa}/api-keys/../../../"),
        None,
    ));
    for (method, path, body) in cases {
        let r = s
            .app
            .call(method.clone(), &path, Some(&s.a.token), body)
            .await;
        r.assert_code(
            404,
            "not_found",
            format_args!("{method} {}", &path[..path.len().min(120)]),
        );
    }
    assert_eq!(s.app.row_counts().await, counts);
    let keys = s.app.get(&s.ws("/api-keys"), &s.a.token).await;
    assert_eq!(keys.body["data"][0]["id"], key.to_string());
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_in_json() {
    let s = setup().await;
    let counts = s.app.row_counts().await;
    for path in [
        "/api/v1/nope".to_owned(),
        "/v2/x".to_owned(),
        "/api/v2/workspaces".to_owned(),
        "/api/v1/workspaces/x/y/z".to_owned(),
        s.ws("/nope"),
        s.ws("/api-keys/x/y"),
        "/api/v1/".to_owned(),
        "/api".to_owned(),
    ] {
        for token in [Some(s.a.token.as_str()), None] {
            for method in [Method::GET, Method::POST] {
                let r = s
                    .app
                    .call(method.clone(), &path, token, Some(json!({})))
                    .await;
                r.assert_code(404, "not_found", format_args!("{method} {path}"));
                assert!(r.headers[CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .starts_with("application/json"));
            }
        }
    }
    for (method, path) in [
        (Method::DELETE, "/api/v1/workspaces".to_owned()),
        (Method::PUT, s.ws("")),
        (Method::DELETE, s.ws("")),
        (Method::POST, s.ws("/audit-events")),
        (Method::PUT, s.ws("/api-keys")),
        (Method::GET, "/api/v1/auth/login".to_owned()),
        (Method::PATCH, "/api/v1/me".to_owned()),
        (Method::GET, s.ws(&format!("/members/{}", s.n.id))),
    ] {
        let r = s
            .app
            .call(method.clone(), &path, Some(&s.a.token), Some(json!({})))
            .await;
        assert_eq!(r.status.as_u16(), 405, "{method} {path}: {}", r.body);
        assert!(
            r.code() == "method_not_allowed",
            "{method} {path}: {}",
            r.body
        );
        assert!(r.body["error"]["message"].is_string());
        assert!(r.headers[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
    }
    // The workspace is still there: PUT/DELETE did nothing, and no POST created anything.
    s.app.get(&s.ws(""), &s.a.token).await.assert(200);
    assert_eq!(s.app.row_counts().await, counts);
}

fn sign(claims: &Value, alg: Algorithm, secret: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn claims(sub: &str, iat: i64, exp: i64, ver: i32) -> Value {
    json!({"sub": sub, "iat": iat, "exp": exp, "ver": ver})
}

#[tokio::test]
async fn missing_malformed_forged_and_stale_tokens_are_401() {
    let s = setup().await;
    let now = chrono::Utc::now().timestamp();
    let sub = s.a.id.to_string();
    let secret = JWT_SECRET.as_bytes();
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());

    // A token forged the right way works: the refusals below are for the reason they name.
    let good = sign(&claims(&sub, now, now + 600, 0), Algorithm::HS256, secret);
    s.app.get("/api/v1/me", &good).await.assert(200);

    let valid = claims(&sub, now, now + 600, 0);
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&valid)
    );
    let alg_none_no_dot = format!(
        "{}.{}",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&valid)
    );
    // The real header and payload of a good token with the signature stripped or altered.
    let parts: Vec<&str> = good.split('.').collect();
    let stripped = format!("{}.{}.", parts[0], parts[1]);
    let mut tampered_payload = claims(&sub, now, now + 600, 0);
    tampered_payload["sub"] = json!(s.b.id.to_string());
    let tampered = format!("{}.{}.{}", parts[0], b64(&tampered_payload), parts[2]);

    // A user who no longer exists: their real session token.
    let gone = s.app.user("gone").await;
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(gone.id)
        .execute(&s.app.db)
        .await
        .unwrap();
    let (_, api_key) = s.app.api_key(&s.a, s.a.workspace, "gateway").await;

    let cases: Vec<(&str, Option<String>)> = vec![
        ("no Authorization", None),
        ("Bearer with an empty token", Some("Bearer ".into())),
        ("Bearer alone", Some("Bearer".into())),
        ("Basic", Some("Basic YWxpY2U6cGFzc3dvcmQ=".into())),
        ("Basic with the token", Some(format!("Basic {good}"))),
        ("token without scheme", Some(good.clone())),
        ("garbage", Some(bearer("garbage"))),
        ("three garbage parts", Some(bearer("a.b.c"))),
        (
            "expired",
            Some(bearer(&sign(
                &claims(&sub, now - 7200, now - 3600, 0),
                Algorithm::HS256,
                secret,
            ))),
        ),
        ("alg none", Some(bearer(&alg_none))),
        (
            "alg none without signature part",
            Some(bearer(&alg_none_no_dot)),
        ),
        ("signature stripped", Some(bearer(&stripped))),
        ("payload swapped", Some(bearer(&tampered))),
        (
            "another secret",
            Some(bearer(&sign(
                &valid,
                Algorithm::HS256,
                b"another-secret-that-is-also-32-bytes-long!!",
            ))),
        ),
        (
            "HS512 with the right secret",
            Some(bearer(&sign(&valid, Algorithm::HS512, secret))),
        ),
        (
            "HS384 with the right secret",
            Some(bearer(&sign(&valid, Algorithm::HS384, secret))),
        ),
        (
            "unknown user",
            Some(bearer(&sign(
                &claims(&Uuid::new_v4().to_string(), now, now + 600, 0),
                Algorithm::HS256,
                secret,
            ))),
        ),
        ("deleted user", Some(bearer(&gone.token))),
        (
            "stale token version",
            Some(bearer(&sign(
                &claims(&sub, now, now + 600, 1),
                Algorithm::HS256,
                secret,
            ))),
        ),
        (
            "sub not a uuid",
            Some(bearer(&sign(
                &claims("alice", now, now + 600, 0),
                Algorithm::HS256,
                secret,
            ))),
        ),
        (
            "no exp",
            Some(bearer(&sign(
                &json!({"sub": sub, "iat": now, "ver": 0}),
                Algorithm::HS256,
                secret,
            ))),
        ),
        (
            "unknown personal token",
            Some(bearer(&format!("rp-{}", "A".repeat(43)))),
        ),
        ("bare rp- prefix", Some(bearer("rp-"))),
        ("a gateway API key", Some(bearer(&api_key))),
    ];
    let counts = s.app.row_counts().await;
    for (what, auth) in &cases {
        for (method, path, body) in [
            (Method::GET, "/api/v1/me".to_owned(), None),
            (Method::GET, s.ws(""), None),
            (Method::GET, s.ws("/api-keys"), None),
            (
                Method::POST,
                "/api/v1/workspaces".to_owned(),
                Some(br#"{"name": "x"}"#.to_vec()),
            ),
            (
                Method::POST,
                s.ws("/api-keys"),
                Some(br#"{"name": "x"}"#.to_vec()),
            ),
            (
                Method::POST,
                "/api/v1/me/tokens".to_owned(),
                Some(br#"{"name": "x"}"#.to_vec()),
            ),
        ] {
            let r = raw(
                &s.app,
                method.clone(),
                &path,
                auth.as_deref(),
                body.is_some().then_some(JSON),
                body.unwrap_or_default(),
            )
            .await;
            r.assert_code(401, "unauthorized", format_args!("{what}: {method} {path}"));
        }
    }
    assert_eq!(
        s.app.row_counts().await,
        counts,
        "an unauthenticated request wrote"
    );
}

#[tokio::test]
async fn bad_list_parameters_are_422_and_the_maximum_is_fine() {
    let s = setup().await;
    let lists = [
        "/api/v1/workspaces".to_owned(),
        s.ws("/members"),
        s.ws("/api-keys"),
        s.ws("/audit-events"),
        "/api/v1/me/tokens".to_owned(),
        "/api/v1/admin/workspaces".to_owned(), // alice signed up first: instance admin
    ];
    let garbage_cursor =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("not-a-time:not-a-uuid");
    for path in &lists {
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=201", "limit"),
            ("limit=abc", "limit"),
            ("limit=-1", "limit"),
            ("limit=1.5", "limit"),
            ("limit=99999999999999999999", "limit"),
            ("cursor=garbage", "cursor"),
            ("cursor=%25%25%25", "cursor"),
            (&format!("cursor={garbage_cursor}"), "cursor"),
        ] {
            let r = s.app.get(&format!("{path}?{query}"), &s.a.token).await;
            r.assert_field("validation_failed", field, format!("{path}?{query}"));
        }
        for query in ["limit=200", "limit=1", "limit=50&unknown=1"] {
            let r = s.app.get(&format!("{path}?{query}"), &s.a.token).await;
            r.assert(200);
            assert!(r.body["data"].is_array(), "{path}?{query}: {}", r.body);
            assert!(r.body.get("next_cursor").is_some());
        }
    }
}

#[tokio::test]
async fn api_keys_page_in_creation_order_without_duplicates() {
    let s = setup().await;
    let mut created = Vec::new();
    for i in 0..5 {
        let (id, _) = s
            .app
            .api_key(&s.a, s.a.workspace, &format!("key-{i}"))
            .await;
        created.push(id.to_string());
    }
    let path = s.ws("/api-keys");
    let mut seen: Vec<String> = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            None => format!("{path}?limit=2"),
            Some(c) => format!("{path}?limit=2&cursor={c}"),
        };
        let page = s.app.get(&url, &s.a.token).await;
        page.assert(200);
        let data = page.body["data"].as_array().unwrap();
        sizes.push(data.len());
        seen.extend(data.iter().map(|k| k["id"].as_str().unwrap().to_owned()));
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => {
                assert!(page.body["next_cursor"].is_null());
                break;
            }
        }
        assert!(sizes.len() < 10, "pagination does not end");
    }
    assert_eq!(sizes, vec![2, 2, 1]);
    assert_eq!(seen, created, "pages are in creation order, each key once");

    // The whole list in one page is the same, with no cursor.
    let all = s.app.get(&path, &s.a.token).await;
    let ids: Vec<&str> = all.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, created);
    assert!(all.body["next_cursor"].is_null());
    // A page of exactly the remaining size ends the list.
    let exact = s.app.get(&format!("{path}?limit=5"), &s.a.token).await;
    assert_eq!(exact.body["data"].as_array().unwrap().len(), 5);
    assert!(exact.body["next_cursor"].is_null());

    // The audit log pages newest first the same way.
    let audit_path = s.ws("/audit-events");
    let full = s.app.get(&audit_path, &s.a.token).await;
    let full: Vec<Value> = full.body["data"].as_array().unwrap().clone();
    assert!(full.len() >= 7);
    let mut paged = Vec::new();
    let mut url = format!("{audit_path}?limit=2");
    loop {
        let page = s.app.get(&url, &s.a.token).await;
        page.assert(200);
        paged.extend(page.body["data"].as_array().unwrap().iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(c) => url = format!("{audit_path}?limit=2&cursor={c}"),
            None => break,
        }
        assert!(paged.len() <= full.len(), "pagination does not end");
    }
    assert_eq!(paged, full);
    let newest: Vec<&str> = full[..5]
        .iter()
        .map(|e| e["target_id"].as_str().unwrap())
        .collect();
    let mut expected: Vec<&str> = created.iter().map(String::as_str).collect();
    expected.reverse();
    assert_eq!(newest, expected, "audit events are newest first");
}

/// Who calls, and the `Authorization` header they send.
type Caller = (&'static str, Option<String>);

/// One request of the precedence table.
struct Req {
    what: &'static str,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: &'static [u8],
}

fn req(
    what: &'static str,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: &'static [u8],
) -> Req {
    Req {
        what,
        method,
        path,
        content_type,
        body,
    }
}

#[tokio::test]
async fn errors_come_in_the_documented_order() {
    // The precedence: 401 → 404 (not a member) → 403 (role) → 413/415/400 (body) → 404 (target
    // id) → … → 422.
    let s = setup().await;
    let counts = s.app.row_counts().await;
    // Broken at its first token, whatever the route's fields.
    const MALFORMED: &[u8] = b"{oops";
    const UNKNOWN_FIELD: &[u8] = br#"{"name": "k", "admin": true}"#;
    const ROLE: &[u8] = br#"{"role": "editor"}"#;
    let ghost = Uuid::new_v4();
    let keys = s.ws("/api-keys");
    let member_ghost = s.ws(&format!("/members/{ghost}"));

    let keys_malformed = req(
        "malformed key",
        Method::POST,
        keys.clone(),
        Some(JSON),
        MALFORMED,
    );
    let keys_plain = req(
        "text/plain key",
        Method::POST,
        keys.clone(),
        Some("text/plain"),
        MALFORMED,
    );
    let keys_no_type = req(
        "key without content type",
        Method::POST,
        keys.clone(),
        None,
        MALFORMED,
    );
    let keys_unknown = req(
        "key with an unknown field",
        Method::POST,
        keys.clone(),
        Some(JSON),
        UNKNOWN_FIELD,
    );
    let rename_malformed = req(
        "malformed rename",
        Method::PATCH,
        s.ws(""),
        Some(JSON),
        MALFORMED,
    );
    let key_ghost = req(
        "revoke a missing key",
        Method::DELETE,
        s.ws(&format!("/api-keys/{ghost}")),
        None,
        b"",
    );
    let ws_ghost = req(
        "missing workspace",
        Method::GET,
        format!("/api/v1/workspaces/{ghost}"),
        None,
        b"",
    );
    let member_malformed = req(
        "malformed patch of a missing member",
        Method::PATCH,
        member_ghost.clone(),
        Some(JSON),
        MALFORMED,
    );
    let member_plain = req(
        "text/plain patch of a missing member",
        Method::PATCH,
        member_ghost.clone(),
        Some("text/plain"),
        ROLE,
    );
    let member_valid = req(
        "valid patch of a missing member",
        Method::PATCH,
        member_ghost.clone(),
        Some(JSON),
        ROLE,
    );
    let member_delete = req(
        "removal of a missing member",
        Method::DELETE,
        member_ghost.clone(),
        None,
        b"",
    );

    let nobody = ("no token", None);
    let forged = ("a bad token", Some("Bearer nope".to_owned()));
    let stranger = ("a stranger", Some(bearer(&s.b.token)));
    let normal = ("a normal member", Some(bearer(&s.n.token)));
    let owner = ("the owner", Some(bearer(&s.a.token)));

    let table: Vec<(&Caller, &Req, u16, &str)> = vec![
        // 401 first.
        (&nobody, &keys_malformed, 401, "unauthorized"),
        (&nobody, &keys_plain, 401, "unauthorized"),
        (&forged, &keys_malformed, 401, "unauthorized"),
        (&nobody, &key_ghost, 401, "unauthorized"),
        (&nobody, &ws_ghost, 401, "unauthorized"),
        // Then 404 for a non-member.
        (&stranger, &keys_malformed, 404, "not_found"),
        (&stranger, &keys_plain, 404, "not_found"),
        (&stranger, &keys_unknown, 404, "not_found"),
        (&stranger, &member_malformed, 404, "not_found"),
        // Then 403 for the role.
        (&normal, &keys_malformed, 403, "forbidden"),
        (&normal, &keys_plain, 403, "forbidden"),
        (&normal, &keys_no_type, 403, "forbidden"),
        (&normal, &keys_unknown, 403, "forbidden"),
        (&normal, &rename_malformed, 403, "forbidden"),
        (&normal, &key_ghost, 403, "forbidden"),
        (&normal, &member_malformed, 403, "forbidden"),
        // Then the body: 415, 400.
        (&owner, &keys_plain, 415, "unsupported_media_type"),
        (&owner, &keys_no_type, 415, "unsupported_media_type"),
        (&owner, &keys_malformed, 400, "invalid_json"),
        (&owner, &member_malformed, 400, "invalid_json"),
        (&owner, &member_plain, 415, "unsupported_media_type"),
        // Then the target id.
        (&owner, &key_ghost, 404, "not_found"),
        (&owner, &member_valid, 404, "not_found"),
        (&owner, &member_delete, 404, "not_found"),
        // Then 422.
        (&owner, &keys_unknown, 422, "validation_failed"),
    ];
    let mut bad = Mismatches::default();
    for ((who, auth), r, status, code) in table {
        let answer = raw(
            &s.app,
            r.method.clone(),
            &r.path,
            auth.as_deref(),
            r.content_type,
            r.body,
        )
        .await;
        bad.check(&format!("{who}, {}", r.what), &answer, status, code);
    }
    bad.assert_none();
    assert_eq!(s.app.row_counts().await, counts);
}

#[tokio::test]
async fn a_missing_target_is_404_even_when_the_body_fails_validation() {
    // The precedence: … → 413/415/400 (body) → 404 (target id) → 403 → 422. A well-formed body
    // that fails validation must not reveal anything before the target is found.
    let s = setup().await;
    let counts = s.app.row_counts().await;
    let ghost = Uuid::new_v4();
    let mut bad = Mismatches::default();
    for (target, body) in [
        (ghost.to_string(), json!({"role": "superuser"})),
        (ghost.to_string(), json!({"role": "normal", "extra": 1})),
        (ghost.to_string(), json!({})),
        ("not-a-uuid".to_owned(), json!({"role": "x"})),
        (s.b.id.to_string(), json!({"role": "superuser"})),
    ] {
        let path = s.ws(&format!("/members/{target}"));
        let r = s.app.patch(&path, &s.a.token, body.clone()).await;
        bad.check(&format!("PATCH {path} {body}"), &r, 404, "not_found");
    }
    bad.assert_none();
    assert_eq!(s.app.row_counts().await, counts);
}
