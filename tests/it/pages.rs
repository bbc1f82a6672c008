//! The pages over plain HTTP: CSRF, escaping, tenant isolation, sessions, throttling.

use serde_json::json;

use crate::support::*;

/// A browser-like caller that keeps the session cookie and does not follow redirects.
struct Visitor<'a> {
    server: &'a Server,
    http: reqwest::Client,
    cookie: String,
}

impl<'a> Visitor<'a> {
    fn new(server: &'a Server) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Visitor {
            server,
            http,
            cookie: String::new(),
        }
    }

    /// Signs in; returns the status and the new session id.
    async fn login(&mut self, user: &str, password: &str) -> (u16, String) {
        let resp = self
            .http
            .post(format!("{}/login", self.server.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("username={user}&password={password}&next=/"))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let id = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| {
                c.strip_prefix("baton_session=")
                    .map(|rest| rest.split(';').next().unwrap_or("").to_string())
            })
            .unwrap_or_default();
        if !id.is_empty() {
            self.cookie = id.clone();
        }
        (status, id)
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.server.url))
            .header("cookie", format!("baton_session={}", self.cookie))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn post(&self, path: &str, form: &str) -> (u16, String) {
        let resp = self
            .http
            .post(format!("{}{path}", self.server.url))
            .header("cookie", format!("baton_session={}", self.cookie))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_string())
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn csrf(&self) -> String {
        let (_, page) = self.get("/account").await;
        let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
        page[at..].split('"').next().unwrap().to_string()
    }
}

#[tokio::test]
async fn a_post_without_the_right_csrf_token_is_refused() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let id = admin
        .schedule(
            "production",
            json!({"name": "n", "kind": "noop", "trigger": {"type": "manual"}}),
        )
        .await;
    let mut v = Visitor::new(&server);
    v.login("admin", ADMIN_PASSWORD).await;
    let csrf = v.csrf().await;
    assert_eq!(
        v.post(&format!("/envs/production/schedules/{id}/run"), "")
            .await
            .0,
        403,
        "no token"
    );
    assert_eq!(
        v.post(
            &format!("/envs/production/schedules/{id}/run"),
            "csrf=wrong"
        )
        .await
        .0,
        403,
        "wrong token"
    );
    let (_, runs) = admin
        .get(&format!("/api/v1/envs/production/runs?schedule={id}"))
        .await;
    assert_eq!(runs.as_array().unwrap().len(), 0, "nothing ran");
    // Another site's form is refused even with a token.
    let resp = v
        .http
        .post(format!("{}/envs/production/schedules/{id}/run", server.url))
        .header("cookie", format!("baton_session={}", v.cookie))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert_eq!(
        v.post(
            &format!("/envs/production/schedules/{id}/run"),
            &format!("csrf={csrf}")
        )
        .await
        .0,
        303,
        "the right token works"
    );
}

#[tokio::test]
async fn a_hostile_schedule_name_is_escaped_everywhere() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let evil = "\"><script>alert(1)</script>";
    let id = admin.schedule("production", json!({"name": evil, "kind": "noop", "trigger": {"type": "cron", "expr": "0 0 * * *"}, "description": evil})).await;
    let run = admin.run_now("production", &id).await;
    admin
        .wait_final("production", &run, std::time::Duration::from_secs(10))
        .await;
    let mut v = Visitor::new(&server);
    v.login("admin", ADMIN_PASSWORD).await;
    for path in [
        "/envs/production/dashboard".to_string(),
        "/envs/production/schedules".to_string(),
        format!("/envs/production/schedules/{id}"),
        "/envs/production/runs".to_string(),
        format!("/envs/production/runs/{run}"),
    ] {
        let (s, page) = v.get(&path).await;
        assert_eq!(s, 200, "{path}");
        assert!(
            !page.contains("<script>alert(1)</script>"),
            "unescaped on {path}"
        );
        assert!(
            page.contains("&lt;script&gt;")
                || page.contains("&#60;script&#62;")
                || page.contains("&#x3c;script"),
            "the name is shown escaped on {path}"
        );
    }
}

