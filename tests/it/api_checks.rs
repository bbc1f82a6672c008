//! API checks through the real binary: who may call what (design §8, §9 table), how bad
//! input is refused (§9 conventions), and that secrets never leave the server (§4).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::support::*;
use serde_json::{json, Value};
use sha2::Digest;

// ---------------------------------------------------------------------------------------------
// 1. Roles
// ---------------------------------------------------------------------------------------------

/// The weakest caller a route allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    SignedIn,
    Viewer,
    Operator,
    Integration,
    Admin,
}

/// What an allowed caller gets.
#[derive(Debug, Clone, Copy)]
enum Success {
    Is(u16),
    /// Cancel of a finished run: 409 still shows that the permission check passed.
    OneOf(u16, u16),
}

struct Route {
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    need: Need,
    ok: Success,
}

const fn r(
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    need: Need,
    ok: Success,
) -> Route {
    Route {
        method,
        path,
        body,
        need,
        ok,
    }
}

/// `{sid}` a stored schedule of alpha, `{rid}` a finished run of alpha, `{victim}` a schedule
/// made for this one call, `{vuser}` a user made for this one call, `{n}` a unique number.
const ROUTES: &[Route] = &[
    r(
        "GET",
        "/api/v1/envs/alpha/schedules",
        None,
        Need::Viewer,
        Success::Is(200),
    ),
    r(
        "GET",
        "/api/v1/envs/alpha/schedules/{sid}",
        None,
        Need::Viewer,
        Success::Is(200),
    ),
    r(
        "POST",
        "/api/v1/envs/alpha/schedules",
        Some(r#"{"name":"made-{n}","kind":"noop","trigger":{"type":"manual"}}"#),
        Need::Operator,
        Success::Is(201),
    ),
    // Setting a new value for an encrypted parameter needs integration.
    r(
        "POST",
        "/api/v1/envs/alpha/schedules",
        Some(
            r#"{"name":"sealed-{n}","kind":"noop","trigger":{"type":"manual"},"params":[{"name":"Token","value":"t-{n}","encrypt":true}]}"#,
        ),
        Need::Integration,
        Success::Is(201),
    ),
    r(
        "PUT",
        "/api/v1/envs/alpha/schedules/{sid}",
        Some(
            r#"{"name":"base {n}","kind":"noop","trigger":{"type":"manual"},"params":[{"name":"Message","value":"hi {n}"}]}"#,
        ),
        Need::Operator,
        Success::Is(200),
    ),
    r(
        "PUT",
        "/api/v1/envs/alpha/schedules/{sid}",
        Some(
            r#"{"name":"base {n}","kind":"noop","trigger":{"type":"manual"},"params":[{"name":"Token","value":"t-{n}","encrypt":true}]}"#,
        ),
        Need::Integration,
        Success::Is(200),
    ),
    r(
        "DELETE",
        "/api/v1/envs/alpha/schedules/{victim}",
        None,
        Need::Operator,
        Success::Is(204),
    ),
    r(
        "POST",
        "/api/v1/envs/alpha/schedules/{sid}/run",
        Some("{}"),
        Need::Operator,
        Success::Is(202),
    ),
    r(
        "GET",
        "/api/v1/envs/alpha/runs",
        None,
        Need::Viewer,
        Success::Is(200),
    ),
    r(
        "GET",
        "/api/v1/envs/alpha/runs/{rid}",
        None,
        Need::Viewer,
        Success::Is(200),
    ),
    r(
        "GET",
        "/api/v1/envs/alpha/runs/{rid}/log",
        None,
        Need::Viewer,
        Success::Is(200),
    ),
    r(
        "POST",
        "/api/v1/envs/alpha/runs/{rid}/cancel",
        None,
        Need::Operator,
        Success::OneOf(202, 409),
    ),
    r(
        "POST",
        "/api/v1/envs/alpha/runs/{rid}/retry",
        None,
        Need::Operator,
        Success::Is(202),
    ),
    r(
        "GET",
        "/api/v1/envs/alpha/files",
        None,
        Need::Viewer,
        Success::Is(200),
    ),
    r(
        "POST",
        "/api/v1/environments",
        Some(r#"{"id":"env-{n}"}"#),
        Need::Admin,
        Success::Is(201),
    ),
    r(
        "GET",
        "/api/v1/environments",
        None,
        Need::SignedIn,
        Success::Is(200),
    ),
    r(
        "GET",
        "/api/v1/environments/alpha",
        None,
        Need::Admin,
        Success::Is(200),
    ),
    r(
        "PUT",
        "/api/v1/environments/alpha",
        Some(r#"{"id":"alpha","name":"Alpha {n}"}"#),
        Need::Admin,
        Success::Is(200),
    ),
    r("GET", "/api/v1/users", None, Need::Admin, Success::Is(200)),
    r(
        "POST",
        "/api/v1/users",
        Some(r#"{"username":"made-{n}","password":"password-{n}","roles":{"alpha":"viewer"}}"#),
        Need::Admin,
        Success::Is(201),
    ),
    r(
        "GET",
        "/api/v1/users/viewer",
        None,
        Need::Admin,
        Success::Is(200),
    ),
    r(
        "PUT",
        "/api/v1/users/{vuser}",
        Some(r#"{"username":"{vuser}","roles":{"alpha":"integration"}}"#),
        Need::Admin,
        Success::Is(200),
    ),
    r(
        "DELETE",
        "/api/v1/users/{vuser}",
        None,
        Need::Admin,
        Success::Is(204),
    ),
    r("GET", "/api/v1/audit", None, Need::Admin, Success::Is(200)),
    r(
        "GET",
        "/api/v1/kinds",
        None,
        Need::SignedIn,
        Success::Is(200),
    ),
    r(
        "POST",
        "/api/v1/trigger-preview",
        Some(r#"{"trigger":{"type":"interval","seconds":60}}"#),
        Need::SignedIn,
        Success::Is(200),
    ),
    r(
        "GET",
        "/api/v1/tokens",
        None,
        Need::SignedIn,
        Success::Is(200),
    ),
];

struct Who {
    name: &'static str,
    token: Option<String>,
    /// Role in `alpha` (Need::Viewer..Integration), None for none.
    alpha: Option<Need>,
    admin: bool,
}

/// The status `who` must get on a route needing `need`: None = the route's success.
fn denial(who: &Who, need: Need) -> Option<u16> {
    if who.token.is_none() {
        return Some(401);
    }
    match need {
        Need::SignedIn => None,
        _ if who.admin => None,
        Need::Admin => Some(403),
        _ => match who.alpha {
            None => Some(404),
            Some(held) if held >= need => None,
            Some(_) => Some(403),
        },
    }
}

/// What a refused call must not have changed.
async fn world(admin: &Client<'_>) -> Value {
    let (_, schedules) = admin.get("/api/v1/envs/alpha/schedules").await;
    let (_, runs) = admin.get("/api/v1/envs/alpha/runs?limit=500").await;
    let run_ids: Vec<Value> = runs
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    let (_, users) = admin.get("/api/v1/users").await;
    let (_, envs) = admin.get("/api/v1/environments").await;
    json!({"schedules": schedules, "runs": run_ids, "users": users, "envs": envs})
}

#[tokio::test]
async fn roles_table_each_route_each_caller() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (s, b) = admin
        .post("/api/v1/environments", json!({"id": "alpha"}))
        .await;
    assert_eq!(s, 201, "create alpha: {b}");

    let viewer = server
        .user(&admin, "viewer", json!({"alpha": "viewer"}), false)
        .await;
    let operator = server
        .user(&admin, "operator", json!({"alpha": "operator"}), false)
        .await;
    let integration = server
        .user(
            &admin,
            "integration",
            json!({"alpha": "integration"}),
            false,
        )
        .await;
    let boss = server.user(&admin, "boss", json!({}), true).await;
    let outsider = server
        .user(&admin, "outsider", json!({"production": "operator"}), false)
        .await;

    let callers = [
        Who {
            name: "viewer",
            token: Some(viewer.token.clone()),
            alpha: Some(Need::Viewer),
            admin: false,
        },
        Who {
            name: "operator",
            token: Some(operator.token.clone()),
            alpha: Some(Need::Operator),
            admin: false,
        },
        Who {
            name: "integration",
            token: Some(integration.token.clone()),
            alpha: Some(Need::Integration),
            admin: false,
        },
        Who {
            name: "boss (admin)",
            token: Some(boss.token.clone()),
            alpha: None,
            admin: true,
        },
        Who {
            name: "outsider (production only)",
            token: Some(outsider.token.clone()),
            alpha: None,
            admin: false,
        },
        Who {
            name: "nobody (no token)",
            token: None,
            alpha: None,
            admin: false,
        },
    ];

    let sid = admin
        .schedule("alpha", json!({"name": "base", "kind": "noop", "trigger": {"type": "manual"}, "params": [{"name": "Message", "value": "hi"}]}))
        .await;
    let rid = admin.run_now("alpha", &sid).await;
    let run = admin
        .wait_final("alpha", &rid, Duration::from_secs(10))
        .await;
    assert_eq!(run["state"], "succeeded", "{run}");

    let mut n = 0u32;
    let mut failures = Vec::new();
    for route in ROUTES {
        for who in &callers {
            n += 1;
            let mut path = route.path.replace("{sid}", &sid).replace("{rid}", &rid);
            let mut body = route.body.map(|b| b.replace("{n}", &n.to_string()));
            let mut victim = None;
            if path.contains("{victim}") {
                let id = admin.schedule("alpha", json!({"name": format!("victim-{n}"), "kind": "noop", "trigger": {"type": "manual"}})).await;
                path = path.replace("{victim}", &id);
                victim = Some(id);
            }
            if path.contains("{vuser}") {
                let name = format!("vuser-{n}");
                let (s, b) = admin.post("/api/v1/users", json!({"username": name, "password": "vuser-password", "roles": {"alpha": "viewer"}})).await;
                assert_eq!(s, 201, "{b}");
                path = path.replace("{vuser}", &name);
                body = body.map(|b| b.replace("{vuser}", &name));
            }
            let before = if route.method != "GET" {
                Some(world(&admin).await)
            } else {
                None
            };
            let body_json =
                body.map(|b| serde_json::from_str::<Value>(&b).expect("table body is JSON"));
            let (status, answer) = server
                .call(route.method, &path, who.token.as_deref(), body_json)
                .await;
            let what = format!("{} {} as {}", route.method, route.path, who.name);
            match denial(who, route.need) {
                Some(want) => {
                    if status != want {
                        failures.push(format!("{what}: want {want}, got {status}: {answer}"));
                        continue;
                    }
                    let code = answer["error"]["code"].as_str().unwrap_or("");
                    let want_code = match want {
                        401 => "unauthorized",
                        403 => "forbidden",
                        _ => "not_found",
                    };
                    if code != want_code {
                        failures.push(format!("{what}: want error.code {want_code}, got {answer}"));
                    }
                    if let Some(before) = before {
                        let after = world(&admin).await;
                        if before != after {
                            failures.push(format!("{what}: refused with {status}, yet something changed:\nbefore {before}\nafter  {after}"));
                        }
                    }
                    if let Some(id) = &victim {
                        let (s, _) = admin
                            .get(&format!("/api/v1/envs/alpha/schedules/{id}"))
                            .await;
                        if s != 200 {
                            failures
                                .push(format!("{what}: refused, yet the schedule is gone ({s})"));
                        }
                    }
                }
                None => {
                    let good = match route.ok {
                        Success::Is(c) => status == c,
                        Success::OneOf(a, b) => status == a || status == b,
                    };
                    if !good {
                        failures.push(format!(
                            "{what}: want {:?}, got {status}: {answer}",
                            route.ok
                        ));
                    }
                    if let Some(id) = &victim {
                        let (s, _) = admin
                            .get(&format!("/api/v1/envs/alpha/schedules/{id}"))
                            .await;
                        if s != 404 {
                            failures.push(format!(
                                "{what}: answered {status}, yet the schedule is still there ({s})"
                            ));
                        }
                    }
                }
            }
        }
    }

    // What "signed in" routes show depends on the caller: only environments with a role.
    let env_ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("list")
            .iter()
            .map(|e| e["id"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let (_, mine) = outsider.get("/api/v1/environments").await;
    if env_ids(&mine) != vec!["production".to_string()] {
        failures.push(format!(
            "outsider's environments: want [production], got {mine}"
        ));
    }
    let (_, mine) = viewer.get("/api/v1/environments").await;
    if env_ids(&mine) != vec!["alpha".to_string()] {
        failures.push(format!("viewer's environments: want [alpha], got {mine}"));
    }
    // A viewer sees schedules but not a secret's value.
    let (_, s) = viewer
        .get(&format!("/api/v1/envs/alpha/schedules/{sid}"))
        .await;
    if let Some(p) = s["params"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "Token"))
    {
        if !p["value"].is_null() || p["is_set"] != true {
            failures.push(format!("viewer sees a sealed parameter as {p}"));
        }
    }

    assert!(
        failures.is_empty(),
        "{} of {n} calls were wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Bad input
// ---------------------------------------------------------------------------------------------

/// Checks an error answer: status, `error.code`, and that `details` names each field.
fn problems(
    what: &str,
    status: u16,
    body: &Value,
    want_status: u16,
    want_code: &str,
    want_fields: &[&str],
) -> Vec<String> {
    let mut out = Vec::new();
    if status != want_status {
        out.push(format!("{what}: want {want_status}, got {status}: {body}"));
        return out;
    }
    if body["error"]["code"] != want_code {
        out.push(format!("{what}: want error.code {want_code}: {body}"));
    }
    if !body["error"]["message"].is_string() {
        out.push(format!("{what}: error.message missing: {body}"));
    }
    let Some(details) = body["error"]["details"].as_array() else {
        out.push(format!("{what}: error.details is not a list: {body}"));
        return out;
    };
    let fields: Vec<&str> = details
        .iter()
        .map(|d| d["field"].as_str().unwrap_or(""))
        .collect();
    for want in want_fields {
        if !fields.contains(want) {
            out.push(format!(
                "{what}: details lack field {want:?} (fields {fields:?}): {body}"
            ));
        }
    }
    for d in details {
        if d["field"].as_str().is_none_or(str::is_empty)
            || d["message"].as_str().is_none_or(str::is_empty)
        {
            out.push(format!("{what}: a detail without field or message: {d}"));
        }
        for key in ["line", "column"] {
            if d.get(key).is_none() {
                out.push(format!("{what}: a detail without {key}: {d}"));
            }
        }
    }
    out
}

#[tokio::test]
async fn bad_input_is_refused_with_every_problem_and_changes_nothing() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (s, b) = admin
        .post("/api/v1/environments", json!({"id": "alpha"}))
        .await;
    assert_eq!(s, 201, "{b}");

    let good = json!({"name": "keep me", "kind": "noop", "trigger": {"type": "cron", "expr": "0 3 * * *", "time_zone": "UTC"},
                      "params": [{"name": "Message", "value": "hello"}]});
    let sid = admin.schedule("production", good.clone()).await;
    let other = admin.schedule("alpha", good.clone()).await;
    let one = format!("/api/v1/envs/production/schedules/{sid}");
    let (_, stored) = admin.get(&one).await;
    let (_, other_stored) = admin
        .get(&format!("/api/v1/envs/alpha/schedules/{other}"))
        .await;
    let (_, list) = admin.get("/api/v1/envs/production/schedules").await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");

    let with = |patch: Value| {
        let mut b = good.clone();
        for (k, v) in patch.as_object().expect("patch") {
            b[k] = v.clone();
        }
        b
    };
    struct Case {
        what: &'static str,
        body: Value,
        status: u16,
        code: &'static str,
        fields: Vec<&'static str>,
    }
    let cases = vec![
        Case {
            what: "invalid cron",
            body: with(json!({"trigger": {"type": "cron", "expr": "61 * * * *"}})),
            status: 422,
            code: "validation_failed",
            fields: vec!["trigger.expr"],
        },
        Case {
            what: "7-field cron",
            body: with(json!({"trigger": {"type": "cron", "expr": "0 0 3 * * * 2030"}})),
            status: 422,
            code: "validation_failed",
            fields: vec!["trigger.expr"],
        },
        Case {
            what: "unknown time zone",
            body: with(
                json!({"trigger": {"type": "cron", "expr": "0 3 * * *", "time_zone": "Mars/Olympus_Mons"}}),
            ),
            status: 422,
            code: "validation_failed",
            fields: vec!["trigger.time_zone"],
        },
        Case {
            what: "unknown kind",
            body: with(json!({"kind": "teleport"})),
            status: 422,
            code: "validation_failed",
            fields: vec!["kind"],
        },
        Case {
            what: "missing name",
            body: with(json!({"name": ""})),
            status: 422,
            code: "validation_failed",
            fields: vec!["name"],
        },
        Case {
            what: "cron sleep without Seconds",
            body: json!({"name": "nap", "kind": "sleep", "trigger": {"type": "cron", "expr": "*/5 * * * *"}}),
            status: 422,
            code: "validation_failed",
            fields: vec![],
        },
        Case {
            what: "unknown field",
            body: with(json!({"colour": "red"})),
            status: 400,
            code: "bad_request",
            fields: vec!["colour"],
        },
        Case {
            what: "mistyped field",
            body: with(json!({"enabled": "yes"})),
            status: 400,
            code: "bad_request",
            fields: vec!["enabled"],
        },
        Case {
            what: "several problems",
            body: json!({"name": "", "kind": "teleport", "trigger": {"type": "cron", "expr": "not a cron", "time_zone": "Nowhere/Land"},
                         "params": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}],
                         "retry": {"max_attempts": 0, "backoff_seconds": 30}, "timeout_seconds": 0}),
            status: 422,
            code: "validation_failed",
            fields: vec![
                "name",
                "kind",
                "trigger.expr",
                "trigger.time_zone",
                "params[1].name",
                "retry.max_attempts",
                "timeout_seconds",
            ],
        },
    ];

    let mut failures = Vec::new();
    let unchanged = |failures: &mut Vec<String>, what: &str, now: &Value, list_now: &Value| {
        if now != &stored {
            failures.push(format!(
                "{what}: the stored schedule changed:\nbefore {stored}\nafter  {now}"
            ));
        }
        if list_now.as_array().map(Vec::len) != Some(1) {
            failures.push(format!("{what}: the schedule list changed: {list_now}"));
        }
    };
    for case in &cases {
        let (s, b) = admin.put(&one, case.body.clone()).await;
        failures.extend(problems(
            &format!("PUT {}", case.what),
            s,
            &b,
            case.status,
            case.code,
            &case.fields,
        ));
        let (s, b2) = admin
            .post("/api/v1/envs/production/schedules", case.body.clone())
            .await;
        failures.extend(problems(
            &format!("POST {}", case.what),
            s,
            &b2,
            case.status,
            case.code,
            &case.fields,
        ));
        if case.what == "cron sleep without Seconds" {
            let named = b["error"]["details"].as_array().is_some_and(|d| {
                d.iter()
                    .any(|d| d["message"].as_str().unwrap_or("").contains("Seconds"))
            });
            if !named {
                failures.push(format!(
                    "cron sleep without Seconds: no detail names Seconds: {b}"
                ));
            }
        }
        let (_, now) = admin.get(&one).await;
        let (_, list_now) = admin.get("/api/v1/envs/production/schedules").await;
        unchanged(&mut failures, case.what, &now, &list_now);
    }

    // Over 1 MiB.
    let mut big = good.clone();
    big["description"] = json!("x".repeat((1 << 20) + 10));
    for method in ["PUT", "POST"] {
        let path = if method == "PUT" {
            one.clone()
        } else {
            "/api/v1/envs/production/schedules".to_string()
        };
        let (s, _, text) = server
            .raw(
                method,
                &path,
                Some(&admin.token),
                Some(big.to_string()),
                &[],
            )
            .await;
        let b: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        failures.extend(problems(
            &format!("{method} over 1 MiB"),
            s,
            &b,
            413,
            "payload_too_large",
            &[],
        ));
    }
    let (_, now) = admin.get(&one).await;
    let (_, list_now) = admin.get("/api/v1/envs/production/schedules").await;
    unchanged(&mut failures, "over 1 MiB", &now, &list_now);

    // Not JSON at all.
    let (s, _, text) = server
        .raw(
            "PUT",
            &one,
            Some(&admin.token),
            Some("{\"name\": ".to_string()),
            &[],
        )
        .await;
    let b: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    failures.extend(problems("PUT not JSON", s, &b, 400, "bad_request", &[]));

    // Unknown environment, and another environment's schedule under the wrong path.
    let not_found = [
        ("GET", "/api/v1/envs/nowhere/schedules".to_string(), None),
        (
            "POST",
            "/api/v1/envs/nowhere/schedules".to_string(),
            Some(good.clone()),
        ),
        (
            "PUT",
            format!("/api/v1/envs/nowhere/schedules/{sid}"),
            Some(good.clone()),
        ),
        (
            "GET",
            format!("/api/v1/envs/production/schedules/{other}"),
            None,
        ),
        (
            "PUT",
            format!("/api/v1/envs/production/schedules/{other}"),
            Some(with(json!({"name": "hijacked"}))),
        ),
        (
            "POST",
            format!("/api/v1/envs/production/schedules/{other}/run"),
            Some(json!({})),
        ),
        (
            "DELETE",
            format!("/api/v1/envs/production/schedules/{other}"),
            None,
        ),
        (
            "PUT",
            format!("/api/v1/envs/alpha/schedules/{sid}"),
            Some(with(json!({"name": "hijacked"}))),
        ),
        (
            "DELETE",
            format!("/api/v1/envs/alpha/schedules/{sid}"),
            None,
        ),
        (
            "GET",
            "/api/v1/envs/production/schedules/not-a-uuid".to_string(),
            None,
        ),
    ];
    for (method, path, body) in not_found {
        let (s, b) = server.call(method, &path, Some(&admin.token), body).await;
        failures.extend(problems(
            &format!("{method} {path}"),
            s,
            &b,
            404,
            "not_found",
            &[],
        ));
    }
    let (_, now) = admin.get(&one).await;
    let (_, list_now) = admin.get("/api/v1/envs/production/schedules").await;
    unchanged(&mut failures, "wrong environment", &now, &list_now);
    let (_, other_now) = admin
        .get(&format!("/api/v1/envs/alpha/schedules/{other}"))
        .await;
    if other_now != other_stored {
        failures.push(format!("alpha's schedule changed through production's path:\nbefore {other_stored}\nafter  {other_now}"));
    }
    let (_, runs) = admin.get("/api/v1/envs/alpha/runs").await;
    if runs.as_array().map(Vec::len) != Some(0) {
        failures.push(format!("a run started through the wrong path: {runs}"));
    }

    // Controls: the same endpoints do accept good input, so "unchanged" above means refused.
    let (s, b) = admin
        .post(
            "/api/v1/envs/production/schedules",
            json!({"name": "nap", "kind": "sleep", "trigger": {"type": "manual"}}),
        )
        .await;
    if s != 201 {
        failures.push(format!(
            "a manual sleep template may leave Seconds to the caller: want 201, got {s}: {b}"
        ));
    }
    let (s, b) = admin.put(&one, with(json!({"name": "renamed"}))).await;
    if s != 200 || b["name"] != "renamed" {
        failures.push(format!("a good PUT: want 200 renamed, got {s}: {b}"));
    }
    let (_, now) = admin.get(&one).await;
    if now["name"] != "renamed" {
        failures.push(format!("a good PUT did not store: {now}"));
    }

    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Secrets
// ---------------------------------------------------------------------------------------------

fn sealed_param<'a>(schedule: &'a Value, name: &str) -> &'a Value {
    schedule["params"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no parameter {name} in {schedule}"))
}

fn assert_masked(what: &str, schedule: &Value, name: &str) {
    let p = sealed_param(schedule, name);
    assert_eq!(p["value"], Value::Null, "{what}: {name} shown as {p}");
    assert_eq!(p["encrypt"], true, "{what}: {p}");
    assert_eq!(p["is_set"], true, "{what}: {p}");
}

#[tokio::test]
async fn secrets_never_leave_the_server() {
    let secret = format!("pw-{}-Zq", uuid::Uuid::now_v7().simple());
    let marker = format!("plain-{}-Mk", uuid::Uuid::now_v7().simple());
    let digest = hex::encode(sha2::Sha256::digest(secret.as_bytes()));
    let mut server = Server::start_with(Options {
        args: vec!["--allow-command".into(), "/bin/sh".into()],
        env: vec![],
    })
    .await;
    let leaks = |what: &str, text: &str| {
        assert!(!text.contains(&secret), "{what} shows the secret: {text}")
    };

    {
        let admin = server.admin().await;
        let operator = server
            .user(&admin, "op", json!({"production": "operator"}), false)
            .await;

        // The run proves it received the secret by comparing a hash, never printing it.
        let body = json!({
            "name": "uses a secret", "kind": "command", "trigger": {"type": "manual"},
            "params": [
                {"name": "Program", "value": "/bin/sh"},
                {"name": "Args", "value": json!(["-c", format!("printf %s \"$PW\" | sha256sum | grep -q {digest}")]).to_string()},
                {"name": "Env", "value": format!("PW={secret}"), "encrypt": true},
                {"name": "Password", "value": secret, "encrypt": true},
                // A control: a plain value is found where the secret must not be.
                {"name": "Note", "value": marker},
            ]
        });
        let (s, created) = admin
            .post("/api/v1/envs/production/schedules", body.clone())
            .await;
        assert_eq!(s, 201, "{created}");
        leaks("create answer", &created.to_string());
        assert_masked("create answer", &created, "Password");
        assert_masked("create answer", &created, "Env");
        let sid = created["id"].as_str().expect("id").to_string();
        let one = format!("/api/v1/envs/production/schedules/{sid}");

        // Read back.
        let (_, got) = admin.get(&one).await;
        leaks("schedule GET", &got.to_string());
        assert!(
            got.to_string().contains(&marker),
            "the control value is not shown: {got}"
        );
        assert_masked("schedule GET", &got, "Password");
        let (_, list) = admin.get("/api/v1/envs/production/schedules").await;
        leaks("schedule list", &list.to_string());

        // The run gets the secret.
        let rid = admin.run_now("production", &sid).await;
        let run = admin
            .wait_final("production", &rid, Duration::from_secs(20))
            .await;
        assert_eq!(
            run["state"], "succeeded",
            "the run did not get the secret: {run}"
        );
        leaks("run GET", &run.to_string());
        assert_masked("run GET", &run, "Password");
        let (_, log) = admin
            .get(&format!("/api/v1/envs/production/runs/{rid}/log"))
            .await;
        leaks("run log", &log.to_string());
        let (_, runs) = admin.get("/api/v1/envs/production/runs").await;
        leaks("run list", &runs.to_string());
        let (_, audit) = admin.get("/api/v1/audit?limit=500").await;
        leaks("audit", &audit.to_string());

        // GET → PUT round trip (value null) keeps the sealed values, for admin and operator.
        let (s, put) = admin.put(&one, got.clone()).await;
        assert_eq!(s, 200, "admin GET→PUT: {put}");
        assert_masked("after admin round trip", &put, "Password");
        let (s, put) = operator.put(&one, got.clone()).await;
        assert_eq!(s, 200, "operator GET→PUT with null secrets: {put}");
        assert_masked("after operator round trip", &put, "Password");
        assert_masked("after operator round trip", &put, "Env");
        let rid2 = admin.run_now("production", &sid).await;
        let run2 = admin
            .wait_final("production", &rid2, Duration::from_secs(20))
            .await;
        assert_eq!(
            run2["state"], "succeeded",
            "after the round trips the run no longer gets the secret: {run2}"
        );

        // An operator may not set a new secret value, on PUT or on create.
        let (_, before) = admin.get(&one).await;
        let mut replace = got.clone();
        for p in replace["params"].as_array_mut().expect("params") {
            if p["name"] == "Password" {
                p["value"] = json!("operator-chosen");
            }
        }
        let (s, b) = operator.put(&one, replace).await;
        assert_eq!(s, 403, "operator setting a secret: {b}");
        assert_eq!(b["error"]["code"], "forbidden", "{b}");
        let (_, after) = admin.get(&one).await;
        assert_eq!(before, after, "a refused PUT changed the schedule");
        // ... nor turn a stored secret into plain text.
        let mut downgrade = got.clone();
        for p in downgrade["params"].as_array_mut().expect("params") {
            if p["name"] == "Password" {
                p["value"] = json!("now-in-clear");
                p["encrypt"] = json!(false);
            }
        }
        let (s, b) = operator.put(&one, downgrade).await;
        assert_eq!(s, 403, "operator replacing a secret with plain text: {b}");
        let (_, after) = admin.get(&one).await;
        assert_eq!(before, after, "a refused PUT changed the schedule");
        let (s, b) = operator
            .post("/api/v1/envs/production/schedules", body.clone())
            .await;
        assert_eq!(s, 403, "operator creating a schedule with a secret: {b}");
        let (_, list) = admin.get("/api/v1/envs/production/schedules").await;
        assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
        // ... and the stored secret still works after the refused PUT.
        let rid3 = admin.run_now("production", &sid).await;
        let run3 = admin
            .wait_final("production", &rid3, Duration::from_secs(20))
            .await;
        assert_eq!(run3["state"], "succeeded", "{run3}");

        // A secret in a run-now body is sealed too, and works.
        let (s, b) = admin
            .post(&format!("{one}/run"), json!({"params": [{"name": "Env", "value": format!("PW={secret}"), "encrypt": true}]}))
            .await;
        assert_eq!(s, 202, "{b}");
        leaks("run-now answer", &b.to_string());
        let rid4 = b["run_id"].as_str().expect("run_id").to_string();
        let run4 = admin
            .wait_final("production", &rid4, Duration::from_secs(20))
            .await;
        assert_eq!(run4["state"], "succeeded", "{run4}");
        leaks("run-now run", &run4.to_string());
        assert_masked("run-now run", &run4, "Env");

        // Retry copies the sealed values.
        let (s, b) = admin
            .post(
                &format!("/api/v1/envs/production/runs/{rid4}/retry"),
                json!({}),
            )
            .await;
        assert_eq!(s, 202, "{b}");
        let rid5 = b["run_id"].as_str().expect("run_id").to_string();
        let run5 = admin
            .wait_final("production", &rid5, Duration::from_secs(20))
            .await;
        assert_eq!(run5["state"], "succeeded", "{run5}");
        leaks("retried run", &run5.to_string());
    }

    server.terminate();
    std::thread::sleep(Duration::from_millis(300));
    leaks("the server's stderr", &server.stderr_log());
    assert!(
        server.stderr_log().contains("stopped"),
        "the stderr log was not captured to the end: {}",
        server.stderr_log()
    );
    let files = all_bytes_under(&server.dir);
    assert!(
        files.iter().any(|(_, b)| contains(b, marker.as_bytes())),
        "the control value is in no file of the data dir, so the scan proves nothing"
    );
    assert!(
        files.iter().any(|(p, _)| p.ends_with("master.key")),
        "no master.key under {:?}",
        server.dir
    );
    for (path, bytes) in &files {
        assert!(
            !contains(bytes, secret.as_bytes()),
            "{} holds the secret in plain text",
            path.display()
        );
    }
}

fn snapshot(dir: &std::path::Path) -> BTreeMap<PathBuf, Vec<u8>> {
    all_bytes_under(dir).into_iter().collect()
}

#[tokio::test]
async fn wrong_master_key_stops_start_up_and_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let sid;
    {
        let mut server = Server::start_in(&dir, Options::default()).expect("first start");
        let admin = server.admin().await;
        sid = admin
            .schedule(
                "production",
                json!({"name": "sealed", "kind": "noop", "trigger": {"type": "interval", "seconds": 3600},
                       "params": [{"name": "Password", "value": "kept-secret", "encrypt": true}]}),
            )
            .await;
        drop(admin);
        let status = server.terminate();
        assert!(
            status.success(),
            "the server did not stop cleanly: {status}"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let before = snapshot(&dir);
    assert!(
        before.keys().any(|p| p.ends_with("master.key")),
        "{:?}",
        before.keys()
    );

    let wrong = Options {
        args: vec![],
        env: vec![("BATON_MASTER_KEY".into(), "ab".repeat(32))],
    };
    match Server::start_in(&dir, wrong) {
        Ok(mut s) => {
            s.kill();
            panic!("the server started with a wrong master key");
        }
        Err(stderr) => assert!(stderr.contains("wrong master key"), "stderr: {stderr}"),
    }
    let after = snapshot(&dir);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "files came or went"
    );
    for (path, bytes) in &before {
        assert!(
            after.get(path) == Some(bytes),
            "{} changed on a refused start",
            path.display()
        );
    }

    // The right key still opens it all.
    let server = Server::start_in(&dir, Options::default()).expect("restart with the right key");
    let admin = server.admin().await;
    let (s, got) = admin
        .get(&format!("/api/v1/envs/production/schedules/{sid}"))
        .await;
    assert_eq!(s, 200, "{got}");
    assert_masked("after restart", &got, "Password");
}
