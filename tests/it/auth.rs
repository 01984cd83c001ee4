//! Accounts: signup, login, /me, first-user admin, signup modes, password change, personal
//! access tokens and login throttling.

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn signup_login_and_me() {
    let app = spawn_app().await;
    let r = app.signup_raw("Ada@Example.com", PASSWORD, "Ada").await;
    r.assert(201);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 3600);
    assert_eq!(r.body["user"]["email"], "Ada@Example.com");
    assert!(
        r.body["user"].get("password_hash").is_none() && !r.body.to_string().contains("argon2")
    );
    assert_eq!(r.body["workspace"]["role"], "owner");
    assert_eq!(r.body["workspace"]["plan"], "sandbox");

    // Login is case-insensitive on the email.
    let login = app.login("ada@example.com", PASSWORD).await;
    login.assert(200);
    let token = login.body["access_token"].as_str().unwrap();
    let me = app.get("/api/v1/me", token).await;
    me.assert(200);
    assert_eq!(me.body["id"], r.body["user"]["id"]);
    assert_eq!(me.body["name"], "Ada");

    // The personal workspace is listed.
    let list = app.get("/api/v1/workspaces", token).await;
    list.assert(200);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["data"][0]["id"], r.body["workspace"]["id"]);
    assert!(list.body["next_cursor"].is_null());
}

#[tokio::test]
async fn first_user_is_instance_admin_and_later_ones_are_not() {
    let app = spawn_app().await;
    let first = app.user("first").await;
    let second = app.user("second").await;
    assert_eq!(
        app.get("/api/v1/me", &first.token).await.body["is_admin"],
        true
    );
    assert_eq!(
        app.get("/api/v1/me", &second.token).await.body["is_admin"],
        false
    );
    app.get("/api/v1/admin/workspaces", &first.token)
        .await
        .assert(200);
    app.get("/api/v1/admin/workspaces", &second.token)
        .await
        .assert_error(403, "forbidden");
}

#[tokio::test]
async fn duplicate_email_is_a_conflict_whatever_its_case() {
    let app = spawn_app().await;
    app.signup_raw("dup@example.com", PASSWORD, "A")
        .await
        .assert(201);
    app.signup_raw("DUP@example.com", PASSWORD, "B")
        .await
        .assert_error(409, "email_taken");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 1);
    let ws: i64 = sqlx::query_scalar("SELECT count(*) FROM workspaces")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(ws, 1, "a refused signup creates no workspace");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = spawn_app().await;
    let u = app.user("u").await;
    let wrong = app.login(&u.email, "not the password").await;
    wrong.assert_error(401, "invalid_credentials");
    let unknown = app.login("nobody@example.com", PASSWORD).await;
    unknown.assert_error(401, "invalid_credentials");
    assert_eq!(wrong.body, unknown.body);
}

#[tokio::test]
async fn short_password_and_bad_fields_are_named() {
    let app = spawn_app().await;
    let r = app.signup_raw("a@example.com", "short", "A").await;
    r.assert_error(422, "validation_failed");
    assert!(
        r.body["error"]["details"]["fields"]["password"].is_string(),
        "{}",
        r.body
    );
    let r = app.signup_raw("not-an-email", PASSWORD, "").await;
    r.assert_error(422, "validation_failed");
    let fields = &r.body["error"]["details"]["fields"];
    assert!(
        fields["email"].is_string() && fields["name"].is_string(),
        "{}",
        r.body
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 0, "nothing is created by a rejected signup");
}

#[tokio::test]
async fn closed_signup_admits_only_the_first_user() {
    let app = spawn_app_with(&[("ROTOR_SIGNUP", "closed")]).await;
    app.user("first").await;
    app.signup_raw("second@example.com", PASSWORD, "S")
        .await
        .assert_error(403, "signup_closed");
}