#[tokio::test]
async fn every_page_of_another_environment_is_not_found() {
    let server = Server::start().await;
    let admin = server.admin().await;
    assert_eq!(
        admin
            .post("/api/v1/environments", json!({"id": "bravo"}))
            .await
            .0,
        201
    );
    let id = admin
        .schedule(
            "bravo",
            json!({"name": "b", "kind": "noop", "trigger": {"type": "manual"}}),
        )
        .await;
    let run = admin.run_now("bravo", &id).await;
    let template = admin
        .schedule(
            "bravo",
            json!({"name": "t", "kind": "noop", "trigger": {"type": "manual"}}),
        )
        .await;
    admin
        .chain("bravo", json!({"name": "c", "schedule_id": template}))
        .await;
    server
        .user(&admin, "alma", json!({"production": "integration"}), false)
        .await;
    let mut v = Visitor::new(&server);
    v.login("alma", "alma-password").await;
    let csrf = v.csrf().await;
    for path in [
        "/envs/bravo".to_string(),
        "/envs/bravo/dashboard".to_string(),
        "/envs/bravo/schedules".to_string(),
        "/envs/bravo/schedules/new".to_string(),
        format!("/envs/bravo/schedules/{id}"),
        "/envs/bravo/chains".to_string(),
        "/envs/bravo/chains/c".to_string(),
        "/envs/bravo/runs".to_string(),
        format!("/envs/bravo/runs/{run}"),
        format!("/envs/bravo/runs/{run}/log.json"),
        "/envs/bravo/files".to_string(),
    ] {
        assert_eq!(v.get(&path).await.0, 404, "GET {path}");
    }
    for path in [
        format!("/envs/bravo/schedules/{id}/run"),
        format!("/envs/bravo/runs/{run}/retry"),
        "/envs/bravo/chains".to_string(),
    ] {
        assert_eq!(
            v.post(&path, &format!("csrf={csrf}&name=x")).await.0,
            404,
            "POST {path}"
        );
    }
    // Their own environment works, and admin pages are forbidden.
    assert_eq!(v.get("/envs/production/dashboard").await.0, 200);
    assert_eq!(v.get("/admin/users").await.0, 403);
}

#[tokio::test]
async fn login_makes_a_new_session_and_logout_ends_it() {
    let server = Server::start().await;
    let mut v = Visitor::new(&server);
    let (s, first) = v.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(s, 303);
    let (_, second) = v.login("admin", ADMIN_PASSWORD).await;
    assert!(
        !first.is_empty() && first != second,
        "a new session id at every login"
    );
    assert_eq!(v.get("/envs/production/dashboard").await.0, 200);
    let csrf = v.csrf().await;
    assert_eq!(v.post("/logout", &format!("csrf={csrf}")).await.0, 303);
    let (s, _) = v.get("/envs/production/dashboard").await;
    assert_eq!(s, 303, "the old session is dead: back to the login page");
    // A password change ends the other sessions.
    let mut a = Visitor::new(&server);
    let mut b = Visitor::new(&server);
    a.login("admin", ADMIN_PASSWORD).await;
    b.login("admin", ADMIN_PASSWORD).await;
    let csrf = a.csrf().await;
    let (s, _) = a
        .post(
            "/account/password",
            &format!("csrf={csrf}&current={ADMIN_PASSWORD}&new=another-password-2"),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        a.get("/account").await.0,
        200,
        "the session that changed it stays"
    );
    assert_eq!(b.get("/account").await.0, 303, "the other session ended");
}

