//! Core surfaces a user meets first: the CLI on a data dir, key rotation, refusing files it
//! cannot read, catch-up after downtime, /metrics, the OpenAPI document, trigger previews and
//! the concurrency limits.

use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::support::{bin, Options, Server, ADMIN_PASSWORD};

/// What a CLI command did: success, stdout, stderr.
struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `baton --data-dir DIR ARGS…`, feeding `stdin` when given.
fn cli(dir: &Path, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(bin());
    cmd.arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("BATON_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("RUST_LOG", "warn")
        .env_remove("BATON_MASTER_KEY")
        .env_remove("BATON_MASTER_KEY_FILE")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn baton");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("baton exits");
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn time(v: &Value) -> DateTime<Utc> {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("not a time string: {v}"));
    assert!(s.ends_with('Z'), "time not in UTC with Z: {s}");
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("not RFC 3339: {s}: {e}"))
        .with_timezone(&Utc)
}

fn db_bytes(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join(baton::store::DB_FILE)).expect("read the database file")
}

// ---------------------------------------------------------------------------------------
// 1. CLI
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn cli_sets_up_a_data_dir_that_the_server_then_serves() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");

    // A fresh data dir is initialised by the first command.
    let out = cli(
        &dir,
        &["env", "add", "staging", "--time-zone", "Europe/Paris"],
        None,
        &[],
    );
    assert!(out.ok, "env add failed: {}", out.stderr);
    assert!(
        out.stdout.contains("staging") && out.stdout.contains("Europe/Paris"),
        "env add says: {}",
        out.stdout
    );

    let out = cli(
        &dir,
        &["user", "add", "ops", "--role", "staging=operator"],
        None,
        &[],
    );
    assert!(out.ok, "user add failed: {}", out.stderr);
    let ops_password = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no `password: PW` line in {:?}", out.stdout))
        .trim()
        .to_string();
    assert!(ops_password.len() >= 8, "a weak password: {ops_password:?}");

    let chosen = "chosen-by-stdin-42";
    let out = cli(
        &dir,
        &[
            "user",
            "add",
            "watcher",
            "--role",
            "staging=viewer",
            "--password-stdin",
        ],
        Some(&format!("{chosen}\n")),
        &[],
    );
    assert!(out.ok, "user add --password-stdin failed: {}", out.stderr);
    assert!(
        !out.stdout.contains("password:") && !out.stdout.contains(chosen),
        "--password-stdin still prints a password: {}",
        out.stdout
    );

    let out = cli(&dir, &["token", "create", "ops"], None, &[]);
    assert!(out.ok, "token create failed: {}", out.stderr);
    let token = out
        .stdout
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .expect("a token line")
        .trim()
        .to_string();
    let out = cli(&dir, &["token", "create", "nobody"], None, &[]);
    assert!(!out.ok, "a token for an unknown user was created");
    assert!(out.stderr.contains("nobody"), "{}", out.stderr);

    // Bad input: a clear message and a non-zero exit, nothing created.
    let out = cli(
        &dir,
        &["user", "add", "bad", "--role", "staging=boss"],
        None,
        &[],
    );
    assert!(!out.ok, "--role staging=boss was accepted: {}", out.stdout);
    assert!(
        out.stderr.contains("roles.staging")
            && out.stderr.contains("viewer, operator or integration"),
        "unclear message for a bad role: {}",
        out.stderr
    );
    let out = cli(
        &dir,
        &["user", "add", "bad2", "--role", "staging"],
        None,
        &[],
    );
    assert!(!out.ok, "--role without = was accepted");
    assert!(out.stderr.contains("ENV=ROLE"), "{}", out.stderr);
    let out = cli(&dir, &["env", "add", "Bad_Id"], None, &[]);
    assert!(!out.ok, "env add Bad_Id was accepted: {}", out.stdout);
    assert!(
        out.stderr.contains("id") && out.stderr.contains("lowercase"),
        "unclear message for a bad environment id: {}",
        out.stderr
    );
    let out = cli(
        &dir,
        &["env", "add", "mars", "--time-zone", "Mars/Olympus"],
        None,
        &[],
    );
    assert!(!out.ok, "an unknown time zone was accepted");
    assert!(out.stderr.contains("Mars/Olympus"), "{}", out.stderr);

    // The server serves what the CLI made.
    let server = Server::start_in(&dir, Options::default()).expect("server starts");
    let path_staging = "/api/v1/envs/staging/schedules";
    let (s, b) = server.call("GET", path_staging, Some(&token), None).await;
    assert_eq!(
        s, 200,
        "ops lists staging schedules with the CLI token: {b}"
    );
    assert!(b.is_array(), "{b}");
    let (s, b) = server
        .call(
            "GET",
            "/api/v1/envs/production/schedules",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, 404, "ops has no role in production: {b}");
    let (s, envs) = server
        .call("GET", "/api/v1/environments", Some(&token), None)
        .await;
    assert_eq!(s, 200, "{envs}");
    let envs = envs.as_array().expect("a list");
    assert_eq!(envs.len(), 1, "ops sees only staging: {envs:?}");
    assert_eq!(envs[0]["id"], "staging");
    assert_eq!(envs[0]["time_zone"], "Europe/Paris");
    // Both passwords work: the printed one and the one given on stdin.
    server.token("ops", &ops_password).await;
    let watcher = server.token("watcher", chosen).await;
    let (s, _) = server.call("GET", path_staging, Some(&watcher), None).await;
    assert_eq!(s, 200);
    // The users that bad input would have made do not exist.
    let admin = server.admin().await;
    for name in ["bad", "bad2"] {
        let (s, b) = admin.get(&format!("/api/v1/users/{name}")).await;
        assert_eq!(s, 404, "user {name} exists after a refused command: {b}");
    }

    // While the server holds the data dir, a CLI command says so.
    let out = cli(&dir, &["env", "add", "other"], None, &[]);
    assert!(!out.ok, "a command ran beside the server: {}", out.stdout);
    assert!(
        out.stderr.contains("in use"),
        "the message does not say the data dir is in use: {}",
        out.stderr
    );
    let (s, b) = admin.get("/api/v1/environments/other").await;
    assert_eq!(s, 404, "{b}");
}

