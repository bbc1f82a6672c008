//! kill -9 in the middle of work, restart on the same data dir: nothing acknowledged is
//! lost, nothing stays `running`, attempts are counted, no due time fires twice.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

#[tokio::test]
async fn kill_9_mid_flight_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let server = Server::start_in(&dir, Options::default()).unwrap();
    let token = server.admin().await.token;
    let admin = Client {
        server: &server,
        token: token.clone(),
    };
    let sleeper = admin
        .schedule("production", json!({"name": "sleeper", "kind": "sleep", "trigger": {"type": "manual"},
            "params": [{"name": "Seconds", "value": "0.2"}], "retry": {"max_attempts": 2, "backoff_seconds": 0}}))
        .await;
    let quick = admin
        .schedule(
            "production",
            json!({"name": "quick", "kind": "noop", "trigger": {"type": "manual"}}),
        )
        .await;
    let cron = admin
        .schedule("production", json!({"name": "each second", "kind": "noop", "trigger": {"type": "cron", "expr": "* * * * * *"}, "catch_up": "once"}))
        .await;
    drop(admin);

    let (server, acknowledged) = kill_rounds(
        server,
        &dir,
        &token,
        &[sleeper.clone(), quick.clone()],
        6,
        Duration::from_millis(1200),
    )
    .await;

    // Let the recovered runs finish.
    let client = Client {
        server: &server,
        token: token.clone(),
    };
    client
        .wait_for(
            "/api/v1/envs/production/runs?state=queued,running&limit=500",
            Duration::from_secs(60),
            |b| {
                b.as_array()
                    .is_some_and(|a| a.iter().all(|r| r["schedule_id"] == cron))
            },
        )
        .await;
    let runs = all_runs(&server, &token, "production").await;
    let by_id: HashMap<&str, &Value> = runs
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r))
        .collect();
    for id in &acknowledged {
        let r = by_id
            .get(id.as_str())
            .unwrap_or_else(|| panic!("acknowledged run {id} is lost"));
        if r["schedule_id"] != cron {
            let state = r["state"].as_str().unwrap();
            assert!(
                matches!(state, "succeeded" | "failed"),
                "run {id} ended {state}: {r}"
            );
            assert!(
                r["attempts"].as_u64().unwrap() >= 1,
                "attempts counted: {r}"
            );
            if state == "failed" {
                assert_eq!(r["error"], "interrupted", "{r}");
                let max = if r["schedule_id"] == sleeper.as_str() {
                    2
                } else {
                    1
                };
                assert_eq!(
                    r["attempts"], max,
                    "failed only after its last attempt: {r}"
                );
            }
        }
    }
    let interrupted = runs
        .iter()
        .filter(|r| r["attempts"].as_u64().unwrap_or(0) > 1)
        .count();
    assert!(
        interrupted > 0,
        "some runs were caught mid-attempt and ran again"
    );

    let dues: Vec<&str> = runs
        .iter()
        .filter(|r| r["schedule_id"] == cron)
        .filter_map(|r| r["due_at"].as_str())
        .collect();
    let unique: HashSet<&str> = dues.iter().copied().collect();
    assert!(dues.len() >= 3, "the cron schedule kept firing: {dues:?}");
    assert_eq!(dues.len(), unique.len(), "a due time fired twice: {dues:?}");
}
