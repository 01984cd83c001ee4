//! Roles: what owners, admins, editors and normal members may do in a workspace, the rules
//! that only owners touch the owner and admin roles, the last-owner rule, and the audit trail
//! of membership changes.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// Workspace W of owner O, with an admin, an editor and a normal member.
struct Team {
    app: TestApp,
    ws: Uuid,
    owner: TestUser,
    admin: TestUser,
    editor: TestUser,
    normal: TestUser,
}

async fn team() -> Team {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let admin = app.user("admin").await;
    let editor = app.user("editor").await;
    let normal = app.user("normal").await;
    let ws = owner.workspace;
    app.add_member(&owner, ws, &admin, "admin").await;
    app.add_member(&owner, ws, &editor, "editor").await;
    app.add_member(&owner, ws, &normal, "normal").await;
    Team {
        app,
        ws,
        owner,
        admin,
        editor,
        normal,
    }
}

impl Team {
    fn path(&self, rest: &str) -> String {
        format!("/api/v1/workspaces/{}{rest}", self.ws)
    }

    /// Each member with the role they were given.
    fn members(&self) -> [(&'static str, &TestUser); 4] {
        [
            ("owner", &self.owner),
            ("admin", &self.admin),
            ("editor", &self.editor),
            ("normal", &self.normal),
        ]
    }

    /// (user_id, role) of every member, as the owner sees them.
    async fn roles(&self) -> Vec<(String, String)> {
        let r = self
            .app
            .get(&self.path("/members"), &self.owner.token)
            .await;
        r.assert(200);
        let mut roles: Vec<(String, String)> = r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["user_id"].as_str().unwrap().to_owned(),
                    m["role"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        roles.sort();
        roles
    }

    async fn role_of(&self, user: Uuid) -> Option<String> {
        self.roles()
            .await
            .into_iter()
            .find(|(id, _)| *id == user.to_string())
            .map(|(_, role)| role)
    }

    /// Everything the owner can see of W.
    async fn view(&self) -> Value {
        let mut out = serde_json::Map::new();
        for (name, rest) in [
            ("workspace", ""),
            ("members", "/members"),
            ("api_keys", "/api-keys"),
            ("audit", "/audit-events"),
        ] {
            let r = self.app.get(&self.path(rest), &self.owner.token).await;
            r.assert(200);
            out.insert(name.to_owned(), r.body);
        }
        Value::Object(out)
    }

    async fn audit(&self) -> Vec<Value> {
        let r = self
            .app
            .get(&self.path("/audit-events"), &self.owner.token)
            .await;
        r.assert(200);
        r.body["data"].as_array().unwrap().clone()
    }
}

fn list_len(r: &Resp) -> usize {
    r.body["data"].as_array().unwrap().len()
}

#[tokio::test]
async fn every_member_can_read_the_workspace() {
    let t = team().await;
    t.app.api_key(&t.owner, t.ws, "k").await;
    for (role, user) in t.members() {
        let ws = t.app.get(&t.path(""), &user.token).await;
        ws.assert(200);
        assert_eq!(ws.body["id"], t.ws.to_string());
        assert_eq!(ws.body["role"], role, "{role} sees its own role");
        assert!(ws.body["features"]["load_balancing"].is_boolean());

        let members = t.app.get(&t.path("/members"), &user.token).await;
        members.assert(200);
        assert_eq!(list_len(&members), 4, "{role}: {}", members.body);

        let keys = t.app.get(&t.path("/api-keys"), &user.token).await;
        keys.assert(200);
        assert_eq!(list_len(&keys), 1, "{role}: {}", keys.body);
        assert!(keys.body["data"][0].get("key").is_none());

        let audit = t.app.get(&t.path("/audit-events"), &user.token).await;
        audit.assert(200);
        assert!(list_len(&audit) >= 4, "{role}: {}", audit.body);

        let mine = t.app.get("/api/v1/workspaces", &user.token).await;
        let listed = mine.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["id"] == t.ws.to_string())
            .unwrap_or_else(|| panic!("{role} does not see W in its list"));
        assert_eq!(listed["role"], role);
    }
}

#[tokio::test]
async fn editors_and_normal_members_are_read_only() {
    let t = team().await;
    let (key, _) = t.app.api_key(&t.owner, t.ws, "keep-me").await;
    let newcomer = t.app.user("newcomer").await;
    let before = t.view().await;
    let keys_before: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys")
        .fetch_one(&t.app.db)
        .await
        .unwrap();

    for (role, user) in [("editor", &t.editor), ("normal", &t.normal)] {
        let requests: Vec<(Method, String, Option<Value>)> = vec![
            (Method::PATCH, t.path(""), Some(json!({"name": "renamed"}))),
            (
                Method::POST,
                t.path("/api-keys"),
                Some(json!({"name": "mine"})),
            ),
            (Method::DELETE, t.path(&format!("/api-keys/{key}")), None),
            (
                Method::POST,
                t.path("/members"),
                Some(json!({"email": newcomer.email, "role": "normal"})),
            ),
            (
                Method::POST,
                t.path("/members"),
                Some(json!({"email": newcomer.email, "role": "editor"})),
            ),
            (
                Method::POST,
                t.path("/members"),
                Some(json!({"email": newcomer.email, "role": "admin"})),
            ),
            (
                Method::PATCH,
                t.path(&format!("/members/{}", t.normal.id)),
                Some(json!({"role": "editor"})),
            ),
            (
                Method::PATCH,
                t.path(&format!("/members/{}", user.id)),
                Some(json!({"role": "admin"})),
            ),
            (
                Method::PATCH,
                t.path(&format!("/members/{}", user.id)),
                Some(json!({"role": "owner"})),
            ),
            (
                Method::DELETE,
                t.path(&format!("/members/{}", t.admin.id)),
                None,
            ),
            (
                Method::DELETE,
                t.path(&format!("/members/{}", t.owner.id)),
                None,
            ),
        ];
        for (method, path, body) in requests {
            let r = t
                .app
                .call(method.clone(), &path, Some(&user.token), body.clone())
                .await;
            r.assert_code(
                403,
                "forbidden",
                format_args!("{role}: {method} {path} {body:?}"),
            );
        }
        // An editor cannot touch the other read-only member either.
        let other = if role == "editor" {
            &t.normal
        } else {
            &t.editor
        };
        t.app
            .delete(&t.path(&format!("/members/{}", other.id)), &user.token)
            .await
            .assert_error(403, "forbidden");
    }

    // Nothing changed: same name, members, roles, keys and audit log.
    assert_eq!(t.view().await, before);
    let keys_after: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys")
        .fetch_one(&t.app.db)
        .await
        .unwrap();
    assert_eq!(keys_after, keys_before);
    let in_ws: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM memberships WHERE workspace_id = $1 AND user_id = $2",
    )
    .bind(t.ws)
    .bind(newcomer.id)
    .fetch_one(&t.app.db)
    .await
    .unwrap();
    assert_eq!(in_ws, 0);
}

