//! Task kinds end to end (design §6, §7): `http` against a real local server, `command` with
//! and without the allowlist (and cancel killing the process), `file-export` with versions,
//! and the globals in a schedule's own parameter values.

use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const ENV: &str = "production";

/// A tiny HTTP/1.1 server in the test process: `/ok` → 200 with a body, `/missing` → 404,
/// `/broken` → 500, `/slow` → 200 after 5 s. Every answer closes the connection.
async fn start_http_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (status, body) = match path.as_str() {
                    "/ok" => ("200 OK", "hello from the test server"),
                    "/missing" => ("404 Not Found", "no such thing"),
                    "/broken" => ("500 Internal Server Error", "oops"),
                    "/slow" => {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        ("200 OK", "finally")
                    }
                    _ => ("404 Not Found", ""),
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

fn manual(kind: &str, params: Value) -> Value {
    json!({"name": format!("{kind} check"), "kind": kind, "trigger": {"type": "manual"}, "params": params})
}

async fn run_once(admin: &Client<'_>, body: Value) -> Value {
    let id = admin.schedule(ENV, body).await;
    let run = admin.run_now(ENV, &id).await;
    admin.wait_final(ENV, &run, Duration::from_secs(20)).await
}

#[tokio::test]
async fn http_success_records_status_and_body() {
    let base = start_http_server().await;
    let server = Server::start().await;
    let admin = server.admin().await;
    let run = run_once(
        &admin,
        manual(
            "http",
            json!([{"name": "URL", "value": format!("{base}/ok")}]),
        ),
    )
    .await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["outputs"]["StatusCode"], "200", "{run}");
    assert_eq!(
        run["outputs"]["ResponseBody"], "hello from the test server",
        "{run}"
    );
}

#[tokio::test]
async fn http_non_2xx_fails_naming_the_status() {
    let base = start_http_server().await;
    let server = Server::start().await;
    let admin = server.admin().await;
    for (path, code) in [("/missing", "404"), ("/broken", "500")] {
        let run = run_once(
            &admin,
            manual(
                "http",
                json!([{"name": "URL", "value": format!("{base}{path}")}]),
            ),
        )
        .await;
        assert_eq!(run["state"], "failed", "{run}");
        let error = run["error"].as_str().unwrap_or("");
        assert!(
            error.contains(code),
            "error should name status {code}: {run}"
        );
        assert!(run["outputs"].get("StatusCode").is_none(), "{run}");
    }
}

#[tokio::test]
async fn http_slower_than_the_timeout_times_out() {
    let base = start_http_server().await;
    let server = Server::start().await;
    let admin = server.admin().await;
    let mut body = manual(
        "http",
        json!([{"name": "URL", "value": format!("{base}/slow")}]),
    );
    body["timeout_seconds"] = json!(1);
    let started = Instant::now();
    let run = run_once(&admin, body).await;
    assert_eq!(run["state"], "timed_out", "{run}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the timeout should end the run near 1 s, took {:?}",
        started.elapsed()
    );
    assert!(
        run["error"].as_str().unwrap_or("").contains("timed out"),
        "{run}"
    );
}

#[tokio::test]
async fn command_is_refused_without_the_allowlist() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let run = run_once(&admin, manual("command", json!([{"name": "Program", "value": "/bin/echo"}, {"name": "Args", "value": "[\"hi\"]"}]))).await;
    assert_eq!(run["state"], "failed", "{run}");
    assert!(
        run["error"]
            .as_str()
            .unwrap_or("")
            .contains("not on the allowlist"),
        "{run}"
    );
}

#[tokio::test]
async fn command_on_the_allowlist_runs_with_its_args() {
    let server = Server::start_with(Options {
        args: vec!["--allow-command".into(), "/bin/echo".into()],
        env: vec![],
    })
    .await;
    let admin = server.admin().await;
    let run = run_once(
        &admin,
        manual("command", json!([{"name": "Program", "value": "/bin/echo"}, {"name": "Args", "value": "[\"hello\",\"world\"]"}])),
    )
    .await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["outputs"]["ExitCode"], "0", "{run}");
    assert_eq!(run["outputs"]["Stdout"], "hello world\n", "{run}");
    // Another program, even one that exists, is still refused.
    let other = run_once(&admin, manual("command", json!([{"name": "Program", "value": "/bin/sleep"}, {"name": "Args", "value": "[\"0\"]"}]))).await;
    assert_eq!(other["state"], "failed", "{other}");
    assert!(
        other["error"]
            .as_str()
            .unwrap_or("")
            .contains("not on the allowlist"),
        "{other}"
    );
}

/// Processes whose command line is exactly `argv`.
fn processes_with_cmdline(argv: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| a.bytes().chain(std::iter::once(0)))
        .collect();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if std::fs::read(entry.path().join("cmdline")).is_ok_and(|c| c == want) {
            out.push(pid);
        }
    }
    out
}

