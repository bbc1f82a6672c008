//! Runs through the API: run now, triggers firing, idempotency, retries, cancel.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn run_now_succeeds_with_outputs_and_a_log() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let id = admin
        .schedule(
            "production",
            json!({"name": "hello", "kind": "noop", "trigger": {"type": "manual"},
            "params": [{"name": "Message", "value": "hi @UserID@"}]}),
        )
        .await;
    let run = admin.run_now("production", &id).await;
    let done = admin
        .wait_final("production", &run, Duration::from_secs(10))
        .await;
    assert_eq!(done["state"], "succeeded");
    assert_eq!(done["outputs"]["Echo"], "hi admin");
    assert_eq!(done["attempts"], 1);
    assert_eq!(done["origin"], "manual");
    assert_eq!(done["chain"]["depth"], 0);
    let (s, log) = admin
        .get(&format!("/api/v1/envs/production/runs/{run}/log"))
        .await;
    assert_eq!(s, 200);
    let texts: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert!(
        texts.iter().any(|t| t.contains("attempt 1 of 1 started")),
        "{texts:?}"
    );
    assert!(texts.iter().any(|t| t.contains("succeeded")), "{texts:?}");
    let (_, after) = admin
        .get(&format!("/api/v1/envs/production/runs/{run}/log?after=1"))
        .await;
    assert_eq!(
        after.as_array().unwrap().len(),
        texts.len() - 1,
        "after=SEQ skips what was read"
    );
}

#[tokio::test]
async fn a_six_field_cron_schedule_fires_inside_the_test() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let id = admin
        .schedule(
            "production",
            json!({"name": "every second", "kind": "noop",
            "trigger": {"type": "cron", "expr": "* * * * * *"}}),
        )
        .await;
    let runs = admin
        .wait_for(
            &format!("/api/v1/envs/production/runs?schedule={id}"),
            Duration::from_secs(10),
            |b| {
                b.as_array()
                    .is_some_and(|a| a.iter().filter(|r| r["state"] == "succeeded").count() >= 2)
            },
        )
        .await;
    let first = &runs.as_array().unwrap()[0];
    assert_eq!(first["origin"], "schedule");
    assert!(
        first["due_at"].as_str().unwrap().ends_with(".000Z"),
        "cron due times are whole seconds: {first}"
    );
    let dues: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["due_at"].as_str().unwrap())
        .collect();
    let mut unique = dues.clone();
    unique.dedup();
    assert_eq!(
        dues.len(),
        unique.len(),
        "no due time fired twice: {dues:?}"
    );
}

#[tokio::test]
async fn an_interval_schedule_fires_repeatedly_one_interval_apart() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let id = admin
        .schedule(
            "production",
            json!({"name": "tick", "kind": "noop", "trigger": {"type": "interval", "seconds": 1}}),
        )
        .await;
    let runs = admin
        .wait_for(
            &format!("/api/v1/envs/production/runs?schedule={id}"),
            Duration::from_secs(15),
            |b| b.as_array().is_some_and(|a| a.len() >= 3),
        )
        .await;
    let mut dues: Vec<chrono::DateTime<chrono::Utc>> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["due_at"].as_str().unwrap().parse().unwrap())
        .collect();
    dues.sort();
    // Due times stay on the interval's grid: each is the previous one plus the interval (or,
    // when a busy machine made the scheduler late past a due time, a whole multiple of it:
    // passed times are dropped, never fired late in a burst).
    for pair in dues.windows(2) {
        let gap = (pair[1] - pair[0]).num_milliseconds();
        assert!(
            gap > 0 && gap % 1000 == 0,
            "next due = previous due + interval: {dues:?}"
        );
    }
    let first = dues[0];
    assert!(
        dues.iter()
            .all(|d| (*d - first).num_milliseconds() % 1000 == 0),
        "{dues:?}"
    );
}

