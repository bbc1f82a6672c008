//! Chain rules at fire time: refusals recorded on the source run, refire after the cause is
//! fixed, fan-out, `when`, the depth limit, preview, shared chains and file-token refusals.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

const WAIT: Duration = Duration::from_secs(15);

/// The message both "no such chain" and "not shared" give (design §2).
const NO_CHAIN: &str = "no chain of that name is available to this environment";

fn children(run: &Value) -> Vec<Value> {
    run["chain"]["children"].as_array().unwrap().clone()
}

fn chain_errors(run: &Value) -> Vec<Value> {
    run["chain"]["errors"].as_array().unwrap().clone()
}

/// A `noop` template in `env` and a chain `name` pointing at it; returns the template id.
async fn noop_template(admin: &Client<'_>, env: &str, name: &str) -> String {
    let id = admin
        .schedule(
            env,
            json!({"name": format!("template {name}"), "kind": "noop", "trigger": {"type": "manual"},
                "params": [{"name": "Message", "value": ""}]}),
        )
        .await;
    admin
        .chain(env, json!({"name": name, "schedule_id": id}))
        .await;
    id
}

/// A manual `noop` source in `env` whose `async-TaskChain` is `text`.
async fn noop_source(admin: &Client<'_>, env: &str, text: &str) -> String {
    admin
        .schedule(
            env,
            json!({"name": "source", "kind": "noop", "trigger": {"type": "manual"},
                "params": [{"name": "async-TaskChain", "value": text}]}),
        )
        .await
}

/// Runs `source` and waits for it; returns the final run.
async fn run_and_wait(admin: &Client<'_>, env: &str, source: &str) -> Value {
    let id = admin.run_now(env, source).await;
    admin.wait_final(env, &id, WAIT).await
}

