//! Task chaining end to end through the real server.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

const SECRET: &str = SEED_SECRET;

#[tokio::test]
async fn the_seed_example_runs_across_environments() {
    let mut server = Server::start().await;
    let admin = server.admin().await;
    let (source, _template) = seed_example(&admin).await;

    let (_, stored) = admin
        .get(&format!("/api/v1/envs/training/schedules/{source}"))
        .await;
    let chain_param = stored["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "async-TaskChain")
        .unwrap()
        .clone();
    let shown: Value = serde_json::from_str(chain_param["value"].as_str().unwrap()).unwrap();
    assert_eq!(
        shown["params"][1],
        json!({"name": "Password", "value": null, "is_set": true, "encrypt": true}),
        "{shown}"
    );

    let run = admin.run_now("training", &source).await;
    let done = admin
        .wait_final("training", &run, Duration::from_secs(10))
        .await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let file_name = done["outputs"]["FileName"].as_str().unwrap().to_string();
    assert!(file_name.starts_with("report-20"), "{file_name}");
    let children = done["chain"]["children"].as_array().unwrap();
    assert_eq!(children.len(), 1, "{done}");
    assert_eq!(children[0]["env"], "production");
    let child = children[0]["id"].as_str().unwrap().to_string();

    let started = admin
        .wait_final("production", &child, Duration::from_secs(10))
        .await;
    assert_eq!(started["state"], "succeeded", "{started}");
    assert_eq!(started["origin"], "chain");
    assert_eq!(started["acting_user"], "admin");
    assert_eq!(
        started["chain"]["parent"],
        json!({"env": "training", "id": run})
    );
    assert_eq!(
        started["chain"]["root"],
        json!({"env": "training", "id": run})
    );
    assert_eq!(started["chain"]["depth"], 1);
    let param = |name: &str| {
        started["params"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        param("SourceFile")["value"],
        Value::Null,
        "the token is masked"
    );
    assert_eq!(param("Password")["value"], Value::Null);
    assert_eq!(param("Password")["is_set"], true);
    let date = chrono::Utc::now()
        .with_timezone(&chrono_tz::America::Denver)
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(
        param("Note")["value"],
        format!("{date} by admin"),
        "@DATE@ in the source's zone"
    );
    assert_eq!(param("Who")["value"], file_name.as_str());

    let (s, _, bytes) = server
        .raw(
            "GET",
            &format!("/api/v1/envs/production/runs/{child}/params/SourceFile/file"),
            Some(&admin.token),
            None,
            &[],
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(bytes, "id,amount\n1,42\n");
    let image = started["outputs"]["ImageID"].as_str().unwrap();
    let (s, _, bytes) = server
        .raw(
            "GET",
            &format!("/api/v1/envs/production/uploads/{image}"),
            Some(&admin.token),
            None,
            &[],
        )
        .await;
    assert_eq!((s, bytes.as_str()), (200, "id,amount\n1,42\n"));
    let (_, tokens) = admin.get("/api/v1/envs/training/file-tokens").await;
    assert_eq!(tokens[0]["target_env"], "production", "{tokens}");
    assert_eq!(tokens[0]["state"], "active");

    // Neither the secret nor any token text is in an answer, the log or the data dir.
    let mut answers = String::new();
    for path in [
        format!("/api/v1/envs/training/schedules/{source}"),
        format!("/api/v1/envs/training/runs/{run}"),
        format!("/api/v1/envs/production/runs/{child}"),
        format!("/api/v1/envs/production/runs/{child}/log"),
        format!("/api/v1/envs/training/runs/{run}/log"),
        "/api/v1/envs/training/file-tokens".to_string(),
        "/api/v1/audit?limit=500".to_string(),
    ] {
        answers.push_str(&admin.get(&path).await.1.to_string());
    }
    assert!(
        !answers.contains(SECRET) && !answers.contains("bft_"),
        "{answers}"
    );
    drop(admin);
    let _ = server.terminate();
    assert!(!server.stderr_log().contains(SECRET) && !server.stderr_log().contains("bft_"));
    for (path, bytes) in all_bytes_under(&server.dir) {
        assert!(
            !contains(&bytes, SECRET.as_bytes()),
            "secret in {}",
            path.display()
        );
        assert!(
            !contains(&bytes, b"bft_"),
            "a token's text in {}",
            path.display()
        );
    }
}

/// Every problem of a bad `async-TaskChain`, with its path, line and column.
#[tokio::test]
async fn save_refuses_a_bad_chain_naming_every_problem() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (source, template) = seed_example(&admin).await;
    admin
        .chain(
            "production",
            json!({"name": "private", "schedule_id": template}),
        )
        .await;
    let (_, t) = admin
        .get(&format!("/api/v1/envs/production/schedules/{template}"))
        .await;
    let mut t = t;
    t["params"][1]["locked"] = json!(true);
    assert_eq!(
        admin
            .put(&format!("/api/v1/envs/production/schedules/{template}"), t)
            .await
            .0,
        200
    );

    let bad = r#"[
  {"customerId": "production", "name": "private"},
  {"customerId": "production", "name": "missing"},
  {"customerId": "production", "name": "nightly-upload",
   "params": [{"name": "Note", "value": "x"},
              {"name": "Bogus", "value": "x"},
              {"name": "Who", "value": "@Nope@"},
              {"name": "Password", "value": "@Param.Secret@"}]}
]"#;
    let body = json!({"name": "bad", "kind": "noop", "trigger": {"type": "manual"},
        "params": [{"name": "Secret", "value": "x", "encrypt": true}, {"name": "async-TaskChain", "value": bad}]});
    let (s, b) = admin.post("/api/v1/envs/training/schedules", body).await;
    assert_eq!(s, 422, "{b}");
    let details = b["error"]["details"].as_array().unwrap();
    let find = |field: &str| {
        details
            .iter()
            .find(|d| d["field"] == field)
            .unwrap_or_else(|| panic!("no {field} in {b}"))
            .clone()
    };
    let private = find("params[1].value[0].name");
    let missing = find("params[1].value[1].name");
    assert_eq!(
        private["message"], missing["message"],
        "not shared and missing read the same"
    );
    assert_eq!(
        (private["line"].as_u64(), private["column"].as_u64()),
        (Some(2), Some(3))
    );
    assert!(find("params[1].value[2].params[0].name")["message"]
        .as_str()
        .unwrap()
        .contains("locked"));
    assert!(find("params[1].value[2].params[1].name")["message"]
        .as_str()
        .unwrap()
        .contains("does not accept"));
    assert!(find("params[1].value[2].params[2].value")["message"]
        .as_str()
        .unwrap()
        .contains("@Nope@"));
    assert!(find("params[1].value[2].params[3].value")["message"]
        .as_str()
        .unwrap()
        .contains("encrypt"));
    assert_eq!(details.len(), 6, "{b}");

    // A syntax error names its line and column.
    let (s, b) = admin
        .post(
            "/api/v1/envs/training/schedules",
            json!({"name": "bad", "kind": "noop", "trigger": {"type": "manual"},
            "params": [{"name": "async-TaskChain", "value": "{\n  \"name\": \"x\",\n}"}]}),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(b["error"]["details"][0]["field"], "params[0].value");
    assert_eq!(
        b["error"]["details"][0]["line"], 2,
        "the trailing comma: {b}"
    );
    assert!(b["error"]["details"][0]["column"].as_u64().is_some());

    // A cycle: production's template chaining back to itself through a chain.
    admin
        .chain("training", json!({"name": "again", "schedule_id": source}))
        .await;
    let (_, mut src) = admin
        .get(&format!("/api/v1/envs/training/schedules/{source}"))
        .await;
    let i = src["params"]
        .as_array()
        .unwrap()
        .iter()
        .position(|p| p["name"] == "async-TaskChain")
        .unwrap();
    src["params"][i]["value"] = json!(r#"{"name": "again"}"#);
    let (s, b) = admin
        .put(
            &format!("/api/v1/envs/training/schedules/{source}"),
            src.clone(),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("cycle"),
        "{b}"
    );
    src["allow_loops"] = json!(true);
    let (s, b) = admin
        .put(&format!("/api/v1/envs/training/schedules/{source}"), src)
        .await;
    assert_eq!(s, 200, "allow_loops permits it: {b}");

    // Deleting a chain a schedule names is refused with the dependents.
    let (s, b) = admin.delete("/api/v1/envs/training/chains/again").await;
    assert_eq!(s, 409, "{b}");
    assert!(
        b["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Nightly export"),
        "{b}"
    );
}

/// The preview of a form that is not saved yet resolves against a stand-in run.
#[tokio::test]
async fn an_unsaved_form_can_be_previewed() {
    let server = Server::start().await;
    let admin = server.admin().await;
    seed_example(&admin).await;
    let value = r#"{"customerId": "production", "name": "nightly-upload",
        "params": [{"name": "SourceFile", "value": "@FileToken@"}, {"name": "Who", "value": "@UserID@ @Output.FileName@"}]}"#;
    let (s, b) = admin
        .post("/api/v1/envs/training/chain-preview", json!({"kind": "file-export", "params": [{"name": "FileName", "value": "x.csv"}], "value": value}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["hops"][0]["env"], "production", "{b}");
    assert_eq!(
        b["hops"][0]["params"][0],
        json!({"name": "SourceFile", "value": null, "encrypt": true})
    );
    assert_eq!(b["hops"][0]["params"][1]["value"], "admin ‹FileName›");
    let (s, b) = admin
        .post(
            "/api/v1/envs/training/chain-preview",
            json!({"kind": "noop", "value": r#"{"name": "nope"}"#}),
        )
        .await;
    assert_eq!(s, 200);
    assert!(
        b["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("no chain"),
        "{b}"
    );
}

/// A retry of a run that received a file token gets a fresh token bound to the new run.
#[tokio::test]
async fn a_retry_gets_a_fresh_file_token() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (source, _) = seed_example(&admin).await;
    let run = admin.run_now("training", &source).await;
    let done = admin
        .wait_final("training", &run, Duration::from_secs(10))
        .await;
    let child = done["chain"]["children"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin
        .wait_final("production", &child, Duration::from_secs(10))
        .await;
    let (s, b) = admin
        .post(
            &format!("/api/v1/envs/production/runs/{child}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let again = b["run_id"].as_str().unwrap().to_string();
    let retried = admin
        .wait_final("production", &again, Duration::from_secs(10))
        .await;
    assert_eq!(
        retried["state"], "succeeded",
        "the retry read the file through its own token: {retried}"
    );
    assert_eq!(
        retried["chain"]["parent"]["id"],
        run.as_str(),
        "same parent"
    );
    let (_, tokens) = admin.get("/api/v1/envs/training/file-tokens").await;
    let bound: Vec<&str> = tokens
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["run_id"].as_str().unwrap())
        .collect();
    assert!(
        bound.contains(&child.as_str()) && bound.contains(&again.as_str()),
        "one token per run: {tokens}"
    );
    // Both runs can hand out the file; revoking the first token leaves the retry's working.
    let first = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["run_id"] == child.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        admin
            .delete(&format!("/api/v1/envs/training/file-tokens/{first}"))
            .await
            .0,
        204
    );
    let (s, _, _) = server
        .raw(
            "GET",
            &format!("/api/v1/envs/production/runs/{child}/params/SourceFile/file"),
            Some(&admin.token),
            None,
            &[],
        )
        .await;
    assert_eq!(s, 403);
    let (s, _, bytes) = server
        .raw(
            "GET",
            &format!("/api/v1/envs/production/runs/{again}/params/SourceFile/file"),
            Some(&admin.token),
            None,
            &[],
        )
        .await;
    assert_eq!((s, bytes.as_str()), (200, "id,amount\n1,42\n"));
    // A retry does not undo a revocation: the run whose token was revoked cannot be retried
    // into a fresh one.
    let (s, b) = admin
        .post(
            &format!("/api/v1/envs/production/runs/{child}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    assert!(b.to_string().contains("was revoked"), "{b}");
    let (_, after) = admin.get("/api/v1/envs/training/file-tokens").await;
    assert_eq!(
        after.as_array().map(Vec::len),
        tokens.as_array().map(Vec::len),
        "no token minted: {after}"
    );
    // The retry that did mint a token says so in the audit log.
    let (_, audit) = admin.get("/api/v1/audit?action=run.retry").await;
    assert!(
        audit.to_string().contains("file token") && audit.to_string().contains("minted"),
        "{audit}"
    );
}
