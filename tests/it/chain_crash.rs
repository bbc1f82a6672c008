//! Many chains in flight, the binary killed with SIGKILL again and again: every hop is
//! committed with its source's completion, so after the restarts each succeeded source has
//! exactly one child per hop, and no child is lost or doubled.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

#[tokio::test]
async fn kill_9_with_chains_in_flight_loses_and_doubles_no_hop() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let server = Server::start_in(&dir, Options::default()).unwrap();
    let token = server.admin().await.token;
    let admin = Client {
        server: &server,
        token: token.clone(),
    };
    let c = admin
        .schedule(
            "production",
            json!({"name": "C", "kind": "noop", "trigger": {"type": "manual"}}),
        )
        .await;
    admin
        .chain("production", json!({"name": "to-c", "schedule_id": c}))
        .await;
    let b_id = admin
        .schedule(
            "production",
            json!({"name": "B", "kind": "sleep", "trigger": {"type": "manual"},
                "retry": {"max_attempts": 2, "backoff_seconds": 0},
                "params": [{"name": "Seconds", "value": "0.1"},
                           {"name": "async-TaskChain", "value": r#"{"name": "to-c"}"#}]}),
        )
        .await;
    admin
        .chain("production", json!({"name": "to-b", "schedule_id": b_id}))
        .await;
    let a = admin
        .schedule(
            "production",
            json!({"name": "A", "kind": "noop", "trigger": {"type": "manual"},
                "params": [{"name": "async-TaskChain", "value": r#"{"name": "to-b"}"#}]}),
        )
        .await;
    drop(admin);

    let (server, acknowledged) = kill_rounds(
        server,
        &dir,
        &token,
        std::slice::from_ref(&a),
        4,
        Duration::from_millis(900),
    )
    .await;

    let client = Client {
        server: &server,
        token: token.clone(),
    };
    client
        .wait_for(
            "/api/v1/envs/production/runs?state=queued,running&limit=1",
            Duration::from_secs(120),
            |b| b.as_array().is_some_and(|a| a.is_empty()),
        )
        .await;
    let runs = all_runs(&server, &token, "production").await;
    let by_id: HashMap<&str, &Value> = runs
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r))
        .collect();
    for id in &acknowledged {
        assert!(
            by_id.contains_key(id.as_str()),
            "acknowledged run {id} is lost"
        );
    }
    // Children as the lineage records them (the parent pointer of every run), which also
    // catches a child missing from its parent's list.
    let mut started_by: HashMap<&str, Vec<&Value>> = HashMap::new();
    for r in &runs {
        if let Some(p) = r["chain"]["parent"]["id"].as_str() {
            started_by.entry(p).or_default().push(r);
        }
    }
    let (mut succeeded_a, mut succeeded_b, mut retried) = (0, 0, 0);
    for r in &runs {
        let id = r["id"].as_str().unwrap();
        let schedule = r["schedule_id"].as_str().unwrap();
        let state = r["state"].as_str().unwrap();
        assert!(
            matches!(state, "succeeded" | "failed"),
            "run {id} ended {state}: {r}"
        );
        if state == "failed" {
            assert_eq!(r["error"], "interrupted", "{r}");
        }
        if r["attempts"].as_u64().unwrap_or(0) > 1 {
            retried += 1;
        }
        let kids = started_by.get(id).cloned().unwrap_or_default();
        let listed = r["chain"]["children"].as_array().unwrap();
        assert_eq!(
            listed.len(),
            kids.len(),
            "the children list matches the lineage: {r}"
        );
        let (expected_kind, is_leaf) = if schedule == a {
            (b_id.as_str(), false)
        } else if schedule == b_id {
            (c.as_str(), false)
        } else {
            assert_eq!(schedule, c, "{r}");
            ("", true)
        };
        if is_leaf || state != "succeeded" {
            assert!(kids.is_empty(), "only a succeeded A or B starts a run: {r}");
        } else {
            assert_eq!(
                kids.len(),
                1,
                "a succeeded run has exactly one child (none lost, none doubled): {r}\nchildren: {kids:?}"
            );
            assert_eq!(kids[0]["schedule_id"], expected_kind, "{r}");
            assert_eq!(kids[0]["origin"], "chain");
            assert_eq!(
                kids[0]["chain"]["depth"],
                r["chain"]["depth"].as_u64().unwrap() + 1
            );
            assert!(
                chain_errors_of(r).is_empty(),
                "no chain error on a fired hop: {r}"
            );
            if schedule == a {
                succeeded_a += 1;
            } else {
                succeeded_b += 1;
            }
        }
        // Every started run's parent exists and is the schedule before it.
        if schedule != a {
            let parent = r["chain"]["parent"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("a B or C run has a parent: {r}"));
            let p = by_id
                .get(parent)
                .unwrap_or_else(|| panic!("the parent of {id} exists"));
            let want = if schedule == b_id { &a } else { &b_id };
            assert_eq!(p["schedule_id"], want.as_str(), "{r}");
            assert_eq!(p["state"], "succeeded", "{r}");
        } else {
            assert_eq!(r["chain"]["depth"], 0);
        }
    }
    assert!(succeeded_a > 0 && succeeded_b > 0, "chains ran");
    assert!(retried > 0, "some runs were caught mid-attempt by a kill");
    eprintln!(
        "{} runs, {succeeded_a} A and {succeeded_b} B succeeded, {retried} retried after a kill",
        runs.len()
    );
}

fn chain_errors_of(run: &Value) -> Vec<Value> {
    run["chain"]["errors"].as_array().unwrap().clone()
}
