//! Engine benchmarks (design §10), on the library with a real redb file in a temp dir and
//! every commit durable (redb's default `Immediate` durability: one fsync per commit).
//!
//! ```text
//! cargo bench --bench engine
//! BATON_BENCH=throughput,latency cargo bench --bench engine   # a subset
//! ```
//!
//! Scenarios (`BATON_BENCH`, comma list; default all):
//! - `throughput`: durable no-op runs completed per second with 1 and 64 concurrent
//!   submitters (`Engine::new_run` + `Engine::submit`), plus 64 through `Service::run_now`.
//! - `latency`: enqueue → start when idle, one run at a time.
//! - `lateness`: 10,000 cron schedules with due times spread over the minute.
//! - `burst`: 1,000 and then 10,000 schedules due in the same second.

/// The same allocator as the `baton` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton::domain::{Origin, Run, RunState, Schedule, SystemClock, Trigger, User};
use baton::engine::Engine;
use baton::service::{open_baton, Config, RunNowInput, ScheduleInput, Service};
use baton::store::RunFilter;
use chrono::{DateTime, Timelike, Utc};
use serde_json::json;

const ENV: &str = "production";

struct Bench {
    service: Arc<Service>,
    admin: User,
    _dir: tempfile::TempDir,
}

impl Bench {
    fn engine(&self) -> &Arc<Engine> {
        &self.service.engine
    }
}

/// A fresh data dir, opened as `baton serve` opens it, with the dispatcher (and optionally
/// the scheduler) running on the current runtime.
async fn open(max_concurrent_runs: usize, scheduler: bool) -> Bench {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::new(dir.path().join("data"));
    cfg.admin_password = Some("bench-password".into());
    cfg.max_concurrent_runs = max_concurrent_runs;
    let baton = open_baton(&cfg, Arc::new(SystemClock))
        .await
        .expect("open baton");
    let service = baton.service;
    tokio::spawn(service.engine.clone().dispatch());
    if scheduler {
        tokio::spawn(service.scheduler.clone().run());
    }
    let admin = service
        .store
        .user("admin")
        .expect("read admin")
        .expect("admin exists");
    Bench {
        service,
        admin,
        _dir: dir,
    }
}

fn schedule_input(value: serde_json::Value) -> ScheduleInput {
    serde_json::from_value(value).expect("schedule input")
}

fn create(b: &Bench, body: serde_json::Value) -> Schedule {
    let view = b
        .service
        .create_schedule(&b.admin, ENV, schedule_input(body))
        .expect("create schedule");
    b.service
        .store
        .schedule(view.id)
        .expect("read schedule")
        .expect("schedule exists")
}

fn noop_manual(b: &Bench) -> Schedule {
    create(
        b,
        json!({"name": "bench noop", "kind": "noop", "trigger": {"type": "manual"}}),
    )
}

fn finished(engine: &Engine) -> u64 {
    let m = &engine.metrics;
    m.runs_succeeded.load(Ordering::Relaxed)
        + m.runs_failed.load(Ordering::Relaxed)
        + m.runs_timed_out.load(Ordering::Relaxed)
}

