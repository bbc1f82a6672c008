//! Chain hop benchmarks (design §10), on the library with a real redb file and every commit
//! durable: hops per second along one serial chain and along 64 chains in parallel (no-op
//! tasks), and hop latency — source run committed → target task started — when idle.
//!
//! ```text
//! cargo bench --bench chains
//! BATON_BENCH_HOPS=500 cargo bench --bench chains    # hops per chain
//! BATON_BENCH_CHAINS=64 cargo bench --bench chains   # only the 64-chain case (or 1)
//! ```
//!
//! Each chain is a no-op schedule whose `async-TaskChain` starts itself (`allow_loops`), so a
//! root run starts a chain of runs until `max_chain_depth`. The hop transaction claims the
//! next run's first attempt, so a serial chain costs one commit per hop.

/// The same allocator as the `baton` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton::domain::{Run, RunState, SystemClock, User};
use baton::service::{open_baton, Config, RunNowInput, ScheduleInput, Service};
use baton::store::RunFilter;
use serde_json::json;

const ENV: &str = "production";

async fn open(
    depth: u32,
    concurrency: usize,
) -> (Arc<Service>, User, uuid::Uuid, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::new(dir.path().join("data"));
    cfg.admin_password = Some("bench-password".into());
    cfg.max_chain_depth = depth;
    cfg.max_concurrent_runs = concurrency;
    let baton = open_baton(&cfg, Arc::new(SystemClock)).await.expect("open");
    let service = baton.service;
    tokio::spawn(service.engine.clone().dispatch());
    let admin = service
        .store
        .user("admin")
        .expect("admin")
        .expect("admin exists");
    let template: ScheduleInput = serde_json::from_value(
        json!({"name": "loop", "kind": "noop", "trigger": {"type": "manual"}, "allow_loops": true}),
    )
    .expect("input");
    let s = service
        .create_schedule(&admin, ENV, template)
        .expect("schedule");
    let chain = baton::service::ChainInput {
        name: Some("again".into()),
        schedule_id: Some(s.id.to_string()),
        ..Default::default()
    };
    service.create_chain(&admin, ENV, chain).expect("chain");
    let with_chain: ScheduleInput = serde_json::from_value(
        json!({"name": "loop", "kind": "noop", "trigger": {"type": "manual"}, "allow_loops": true,
        "params": [{"name": "async-TaskChain", "value": "{\"name\": \"again\"}"}]}),
    )
    .expect("input");
    service
        .replace_schedule(&admin, ENV, s.id, with_chain)
        .expect("chain param");
    (service, admin, s.id, dir)
}

/// Waits until `expected` runs have ended (the time since `start` is the wall time), by the engine's counters (each bumped only after
/// the run's completion is committed), so the wait does not compete with the engine for the
/// two cores; then reads every run of the schedule (newest first) once.
async fn wait_all(
    service: &Service,
    schedule: uuid::Uuid,
    expected: usize,
    start: Instant,
    deadline: Duration,
) -> (Vec<Run>, Duration) {
    let m = &service.engine.metrics;
    let ended = || {
        [
            &m.runs_succeeded,
            &m.runs_failed,
            &m.runs_timed_out,
            &m.runs_cancelled,
        ]
        .iter()
        .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
        .sum::<u64>() as usize
    };
    while ended() < expected {
        assert!(
            start.elapsed() < deadline,
            "only {} of {expected} runs ended",
            ended()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let wall = start.elapsed();
    let runs = service
        .store
        .page_runs(
            ENV,
            &RunFilter {
                schedule: Some(schedule),
                limit: expected + 10,
                ..Default::default()
            },
        )
        .expect("page");
    assert_eq!(runs.len(), expected, "every run is stored");
    assert!(runs.iter().all(|r| r.state.is_final()), "every run ended");
    (runs, wall)
}

/// source finished → target started, per hop: the source's last log line (written with its
/// `finished_at`, just before its hops are planned and its transaction is fsync'd) to the
/// target's first log line (written when its task starts). Log lines keep full clock
/// precision; run timestamps are stored in whole milliseconds, too coarse for this.
fn hop_latencies(service: &Service, runs: &[Run]) -> Vec<Duration> {
    let ids: std::collections::HashSet<_> = runs.iter().map(|r| r.id).collect();
    let log = |id, first: bool| {
        let lines = service.store.run_log(id, 0, 100).ok()?;
        let line = if first { lines.first() } else { lines.last() };
        line.map(|l| l.at)
    };
    let mut out = Vec::new();
    for r in runs {
        let Some(parent) = r.parent.as_ref().filter(|p| ids.contains(&p.id)) else {
            continue;
        };
        if let (Some(finished), Some(started)) = (log(parent.id, false), log(r.id, true)) {
            out.push((started - finished).to_std().unwrap_or_default());
        }
    }
    out.sort();
    out
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

async fn chains(parallel: usize, hops_per_chain: u32) {
    let (service, admin, schedule, _dir) = open(hops_per_chain, 64.max(parallel)).await;
    let start = Instant::now();
    for _ in 0..parallel {
        service
            .run_now(&admin, ENV, schedule, RunNowInput::default(), b"", None)
            .await
            .expect("run now");
    }
    let expected = parallel * (hops_per_chain as usize + 1);
    let (runs, wall) = wait_all(
        &service,
        schedule,
        expected,
        start,
        Duration::from_secs(600),
    )
    .await;
    let hops = runs.iter().filter(|r| r.parent.is_some()).count();
    let failed = runs
        .iter()
        .filter(|r| r.state != RunState::Succeeded)
        .count();
    let lat = hop_latencies(&service, &runs);
    println!(
        "{parallel:>3} chain(s) × {hops_per_chain} hops: {hops} hops in {:.2} s = {:>8.0} hops/s; hop latency p50 {:.2} ms, p99 {:.2} ms; {} commits; {failed} not succeeded",
        wall.as_secs_f64(),
        hops as f64 / wall.as_secs_f64(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        service.engine.metrics.commits.load(std::sync::atomic::Ordering::Relaxed)
    );
}

fn main() {
    let hops: u32 = std::env::var("BATON_BENCH_HOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        println!("durable chain hops (no-op tasks, every commit Immediate), 2 cores");
        let only = std::env::var("BATON_BENCH_CHAINS").unwrap_or_default();
        if only != "64" {
            chains(1, hops).await;
        }
        if only != "1" {
            chains(64, hops / 4).await;
        }
    });
}