#[tokio::test]
async fn owners_and_admins_manage_the_workspace() {
    let t = team().await;
    for (role, user) in [("owner", &t.owner), ("admin", &t.admin)] {
        // Rename.
        let name = format!("renamed by {role}");
        let r = t
            .app
            .patch(&t.path(""), &user.token, json!({"name": name}))
            .await;
        r.assert(200);
        assert_eq!(r.body["name"], name.as_str());
        assert_eq!(r.body["role"], role);
        assert_eq!(
            t.app.get(&t.path(""), &t.normal.token).await.body["name"],
            name.as_str()
        );

        // Create and revoke an API key.
        let created = t
            .app
            .post(&t.path("/api-keys"), &user.token, json!({"name": role}))
            .await;
        created.assert(201);
        assert!(created.body["key"].as_str().unwrap().starts_with("rk-"));
        let id = created.body["id"].as_str().unwrap().to_owned();
        let listed = t.app.get(&t.path("/api-keys"), &t.editor.token).await;
        assert!(listed.body.to_string().contains(&id));
        t.app
            .delete(&t.path(&format!("/api-keys/{id}")), &user.token)
            .await
            .assert(204);
        let listed = t.app.get(&t.path("/api-keys"), &t.editor.token).await;
        assert!(!listed.body.to_string().contains(&id));

        // Add members as normal and as editor, then promote the normal one to editor and
        // demote it back.
        let n = t.app.user(&format!("{role}-adds-normal")).await;
        let e = t.app.user(&format!("{role}-adds-editor")).await;
        for (who, r) in [(&n, "normal"), (&e, "editor")] {
            let added = t
                .app
                .post(
                    &t.path("/members"),
                    &user.token,
                    json!({"email": who.email, "role": r}),
                )
                .await;
            added.assert(201);
            assert_eq!(added.body["user_id"], who.id.to_string());
            assert_eq!(added.body["role"], r);
            assert_eq!(added.body["email"], who.email.as_str());
            // The new member can read the workspace at once.
            let seen = t.app.get(&t.path(""), &who.token).await;
            seen.assert(200);
            assert_eq!(seen.body["role"], r);
        }
        let up = t
            .app
            .patch(
                &t.path(&format!("/members/{}", n.id)),
                &user.token,
                json!({"role": "editor"}),
            )
            .await;
        up.assert(200);
        assert_eq!(up.body["role"], "editor");
        assert_eq!(up.body["user_id"], n.id.to_string());
        assert_eq!(t.role_of(n.id).await.as_deref(), Some("editor"));
        t.app
            .patch(
                &t.path(&format!("/members/{}", n.id)),
                &user.token,
                json!({"role": "normal"}),
            )
            .await
            .assert(200);
        assert_eq!(t.role_of(n.id).await.as_deref(), Some("normal"));

        // And remove a read-only member.
        t.app
            .delete(&t.path(&format!("/members/{}", e.id)), &user.token)
            .await
            .assert(204);
        assert_eq!(t.role_of(e.id).await, None);
        t.app
            .get(&t.path(""), &e.token)
            .await
            .assert_error(404, "not_found");
    }
}