// ---------------------------------------------------------------------------------------
// 2. keys rotate
// ---------------------------------------------------------------------------------------

const SECRET: &str = "expected-Secret-9d2";

fn start_with_sh(dir: &Path, env: Vec<(String, String)>) -> Result<Server, String> {
    Server::start_in(
        dir,
        Options {
            args: vec!["--allow-command".into(), "/bin/sh".into()],
            env,
        },
    )
}

/// Runs the secret-checking schedule and returns the final state.
async fn run_state(server: &Server, sid: &str, body: Value) -> String {
    let admin = server.admin().await;
    let rid = admin.run_now_with("production", sid, body).await;
    let run = admin
        .wait_final("production", &rid, Duration::from_secs(20))
        .await;
    run["state"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn keys_rotate_keeps_secrets_usable_and_replaces_the_master_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let key_file = dir.join("master.key");

    let mut server = start_with_sh(&dir, vec![]).expect("server starts");
    let sid = {
        let admin = server.admin().await;
        admin
            .schedule(
                "production",
                json!({"name": "needs the secret", "kind": "command", "trigger": {"type": "manual"},
                "params": [
                    {"name": "Program", "value": "/bin/sh"},
                    {"name": "Args", "value": json!(["-c", format!("test \"$PW\" = {SECRET}")]).to_string()},
                    {"name": "Env", "value": format!("PW={SECRET}"), "encrypt": true}
                ]}),
            )
            .await
    };
    assert_eq!(run_state(&server, &sid, json!({})).await, "succeeded");
    // The check is real: with another value the run fails.
    let wrong = json!({"params": [{"name": "Env", "value": "PW=wrong", "encrypt": true}]});
    assert_eq!(run_state(&server, &sid, wrong).await, "failed");
    // A chain hop carrying the secret as a sealed literal in its async-TaskChain text.
    let source = {
        let admin = server.admin().await;
        admin
            .chain("production", json!({"name": "check", "schedule_id": sid}))
            .await;
        let text = json!({"name": "check", "params": [{"name": "Env", "value": format!("PW={SECRET}"), "encrypt": true}]});
        admin
            .schedule(
                "production",
                json!({"name": "starts the check", "kind": "noop", "trigger": {"type": "manual"},
                    "params": [{"name": "async-TaskChain", "value": text.to_string()}]}),
            )
            .await
    };
    assert!(server.terminate().success(), "clean exit on SIGTERM");
    let chain_key_id = || {
        let store = baton::store::Store::open(&dir).expect("open through the library");
        let id = uuid::Uuid::parse_str(&source).unwrap();
        let schedule = store.schedule(id).unwrap().expect("the source");
        let Some(baton::domain::ParamValue::Plain(text)) =
            schedule.param("async-TaskChain").map(|p| p.value.clone())
        else {
            panic!("no chain text")
        };
        let stored: Value = serde_json::from_str(&text).unwrap();
        stored["params"][0]["value"]["sealed"]["key_id"].clone()
    };
    let key_before = chain_key_id();
    assert!(
        key_before.is_u64(),
        "the literal is stored sealed: {key_before}"
    );

    let old_key = std::fs::read(&key_file).expect("master.key");
    assert_eq!(old_key.len(), 32);

    // New data keys, every sealed value re-sealed; the master key stays.
    let out = cli(&dir, &["keys", "rotate"], None, &[]);
    assert!(out.ok, "keys rotate failed: {}", out.stderr);
    let resealed: u64 = out
        .stdout
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(3)
        .find(|w| w[1] == "sealed" && w[2].starts_with("values"))
        .and_then(|w| w[0].parse().ok())
        .unwrap_or_else(|| panic!("no count of re-sealed values in {:?}", out.stdout));
    assert!(resealed >= 1, "nothing re-sealed: {}", out.stdout);
    assert_eq!(std::fs::read(&key_file).unwrap(), old_key);

    assert_ne!(
        chain_key_id(),
        key_before,
        "the sealed literal in the chain text was re-sealed under the new data key"
    );

    let mut server = start_with_sh(&dir, vec![]).expect("restart after keys rotate");
    assert_eq!(
        run_state(&server, &sid, json!({})).await,
        "succeeded",
        "the secret no longer opens after keys rotate"
    );
    {
        let admin = server.admin().await;
        let rid = admin.run_now("production", &source).await;
        let done = admin
            .wait_final("production", &rid, Duration::from_secs(20))
            .await;
        let child = done["chain"]["children"][0]["id"]
            .as_str()
            .expect("a hop")
            .to_string();
        let checked = admin
            .wait_final("production", &child, Duration::from_secs(20))
            .await;
        assert_eq!(
            checked["state"], "succeeded",
            "the chain's secret opens: {checked}"
        );
    }
    assert!(server.terminate().success());

    // A new master key: the data keys re-wrapped, the key file replaced.
    let new_key_path = tmp.path().join("new.key");
    let new_key: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    std::fs::write(&new_key_path, &new_key).expect("write new key");
    // As a user might leave it: readable by others. The key file must not end up so.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&new_key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let out = cli(
        &dir,
        &[
            "keys",
            "rotate",
            "--new-master-key-file",
            new_key_path.to_str().unwrap(),
        ],
        None,
        &[],
    );
    assert!(
        out.ok,
        "keys rotate --new-master-key-file failed: {}",
        out.stderr
    );
    assert_eq!(
        std::fs::read(&key_file).unwrap(),
        new_key,
        "the key file in the data dir was not replaced"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the replaced key file has mode {mode:o}");
    }

    let mut server = start_with_sh(&dir, vec![]).expect("restart under the new master key");
    assert_eq!(run_state(&server, &sid, json!({})).await, "succeeded");
    assert!(server.terminate().success());

    // The old key no longer opens the data dir, and the refused start changes nothing.
    let before = db_bytes(&dir);
    let err = match start_with_sh(
        &dir,
        vec![("BATON_MASTER_KEY".into(), hex::encode(&old_key))],
    ) {
        Ok(_) => panic!("the server started with the old master key"),
        Err(e) => e,
    };
    assert!(err.contains("wrong master key"), "stderr: {err}");
    assert!(
        db_bytes(&dir) == before,
        "a refused start changed the database"
    );
    assert_eq!(std::fs::read(&key_file).unwrap(), new_key);
}

