//! Page latency with a large history (design §10): 1,000,000 stored runs seeded through the
//! bulk path, then the dashboard, schedules list, runs history and run detail pages each
//! requested at a fixed 200 requests/s by an open-loop load generator (latency counted
//! from each request's scheduled send time, so a slow answer cannot hide the ones behind it).
//! Also the disk used per stored run, after compaction.
//!
//! ```text
//! cargo bench --bench pages
//! BATON_BENCH_RUNS=100000 BATON_BENCH_SECONDS=5 cargo bench --bench pages   # smaller
//! ```

/// The same allocator as the `baton` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpServer};
use baton::domain::{Origin, RetryPolicy, Run, RunState, SystemClock};
use baton::service::{open_baton, Config, ScheduleInput};
use chrono::Utc;
use uuid::Uuid;

const ENV: &str = "production";
const PASSWORD: &str = "bench-password-1";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A finished no-op run without parameters, as the scheduler leaves one.
fn finished_run(schedule: Uuid, at: chrono::DateTime<Utc>, i: usize) -> Run {
    let id = Uuid::now_v7();
    let state = if i.is_multiple_of(50) {
        RunState::Failed
    } else {
        RunState::Succeeded
    };
    Run {
        id,
        env: ENV.into(),
        schedule_id: schedule,
        kind: "noop".into(),
        state,
        origin: Origin::Schedule,
        due_at: Some(at),
        attempts: 1,
        retry: RetryPolicy::default(),
        timeout_seconds: 3600,
        queued_at: at,
        started_at: Some(at),
        finished_at: Some(at + chrono::Duration::milliseconds(3)),
        not_before: None,
        acting_user: "admin".into(),
        params: Vec::new(),
        outputs: Default::default(),
        error: (state == RunState::Failed).then(|| "exit 1".to_string()),
        root: None,
        parent: None,
        parent_hop: None,
        depth: 0,
        children: Vec::new(),
        chain_errors: Vec::new(),
        epoch: 1,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Open-loop load: request `i` is due at `start + i / rate`; its latency counts from then.
async fn fixed_rate(
    client: &reqwest::Client,
    url: &str,
    cookie: &str,
    rate: usize,
    seconds: usize,
) -> (Vec<Duration>, usize) {
    let total = rate * seconds;
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
        let client = client.clone();
        let url = url.to_string();
        let cookie = cookie.to_string();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(due).await;
            let resp = client.get(&url).header("cookie", cookie).send().await;
            let ok = match resp {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            };
            (due.elapsed(), ok)
        }));
    }
    let mut lat = Vec::with_capacity(total);
    let mut errors = 0;
    for t in tasks {
        if let Ok((d, ok)) = t.await {
            lat.push(d);
            if !ok {
                errors += 1;
            }
        }
    }
    lat.sort();
    (lat, errors)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let runs = env_usize("BATON_BENCH_RUNS", 1_000_000);
    let seconds = env_usize("BATON_BENCH_SECONDS", 10);
    let rate = env_usize("BATON_BENCH_RATE", 200);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::new(dir.path().join("data"));
    cfg.admin_password = Some(PASSWORD.into());
    cfg.start_engine = false;
    let baton = open_baton(&cfg, Arc::new(SystemClock)).await.expect("open");
    let service = baton.service;
    let admin = service
        .store
        .user("admin")
        .expect("admin")
        .expect("admin exists");

    let mut schedules = Vec::new();
    for i in 0..20 {
        let input: ScheduleInput = serde_json::from_value(serde_json::json!({
            "name": format!("Schedule {i}"), "kind": "noop",
            "trigger": if i % 2 == 0 { serde_json::json!({"type": "cron", "expr": format!("{i} 2 * * *")}) } else { serde_json::json!({"type": "manual"}) }
        }))
        .expect("input");
        schedules.push(
            service
                .create_schedule(&admin, ENV, input)
                .expect("schedule")
                .id,
        );
    }

    // History spread over the last 30 days, oldest first (ids are time-ordered).
    let t0 = Instant::now();
    let now = Utc::now();
    let span = chrono::Duration::days(30);
    let batch = 10_000;
    let mut done = 0;
    while done < runs {
        let n = batch.min(runs - done);
        let chunk: Vec<Run> = (done..done + n)
            .map(|i| {
                let at = now - span
                    + chrono::Duration::milliseconds(
                        (span.num_milliseconds() as f64 * i as f64 / runs as f64) as i64,
                    );
                finished_run(schedules[i % schedules.len()], at, i)
            })
            .collect();
        service.store.import_runs(&chunk).expect("import");
        done += n;
    }
    let seeded = t0.elapsed();
    let db = dir.path().join("data").join("baton.redb");
    let size_before = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    println!("seeded {runs} runs in {:.1} s ({:.0} runs/s); database {:.1} MiB ({:.0} bytes/run before compaction)",
        seeded.as_secs_f64(), runs as f64 / seeded.as_secs_f64(), size_before as f64 / 1048576.0, size_before as f64 / runs as f64);

    let recent = service
        .store
        .page_runs(
            ENV,
            &baton::store::RunFilter {
                limit: 1,
                ..Default::default()
            },
        )
        .expect("page")[0]
        .id;
    let state = web::Data::new(service.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap_fn(baton::web::security_headers)
            .configure(baton::api::routes)
            .configure(baton::web::routes)
    })
    .workers(2)
    .bind("127.0.0.1:0")
    .expect("bind");
    let addr = server.addrs()[0];
    let handle = server.run();
    let stop = handle.handle();
    tokio::spawn(handle);
    let base = format!("http://{addr}");

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    let login = client
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username=admin&password={PASSWORD}&next=/"))
        .send()
        .await
        .expect("login");
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("baton_session="))
        .and_then(|c| c.split(';').next())
        .expect("session cookie")
        .to_string();

    let pages = [
        ("dashboard", format!("{base}/envs/{ENV}/dashboard")),
        ("schedules list", format!("{base}/envs/{ENV}/schedules")),
        ("runs history", format!("{base}/envs/{ENV}/runs")),
        (
            "runs history, failed only",
            format!("{base}/envs/{ENV}/runs?state=failed"),
        ),
        ("run detail", format!("{base}/envs/{ENV}/runs/{recent}")),
    ];
    println!("\n{runs} stored runs; {rate} requests/s for {seconds} s per page (2 cores shared by server and client)");
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>7}",
        "page", "p50 ms", "p99 ms", "max ms", "errors"
    );
    for (name, url) in &pages {
        // Warm-up: caches, connections.
        for _ in 0..20 {
            let _ = client
                .get(url)
                .header("cookie", &cookie)
                .send()
                .await
                .map(|r| r.bytes());
        }
        let (lat, errors) = fixed_rate(&client, url, &cookie, rate, seconds).await;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{:<28} {:>9.2} {:>9.2} {:>9.2} {:>7}",
            name,
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99)),
            ms(*lat.last().unwrap_or(&Duration::ZERO)),
            errors
        );
    }
    stop.stop(true).await;
    drop(service);

    // Disk per stored run after compaction: a store holding only runs, compacted.
    let sample = runs.min(200_000);
    let dir2 = tempfile::tempdir().expect("tempdir");
    let mut store = baton::store::Store::open(dir2.path()).expect("store");
    store.start_epoch().expect("epoch");
    let schedule = Uuid::now_v7();
    let mut done = 0;
    while done < sample {
        let n = batch.min(sample - done);
        let chunk: Vec<Run> = (done..done + n)
            .map(|i| {
                finished_run(
                    schedule,
                    now - chrono::Duration::seconds((sample - i) as i64),
                    i,
                )
            })
            .collect();
        store.import_runs(&chunk).expect("import");
        done += n;
    }
    while store.compact().expect("compact") {}
    let size = std::fs::metadata(dir2.path().join("baton.redb"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!("\ndisk per stored run (no-op, no parameters, logs excluded, after compaction): {:.0} bytes ({sample} runs, {:.1} MiB)", size as f64 / sample as f64, size as f64 / 1048576.0);
}