#[tokio::test]
async fn only_owners_grant_change_or_remove_owner_and_admin_roles() {
    let t = team().await;
    let admin2 = t.app.user("admin2").await;
    t.app.add_member(&t.owner, t.ws, &admin2, "admin").await;
    let outsider = t.app.user("outsider").await;
    let before = t.view().await;
    let roles_before = t.roles().await;

    let member = |id: Uuid| t.path(&format!("/members/{id}"));
    let refused: Vec<(&str, Method, String, Option<Value>)> = vec![
        (
            "add as admin",
            Method::POST,
            t.path("/members"),
            Some(json!({"email": outsider.email, "role": "admin"})),
        ),
        (
            "add as owner",
            Method::POST,
            t.path("/members"),
            Some(json!({"email": outsider.email, "role": "owner"})),
        ),
        (
            "promote normal to admin",
            Method::PATCH,
            member(t.normal.id),
            Some(json!({"role": "admin"})),
        ),
        (
            "promote editor to owner",
            Method::PATCH,
            member(t.editor.id),
            Some(json!({"role": "owner"})),
        ),
        (
            "promote itself to owner",
            Method::PATCH,
            member(t.admin.id),
            Some(json!({"role": "owner"})),
        ),
        (
            "demote the owner",
            Method::PATCH,
            member(t.owner.id),
            Some(json!({"role": "normal"})),
        ),
        (
            "demote the owner to admin",
            Method::PATCH,
            member(t.owner.id),
            Some(json!({"role": "admin"})),
        ),
        ("remove the owner", Method::DELETE, member(t.owner.id), None),
        (
            "demote another admin",
            Method::PATCH,
            member(admin2.id),
            Some(json!({"role": "normal"})),
        ),
        (
            "promote another admin to owner",
            Method::PATCH,
            member(admin2.id),
            Some(json!({"role": "owner"})),
        ),
        (
            "remove another admin",
            Method::DELETE,
            member(admin2.id),
            None,
        ),
    ];
    for (what, method, path, body) in refused {
        let r = t.app.call(method, &path, Some(&t.admin.token), body).await;
        r.assert_code(403, "forbidden", format_args!("an admin may not {what}"));
    }
    assert_eq!(
        t.view().await,
        before,
        "a refused request changed something"
    );
    assert_eq!(t.roles().await, roles_before);
    assert_eq!(
        t.app.get(&t.path(""), &t.admin.token).await.body["role"],
        "admin"
    );

    // The owner may do all of it.
    let added = t
        .app
        .post(
            &t.path("/members"),
            &t.owner.token,
            json!({"email": outsider.email, "role": "admin"}),
        )
        .await;
    added.assert(201);
    assert_eq!(added.body["role"], "admin");
    t.app
        .patch(
            &member(t.normal.id),
            &t.owner.token,
            json!({"role": "admin"}),
        )
        .await
        .assert(200);
    t.app
        .patch(
            &member(t.editor.id),
            &t.owner.token,
            json!({"role": "owner"}),
        )
        .await
        .assert(200);
    t.app
        .patch(
            &member(admin2.id),
            &t.owner.token,
            json!({"role": "normal"}),
        )
        .await
        .assert(200);
    t.app
        .delete(&member(outsider.id), &t.owner.token)
        .await
        .assert(204);
    assert_eq!(t.role_of(t.normal.id).await.as_deref(), Some("admin"));
    assert_eq!(t.role_of(t.editor.id).await.as_deref(), Some("owner"));
    assert_eq!(t.role_of(admin2.id).await.as_deref(), Some("normal"));
    assert_eq!(t.role_of(outsider.id).await, None);
    // The new owner sees itself as owner and may in turn demote the admin.
    assert_eq!(
        t.app.get(&t.path(""), &t.editor.token).await.body["role"],
        "owner"
    );
    t.app
        .patch(
            &member(t.admin.id),
            &t.editor.token,
            json!({"role": "editor"}),
        )
        .await
        .assert(200);
    assert_eq!(t.role_of(t.admin.id).await.as_deref(), Some("editor"));
}