async fn wait_finished(engine: &Engine, target: u64, deadline: Duration) {
    let end = Instant::now() + deadline;
    while finished(engine) < target {
        assert!(
            Instant::now() < end,
            "only {} of {target} runs finished in {deadline:?}",
            finished(engine)
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

fn all_runs(b: &Bench) -> Vec<Run> {
    b.service
        .store
        .page_runs(
            ENV,
            &RunFilter {
                limit: usize::MAX,
                ..RunFilter::default()
            },
        )
        .expect("page runs")
}

struct Pct {
    n: usize,
    p50: f64,
    p99: f64,
    max: f64,
}

/// Percentiles (nearest rank) of values in milliseconds.
fn pct(mut v: Vec<f64>) -> Pct {
    assert!(!v.is_empty());
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Pct {
        n: v.len(),
        p50: at(0.50),
        p99: at(0.99),
        max: v[v.len() - 1],
    }
}

fn ms(d: chrono::Duration) -> f64 {
    d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
}

// ---------------------------------------------------------------------------------------

struct Throughput {
    how: &'static str,
    max_concurrent_runs: usize,
    submitters: usize,
    runs: u64,
    secs: f64,
    commits: u64,
    ops: u64,
}

/// `submitters` tasks each submit `per` runs back to back (each awaits its durable enqueue),
/// then we wait until every run is final. Runs completed ÷ wall time.
async fn throughput(
    submitters: usize,
    per: usize,
    via_service: bool,
    max_concurrent_runs: usize,
) -> Throughput {
    let b = Arc::new(open(max_concurrent_runs, false).await);
    let schedule = Arc::new(noop_manual(&b));
    let engine = b.engine().clone();
    let commits0 = engine.metrics.commits.load(Ordering::Relaxed);
    let ops0 = engine.metrics.committed_ops.load(Ordering::Relaxed);
    let total = (submitters * per) as u64;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..submitters {
        let (b, schedule) = (b.clone(), schedule.clone());
        tasks.spawn(async move {
            for _ in 0..per {
                if via_service {
                    b.service
                        .run_now(
                            &b.admin,
                            ENV,
                            schedule.id,
                            RunNowInput::default(),
                            b"{}",
                            None,
                        )
                        .await
                        .expect("run now");
                } else {
                    let engine = b.engine();
                    let run = engine
                        .new_run(&schedule, Origin::Manual, "admin", None, None)
                        .expect("new run");
                    engine
                        .submit(
                            run,
                            baton::engine::Submit {
                                overlap: schedule.overlap,
                                ..Default::default()
                            },
                        )
                        .await
                        .expect("submit");
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("submitter");
    }
    wait_finished(&engine, total, Duration::from_secs(600)).await;
    let secs = start.elapsed().as_secs_f64();
    let succeeded = engine.metrics.runs_succeeded.load(Ordering::Relaxed);
    assert_eq!(succeeded, total, "every run succeeds");
    let stored = b
        .service
        .store
        .runs_in_state(RunState::Succeeded)
        .expect("read runs")
        .len() as u64;
    assert_eq!(stored, total, "every run is stored as succeeded");
    Throughput {
        how: if via_service {
            "Service::run_now (+ audit entry)"
        } else {
            "Engine::new_run + submit"
        },
        max_concurrent_runs,
        submitters,
        runs: total,
        secs,
        commits: engine.metrics.commits.load(Ordering::Relaxed) - commits0,
        ops: engine.metrics.committed_ops.load(Ordering::Relaxed) - ops0,
    }
}

fn print_throughput(rows: &[Throughput]) {
    println!("\n## Durable no-op runs completed per second\n");
    println!("| path | max_concurrent_runs | submitters | runs | wall s | runs/s | commits | ops/commit |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.0} | {} | {:.1} |",
            r.how,
            r.max_concurrent_runs,
            r.submitters,
            r.runs,
            r.secs,
            r.runs as f64 / r.secs,
            r.commits,
            r.ops as f64 / r.commits.max(1) as f64
        );
    }
}

// ---------------------------------------------------------------------------------------

/// Idle enqueue → start: one run at a time, the engine otherwise idle.
async fn latency(samples: usize) {
    let b = open(32, false).await;
    let schedule = noop_manual(&b);
    let engine = b.engine().clone();
    let (mut commit, mut to_start, mut after_commit) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..samples {
        let run = engine
            .new_run(&schedule, Origin::Manual, "admin", None, None)
            .expect("new run");
        let t0 = Utc::now();
        let submitted = engine
            .submit(
                run,
                baton::engine::Submit {
                    overlap: schedule.overlap,
                    ..Default::default()
                },
            )
            .await
            .expect("submit");
        let t1 = Utc::now();
        wait_finished(&engine, i as u64 + 1, Duration::from_secs(10)).await;
        let log = b
            .service
            .store
            .run_log(submitted.run_id(), 0, 100)
            .expect("log");
        let started = log
            .iter()
            .find(|l| l.stream == "system" && l.text.starts_with("attempt 1 of"))
            .expect("attempt started line")
            .at;
        commit.push(ms(t1 - t0));
        to_start.push(ms(started - t0));
        after_commit.push(ms(started - t1).max(0.0));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    println!("\n## Enqueue → start latency, idle ({samples} runs, one at a time)\n");
    println!("| measure | n | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|");
    for (name, v) in [
        (
            "run-now call → enqueue durable (one fsync'd commit)",
            commit,
        ),
        ("run-now call → task started (commit included)", to_start),
        (
            "enqueue durable → task started (0 = started before the caller resumed)",
            after_commit,
        ),
    ] {
        let p = pct(v);
        println!(
            "| {name} | {} | {:.3} | {:.3} | {:.3} |",
            p.n, p.p50, p.p99, p.max
        );
    }
}

// ---------------------------------------------------------------------------------------

/// Creates cron schedules `"{second} * * * * *"` (UTC), one commit each, off the runtime's
/// workers so the scheduler keeps firing meanwhile. The first goes through
/// `Service::create_schedule`; the rest are copies of it with their own id, name and cron,
/// saved as `create_schedule` saves them (`Store::put_schedule`, then the scheduler told),
/// because the service's save-time chain-cycle check reads every stored schedule and would
/// make creating 10,000 of them quadratic (minutes). What is measured starts after this.
async fn create_crons(b: &Arc<Bench>, seconds: Vec<u32>) -> (Vec<uuid::Uuid>, f64) {
    let b2 = b.clone();
    let start = Instant::now();
    let ids = tokio::task::spawn_blocking(move || {
        let template = create(
            &b2,
            json!({"name": "cron template", "kind": "noop", "enabled": false,
                "trigger": {"type": "cron", "expr": "0 * * * * *"}}),
        );
        let zone = "UTC";
        let mut ids = Vec::with_capacity(seconds.len());
        for (i, sec) in seconds.into_iter().enumerate() {
            let mut s = template.clone();
            s.id = uuid::Uuid::now_v7();
            s.name = format!("cron {i}");
            s.enabled = true;
            s.trigger = Trigger::Cron {
                expr: format!("{sec} * * * * *"),
                time_zone: None,
            };
            s.next_fire_at = s.trigger.next_after(Utc::now(), zone);
            let audit = b2.service.audit_entry(
                "admin",
                "schedule.create",
                Some(ENV),
                Some(s.id.to_string()),
                s.name.clone(),
            );
            b2.service
                .store
                .put_schedule(&s, &audit)
                .expect("save schedule");
            b2.service.scheduler.update(s.id, s.next_fire_at);
            ids.push(s.id);
        }
        // The template is disabled: its due times only advance it.
        ids
    })
    .await
    .expect("create schedules");
    (ids, start.elapsed().as_secs_f64())
}

async fn sleep_until(t: DateTime<Utc>) {
    if let Ok(d) = (t - Utc::now()).to_std() {
        tokio::time::sleep(d).await;
    }
}

/// Every (schedule, due time) fired at most once, over all stored runs.
fn doubled(runs: &[Run]) -> usize {
    let mut seen = HashSet::new();
    runs.iter()
        .filter_map(|r| r.due_at.map(|d| (r.schedule_id, d)))
        .filter(|k| !seen.insert(*k))
        .count()
}

async fn lateness(count: usize) {
    let b = Arc::new(open(32, true).await);
    let (ids, create_secs) = create_crons(&b, (0..count).map(|i| (i % 60) as u32).collect()).await;
    // A one-minute window that starts after the last schedule is saved: every schedule has
    // exactly one due time in it.
    let now = Utc::now();
    let window_start = now.with_nanosecond(0).expect("whole second") + chrono::Duration::seconds(3);
    let window_end = window_start + chrono::Duration::seconds(60);
    println!("\n(created {count} cron schedules in {create_secs:.1} s; measuring due times in [{window_start}, {window_end}))");
    sleep_until(window_end + chrono::Duration::seconds(3)).await;
    wait_settled(&b).await;
    let runs = all_runs(&b);
    let in_window: Vec<&Run> = runs
        .iter()
        .filter(|r| {
            r.due_at
                .is_some_and(|d| d >= window_start && d < window_end)
        })
        .collect();
    let mut per_schedule: HashMap<uuid::Uuid, usize> = HashMap::new();
    for r in &in_window {
        *per_schedule.entry(r.schedule_id).or_default() += 1;
    }
    let missed = ids
        .iter()
        .filter(|id| !per_schedule.contains_key(id))
        .count();
    let doubled = doubled(&runs);
    let not_ok = in_window
        .iter()
        .filter(|r| r.state != RunState::Succeeded)
        .count();
    let p = pct(in_window
        .iter()
        .map(|r| ms(r.queued_at - r.due_at.expect("due")))
        .collect());
    let dropped = b.engine().metrics.due_dropped.load(Ordering::Relaxed);
    println!(
        "\n## Scheduler lateness: {count} cron schedules spread over the minute (~{:.0} due/s)\n",
        count as f64 / 60.0
    );
    println!("| due times | runs | missed | doubled | not succeeded | dropped | p50 ms | p99 ms | max ms |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {missed} | {doubled} | {not_ok} | {dropped} | {:.2} | {:.2} | {:.2} |",
        ids.len(),
        p.n,
        p.p50,
        p.p99,
        p.max
    );
}

/// Waits until nothing is queued or running.
async fn wait_settled(b: &Bench) {
    let end = Instant::now() + Duration::from_secs(120);
    while b.engine().queued_total() + b.engine().running_total() > 0 && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `sizes[i]` schedules all due at the same second, the groups 20 s apart.
async fn burst(sizes: &[usize]) {
    let b = Arc::new(open(32, true).await);
    // Aim the first group's second past the expected creation time (~1 ms per schedule).
    let total: usize = sizes.iter().sum();
    let first = (Utc::now() + chrono::Duration::milliseconds(total as i64 * 2 + 5_000)).second();
    let seconds: Vec<u32> = sizes
        .iter()
        .enumerate()
        .flat_map(|(g, &n)| std::iter::repeat_n((first + 20 * g as u32) % 60, n))
        .collect();
    let (ids, create_secs) = create_crons(&b, seconds.clone()).await;
    let created_at = Utc::now();
    println!("\n(created {total} cron schedules in {create_secs:.1} s)");
    // Each group's measured due time is its second's first occurrence after all are saved,
    // when every schedule of the group is due at once.
    let mut groups = Vec::new();
    let mut offset = 0;
    for (g, &n) in sizes.iter().enumerate() {
        let sec = (first + 20 * g as u32) % 60;
        let base = created_at.with_nanosecond(0).expect("whole second");
        let mut due = base.with_second(sec).expect("second");
        while due <= created_at {
            due += chrono::Duration::seconds(60);
        }
        groups.push((n, due, ids[offset..offset + n].to_vec()));
        offset += n;
    }
    let last = groups.iter().map(|g| g.1).max().expect("a group");
    sleep_until(last + chrono::Duration::seconds(3)).await;
    wait_settled(&b).await;
    let runs = all_runs(&b);
    let doubled = doubled(&runs);
    println!("\n## Scheduler lateness: same-second bursts\n");
    println!("| schedules due in one second | runs | missed | not succeeded | p50 ms | p99 ms | max ms |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for (n, due, group) in groups {
        let group: HashSet<_> = group.into_iter().collect();
        let fired: Vec<&Run> = runs
            .iter()
            .filter(|r| r.due_at == Some(due) && group.contains(&r.schedule_id))
            .collect();
        let fired_ids: HashSet<_> = fired.iter().map(|r| r.schedule_id).collect();
        let missed = group.len() - fired_ids.len();
        let not_ok = fired
            .iter()
            .filter(|r| r.state != RunState::Succeeded)
            .count();
        let p = pct(fired.iter().map(|r| ms(r.queued_at - due)).collect());
        println!(
            "| {n} | {} | {missed} | {not_ok} | {:.2} | {:.2} | {:.2} |",
            p.n, p.p50, p.p99, p.max
        );
    }
    println!("\n(doubled (schedule, due time) pairs over all runs: {doubled})");
}

// ---------------------------------------------------------------------------------------

fn main() {
    baton::install_crypto_provider();
    let wanted =
        std::env::var("BATON_BENCH").unwrap_or_else(|_| "throughput,latency,lateness,burst".into());
    let wants = |s: &str| wanted.split(',').any(|w| w.trim() == s);
    let rt = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime")
    };
    println!(
        "# Baton engine benchmark\n\n{} logical CPUs, durable commits (redb Immediate), data dir in {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::temp_dir().display()
    );
    if wants("throughput") {
        // (submitters, runs each, through Service::run_now, max_concurrent_runs); 32 is
        // the server's default limit.
        let cases = [
            (1, 2_000, false, 32),
            (64, 1_000, false, 32),
            (64, 1_000, false, 64),
            (64, 1_000, false, 256),
            (64, 200, true, 64),
        ];
        let rows: Vec<Throughput> = cases
            .into_iter()
            .map(|(n, per, service, max)| rt().block_on(throughput(n, per, service, max)))
            .collect();
        print_throughput(&rows);
    }
    if wants("latency") {
        rt().block_on(latency(1_000));
    }
    if wants("lateness") {
        rt().block_on(lateness(10_000));
    }
    if wants("burst") {
        rt().block_on(burst(&[1_000, 10_000]));
    }
}
