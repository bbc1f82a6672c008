//! The engine reads time only from its clock: a test moves time by hand and due times fire
//! exactly when it says so (no real waiting, no wall clock).

use std::sync::Arc;
use std::time::Duration;

use baton::domain::clock::ManualClock;
use baton::service::{open_baton, Config, ScheduleInput};
use baton::store::RunFilter;
use chrono::{DateTime, Utc};

#[tokio::test]
async fn due_times_follow_a_clock_the_test_controls() {
    let start: DateTime<Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = Config::new(tmp.path().join("data"));
    cfg.admin_password = Some("clock-password-1".into());
    let baton = open_baton(&cfg, clock.clone()).await.unwrap();
    let service = baton.service;
    tokio::spawn(service.engine.clone().dispatch());
    tokio::spawn(service.scheduler.clone().run());
    let admin = service.store.user("admin").unwrap().unwrap();
    let input: ScheduleInput = serde_json::from_value(serde_json::json!({
        "name": "hourly", "kind": "noop", "trigger": {"type": "interval", "seconds": 3600}
    }))
    .unwrap();
    let s = service
        .create_schedule(&admin, "production", input)
        .unwrap();
    assert_eq!(s.next_fire_at.as_deref(), Some("2030-01-01T01:00:00.000Z"));

    let runs = || {
        service
            .store
            .page_runs(
                "production",
                &RunFilter {
                    schedule: Some(s.id),
                    limit: 10,
                    ..Default::default()
                },
            )
            .unwrap()
    };
    // Nothing is due yet, however long the test waits in real time.
    service.scheduler.poke();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(runs().is_empty());

    // Three hours later by the clock: the due time fires once, for 01:00; the times already
    // past while it was late (02:00, 03:00) are dropped, and the next is after "now".
    clock.set(start + chrono::Duration::hours(3) + chrono::Duration::minutes(30));
    service.scheduler.poke();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while runs().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the due time did not fire"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fired = runs();
    assert_eq!(fired.len(), 1, "one due time, one run");
    assert_eq!(fired[0].due_at, Some(start + chrono::Duration::hours(1)));
    assert_eq!(
        fired[0].queued_at,
        start + chrono::Duration::hours(3) + chrono::Duration::minutes(30),
        "queued at the clock's time"
    );
    let stored = service.store.schedule(s.id).unwrap().unwrap();
    assert_eq!(
        stored.next_fire_at,
        Some(start + chrono::Duration::hours(4))
    );
}