#[tokio::test]
async fn the_last_owner_can_neither_leave_nor_be_demoted() {
    let t = team().await;
    let me = t.path(&format!("/members/{}", t.owner.id));
    for role in ["admin", "editor", "normal"] {
        t.app
            .patch(&me, &t.owner.token, json!({"role": role}))
            .await
            .assert_error(409, "last_owner");
    }
    t.app
        .delete(&me, &t.owner.token)
        .await
        .assert_error(409, "last_owner");
    assert_eq!(t.role_of(t.owner.id).await.as_deref(), Some("owner"));
    // Setting an owner to owner is no demotion.
    let same = t
        .app
        .patch(&me, &t.owner.token, json!({"role": "owner"}))
        .await;
    same.assert(200);
    assert_eq!(same.body["role"], "owner");

    // With a second owner, the first may step down.
    t.app
        .patch(
            &t.path(&format!("/members/{}", t.admin.id)),
            &t.owner.token,
            json!({"role": "owner"}),
        )
        .await
        .assert(200);
    let down = t
        .app
        .patch(&me, &t.owner.token, json!({"role": "admin"}))
        .await;
    down.assert(200);
    assert_eq!(down.body["role"], "admin");
    assert_eq!(
        t.app.get(&t.path(""), &t.owner.token).await.body["role"],
        "admin"
    );

    // Now the former admin is the last owner, with the same protection.
    let new_owner = t.path(&format!("/members/{}", t.admin.id));
    t.app
        .patch(&new_owner, &t.admin.token, json!({"role": "normal"}))
        .await
        .assert_error(409, "last_owner");
    t.app
        .delete(&new_owner, &t.admin.token)
        .await
        .assert_error(409, "last_owner");
    // ...and the demoted first owner, now an admin, cannot touch it.
    t.app
        .delete(&new_owner, &t.owner.token)
        .await
        .assert_error(403, "forbidden");
    t.app
        .patch(&new_owner, &t.owner.token, json!({"role": "normal"}))
        .await
        .assert_error(403, "forbidden");
    let owners: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM memberships WHERE workspace_id = $1 AND role = 'owner'",
    )
    .bind(t.ws)
    .fetch_one(&t.app.db)
    .await
    .unwrap();
    assert_eq!(owners, 1);
    assert_eq!(t.role_of(t.admin.id).await.as_deref(), Some("owner"));

    // With two owners again, one of them may leave.
    t.app
        .patch(&me, &t.admin.token, json!({"role": "owner"}))
        .await
        .assert(200);
    t.app.delete(&me, &t.owner.token).await.assert(204);
    t.app
        .get(&t.path(""), &t.owner.token)
        .await
        .assert_error(404, "not_found");
    let left = t.app.get(&t.path("/members"), &t.admin.token).await;
    left.assert(200);
    assert!(!left.body.to_string().contains(&t.owner.id.to_string()));
    assert_eq!(
        t.app.get(&t.path(""), &t.admin.token).await.body["role"],
        "owner"
    );
}