#[tokio::test]
async fn self_hosted_defaults_to_closed_signup_and_saas_to_open() {
    let hosted = spawn_app_with(&[("ROTOR_SIGNUP", "")]).await;
    hosted.user("first").await;
    hosted
        .signup_raw("second@example.com", PASSWORD, "S")
        .await
        .assert_error(403, "signup_closed");

    let saas = spawn_app_with(&[("ROTOR_SIGNUP", ""), ("ROTOR_DEPLOYMENT", "saas")]).await;
    saas.user("first").await;
    saas.user("second").await;
}

#[tokio::test]
async fn password_change_revokes_older_sessions_but_not_personal_tokens() {
    let app = spawn_app().await;
    let u = app.user("pw").await;
    let pat = app
        .post("/api/v1/me/tokens", &u.token, json!({"name": "ci"}))
        .await;
    pat.assert(201);
    let pat = pat.body["token"].as_str().unwrap().to_owned();

    let r = app
        .post(
            "/api/v1/me/password",
            &u.token,
            json!({"current_password": "wrong password", "new_password": "new password 1"}),
        )
        .await;
    r.assert_error(422, "validation_failed");
    assert!(r.body["error"]["details"]["fields"]["current_password"].is_string());
    app.post(
        "/api/v1/me/password",
        &u.token,
        json!({"current_password": PASSWORD, "new_password": "short"}),
    )
    .await
    .assert_error(422, "validation_failed");

    app.post(
        "/api/v1/me/password",
        &u.token,
        json!({"current_password": PASSWORD, "new_password": "new password 1"}),
    )
    .await
    .assert(204);
    app.get("/api/v1/me", &u.token)
        .await
        .assert_error(401, "unauthorized");
    app.login(&u.email, PASSWORD)
        .await
        .assert_error(401, "invalid_credentials");
    let fresh = app.login(&u.email, "new password 1").await;
    fresh.assert(200);
    app.get("/api/v1/me", fresh.body["access_token"].as_str().unwrap())
        .await
        .assert(200);
    app.get("/api/v1/me", &pat).await.assert(200);
}

#[tokio::test]
async fn personal_access_tokens_work_like_sessions_until_revoked_or_expired() {
    let app = spawn_app().await;
    let u = app.user("pat").await;
    let created = app
        .post("/api/v1/me/tokens", &u.token, json!({"name": "terraform"}))
        .await;
    created.assert(201);
    let token = created.body["token"].as_str().unwrap().to_owned();
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with("rp-") && token.len() == 46, "{token}");
    assert_eq!(created.body["prefix"].as_str().unwrap(), &token[..11]);

    // Usable wherever a JWT is.
    let me = app.get("/api/v1/me", &token).await;
    me.assert(200);
    assert_eq!(me.body["email"], u.email.as_str());
    app.get(&format!("/api/v1/workspaces/{}", u.workspace), &token)
        .await
        .assert(200);

    // Listed without the secret.
    let list = app.get("/api/v1/me/tokens", &u.token).await;
    list.assert(200);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    assert!(list.body["data"][0].get("token").is_none());
    assert!(!list.body.to_string().contains(&token));
    // Stored hashed.
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM personal_tokens WHERE token_hash = $1::text::bytea OR name = $1",
    )
    .bind(&token)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(stored, 0);

    // Expired tokens stop working.
    let other = app
        .post(
            "/api/v1/me/tokens",
            &u.token,
            json!({"name": "short-lived"}),
        )
        .await;
    let other_token = other.body["token"].as_str().unwrap().to_owned();
    sqlx::query("UPDATE personal_tokens SET expires_at = now() - interval '1 second' WHERE name = 'short-lived'")
        .execute(&app.db)
        .await
        .unwrap();
    app.get("/api/v1/me", &other_token)
        .await
        .assert_error(401, "unauthorized");
    app.post(
        "/api/v1/me/tokens",
        &u.token,
        json!({"name": "past", "expires_at": "2001-01-01T00:00:00Z"}),
    )
    .await
    .assert_error(422, "validation_failed");

    // Revoked tokens stop working and leave the list; another user cannot revoke them.
    let stranger = app.user("stranger").await;
    app.delete(&format!("/api/v1/me/tokens/{id}"), &stranger.token)
        .await
        .assert_error(404, "not_found");
    app.get("/api/v1/me", &token).await.assert(200);
    app.delete(&format!("/api/v1/me/tokens/{id}"), &u.token)
        .await
        .assert(204);
    app.get("/api/v1/me", &token)
        .await
        .assert_error(401, "unauthorized");
    let list = app.get("/api/v1/me/tokens", &u.token).await;
    assert!(list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["id"] != id.as_str()));
    app.delete(&format!("/api/v1/me/tokens/{id}"), &u.token)
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn repeated_login_failures_for_one_email_are_throttled() {
    let app = spawn_app().await;
    let u = app.user("victim").await;
    for _ in 0..10 {
        app.login(&u.email, "wrong password")
            .await
            .assert_error(401, "invalid_credentials");
    }
    let blocked = app.login(&u.email, PASSWORD).await;
    blocked.assert_error(429, "too_many_requests");
    let retry: u64 = blocked.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 900, "{retry}");
    // Another account from the same address is not blocked by this email's failures.
    let other = app.user("bystander").await;
    app.login(&other.email, PASSWORD).await.assert(200);
}