#[tokio::test]
async fn a_once_schedule_fires_once_and_then_has_no_next_time() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(3000);
    let at_text = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let id = admin
        .schedule(
            "production",
            json!({"name": "once", "kind": "noop", "trigger": {"type": "once", "at": at_text}}),
        )
        .await;
    let (_, s) = admin
        .get(&format!("/api/v1/envs/production/schedules/{id}"))
        .await;
    assert_eq!(s["next_fire_at"], at_text);
    let runs = admin
        .wait_for(
            &format!("/api/v1/envs/production/runs?schedule={id}"),
            Duration::from_secs(10),
            |b| {
                b.as_array()
                    .is_some_and(|a| a.iter().any(|r| r["state"] == "succeeded"))
            },
        )
        .await;
    assert_eq!(runs[0]["due_at"], at_text);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, runs) = admin
        .get(&format!("/api/v1/envs/production/runs?schedule={id}"))
        .await;
    assert_eq!(runs.as_array().unwrap().len(), 1, "fired once: {runs}");
    let (_, s) = admin
        .get(&format!("/api/v1/envs/production/schedules/{id}"))
        .await;
    assert!(s["next_fire_at"].is_null(), "{s}");

    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let (status, body) = admin
        .post(
            "/api/v1/envs/production/schedules",
            json!({"name": "late", "kind": "noop", "trigger": {"type": "once", "at": past}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"][0]["field"], "trigger.at");
}

#[tokio::test]
async fn an_idempotency_key_replay_starts_nothing_new() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let id = admin
        .schedule(
            "production",
            json!({"name": "idem", "kind": "noop", "trigger": {"type": "manual"}}),
        )
        .await;
    let path = format!("/api/v1/envs/production/schedules/{id}/run");
    let body = r#"{"params":[{"name":"Message","value":"one"}]}"#.to_string();
    let headers = [("idempotency-key", "abc-123")];
    let (s1, _, b1) = server
        .raw(
            "POST",
            &path,
            Some(&admin.token),
            Some(body.clone()),
            &headers,
        )
        .await;
    let (s2, _, b2) = server
        .raw("POST", &path, Some(&admin.token), Some(body), &headers)
        .await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(b1, b2, "the replay answers the first run");
    let (s3, _, b3) = server
        .raw(
            "POST",
            &path,
            Some(&admin.token),
            Some(r#"{"params":[{"name":"Message","value":"two"}]}"#.into()),
            &headers,
        )
        .await;
    assert_eq!(s3, 422, "same key, other body: {b3}");
    let (_, runs) = admin
        .get(&format!("/api/v1/envs/production/runs?schedule={id}"))
        .await;
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
}

/// Under overlap `skip` a replay still answers with its first run while that run is active,
/// instead of being refused as a second run.
#[tokio::test]
async fn an_idempotency_replay_answers_while_its_run_is_active() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let id = admin
        .schedule(
            "production",
            json!({"name": "slow", "kind": "sleep", "trigger": {"type": "manual"}, "overlap": "skip",
                   "params": [{"name": "Seconds", "value": "2"}]}),
        )
        .await;
    let path = format!("/api/v1/envs/production/schedules/{id}/run");
    let headers = [("idempotency-key", "once-only")];
    let post = || {
        server.raw(
            "POST",
            &path,
            Some(&admin.token),
            Some("{}".into()),
            &headers,
        )
    };
    let (s1, _, b1) = post().await;
    let (s2, _, b2) = post().await;
    assert_eq!((s1, s2), (202, 202), "{b1} / {b2}");
    assert_eq!(b1, b2, "the replay answers the first run");
    // Without the key, a second run is refused while the first is active.
    let (s3, b3) = admin.post(&path, json!({})).await;
    assert_eq!(s3, 409, "{b3}");
}

#[tokio::test]
async fn a_failing_run_is_retried_until_its_attempts_are_spent() {
    let server = Server::start().await;
    let admin = server.admin().await;
    // A file name with a slash fails at run time (the value comes from run-now, unchecked at save).
    let id = admin
        .schedule(
            "production",
            json!({"name": "flaky", "kind": "http", "trigger": {"type": "manual"},
            "params": [{"name": "URL", "value": "http://127.0.0.1:9/nothing-listens-here"}],
            "retry": {"max_attempts": 3, "backoff_seconds": 0}}),
        )
        .await;
    let run = admin.run_now("production", &id).await;
    let done = admin
        .wait_final("production", &run, Duration::from_secs(20))
        .await;
    assert_eq!(done["state"], "failed");
    assert_eq!(done["attempts"], 3, "{done}");
    let (_, log) = admin
        .get(&format!("/api/v1/envs/production/runs/{run}/log"))
        .await;
    let starts = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["text"].as_str().unwrap().contains("started"))
        .count();
    assert_eq!(starts, 3, "{log}");
}

