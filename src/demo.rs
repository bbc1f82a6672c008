//! `baton demo`: a fresh data dir seeded so a newcomer sees everything working — two
//! environments, a user per role, realistic schedules, the chain from the original
//! description (training → production through a share grant, with `@FileToken@` and an
//! encrypted parameter), and some history.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::crypto::random_token;
use crate::domain::User;
use crate::service::{
    ChainInput, EnvironmentInput, RunNowInput, ScheduleInput, Service, ServiceError, UserInput,
};

/// A demo user and the password to sign in with.
pub struct DemoUser {
    pub name: String,
    pub password: String,
    pub role: String,
}

fn schedule(v: serde_json::Value) -> Result<ScheduleInput, ServiceError> {
    serde_json::from_value(v).map_err(|e| ServiceError::Internal(format!("demo schedule: {e}")))
}

/// The task from the original description: training's export hands its file to
/// production's `nightly-upload` chain.
const NIGHTLY_CHAIN: &str = r#"{
  "customerId": "production",          // the target environment
  "name": "nightly-upload",            // the chain's name there
  "params": [
    { "name": "SourceFile", "value": "@FileToken@" },
    { "name": "Password",   "value": "partner-demo-password", "encrypt": true },
    { "name": "Note",       "value": "sent @DATE@ by @UserID@ from @Output.FileName@" }
  ]
}"#;

/// The production schedules the history runs.
struct ProductionSchedules {
    heartbeat: Uuid,
    flaky: Uuid,
}

/// Seeds the demo; returns the users to print.
pub async fn seed(service: &Service, admin_password: &str) -> Result<Vec<DemoUser>, ServiceError> {
    let admin: User = service
        .store
        .user("admin")?
        .ok_or(ServiceError::Unauthorized)?;
    service.create_environment(
        &admin,
        EnvironmentInput {
            id: Some("training".into()),
            name: Some("Training".into()),
            time_zone: Some("America/Denver".into()),
            max_concurrent_runs: None,
            created_at: None,
        },
    )?;
    let users = seed_users(service, &admin, admin_password).await?;
    let production = seed_production(service, &admin)?;
    let export = seed_training(service, &admin)?;
    seed_history(
        service,
        &admin,
        &[
            ("production", production.heartbeat),
            ("production", production.heartbeat),
            ("training", export),
            ("production", production.flaky),
            ("training", export),
        ],
    )
    .await?;
    Ok(users)
}

/// The admin, and one user per role in both environments with a fresh password.
async fn seed_users(
    service: &Service,
    admin: &User,
    admin_password: &str,
) -> Result<Vec<DemoUser>, ServiceError> {
    let mut users = vec![DemoUser {
        name: "admin".into(),
        password: admin_password.into(),
        role: "admin".into(),
    }];
    for role in ["viewer", "operator", "integration"] {
        let password = random_token(9);
        let roles = BTreeMap::from([
            ("training".to_string(), role.to_string()),
            ("production".to_string(), role.to_string()),
        ]);
        service
            .save_user(
                admin,
                UserInput {
                    username: Some(role.into()),
                    password: Some(password.clone()),
                    admin: Some(false),
                    roles: Some(roles),
                    created_at: None,
                },
                None,
            )
            .await?;
        users.push(DemoUser {
            name: role.into(),
            password,
            role: format!("{role} in training and production"),
        });
    }
    Ok(users)
}

/// production: the template the chain starts, shared with training, and a few schedules of
/// its own (one times out on purpose).
fn seed_production(service: &Service, admin: &User) -> Result<ProductionSchedules, ServiceError> {
    let template = service.create_schedule(admin, "production", schedule(json!({
        "name": "Store partner file", "kind": "file-store", "trigger": {"type": "manual"},
        "description": "Keeps the partner report in the FileUpload table (started by training's export)",
        "params": [
            {"name": "Password", "value": "partner-demo-password", "encrypt": true},
            {"name": "Note", "value": ""}
        ]
    }))?)?;
    service.create_chain(
        admin,
        "production",
        ChainInput {
            name: Some("nightly-upload".into()),
            schedule_id: Some(template.id.to_string()),
            description: Some("Store the partner report sent by training".into()),
            enabled: Some(true),
            share_with: Some(vec!["training".into()]),
            ..Default::default()
        },
    )?;
    let heartbeat = service.create_schedule(
        admin,
        "production",
        schedule(json!({
            "name": "Heartbeat", "kind": "noop", "trigger": {"type": "interval", "seconds": 300},
            "params": [{"name": "Message", "value": "alive at @DATETIME@"}]
        }))?,
    )?;
    service.create_schedule(admin, "production", schedule(json!({
        "name": "Nightly cleanup", "kind": "sleep", "trigger": {"type": "cron", "expr": "0 15 3 * * *"},
        "params": [{"name": "Seconds", "value": "1"}], "overlap": "skip", "catch_up": "once"
    }))?)?;
    let flaky = service.create_schedule(
        admin,
        "production",
        schedule(json!({
            "name": "Slow partner call", "kind": "sleep", "trigger": {"type": "manual"},
            "description": "Times out on purpose, to show a failure",
            "params": [{"name": "Seconds", "value": "3"}], "timeout_seconds": 1
        }))?,
    )?;
    Ok(ProductionSchedules {
        heartbeat: heartbeat.id,
        flaky: flaky.id,
    })
}

/// training: the nightly export that starts production's chain; returns its id.
fn seed_training(service: &Service, admin: &User) -> Result<Uuid, ServiceError> {
    let export = service.create_schedule(admin, "training", schedule(json!({
        "name": "Nightly export", "kind": "file-export", "trigger": {"type": "cron", "expr": "0 30 2 * * *"},
        "description": "Exports the day's runs and hands the file to production",
        "params": [
            {"name": "FileName", "value": "runs-@DATE@.csv"},
            {"name": "Report", "value": "runs-csv"},
            {"name": "async-TaskChain", "value": NIGHTLY_CHAIN}
        ]
    }))?)?;
    Ok(export.id)
}

/// Some history: each `(env, schedule)` run now, in this order.
async fn seed_history(
    service: &Service,
    admin: &User,
    runs: &[(&str, Uuid)],
) -> Result<(), ServiceError> {
    for &(env, id) in runs {
        service
            .run_now(admin, env, id, RunNowInput::default(), b"", None)
            .await?;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    Ok(())
}