#[tokio::test]
async fn repeated_failures_from_one_address_are_throttled_across_emails() {
    let app = spawn_app().await;
    let u = app.user("real").await;
    for i in 0..100 {
        app.login(&format!("spray{i}@example.com"), "guess guess")
            .await
            .assert_error(401, "invalid_credentials");
    }
    let r = app.login(&u.email, PASSWORD).await;
    r.assert_error(429, "too_many_requests");
    assert!(r.headers.contains_key("retry-after"));
}

/// A login attempt with `X-Forwarded-For: client`.
async fn forwarded_login(
    app: &TestApp,
    client: impl std::fmt::Display,
    body: serde_json::Value,
) -> Resp {
    app.req(Method::POST, "/api/v1/auth/login")
        .header("x-forwarded-for", &client.to_string())
        .json(body)
        .send()
        .await
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    // Without trusted proxies, X-Forwarded-For cannot dodge the per-address limit.
    let app = spawn_app().await;
    for i in 0..100 {
        let r = forwarded_login(
            &app,
            format!("203.0.113.{}", i % 250),
            json!({"email": format!("x{i}@example.com"), "password": "guess guess"}),
        )
        .await;
        r.assert(401);
    }
    app.login("any@example.com", "guess guess")
        .await
        .assert_error(429, "too_many_requests");

    // Behind a trusted proxy, each forwarded client is counted on its own.
    let app = spawn_app_with(&[("ROTOR_TRUSTED_PROXIES", "127.0.0.0/8")]).await;
    for i in 0..100 {
        let r = forwarded_login(
            &app,
            "203.0.113.7",
            json!({"email": format!("y{i}@example.com"), "password": "guess guess"}),
        )
        .await;
        r.assert(401);
    }
    forwarded_login(
        &app,
        "203.0.113.7",
        json!({"email": "z@example.com", "password": "guess guess"}),
    )
    .await
    .assert(429);
    forwarded_login(
        &app,
        "198.51.100.9",
        json!({"email": "z@example.com", "password": "guess guess"}),
    )
    .await
    .assert(401);
}

#[tokio::test]
async fn request_ids_are_made_or_honoured() {
    let app = spawn_app().await;
    let r = app.req(Method::GET, "/healthz").send().await;
    assert!(!r.headers["x-request-id"].is_empty());
    let r = app
        .req(Method::GET, "/healthz")
        .header("x-request-id", "abc-123")
        .send()
        .await;
    assert_eq!(r.headers["x-request-id"], "abc-123");
    let r = app.call(Method::GET, "/readyz", None, None).await;
    r.assert(200);
    assert_eq!(r.body["status"], "ready");
}