#[tokio::test]
async fn cancel_and_retry_follow_the_run_state() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let id = admin
        .schedule(
            "production",
            json!({"name": "nap", "kind": "sleep", "trigger": {"type": "manual"},
            "params": [{"name": "Seconds", "value": "30"}], "overlap": "skip"}),
        )
        .await;
    let run = admin.run_now("production", &id).await;
    admin
        .wait_for(
            &format!("/api/v1/envs/production/runs/{run}"),
            Duration::from_secs(5),
            |b| b["state"] == "running",
        )
        .await;
    // The log reads live while the run runs.
    let log = admin
        .wait_for(
            &format!("/api/v1/envs/production/runs/{run}/log"),
            Duration::from_secs(5),
            |b| {
                b.as_array().is_some_and(|a| {
                    a.iter().any(|l| {
                        l["text"]
                            .as_str()
                            .is_some_and(|t| t.contains("sleeping 30 s"))
                    })
                })
            },
        )
        .await;
    assert!(!log.to_string().contains("cancelled"), "{log}");
    let (s, b) = admin
        .post(
            &format!("/api/v1/envs/production/schedules/{id}/run"),
            json!({}),
        )
        .await;
    assert_eq!(s, 409, "overlap skip refuses a second run: {b}");
    let (s, _) = admin
        .post(
            &format!("/api/v1/envs/production/runs/{run}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(s, 202);
    let done = admin
        .wait_final("production", &run, Duration::from_secs(5))
        .await;
    assert_eq!(done["state"], "cancelled");
    let (s, _) = admin
        .post(
            &format!("/api/v1/envs/production/runs/{run}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(s, 409, "a finished run cannot be cancelled");
    let (s, b) = admin
        .post(
            &format!("/api/v1/envs/production/runs/{run}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let again = b["run_id"].as_str().unwrap().to_string();
    let (_, r) = admin
        .get(&format!("/api/v1/envs/production/runs/{again}"))
        .await;
    assert_eq!(r["origin"], "retry");
    admin
        .post(
            &format!("/api/v1/envs/production/runs/{again}/cancel"),
            json!({}),
        )
        .await;
}

#[tokio::test]
async fn sigterm_lets_a_running_run_finish_and_exits_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut server = Server::start_in(
        &dir,
        Options {
            args: vec!["--shutdown-grace".into(), "10s".into()],
            env: vec![],
        },
    )
    .unwrap();
    let admin = server.admin().await;
    let id = admin
        .schedule(
            "production",
            json!({"name": "short", "kind": "sleep", "trigger": {"type": "manual"},
            "params": [{"name": "Seconds", "value": "1"}]}),
        )
        .await;
    let run = admin.run_now("production", &id).await;
    admin
        .wait_for(
            &format!("/api/v1/envs/production/runs/{run}"),
            Duration::from_secs(5),
            |b| b["state"] == "running",
        )
        .await;
    let token = admin.token.clone();
    drop(admin);
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    drop(server);
    let server = Server::start_in(&dir, Options::default()).unwrap();
    let (_, b) = server
        .call(
            "GET",
            &format!("/api/v1/envs/production/runs/{run}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        b["state"], "succeeded",
        "the run finished within the grace: {b}"
    );
}
