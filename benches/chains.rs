//! Chain hop benchmarks (design §10), on the library with a real redb file and every commit
//! durable: hops per second along one serial chain and along 64 chains in parallel (no-op
//! tasks), and hop latency — source run committed → target task started — when idle.
//!
//! ```text
//! cargo bench --bench chains
//! BATON_BENCH_HOPS=500 cargo bench --bench chains    # hops per chain
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

/// Every run of the schedule (newest first), once all are final.
async fn wait_all(
    service: &Service,
    schedule: uuid::Uuid,
    expected: usize,
    deadline: Duration,
) -> Vec<Run> {
    let end = Instant::now() + deadline;
    loop {
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
        if runs.len() >= expected && runs.iter().all(|r| r.state.is_final()) {
            return runs;
        }
        assert!(
            Instant::now() < end,
            "only {} of {expected} runs final",
            runs.iter().filter(|r| r.state.is_final()).count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// source committed → target started, per hop: the source's finish time (set just before its
/// commit) to the target's first log line (written when its task starts).
fn hop_latencies(service: &Service, runs: &[Run]) -> Vec<Duration> {
    let by_id: std::collections::HashMap<_, _> = runs.iter().map(|r| (r.id, r)).collect();
    let mut out = Vec::new();
    for r in runs {
        let Some(parent) = r.parent.as_ref().and_then(|p| by_id.get(&p.id)) else {
            continue;
        };
        let (Some(finished), Some(first)) = (
            parent.finished_at,
            service
                .store
                .run_log(r.id, 0, 1)
                .ok()
                .and_then(|l| l.first().map(|x| x.at)),
        ) else {
            continue;
        };
        out.push((first - finished).to_std().unwrap_or_default());
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
    let runs = wait_all(&service, schedule, expected, Duration::from_secs(600)).await;
    let wall = start.elapsed();
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
        chains(1, hops).await;
        chains(64, hops / 4).await;
    });
}