#[tokio::test]
async fn any_member_may_leave_except_the_last_owner() {
    let t = team().await;
    for (role, user) in [
        ("normal", &t.normal),
        ("editor", &t.editor),
        ("admin", &t.admin),
    ] {
        t.app
            .delete(&t.path(&format!("/members/{}", user.id)), &user.token)
            .await
            .assert(204);
        t.app
            .get(&t.path(""), &user.token)
            .await
            .assert_error(404, "not_found");
        assert_eq!(t.role_of(user.id).await, None, "{role} left");
        let mine = t.app.get("/api/v1/workspaces", &user.token).await;
        assert!(
            !mine.body.to_string().contains(&t.ws.to_string()),
            "{role} still lists W"
        );
        // Leaving twice: no longer a member, so the workspace is not found.
        t.app
            .delete(&t.path(&format!("/members/{}", user.id)), &user.token)
            .await
            .assert_error(404, "not_found");
    }
    t.app
        .delete(&t.path(&format!("/members/{}", t.owner.id)), &t.owner.token)
        .await
        .assert_error(409, "last_owner");
    assert_eq!(
        t.roles().await,
        vec![(t.owner.id.to_string(), "owner".to_owned())]
    );
}

#[tokio::test]
async fn adding_unknown_users_or_existing_members_is_refused() {
    let t = team().await;
    let before = t.view().await;
    let unknown = t
        .app
        .post(
            &t.path("/members"),
            &t.owner.token,
            json!({"email": "nobody-here@example.com", "role": "normal"}),
        )
        .await;
    unknown.assert_error(404, "user_not_found");
    for (who, role) in [
        (&t.editor, "normal"),
        (&t.normal, "admin"),
        (&t.owner, "owner"),
    ] {
        t.app
            .post(
                &t.path("/members"),
                &t.owner.token,
                json!({"email": who.email, "role": role}),
            )
            .await
            .assert_error(409, "member_exists");
    }
    // Emails are case-insensitive: the same member in capitals is still a member.
    t.app
        .post(
            &t.path("/members"),
            &t.admin.token,
            json!({"email": t.editor.email.to_uppercase(), "role": "normal"}),
        )
        .await
        .assert_error(409, "member_exists");
    // A refused add changes nothing, the existing role included.
    assert_eq!(t.view().await, before);
    assert_eq!(t.role_of(t.editor.id).await.as_deref(), Some("editor"));
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&t.app.db)
        .await
        .unwrap();
    assert_eq!(users, 4, "adding an unknown email must not create a user");
}

#[tokio::test]
async fn membership_changes_are_audited_newest_first() {
    let t = team().await;
    let x = t.app.user("audited").await;
    t.app.add_member(&t.admin, t.ws, &x, "normal").await;
    t.app
        .patch(
            &t.path(&format!("/members/{}", x.id)),
            &t.owner.token,
            json!({"role": "editor"}),
        )
        .await
        .assert(200);
    // Refused attempts leave no event.
    t.app
        .delete(&t.path(&format!("/members/{}", x.id)), &t.normal.token)
        .await
        .assert_error(403, "forbidden");
    t.app
        .delete(&t.path(&format!("/members/{}", x.id)), &t.admin.token)
        .await
        .assert(204);

    let events = t.audit().await;
    let newest: Vec<(&str, &str, &str, &str)> = events[..3]
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor_user_id"].as_str().unwrap(),
                e["target_type"].as_str().unwrap(),
                e["target_id"].as_str().unwrap(),
            )
        })
        .collect();
    let (admin, owner, xid) = (
        t.admin.id.to_string(),
        t.owner.id.to_string(),
        x.id.to_string(),
    );
    assert_eq!(
        newest,
        vec![
            ("member.removed", admin.as_str(), "member", xid.as_str()),
            ("member.updated", owner.as_str(), "member", xid.as_str()),
            ("member.added", admin.as_str(), "member", xid.as_str()),
        ],
        "{events:?}"
    );
    // The team's own additions by the owner come before, with the roles granted.
    let added: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["action"] == "member.added" && e["actor_user_id"] == owner.as_str())
        .map(|e| {
            (
                e["target_id"].as_str().unwrap(),
                e["details"]["role"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let (a, ed, n) = (
        t.admin.id.to_string(),
        t.editor.id.to_string(),
        t.normal.id.to_string(),
    );
    assert_eq!(
        added,
        vec![
            (n.as_str(), "normal"),
            (ed.as_str(), "editor"),
            (a.as_str(), "admin")
        ]
    );
    // Newest first by timestamp, and every event says who did it and when.
    let times: Vec<chrono::DateTime<chrono::Utc>> = events
        .iter()
        .map(|e| e["created_at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert!(events
        .iter()
        .all(|e| e["actor_user_id"].is_string() && e["id"].is_string()));
    assert_eq!(
        events
            .iter()
            .filter(|e| e["actor_user_id"] == t.normal.id.to_string())
            .count(),
        0,
        "the refused removal was recorded"
    );
}