// ---------------------------------------------------------------------------------------
// 3. Files of a newer version, corrupt files
// ---------------------------------------------------------------------------------------

fn refused_start(dir: &Path) -> String {
    match Server::start_in(dir, Options::default()) {
        Ok(_) => panic!("the server started on {}", dir.display()),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_left_untouched() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A data dir a server has used, and one only the library has made.
    let used = tmp.path().join("used");
    let mut server = Server::start_in(&used, Options::default()).expect("server starts");
    assert!(server.terminate().success());
    let bare = tmp.path().join("bare");

    for dir in [&used, &bare] {
        {
            let store = baton::store::Store::open(dir).expect("open through the library");
            store
                .set_meta("schema_version", &99u32.to_le_bytes())
                .expect("set schema_version");
        }
        let before = db_bytes(dir);
        let err = refused_start(dir);
        assert!(
            err.contains("newer") && err.contains("schema 99"),
            "{}: the message does not name the newer schema: {err}",
            dir.display()
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            db_bytes(dir) == before,
            "{}: a refused start changed the database file",
            dir.display()
        );
        // A CLI command is refused the same way.
        let out = cli(dir, &["env", "add", "later"], None, &[]);
        assert!(!out.ok);
        assert!(out.stderr.contains("schema 99"), "{}", out.stderr);
        assert!(
            db_bytes(dir) == before,
            "a refused command changed the file"
        );
    }
}

#[tokio::test]
async fn a_corrupt_database_is_refused_and_left_untouched() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let mut server = Server::start_in(&dir, Options::default()).expect("server starts");
    assert!(server.terminate().success());

    // Garbage of a plausible size (deterministic, no redb header).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let garbage: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(dir.join(baton::store::DB_FILE), &garbage).unwrap();

    let err = refused_start(&dir);
    let lower = err.to_lowercase();
    assert!(
        lower.contains("damaged") || lower.contains("corrupt"),
        "no clear message for a corrupt database: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        db_bytes(&dir) == garbage,
        "a refused start changed the corrupt file"
    );
    let out = cli(&dir, &["env", "add", "later"], None, &[]);
    assert!(!out.ok);
    assert!(
        db_bytes(&dir) == garbage,
        "a refused command changed the file"
    );
}