/// A grant revoked after save: the hop is refused at fire time and recorded on the source
/// run, which keeps its own state; once re-granted, a refire starts exactly one run and a
/// second refire is a conflict.
#[tokio::test]
async fn a_revoked_grant_is_a_chain_error_and_refire_starts_once() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (source, template) = seed_example(&admin).await;

    let (s, b) = admin
        .put(
            "/api/v1/envs/production/chains/nightly-upload",
            json!({"schedule_id": template, "description": "partner upload", "share_with": []}),
        )
        .await;
    assert_eq!(s, 200, "revoking a grant is always allowed: {b}");

    let run = admin.run_now("training", &source).await;
    let done = admin.wait_final("training", &run, WAIT).await;
    assert_eq!(
        done["state"], "succeeded",
        "the source keeps its state: {done}"
    );
    assert!(children(&done).is_empty(), "{done}");
    let errors = chain_errors(&done);
    assert_eq!(errors.len(), 1, "{done}");
    assert_eq!(errors[0]["hop"], 0);
    assert_eq!(errors[0]["env"], "production");
    assert_eq!(errors[0]["chain"], "nightly-upload");
    assert_eq!(errors[0]["message"], NO_CHAIN);
    assert!(errors[0]["at"].is_string(), "{done}");
    assert!(
        admin.runs_of("production", &template).await.is_empty(),
        "nothing started"
    );
    let (_, tokens) = admin.get("/api/v1/envs/training/file-tokens").await;
    assert_eq!(tokens, json!([]), "a refused hop mints no token");

    // Re-grant, then refire hop 0.
    let (s, b) = admin
        .put(
            "/api/v1/envs/production/chains/nightly-upload",
            json!({"schedule_id": template, "description": "partner upload", "share_with": ["training"]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let refire = format!("/api/v1/envs/training/runs/{run}/hops/0/refire");
    let (s, b) = admin.post(&refire, json!({})).await;
    assert_eq!(s, 202, "{b}");
    let child = b["run_id"].as_str().unwrap().to_string();
    let started = admin.wait_final("production", &child, WAIT).await;
    assert_eq!(started["state"], "succeeded", "{started}");
    assert_eq!(started["origin"], "refire");
    assert_eq!(
        started["chain"]["parent"],
        json!({"env": "training", "id": run})
    );
    assert_eq!(started["chain"]["depth"], 1);
    let (s, _, bytes) = server
        .raw(
            "GET",
            &format!("/api/v1/envs/production/runs/{child}/params/SourceFile/file"),
            Some(&admin.token),
            None,
            &[],
        )
        .await;
    assert_eq!((s, bytes.as_str()), (200, "id,amount\n1,42\n"));
    let (_, source_run) = admin
        .get(&format!("/api/v1/envs/training/runs/{run}"))
        .await;
    assert_eq!(
        children(&source_run),
        vec![json!({"env": "production", "id": child})],
        "{source_run}"
    );
    assert_eq!(admin.runs_of("production", &template).await.len(), 1);

    let (s, b) = admin.post(&refire, json!({})).await;
    assert_eq!(s, 409, "hop 0 already started a run: {b}");
    assert_eq!(
        admin.runs_of("production", &template).await.len(),
        1,
        "exactly one run started"
    );
    // A hop the schedule does not have is refused (422); that is the caller's mistake, not
    // a hop refusal, so nothing is added to the run.
    let (s, b) = admin
        .post(
            &format!("/api/v1/envs/training/runs/{run}/hops/5/refire"),
            json!({}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(b.to_string().contains("no hop 5"), "{b}");
    let (_, after) = admin
        .get(&format!("/api/v1/envs/training/runs/{run}"))
        .await;
    assert_eq!(chain_errors(&after).len(), 1, "nothing recorded: {after}");
}

/// A refire fires a hop only as its `when` allows: a `failure` hop of a succeeded run is
/// refused (422), starting nothing and recording nothing.
#[tokio::test]
async fn refire_keeps_to_the_hops_when() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let template = noop_template(&admin, "production", "on-failure").await;
    let source = noop_source(
        &admin,
        "production",
        r#"{"name": "on-failure", "when": "failure"}"#,
    )
    .await;
    let done = run_and_wait(&admin, "production", &source).await;
    let run = done["id"].as_str().unwrap().to_string();
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(
        children(&done).is_empty() && chain_errors(&done).is_empty(),
        "{done}"
    );
    let (s, b) = admin
        .post(
            &format!("/api/v1/envs/production/runs/{run}/hops/0/refire"),
            json!({}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b.to_string().contains("fires when the run ends failure"),
        "{b}"
    );
    let (_, after) = admin
        .get(&format!("/api/v1/envs/production/runs/{run}"))
        .await;
    assert!(
        children(&after).is_empty() && chain_errors(&after).is_empty(),
        "{after}"
    );
    assert!(admin.runs_of("production", &template).await.is_empty());
}

/// Disabling a chain or its template, locking a parameter after save and a declared output
/// the run did not produce: each refused when the hop fires, with the reason on the source.
#[tokio::test]
async fn fire_time_refusals_name_their_reason() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let template = noop_template(&admin, "production", "to-t").await;
    let source = noop_source(
        &admin,
        "production",
        r#"{"name": "to-t", "params": [{"name": "Message", "value": "from @RunID@"}]}"#,
    )
    .await;

    // Baseline: the hop fires.
    let done = run_and_wait(&admin, "production", &source).await;
    assert_eq!(children(&done).len(), 1, "{done}");
    let child = children(&done)[0]["id"].as_str().unwrap().to_string();
    let child = admin.wait_final("production", &child, WAIT).await;
    assert_eq!(
        param_of(&child, "Message")["value"],
        format!("from {}", done["id"].as_str().unwrap())
    );
    assert_eq!(
        child["outputs"]["Echo"],
        param_of(&child, "Message")["value"]
    );

    let expect_refused = |done: &Value, words: &str| {
        assert_eq!(done["state"], "succeeded", "{done}");
        assert!(children(done).is_empty(), "{done}");
        let errors = chain_errors(done);
        assert_eq!(errors.len(), 1, "{done}");
        assert_eq!(errors[0]["hop"], 0);
        assert_eq!(errors[0]["env"], "production");
        assert_eq!(errors[0]["chain"], "to-t");
        let msg = errors[0]["message"].as_str().unwrap();
        assert!(msg.contains(words), "{words:?} not in {msg:?}");
    };

    // A disabled chain.
    let chain_path = "/api/v1/envs/production/chains/to-t";
    let (s, b) = admin
        .put(
            chain_path,
            json!({"schedule_id": template, "enabled": false}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    expect_refused(
        &run_and_wait(&admin, "production", &source).await,
        "disabled",
    );
    let (s, b) = admin
        .put(
            chain_path,
            json!({"schedule_id": template, "enabled": true}),
        )
        .await;
    assert_eq!(s, 200, "{b}");

    // A disabled template schedule (it can still be run by hand).
    admin
        .edit_schedule("production", &template, |t| t["enabled"] = json!(false))
        .await;
    expect_refused(
        &run_and_wait(&admin, "production", &source).await,
        "template schedule is disabled",
    );
    let by_hand = run_and_wait(&admin, "production", &template).await;
    assert_eq!(by_hand["state"], "succeeded", "{by_hand}");
    admin
        .edit_schedule("production", &template, |t| t["enabled"] = json!(true))
        .await;

    // A parameter locked on the target after the source was saved.
    admin
        .edit_schedule("production", &template, |t| {
            t["params"][0]["locked"] = json!(true)
        })
        .await;
    expect_refused(&run_and_wait(&admin, "production", &source).await, "locked");
    admin
        .edit_schedule("production", &template, |t| {
            t["params"][0]["locked"] = json!(false)
        })
        .await;

    // After every fix the same source fires again.
    let again = run_and_wait(&admin, "production", &source).await;
    assert_eq!(children(&again).len(), 1, "{again}");
    assert!(chain_errors(&again).is_empty(), "{again}");
    // Baseline, the by-hand run and this one: the refused hops started nothing.
    let count = admin.runs_of("production", &template).await.len();
    assert_eq!(count, 3, "runs of the template");

    // Declared outputs the run did not produce: an http source that saves no response has
    // no FileName, so neither @Output.FileName@ nor @FileToken@ can resolve.
    let store = admin
        .schedule(
            "production",
            json!({"name": "store", "kind": "file-store", "trigger": {"type": "manual"}}),
        )
        .await;
    admin
        .chain("production", json!({"name": "store", "schedule_id": store}))
        .await;
    let url = format!("{}/healthz", server.url);
    for (chain, param, value, words) in [
        (
            "to-t",
            "Message",
            "@Output.FileName@",
            "@Output.FileName@: the run produced no output FileName",
        ),
        ("store", "SourceFile", "@FileToken@", "FileName"),
    ] {
        let text = json!({"name": chain, "params": [{"name": param, "value": value}]}).to_string();
        let http = admin
            .schedule(
                "production",
                json!({"name": "probe", "kind": "http", "trigger": {"type": "manual"},
                    "params": [{"name": "URL", "value": url}, {"name": "SaveResponse", "value": "false"},
                               {"name": "async-TaskChain", "value": text}]}),
            )
            .await;
        let done = run_and_wait(&admin, "production", &http).await;
        assert_eq!(done["state"], "succeeded", "{done}");
        assert_eq!(done["outputs"]["StatusCode"], "200", "{done}");
        assert!(done["outputs"].get("FileName").is_none(), "{done}");
        assert!(children(&done).is_empty(), "{done}");
        let errors = chain_errors(&done);
        assert_eq!(errors.len(), 1, "{done}");
        assert_eq!(errors[0]["chain"], chain);
        let msg = errors[0]["message"].as_str().unwrap();
        assert!(msg.contains(words), "{words:?} not in {msg:?}");
    }
    assert!(admin.runs_of("production", &store).await.is_empty());
    assert_eq!(admin.runs_of("production", &template).await.len(), 3);
    let (_, tokens) = admin.get("/api/v1/envs/production/file-tokens").await;
    assert_eq!(tokens, json!([]), "no token minted for a refused hop");
}

/// `--max-chain-depth 2` and a schedule that starts itself: depths 0, 1, 2, and the hop
/// from depth 2 is refused on that run.
#[tokio::test]
async fn a_loop_stops_at_the_depth_limit() {
    let server = Server::start_with(Options {
        args: vec!["--max-chain-depth".into(), "2".into()],
        ..Default::default()
    })
    .await;
    let admin = server.admin().await;
    let looped = admin
        .schedule(
            "production",
            json!({"name": "loop", "kind": "noop", "trigger": {"type": "manual"}}),
        )
        .await;
    admin
        .chain(
            "production",
            json!({"name": "again", "schedule_id": looped}),
        )
        .await;
    admin
        .edit_schedule("production", &looped, |s| {
            s["allow_loops"] = json!(true);
            s["params"] = json!([{"name": "async-TaskChain", "value": r#"{"name": "again"}"#}]);
        })
        .await;
    let root = admin.run_now("production", &looped).await;
    let path = format!("/api/v1/envs/production/runs?schedule={looped}&limit=500");
    admin
        .wait_for(&path, WAIT, |b| {
            b.as_array().is_some_and(|a| {
                a.len() >= 3
                    && a.iter()
                        .all(|r| !matches!(r["state"].as_str(), Some("queued" | "running")))
            })
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut runs = admin.runs_of("production", &looped).await;
    assert_eq!(runs.len(), 3, "no run past the limit: {runs:?}");
    runs.sort_by_key(|r| r["chain"]["depth"].as_u64());
    for (depth, r) in runs.iter().enumerate() {
        assert_eq!(r["chain"]["depth"], depth as u64, "{r}");
        assert_eq!(r["state"], "succeeded", "{r}");
        assert_eq!(r["chain"]["root"], json!({"env": "production", "id": root}));
    }
    assert_eq!(runs[1]["chain"]["parent"]["id"], runs[0]["id"]);
    assert_eq!(runs[2]["chain"]["parent"]["id"], runs[1]["id"]);
    assert!(chain_errors(&runs[0]).is_empty() && chain_errors(&runs[1]).is_empty());
    assert!(children(&runs[2]).is_empty(), "{}", runs[2]);
    let errors = chain_errors(&runs[2]);
    assert_eq!(errors.len(), 1, "{}", runs[2]);
    assert_eq!(errors[0]["chain"], "again");
    let msg = errors[0]["message"].as_str().unwrap();
    assert!(msg.contains("limit is 2"), "{msg}");
}

/// An array of hops starts one run each; `when` is judged on the final state.
#[tokio::test]
async fn fan_out_and_when() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let template = noop_template(&admin, "production", "t").await;

    // Fan-out: two hops, two runs, each with its own parameters.
    let fan = noop_source(
        &admin,
        "production",
        r#"[{"name": "t", "params": [{"name": "Message", "value": "one"}]},
            {"name": "t", "params": [{"name": "Message", "value": "two"}]}]"#,
    )
    .await;
    let done = run_and_wait(&admin, "production", &fan).await;
    let kids = children(&done);
    assert_eq!(kids.len(), 2, "{done}");
    let mut messages = Vec::new();
    for k in &kids {
        let r = admin
            .wait_final("production", k["id"].as_str().unwrap(), WAIT)
            .await;
        assert_eq!(r["state"], "succeeded");
        assert_eq!(r["chain"]["parent"]["id"], done["id"]);
        messages.push(r["outputs"]["Echo"].as_str().unwrap().to_string());
    }
    messages.sort();
    assert_eq!(messages, ["one", "two"]);

    // `failure` fires on a failed source and not on a succeeded one (`success` the other
    // way round). The sleep template has no Seconds, so a run without it fails at start.
    let sleeper = admin
        .schedule(
            "production",
            json!({"name": "sleeper", "kind": "sleep", "trigger": {"type": "manual"},
                "params": [{"name": "async-TaskChain", "value":
                    r#"[{"name": "t", "when": "failure", "params": [{"name": "Message", "value": "after failure"}]},
                        {"name": "t", "params": [{"name": "Message", "value": "after success"}]}]"#}]}),
        )
        .await;
    let failed = admin.run_now("production", &sleeper).await;
    let failed = admin.wait_final("production", &failed, WAIT).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("Seconds"),
        "{failed}"
    );
    let ok = admin
        .run_now_with(
            "production",
            &sleeper,
            json!({"params": [{"name": "Seconds", "value": "0"}]}),
        )
        .await;
    let ok = admin.wait_final("production", &ok, WAIT).await;
    assert_eq!(ok["state"], "succeeded", "{ok}");
    for (run, expected) in [(&failed, "after failure"), (&ok, "after success")] {
        let kids = children(run);
        assert_eq!(kids.len(), 1, "one hop matched: {run}");
        assert!(chain_errors(run).is_empty(), "{run}");
        let child = admin
            .wait_final("production", kids[0]["id"].as_str().unwrap(), WAIT)
            .await;
        assert_eq!(child["outputs"]["Echo"], expected, "{child}");
        assert_eq!(child["chain"]["parent"]["id"], run["id"]);
    }

    // `always` fires on a cancelled run: a queued run (overlap queue behind a sleeping one)
    // cancelled; `success` does not.
    let queued = admin
        .schedule(
            "production",
            json!({"name": "queued", "kind": "sleep", "trigger": {"type": "manual"}, "overlap": "queue",
                "params": [{"name": "Seconds", "value": "1.5"},
                    {"name": "async-TaskChain", "value":
                    r#"[{"name": "t", "when": "always", "params": [{"name": "Message", "value": "always @Param.Seconds@"}]},
                        {"name": "t", "params": [{"name": "Message", "value": "success"}]}]"#}]}),
        )
        .await;
    let first = admin.run_now("production", &queued).await;
    admin
        .wait_for(
            &format!("/api/v1/envs/production/runs/{first}"),
            WAIT,
            |r| r["state"] == "running",
        )
        .await;
    let second = admin.run_now("production", &queued).await;
    let (_, r) = admin
        .get(&format!("/api/v1/envs/production/runs/{second}"))
        .await;
    assert_eq!(r["state"], "queued", "overlap queue: {r}");
    let (s, b) = admin
        .post(
            &format!("/api/v1/envs/production/runs/{second}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let cancelled = admin.wait_final("production", &second, WAIT).await;
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    let kids = children(&cancelled);
    assert_eq!(kids.len(), 1, "only the `always` hop: {cancelled}");
    let child = admin
        .wait_final("production", kids[0]["id"].as_str().unwrap(), WAIT)
        .await;
    assert_eq!(child["outputs"]["Echo"], "always 1.5", "{child}");
    // The first run still finishes and fires both of its hops.
    let first = admin.wait_final("production", &first, WAIT).await;
    assert_eq!(first["state"], "succeeded", "{first}");
    assert_eq!(children(&first).len(), 2, "{first}");
    // Nothing else started: 2 (fan-out) + 2 (failure/success) + 1 (cancelled) + 2 (first).
    let all = admin
        .wait_for(
            &format!("/api/v1/envs/production/runs?schedule={template}&limit=500"),
            WAIT,
            |b| {
                b.as_array().is_some_and(|a| {
                    a.iter()
                        .all(|r| !matches!(r["state"].as_str(), Some("queued" | "running")))
                })
            },
        )
        .await;
    assert_eq!(all.as_array().unwrap().len(), 7, "{all}");
    // A second run of `queued` can start after the cancel: the queue is not stuck.
    let third = admin.run_now("production", &queued).await;
    let third = admin.wait_final("production", &third, WAIT).await;
    assert_eq!(third["state"], "succeeded", "{third}");
}

/// chain-preview resolves against the last run (secrets and tokens masked as null) or
/// names its errors, and changes nothing.
#[tokio::test]
async fn chain_preview_resolves_and_changes_nothing() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (source, template) = seed_example(&admin).await;
    let preview = format!("/api/v1/envs/training/schedules/{source}/chain-preview");

    // Before any run, outputs resolve to stand-ins (‹Name›) so the shape shows.
    let (s, b) = admin.post(&preview, json!({})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["errors"], json!([]), "{b}");
    assert_eq!(
        b["hops"][0]["params"][3],
        json!({"name": "Who", "value": "‹FileName›", "encrypt": false}),
        "{b}"
    );
    assert!(
        admin.runs_in("training").await.is_empty(),
        "preview runs nothing"
    );

    let run = admin.run_now("training", &source).await;
    let done = admin.wait_final("training", &run, WAIT).await;
    let child = children(&done)[0]["id"].as_str().unwrap().to_string();
    admin.wait_final("production", &child, WAIT).await;
    let file_name = done["outputs"]["FileName"].as_str().unwrap().to_string();
    let before = (
        admin.runs_in("training").await,
        admin.runs_in("production").await,
        admin.get("/api/v1/envs/training/file-tokens").await.1,
    );

    // The stored chain against the last run.
    let (s, b) = admin.post(&preview, json!({})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["errors"], json!([]), "{b}");
    let hop = &b["hops"][0];
    assert_eq!(hop["env"], "production");
    assert_eq!(hop["chain"], "nightly-upload");
    let date = chrono::Utc::now()
        .with_timezone(&chrono_tz::America::Denver)
        .format("%Y-%m-%d")
        .to_string();
    let get = |name: &str| {
        hop["params"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {hop}"))
            .clone()
    };
    assert_eq!(
        get("SourceFile")["value"],
        Value::Null,
        "the token is masked"
    );
    assert_eq!(get("SourceFile")["encrypt"], true);
    assert_eq!(
        get("Password")["value"],
        Value::Null,
        "the secret is masked"
    );
    assert_eq!(get("Note")["value"], format!("{date} by admin"));
    assert_eq!(get("Who")["value"], file_name.as_str());
    assert!(!b.to_string().contains(SEED_SECRET) && !b.to_string().contains("bft_"));

    // The same without a body at all.
    let (s, _, text) = server
        .raw("POST", &preview, Some(&admin.token), None, &[])
        .await;
    assert_eq!(s, 200, "{text}");

    // An unsaved value: kept secret, a different parameter, and a missing chain.
    let value = r#"[
  {"customerId": "production", "name": "nightly-upload",
   "params": [{"name": "Password", "value": null, "encrypt": true},
              {"name": "Note", "value": "run @RunID@ of @ScheduleID@"}]},
  {"customerId": "production", "name": "missing"}
]"#;
    let (s, b) = admin.post(&preview, json!({"value": value})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["hops"].as_array().unwrap().len(), 1, "{b}");
    let params = &b["hops"][0]["params"];
    assert_eq!(
        params[0],
        json!({"name": "Password", "value": null, "encrypt": true})
    );
    assert_eq!(params[1]["value"], format!("run {run} of {source}"));
    assert_eq!(b["errors"].as_array().unwrap().len(), 1, "{b}");
    assert_eq!(b["errors"][0]["message"], NO_CHAIN);
    assert_eq!(b["errors"][0]["line"], 5, "{b}");

    // Bad text: the parse problem with its line.
    let (s, b) = admin
        .post(&preview, json!({"value": "{\n  \"name\": \"x\",\n}"}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["hops"], json!([]));
    assert_eq!(b["errors"][0]["line"], 2, "{b}");

    // Nothing changed: no run, no token.
    let after = (
        admin.runs_in("training").await,
        admin.runs_in("production").await,
        admin.get("/api/v1/envs/training/file-tokens").await.1,
    );
    assert_eq!(before, after, "preview changes nothing");
    assert_eq!(admin.runs_of("production", &template).await.len(), 1);
}

/// What production offers training, with the parameters a chain may set there.
#[tokio::test]
async fn shared_chains_list_what_is_offered() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (_source, template) = seed_example(&admin).await;
    // A chain production keeps to itself is not offered.
    admin
        .chain(
            "production",
            json!({"name": "private", "schedule_id": template}),
        )
        .await;
    admin
        .edit_schedule("production", &template, |t| {
            t["params"][2]["locked"] = json!(true) // Who
        })
        .await;

    let (s, b) = admin.get("/api/v1/envs/training/shared-chains").await;
    assert_eq!(s, 200, "{b}");
    let list = b.as_array().unwrap();
    assert_eq!(list.len(), 1, "{b}");
    let offered = &list[0];
    assert_eq!(offered["env"], "production");
    assert_eq!(offered["name"], "nightly-upload");
    assert_eq!(offered["description"], "partner upload");
    assert_eq!(offered["kind"], "file-store");
    let mut settable: Vec<&str> = offered["settable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    settable.sort();
    assert_eq!(
        settable,
        ["Note", "Password", "SourceFile"],
        "locked Who and async-TaskChain are not settable"
    );
    // Production offers itself nothing; it sees its own chains elsewhere.
    let (s, b) = admin.get("/api/v1/envs/production/shared-chains").await;
    assert_eq!((s, b), (200, json!([])));

    // An operator of training may not look.
    let operator = server
        .user(&admin, "olga", json!({"training": "operator"}), false)
        .await;
    let (s, _) = operator.get("/api/v1/envs/training/shared-chains").await;
    assert_eq!(s, 403);
}

/// A revoked token is refused with its reason, a made-up one is not found, and both
/// refusals are in the audit log.
#[tokio::test]
async fn file_token_refusals_are_clear_and_audited() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (source, _) = seed_example(&admin).await;
    let run = admin.run_now("training", &source).await;
    let done = admin.wait_final("training", &run, WAIT).await;
    let child = children(&done)[0]["id"].as_str().unwrap().to_string();
    admin.wait_final("production", &child, WAIT).await;
    let file = format!("/api/v1/envs/production/runs/{child}/params/SourceFile/file");
    let (s, _, bytes) = server
        .raw("GET", &file, Some(&admin.token), None, &[])
        .await;
    assert_eq!((s, bytes.as_str()), (200, "id,amount\n1,42\n"));

    let (_, tokens) = admin.get("/api/v1/envs/training/file-tokens").await;
    assert_eq!(tokens.as_array().unwrap().len(), 1, "{tokens}");
    let id = tokens[0]["id"].as_str().unwrap().to_string();
    assert_eq!(tokens[0]["run_id"], child.as_str());
    let (s, b) = admin
        .delete(&format!("/api/v1/envs/training/file-tokens/{id}"))
        .await;
    assert_eq!(s, 204, "{b}");
    let (_, tokens) = admin.get("/api/v1/envs/training/file-tokens").await;
    assert_eq!(tokens[0]["state"], "revoked", "{tokens}");
    assert!(tokens[0]["revoked_at"].is_string());

    let (s, b) = admin.get(&file).await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(b["error"]["code"], "forbidden");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("revoked"),
        "{b}"
    );

    let made_up = format!("bft_{}", "A".repeat(43));
    let (s, b) = admin
        .get(&format!("/api/v1/envs/production/file-tokens/{made_up}"))
        .await;
    assert_eq!(s, 404, "{b}");

    let (s, audit) = admin
        .get("/api/v1/audit?action=file_token.refused&limit=500")
        .await;
    assert_eq!(s, 200, "{audit}");
    let entries = audit.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{audit}");
    assert!(entries.iter().all(|e| e["action"] == "file_token.refused"));
    assert!(
        entries.iter().any(
            |e| e["target"] == id.as_str() && e["detail"].as_str().unwrap().contains("revoked")
        ),
        "{audit}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["detail"].as_str().unwrap().contains("unknown")),
        "{audit}"
    );
    assert!(
        !audit.to_string().contains(&made_up),
        "the token text is not audited"
    );
    let log = server.stderr_log();
    assert!(
        log.contains("file-tokens/[redacted]"),
        "the request is in the request log, redacted"
    );
    assert!(
        !log.contains(&made_up),
        "the token text is not in the request log"
    );
}

/// Overlap `skip` on the target with a run active: the hop records "target busy"; a refire
/// while still busy is refused (422) and recorded; once the target is idle it starts.
#[tokio::test]
async fn a_busy_target_is_a_chain_error_until_it_is_idle() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let target = admin
        .schedule(
            "production",
            json!({"name": "busy", "kind": "sleep", "trigger": {"type": "manual"}, "overlap": "skip",
                "params": [{"name": "Seconds", "value": "1"}]}),
        )
        .await;
    admin
        .chain("production", json!({"name": "busy", "schedule_id": target}))
        .await;
    let source = noop_source(&admin, "production", r#"{"name": "busy"}"#).await;
    let first = admin.run_now("production", &target).await;
    admin
        .wait_for(
            &format!("/api/v1/envs/production/runs/{first}"),
            WAIT,
            |r| r["state"] == "running",
        )
        .await;

    let done = run_and_wait(&admin, "production", &source).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(children(&done).is_empty(), "{done}");
    let errors = chain_errors(&done);
    assert_eq!(errors.len(), 1, "{done}");
    assert_eq!(errors[0]["hop"], 0);
    assert_eq!(errors[0]["env"], "production");
    assert_eq!(
        errors[0]["chain"], "busy",
        "the error names its chain: {done}"
    );
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("target busy"),
        "{done}"
    );

    // The audit says the hop was refused, and names no run that does not exist.
    let (_, refused) = admin.get("/api/v1/audit?action=chain.refused").await;
    assert!(
        refused
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["detail"].as_str().unwrap().contains("target busy")),
        "{refused}"
    );
    let (_, hops) = admin.get("/api/v1/audit?action=chain.hop").await;
    for e in hops.as_array().unwrap() {
        let started = e["detail"]
            .as_str()
            .unwrap()
            .trim_start_matches("started run ");
        let (s, r) = admin
            .get(&format!("/api/v1/envs/production/runs/{started}"))
            .await;
        assert_eq!(s, 200, "the audited run exists: {e} {r}");
    }

    let id = done["id"].as_str().unwrap();
    let refire = format!("/api/v1/envs/production/runs/{id}/hops/0/refire");
    let (s, b) = admin.post(&refire, json!({})).await;
    assert_eq!(s, 422, "still busy: {b}");
    assert!(b.to_string().contains("target busy"), "{b}");
    let (_, again) = admin
        .get(&format!("/api/v1/envs/production/runs/{id}"))
        .await;
    let errors = chain_errors(&again);
    assert_eq!(errors.len(), 2, "the refused refire is recorded: {again}");
    assert_eq!(errors[1]["hop"], 0);
    assert_eq!(errors[1]["env"], "production");
    assert_eq!(errors[1]["chain"], "busy", "{again}");

    admin.wait_final("production", &first, WAIT).await;
    let (s, b) = admin.post(&refire, json!({})).await;
    assert_eq!(s, 202, "idle now: {b}");
    let child = b["run_id"].as_str().unwrap();
    let started = admin.wait_final("production", child, WAIT).await;
    assert_eq!(started["state"], "succeeded", "{started}");
    assert_eq!(started["origin"], "refire");
    assert_eq!(admin.runs_of("production", &target).await.len(), 2);
}

/// A kept secret (`"value": null`) stays with the hop it was given for: pointing that hop
/// at another chain asks for the value again instead of sending the old secret there.
#[tokio::test]
async fn a_kept_secret_does_not_follow_a_hop_to_another_target() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (source, template) = seed_example(&admin).await;
    admin
        .chain(
            "production",
            json!({"name": "nightly-copy", "schedule_id": template, "share_with": ["training"]}),
        )
        .await;
    let (_, stored) = admin
        .get(&format!("/api/v1/envs/training/schedules/{source}"))
        .await;
    let masked = param_of(&stored, "async-TaskChain")["value"]
        .as_str()
        .unwrap()
        .to_string();
    let retarget = |text: &str| {
        let mut body = stored.clone();
        for p in body["params"].as_array_mut().unwrap() {
            if p["name"] == "async-TaskChain" {
                p["value"] = json!(text);
            }
        }
        body
    };
    // Same hop, same target: the masked text round-trips and keeps the secret.
    let one = format!("/api/v1/envs/training/schedules/{source}");
    let (s, b) = admin.put(&one, retarget(&masked)).await;
    assert_eq!(s, 200, "{b}");
    // Same hop, another chain: refused, naming the parameter.
    let moved = masked.replace("nightly-upload", "nightly-copy");
    let (s, b) = admin.put(&one, retarget(&moved)).await;
    assert_eq!(s, 422, "{b}");
    let details = b["error"]["details"].to_string();
    assert!(
        details.contains("params[1].value") && details.contains("no stored value to keep"),
        "{b}"
    );
    let (_, after) = admin.get(&one).await;
    assert_eq!(
        param_of(&after, "async-TaskChain")["value"],
        json!(masked),
        "nothing changed"
    );
}

/// A value marked `encrypt` is sealed whole when saved, dynamic values and `@@` included,
/// and resolved when the hop fires: the target gets `@` for `@@` and today's date.
#[tokio::test]
async fn an_encrypted_hop_value_is_sealed_whole_and_resolved_when_it_fires() {
    let server = Server::start_with(Options {
        args: vec!["--allow-command".into(), "/bin/sh".into()],
        env: vec![],
    })
    .await;
    let admin = server.admin().await;
    let template = admin
        .schedule(
            "production",
            json!({"name": "prints PW", "kind": "command", "trigger": {"type": "manual"},
                "params": [{"name": "Program", "value": "/bin/sh"},
                           {"name": "Args", "value": r#"["-c", "printf %s \"$PW\""]"#},
                           {"name": "Env", "value": ""}]}),
        )
        .await;
    admin
        .chain(
            "production",
            json!({"name": "printer", "schedule_id": template}),
        )
        .await;
    let text = r#"{"name": "printer", "params": [{"name": "Env", "value": "PW=pa@@ss-@DATE@", "encrypt": true}]}"#;
    let source = noop_source(&admin, "production", text).await;
    let (_, stored) = admin
        .get(&format!("/api/v1/envs/production/schedules/{source}"))
        .await;
    let shown = param_of(&stored, "async-TaskChain")["value"].to_string();
    assert!(
        !shown.contains("pa@@ss") && shown.contains("is_set"),
        "the whole value is sealed: {shown}"
    );
    let done = run_and_wait(&admin, "production", &source).await;
    let child = children(&done)[0]["id"].as_str().unwrap().to_string();
    let printed = admin.wait_final("production", &child, WAIT).await;
    assert_eq!(printed["state"], "succeeded", "{printed}");
    let date = done["queued_at"].as_str().unwrap()[..10].to_string();
    assert_eq!(
        printed["outputs"]["Stdout"],
        format!("pa@ss-{date}"),
        "{printed}"
    );
}

/// A refused cycle names the schedules on it the caller may see, and only that another
/// environment is involved for the rest.
#[tokio::test]
async fn a_cycle_refusal_names_no_schedule_of_an_environment_the_caller_cannot_see() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (s, b) = admin
        .post("/api/v1/environments", json!({"id": "training"}))
        .await;
    assert_eq!(s, 201, "{b}");
    // production: P, and chain "back" → P offered to training.
    let p = admin
        .schedule(
            "production",
            json!({"name": "Prod step", "kind": "noop", "trigger": {"type": "manual"}}),
        )
        .await;
    admin
        .chain(
            "production",
            json!({"name": "back", "schedule_id": p, "share_with": ["training"]}),
        )
        .await;
    // training: "Hidden training step" → back, and chain "there" → it offered to production.
    let hidden = noop_source(
        &admin,
        "training",
        r#"{"customerId": "production", "name": "back"}"#,
    )
    .await;
    admin
        .edit_schedule("training", &hidden, |s| {
            s["name"] = json!("Hidden training step")
        })
        .await;
    admin
        .chain(
            "training",
            json!({"name": "there", "schedule_id": hidden, "share_with": ["production"]}),
        )
        .await;
    // Someone with a role in production only closes the cycle from P.
    let integ = server
        .user(&admin, "integ", json!({"production": "integration"}), false)
        .await;
    let closes = json!({"name": "Prod step", "kind": "noop", "trigger": {"type": "manual"},
        "params": [{"name": "async-TaskChain", "value": r#"{"customerId": "training", "name": "there"}"#}]});
    let (s, b) = integ
        .put(&format!("/api/v1/envs/production/schedules/{p}"), closes)
        .await;
    assert_eq!(s, 422, "{b}");
    let text = b.to_string();
    assert!(text.contains("cycle") && text.contains("Prod step"), "{b}");
    assert!(
        !text.contains("Hidden training step") && !text.contains(&hidden),
        "nothing of training is named: {b}"
    );
    assert!(text.contains("a schedule in another environment"), "{b}");
}