#[tokio::test]
async fn cancelling_a_running_command_kills_its_process() {
    // An odd duration, so no other process on the machine has this command line.
    let secs = "30.4217";
    let server = Server::start_with(Options {
        args: vec!["--allow-command".into(), "/bin/sleep".into()],
        env: vec![],
    })
    .await;
    let admin = server.admin().await;
    let id = admin
        .schedule(ENV, manual("command", json!([{"name": "Program", "value": "/bin/sleep"}, {"name": "Args", "value": format!("[\"{secs}\"]")}])))
        .await;
    let run = admin.run_now(ENV, &id).await;
    let path = format!("/api/v1/envs/{ENV}/runs/{run}");
    admin
        .wait_for(&path, Duration::from_secs(10), |b| b["state"] == "running")
        .await;
    // Wait until the process itself is there, so the cancel has something to kill.
    let end = Instant::now() + Duration::from_secs(10);
    while processes_with_cmdline(&["/bin/sleep", secs]).is_empty() {
        assert!(Instant::now() < end, "the sleep process never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let asked = Instant::now();
    let (s, b) = admin.post(&format!("{path}/cancel"), json!({})).await;
    assert_eq!(s, 202, "cancel: {b}");
    let done = admin.wait_final(ENV, &run, Duration::from_secs(5)).await;
    assert_eq!(done["state"], "cancelled", "{done}");
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "cancel took {:?}",
        asked.elapsed()
    );
    let end = Instant::now() + Duration::from_secs(3);
    loop {
        let left = processes_with_cmdline(&["/bin/sleep", secs]);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < end,
            "sleep {secs} still alive after cancel: pids {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A cancelled run cannot be cancelled again.
    let (s, _) = admin.post(&format!("{path}/cancel"), json!({})).await;
    assert_eq!(s, 409);
}

#[tokio::test]
async fn file_export_writes_a_file_and_serves_the_newest_version() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let id = admin
        .schedule(ENV, manual("file-export", json!([{"name": "FileName", "value": "out.csv"}, {"name": "Content", "value": "hello,world"}])))
        .await;
    let run = admin.run_now(ENV, &id).await;
    let done = admin.wait_final(ENV, &run, Duration::from_secs(10)).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["outputs"]["FileName"], "out.csv", "{done}");
    let download = format!("/api/v1/envs/{ENV}/files/out.csv");
    let (s, _, text) = server
        .raw("GET", &download, Some(&admin.token), None, &[])
        .await;
    assert_eq!(s, 200);
    assert_eq!(text, "hello,world");

    let (s, b) = admin
        .post(
            &format!("/api/v1/envs/{ENV}/schedules/{id}/run"),
            json!({"params": [{"name": "Content", "value": "second,version\n1,2"}]}),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let second = b["run_id"].as_str().expect("run_id").to_string();
    let done = admin
        .wait_final(ENV, &second, Duration::from_secs(10))
        .await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["outputs"]["FileName"], "out.csv", "{done}");
    let (s, _, text) = server
        .raw("GET", &download, Some(&admin.token), None, &[])
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        text, "second,version\n1,2",
        "the name serves the newest version"
    );
}

#[tokio::test]
async fn globals_in_a_schedules_own_values_resolve_when_the_run_starts() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let id = admin
        .schedule(
            ENV,
            manual(
                "noop",
                json!([{"name": "Message", "value": "run @RunID@ by @UserID@ in @CustomerID@"}]),
            ),
        )
        .await;
    let run = admin.run_now(ENV, &id).await;
    let done = admin.wait_final(ENV, &run, Duration::from_secs(10)).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(
        done["outputs"]["Echo"],
        format!("run {run} by admin in {ENV}"),
        "{done}"
    );

    // A run-now value is taken literally: its tokens stay as written.
    let (s, b) = admin
        .post(
            &format!("/api/v1/envs/{ENV}/schedules/{id}/run"),
            json!({"params": [{"name": "Message", "value": "@RunID@"}]}),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let literal = admin
        .wait_final(
            ENV,
            b["run_id"].as_str().expect("run_id"),
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(literal["outputs"]["Echo"], "@RunID@", "{literal}");
}

#[tokio::test]
async fn command_saves_stdout_only_when_it_succeeds() {
    let server = Server::start_with(Options {
        args: vec!["--allow-command".into(), "/bin/sh".into()],
        env: vec![],
    })
    .await;
    let admin = server.admin().await;
    let sh = |script: &str| {
        manual(
            "command",
            json!([{"name": "Program", "value": "/bin/sh"},
                   {"name": "Args", "value": json!(["-c", script]).to_string()},
                   {"name": "SaveStdout", "value": "true"}]),
        )
    };
    let ok = run_once(&admin, sh("echo saved-output")).await;
    assert_eq!(ok["state"], "succeeded", "{ok}");
    let name = ok["outputs"]["FileName"].as_str().expect("FileName output");
    let (s, _, body) = server
        .raw(
            "GET",
            &format!("/api/v1/envs/{ENV}/files/{name}"),
            Some(&admin.token),
            None,
            &[],
        )
        .await;
    assert_eq!((s, body.as_str()), (200, "saved-output\n"));

    let failed = run_once(&admin, sh("echo partial-output; exit 3")).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    let rid = failed["id"].as_str().unwrap();
    let (_, files) = admin.get(&format!("/api/v1/envs/{ENV}/files")).await;
    assert!(
        !files.to_string().contains(&format!("stdout-{rid}")),
        "a failed run stores no stdout file: {files}"
    );
    let (_, log) = admin
        .get(&format!("/api/v1/envs/{ENV}/runs/{rid}/log"))
        .await;
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|l| l["stream"] == "stdout" && l["text"] == "partial-output"),
        "the failed run's stdout is in its log: {log}"
    );
}