// ---------------------------------------------------------------------------------------
// 4. Catch-up after downtime
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn catch_up_after_downtime_runs_once_or_skips() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let mut server = Server::start_in(&dir, Options::default()).expect("server starts");
    let (once, skip) = {
        let admin = server.admin().await;
        let mk = |name: &str, policy: &str| {
            json!({"name": name, "kind": "noop", "trigger": {"type": "interval", "seconds": 1},
                   "catch_up": policy})
        };
        let once = admin
            .schedule("production", mk("every second, once", "once"))
            .await;
        let skip = admin
            .schedule("production", mk("every second, skip", "skip"))
            .await;
        for id in [&once, &skip] {
            admin
                .wait_for(
                    &format!("/api/v1/envs/production/runs?schedule={id}"),
                    Duration::from_secs(15),
                    |b| b.as_array().is_some_and(|a| !a.is_empty()),
                )
                .await;
        }
        (once, skip)
    };
    assert!(server.terminate().success());
    let down_from = Utc::now();
    std::thread::sleep(Duration::from_secs(4));
    let server = Server::start_in(&dir, Options::default()).expect("restart");
    // Up again: due times after this one are no longer missed.
    let up_at = Utc::now();
    let admin = server.admin().await;

    // Both schedules carry on after the restart.
    for id in [&once, &skip] {
        admin
            .wait_for(
                &format!("/api/v1/envs/production/runs?schedule={id}&limit=500"),
                Duration::from_secs(15),
                |b| {
                    b.as_array().is_some_and(|a| {
                        a.iter()
                            .any(|r| r["due_at"].is_string() && time(&r["due_at"]) > up_at)
                    })
                },
            )
            .await;
    }

    let due_times = |runs: &[Value]| -> Vec<DateTime<Utc>> {
        runs.iter()
            .map(|r| {
                assert_eq!(r["origin"], "schedule", "{r}");
                time(&r["due_at"])
            })
            .collect()
    };
    let in_downtime = |t: &DateTime<Utc>| *t > down_from && *t <= up_at;

    let once_due = due_times(&admin.runs_of("production", &once).await);
    let caught: Vec<_> = once_due.iter().filter(|t| in_downtime(t)).collect();
    assert_eq!(
        caught.len(),
        1,
        "catch_up once: runs for missed times {caught:?} (down {down_from} .. {up_at})"
    );
    // The latest missed time, not the first one (the downtime is ~4 s of 1 s intervals).
    assert!(
        *caught[0] > up_at - chrono::Duration::milliseconds(2500),
        "catch_up once ran for {} instead of the latest missed time (up at {up_at})",
        caught[0]
    );

    let skip_due = due_times(&admin.runs_of("production", &skip).await);
    let missed: Vec<_> = skip_due.iter().filter(|t| in_downtime(t)).collect();
    assert!(
        missed.is_empty(),
        "catch_up skip ran for missed times {missed:?} (down {down_from} .. {up_at})"
    );

    for (name, due) in [("once", &once_due), ("skip", &skip_due)] {
        let unique: BTreeSet<_> = due.iter().collect();
        assert_eq!(
            unique.len(),
            due.len(),
            "{name}: a due time fired twice: {due:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 5. /metrics, OpenAPI, trigger preview
// ---------------------------------------------------------------------------------------

/// The value of an unlabelled metric in Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok())?
    })
}