/// An admin's password reset ends the user's sessions; deleting a user ends them too (a user
/// made again with the same name does not inherit them); the last admin stays admin.
#[tokio::test]
async fn a_reset_or_deleted_user_loses_their_sessions() {
    let server = Server::start().await;
    let admin = server.admin().await;
    server
        .user(&admin, "bob", json!({"production": "viewer"}), false)
        .await;
    let mut bob = Visitor::new(&server);
    assert_eq!(bob.login("bob", "bob-password").await.0, 303);
    assert_eq!(bob.get("/account").await.0, 200);
    let (s, b) = admin
        .put(
            "/api/v1/users/bob",
            json!({"password": "reset-by-admin-1", "roles": {"production": "viewer"}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        bob.get("/account").await.0,
        303,
        "the reset ended the session"
    );

    assert_eq!(bob.login("bob", "reset-by-admin-1").await.0, 303);
    assert_eq!(admin.delete("/api/v1/users/bob").await.0, 204);
    server
        .user(&admin, "bob", json!({"production": "viewer"}), false)
        .await;
    assert_eq!(
        bob.get("/account").await.0,
        303,
        "a new bob does not inherit the old bob's session"
    );

    let (s, b) = admin
        .put("/api/v1/users/admin", json!({"admin": false, "roles": {}}))
        .await;
    assert_eq!(s, 409, "the last admin: {b}");
    let (_, me) = admin.get("/api/v1/users/admin").await;
    assert_eq!(me["admin"], true, "{me}");
}

#[tokio::test]
async fn repeated_wrong_passwords_are_throttled_then_forgiven_by_time_only() {
    let server = Server::start().await;
    // Taken first: once the account is throttled, a token request is refused too.
    let admin = server.admin().await;
    let mut v = Visitor::new(&server);
    for _ in 0..5 {
        assert_eq!(v.login("admin", "wrong-password").await.0, 401);
    }
    let (s, _) = v.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(
        s, 429,
        "the account is throttled, even with the right password"
    );
    // Another account from the same address is not locked by it.
    server
        .user(&admin, "bob", json!({"production": "viewer"}), false)
        .await;
    assert_eq!(v.login("bob", "bob-password").await.0, 303);
}

/// `POST /api/v1/tokens` signs in by password too, so it shares the sign-in throttle: it
/// cannot be used to guess without limit, and an account locked there is locked for the
/// pages as well.
#[tokio::test]
async fn api_token_requests_share_the_sign_in_throttle() {
    let server = Server::start().await;
    let ask = |password: &str| {
        let body = json!({"username": "admin", "password": password, "label": "t"});
        server.call("POST", "/api/v1/tokens", None, Some(body))
    };
    for _ in 0..5 {
        assert_eq!(ask("wrong-password").await.0, 401);
    }
    let (s, b) = ask(ADMIN_PASSWORD).await;
    assert_eq!(s, 429, "throttled even with the right password: {b}");
    let mut v = Visitor::new(&server);
    assert_eq!(v.login("admin", ADMIN_PASSWORD).await.0, 429);
}

#[tokio::test]
async fn pages_carry_the_security_headers() {
    let server = Server::start().await;
    let v = Visitor::new(&server);
    let resp = v
        .http
        .get(format!("{}/login", server.url))
        .send()
        .await
        .unwrap();
    let h = resp.headers();
    let csp = h.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'")
            && !csp.contains("unsafe-inline")
            && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
    assert_eq!(
        h.get("cache-control").unwrap(),
        "no-store",
        "pages are never cached"
    );
    let css = v
        .http
        .get(format!("{}/static/baton.css", server.url))
        .send()
        .await
        .unwrap();
    assert_ne!(
        css.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store"),
        "the embedded assets may be"
    );
}

/// A parameter the kind declares secret (ftp-upload's `Password`) comes back sealed even
/// when its Encrypt box was not ticked.
#[tokio::test]
async fn a_typed_kind_secret_comes_back_sealed_without_its_box_ticked() {
    let server = Server::start().await;
    let mut v = Visitor::new(&server);
    v.login("admin", ADMIN_PASSWORD).await;
    let csrf = v.csrf().await;
    let form = format!(
        "csrf={csrf}&name=Upload&kind=ftp-upload&enabled=on&trigger_type=cron&cron_expr=61+*+*+*+*\
         &p0_name=Password&p0_value=typed-ftp-password-77\
         &timeout_seconds=600&max_attempts=1&backoff_seconds=30&overlap=allow&catch_up=skip&action=save"
    );
    let (s, page) = v.post("/envs/production/schedules/new", &form).await;
    assert_eq!(s, 422, "the cron expression is refused: {page}");
    assert!(
        !page.contains("typed-ftp-password-77"),
        "a typed secret comes back sealed, never as text"
    );
    assert!(
        page.contains("entered, not saved yet"),
        "it is carried: {page}"
    );
}

#[tokio::test]
async fn a_refused_form_comes_back_with_the_input_and_the_messages() {
    let server = Server::start().await;
    let mut v = Visitor::new(&server);
    v.login("admin", ADMIN_PASSWORD).await;
    let csrf = v.csrf().await;
    let form = format!(
        "csrf={csrf}&name=Keep+me&kind=noop&enabled=on&trigger_type=cron&cron_expr=61+*+*+*+*&cron_zone=Mars%2FBase\
         &p0_name=Message&p0_value=typed+value&p1_name=Secret&p1_value=hidden-typed-secret&p1_encrypt=on\
         &timeout_seconds=0&max_attempts=1&backoff_seconds=30&overlap=allow&catch_up=skip&action=save"
    );
    let (s, page) = v.post("/envs/production/schedules/new", &form).await;
    assert_eq!(s, 422);
    assert!(
        page.contains("value=\"Keep me\"")
            && page.contains("value=\"typed value\"")
            && page.contains("value=\"61 * * * *\""),
        "the input is kept"
    );
    assert!(
        page.contains("invalid cron expression")
            && page.contains("unknown time zone")
            && page.contains("between 1 and"),
        "each message is shown"
    );
    assert!(
        !page.contains("hidden-typed-secret"),
        "a typed secret comes back sealed, never as text"
    );
    assert!(page.contains("entered, not saved yet"));
    let admin = server.admin().await;
    let (_, list) = admin.get("/api/v1/envs/production/schedules").await;
    assert_eq!(list.as_array().unwrap().len(), 0, "nothing was saved");
}

#[tokio::test]
async fn a_bad_history_date_names_its_own_field() {
    let server = Server::start().await;
    let mut v = Visitor::new(&server);
    v.login("admin", ADMIN_PASSWORD).await;
    for field in ["since", "until"] {
        let (s, page) = v
            .get(&format!("/envs/production/runs?{field}=garbage"))
            .await;
        assert_eq!(s, 422, "{field}: {page}");
        let other = if field == "since" { "until" } else { "since" };
        assert!(
            page.contains(&format!("{field}: ")) && !page.contains(&format!("{other}: ")),
            "the problem names {field}: {page}"
        );
        assert!(page.contains("is not a date (YYYY-MM-DD)"), "{page}");
    }
}

/// The users page edits a user from their stored values, so an update (a password reset)
/// keeps their roles; the Add form refuses a name that exists instead of overwriting it.
#[tokio::test]
async fn updating_a_user_on_the_page_keeps_what_was_not_changed() {
    let server = Server::start().await;
    let admin = server.admin().await;
    server
        .user(&admin, "bob", json!({"production": "operator"}), false)
        .await;
    let mut v = Visitor::new(&server);
    v.login("admin", ADMIN_PASSWORD).await;
    let (s, page) = v.get("/admin/users?edit=bob").await;
    assert_eq!(s, 200);
    assert!(
        page.contains("Update bob") && page.contains(r#"<option value="operator" selected>"#),
        "the form starts from bob's roles: {page}"
    );
    // What the Edit form posts when only the password is typed.
    let csrf = v.csrf().await;
    let (s, page) = v
        .post(
            "/admin/users",
            &format!("csrf={csrf}&username=bob&mode=update&password=new-pass-for-bob&role_production=operator"),
        )
        .await;
    assert_eq!(s, 303, "{page}");
    let (_, bob) = admin.get("/api/v1/users/bob").await;
    assert_eq!(bob["roles"], json!({"production": "operator"}), "{bob}");
    // The Add form with bob's name: refused, nothing changed.
    let (s, page) = v
        .post(
            "/admin/users",
            &format!("csrf={csrf}&username=bob&password=other-pass-1"),
        )
        .await;
    assert_eq!(s, 409, "{page}");
    assert!(page.contains("already exists"), "{page}");
    let (_, again) = admin.get("/api/v1/users/bob").await;
    assert_eq!(again, bob);
}