#[tokio::test]
async fn metrics_count_runs_in_prometheus_text() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (s, headers, text) = server.raw("GET", "/metrics", None, None, &[]).await;
    assert_eq!(s, 200, "/metrics needs no token: {text}");
    let ctype = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(ctype.starts_with("text/plain"), "content-type {ctype}");
    // Every line is a comment or `name[{labels}] value`, each sample declared by # TYPE.
    let mut typed = HashSet::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let name = parts.next().expect("a name");
            let kind = parts.next().expect("a type");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            typed.insert(name.to_string());
            continue;
        }
        if line.starts_with('#') {
            assert!(line.starts_with("# HELP "), "odd comment: {line}");
            continue;
        }
        let (name, value) = line.rsplit_once(' ').expect("name value");
        let bare = name.split('{').next().unwrap();
        assert!(
            bare.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        let family = bare
            .strip_suffix("_bucket")
            .or_else(|| bare.strip_suffix("_sum"))
            .or_else(|| bare.strip_suffix("_count"))
            .filter(|f| typed.contains(*f))
            .unwrap_or(bare);
        assert!(typed.contains(family), "no # TYPE before {line}");
        assert!(value.parse::<f64>().is_ok(), "bad value: {line}");
    }
    let before = metric(&text, "baton_runs_succeeded_total").expect("baton_runs_succeeded_total");

    let sid = admin
        .schedule(
            "production",
            json!({"name": "counted", "kind": "noop", "trigger": {"type": "manual"}}),
        )
        .await;
    let rid = admin.run_now("production", &sid).await;
    let run = admin
        .wait_final("production", &rid, Duration::from_secs(20))
        .await;
    assert_eq!(run["state"], "succeeded", "{run}");
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, _, text) = server.raw("GET", "/metrics", None, None, &[]).await;
        let now = metric(&text, "baton_runs_succeeded_total").expect("still there");
        if now >= before + 1.0 {
            break;
        }
        assert!(
            Instant::now() < end,
            "baton_runs_succeeded_total stayed at {now} (before: {before})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `/a/{x}/b` → `/a/{}/b`: OpenAPI treats paths that differ only in parameter names as one.
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

/// (method, path) of every route in src/api/mod.rs's table.
fn route_table() -> Vec<(String, String)> {
    let source = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/api/mod.rs"));
    let text: String = source.chars().filter(|c| !c.is_whitespace()).collect();
    let scope_at = text
        .find("web::scope(\"/api/v1\")")
        .expect("the /api/v1 scope");
    let mut routes = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find(".route(\"") {
        let at = from + i + ".route(\"".len();
        let end = at + text[at..].find('"').expect("closing quote");
        let path = &text[at..end];
        let rest = text[end..].strip_prefix("\",web::").expect("web::METHOD");
        let method = &rest[..rest.find('(').expect("(")];
        let prefix = if at > scope_at { "/api/v1" } else { "" };
        routes.push((method.to_string(), format!("{prefix}{path}")));
        from = end;
    }
    assert!(routes.len() > 40, "the route table parsed to {routes:?}");
    routes
}

#[tokio::test]
async fn openapi_lists_every_route_and_trigger_preview_answers() {
    let server = Server::start().await;
    let admin = server.admin().await;

    let (s, headers, text) = server
        .raw("GET", "/api/v1/openapi.json", None, None, &[])
        .await;
    assert_eq!(s, 200, "{text}");
    let ctype = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        ctype.starts_with("application/json"),
        "content-type {ctype}"
    );
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented = HashSet::new();
    let mut shapes = HashSet::new();
    for (path, ops) in paths {
        assert!(
            shapes.insert(shape(path)),
            "two paths differ only in parameter names (invalid OpenAPI): {path}"
        );
        for method in ops.as_object().expect("operations").keys() {
            documented.insert((method.clone(), shape(path)));
        }
    }
    let missing: Vec<_> = route_table()
        .into_iter()
        .filter(|(m, p)| !documented.contains(&(m.clone(), shape(p))))
        .collect();
    assert!(
        missing.is_empty(),
        "routes missing from openapi.json: {missing:?}"
    );

    // Trigger preview: a cron in a zone.
    let (s, b) = admin
        .post(
            "/api/v1/trigger-preview",
            json!({"trigger": {"type": "cron", "expr": "0 30 2 * * *", "time_zone": "America/Denver"}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let description = b["description"].as_str().unwrap_or_default();
    assert!(
        description.contains("02:30"),
        "description: {description:?}"
    );
    let next: Vec<DateTime<Utc>> = b["next"]
        .as_array()
        .expect("next")
        .iter()
        .map(time)
        .collect();
    assert_eq!(next.len(), 5, "{b}");
    let now = Utc::now();
    for (i, t) in next.iter().enumerate() {
        assert!(*t > now - chrono::Duration::seconds(5), "a past time: {t}");
        let local = t.with_timezone(&chrono_tz::America::Denver);
        assert_eq!(
            local.format("%H:%M:%S").to_string(),
            "02:30:00",
            "{t} is {local} in Denver"
        );
        if i > 0 {
            assert!(next[i - 1] < *t, "not increasing: {next:?}");
        }
    }

    let (s, b) = admin
        .post(
            "/api/v1/trigger-preview",
            json!({"trigger": {"type": "manual"}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["next"], json!([]), "{b}");
    assert!(
        b["description"].as_str().is_some_and(|d| !d.is_empty()),
        "{b}"
    );

    for bad in ["61 * * * *", "0 0 0 * * * 2030", "not a cron"] {
        let (s, b) = admin
            .post(
                "/api/v1/trigger-preview",
                json!({"trigger": {"type": "cron", "expr": bad, "time_zone": "UTC"}}),
            )
            .await;
        assert_eq!(s, 422, "{bad:?}: {b}");
        let fields: Vec<_> = b["error"]["details"]
            .as_array()
            .expect("details")
            .iter()
            .map(|d| d["field"].clone())
            .collect();
        assert!(fields.contains(&json!("trigger.expr")), "{bad:?}: {b}");
    }
    // Not signed in: 401.
    let (s, _) = server
        .call(
            "POST",
            "/api/v1/trigger-preview",
            None,
            Some(json!({"trigger": {"type": "manual"}})),
        )
        .await;
    assert_eq!(s, 401);
}

// ---------------------------------------------------------------------------------------
// 6. Limits
// ---------------------------------------------------------------------------------------

/// Starts two runs of `sid` together; returns them final, in start order.
async fn two_runs(admin: &crate::support::Client<'_>, env: &str, sid: &str) -> Vec<Value> {
    let (a, b) = tokio::join!(admin.run_now(env, sid), admin.run_now(env, sid));
    let mut runs = Vec::new();
    for rid in [a, b] {
        let run = admin.wait_final(env, &rid, Duration::from_secs(30)).await;
        assert_eq!(run["state"], "succeeded", "{run}");
        runs.push(run);
    }
    runs.sort_by_key(|r| time(&r["started_at"]));
    runs
}

fn sleeper() -> Value {
    json!({"name": "sleeps", "kind": "sleep", "trigger": {"type": "manual"},
           "params": [{"name": "Seconds", "value": "1"}]})
}

#[tokio::test]
async fn the_global_run_limit_serialises_runs() {
    let server = Server::start_with(Options {
        args: vec!["--max-concurrent-runs".into(), "1".into()],
        env: vec![],
    })
    .await;
    let admin = server.admin().await;
    let sid = admin.schedule("production", sleeper()).await;
    let runs = two_runs(&admin, "production", &sid).await;
    assert!(
        time(&runs[1]["started_at"]) >= time(&runs[0]["finished_at"]),
        "with --max-concurrent-runs 1 two runs overlapped: {} started before {} finished",
        runs[1]["started_at"],
        runs[0]["finished_at"]
    );
}

#[tokio::test]
async fn an_environment_limit_serialises_only_that_environment() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (s, b) = admin
        .post(
            "/api/v1/environments",
            json!({"id": "small", "max_concurrent_runs": 1}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let small = admin.schedule("small", sleeper()).await;
    let big = admin.schedule("production", sleeper()).await;
    let (small_runs, big_runs) = tokio::join!(
        two_runs(&admin, "small", &small),
        two_runs(&admin, "production", &big)
    );
    assert!(
        time(&small_runs[1]["started_at"]) >= time(&small_runs[0]["finished_at"]),
        "an environment with max_concurrent_runs 1 ran two at once: {small_runs:?}"
    );
    assert!(
        time(&big_runs[1]["started_at"]) < time(&big_runs[0]["finished_at"]),
        "production (no limit) did not run in parallel: {big_runs:?}"
    );
    // Production did not wait for the small environment's queue.
    assert!(
        time(&big_runs[1]["started_at"]) < time(&small_runs[0]["finished_at"]),
        "production waited for the small environment: {big_runs:?} {small_runs:?}"
    );
}
