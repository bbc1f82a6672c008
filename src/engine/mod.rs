//! The engine: admission (limits and the queue), the dispatcher, the workers that run
//! attempts, group commit, and the scheduler that fires due times.

mod admission;
mod committer;
mod file_tokens;
mod hop_run;
mod hops;
mod metrics;
mod new_run;
mod recovery;
mod refire;
pub mod scheduler;
mod stop;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

pub use admission::{Admission, Waiting};
pub use committer::Committer;
pub use metrics::Metrics;
pub use refire::{PreviewParam, Refired};

use crate::crypto::Keyring;
use crate::domain::{Clock, Overlap, Run, RunState};
use crate::store::{Enqueue, Fire, IdempotencyKey, RunOp, RunOpOutcome, Store, StoreError};
use crate::tasks::{Kinds, TaskSettings};

#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub max_concurrent_runs: usize,
    /// A hop whose run would be deeper than this does not fire.
    pub max_chain_depth: u32,
    pub file_token_ttl: std::time::Duration,
    pub tasks: TaskSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Overlap `skip` with a run active.
    #[error("the schedule already has an active run (overlap: skip)")]
    Busy,
    #[error("the run is {0}")]
    WrongState(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a secret could not be prepared: {0}")]
    Crypto(#[from] crate::crypto::CryptoError),
}

/// Why a running attempt was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    Cancel,
    Shutdown,
}

struct Active {
    token: CancellationToken,
    reason: Arc<Mutex<Option<StopReason>>>,
}

/// How a new run is submitted: its schedule's overlap policy, and what commits with it.
#[derive(Debug, Default)]
pub struct Submit {
    pub overlap: Overlap,
    pub idempotency: Option<IdempotencyKey>,
    /// The due time a scheduled run fires (advances its schedule in the same commit).
    pub fire: Option<Fire>,
    pub tokens: Vec<([u8; 32], crate::domain::FileToken)>,
    /// Audited in the same commit as the run.
    pub audit: Option<crate::domain::AuditEntry>,
}

/// What starting a run came to.
#[derive(Debug, Clone)]
pub enum Submitted {
    Started(Box<Run>),
    Queued(Box<Run>),
    /// An `Idempotency-Key` replay: the first run's id.
    Replayed(Uuid),
}

impl Submitted {
    pub fn run_id(&self) -> Uuid {
        match self {
            Submitted::Started(r) | Submitted::Queued(r) => r.id,
            Submitted::Replayed(id) => *id,
        }
    }
}

pub struct Engine {
    pub store: Arc<Store>,
    pub kinds: Arc<Kinds>,
    pub keyring: Arc<Keyring>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub settings: Arc<TaskSettings>,
    max_chain_depth: u32,
    file_token_ttl: std::time::Duration,
    committer: Committer,
    admission: Mutex<Admission>,
    /// Environment → IANA zone, for `@DATE@` and cron triggers without a zone.
    zones: std::sync::RwLock<HashMap<String, String>>,
    active: Mutex<HashMap<Uuid, Active>>,
    wake: Notify,
    /// Set when intake stops: nothing new starts.
    stopping: CancellationToken,
    workers: TaskTracker,
    /// The runtime the engine was made on. Attempts are spawned here, never on the HTTP
    /// server's per-worker runtimes, which stop with the server.
    runtime: tokio::runtime::Handle,
}

impl Engine {
    /// Must be called inside the Tokio runtime that will run the attempts.
    pub fn new(
        store: Arc<Store>,
        kinds: Arc<Kinds>,
        keyring: Arc<Keyring>,
        clock: Arc<dyn Clock>,
        settings: EngineSettings,
    ) -> Arc<Self> {
        let metrics = Arc::new(Metrics::default());
        let committer = Committer::start(store.clone(), metrics.clone());
        Arc::new(Self {
            store,
            kinds,
            keyring,
            clock,
            metrics,
            max_chain_depth: settings.max_chain_depth,
            file_token_ttl: settings.file_token_ttl,
            settings: Arc::new(settings.tasks),
            committer,
            admission: Mutex::new(Admission::new(settings.max_concurrent_runs)),
            zones: std::sync::RwLock::new(HashMap::new()),
            active: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            stopping: CancellationToken::new(),
            workers: TaskTracker::new(),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    fn admission(&self) -> MutexGuard<'_, Admission> {
        self.admission.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes in an environment's limit and time zone (at start, and whenever one is saved):
    /// runs read the zone from here rather than from the store.
    pub fn set_environment(&self, env: &crate::domain::Environment) {
        self.zones
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(env.id.clone(), env.time_zone.clone());
        self.admission()
            .set_env_limit(&env.id, env.max_concurrent_runs);
        self.wake.notify_one();
    }

    /// An environment's time zone (UTC when it is unknown).
    pub fn zone_of(&self, env: &str) -> String {
        if let Some(z) = self
            .zones
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(env)
        {
            return z.clone();
        }
        self.store
            .environment(env)
            .ok()
            .flatten()
            .map_or_else(|| "UTC".to_string(), |e| e.time_zone)
    }

    pub fn running_total(&self) -> usize {
        self.admission().running_total()
    }

    pub fn queued_total(&self) -> usize {
        self.admission().queued_total()
    }

    pub async fn submit_op(&self, op: RunOp) -> Result<RunOpOutcome, StoreError> {
        self.committer.submit(op).await
    }

    /// Commits a new run and starts it, claiming its first attempt in the same commit when
    /// a slot is free (one commit from "run now" to "running").
    pub async fn submit(
        self: &Arc<Self>,
        mut run: Run,
        how: Submit,
    ) -> Result<Submitted, EngineError> {
        let Submit {
            overlap,
            idempotency,
            fire,
            tokens,
            audit,
        } = how;
        let start_now = self.admit_submitted(&mut run, overlap)?;
        let (env, schedule) = (run.env.clone(), run.schedule_id);
        let outcome = self
            .committer
            .submit(RunOp::Enqueue(Box::new(Enqueue {
                run,
                idempotency,
                fire,
                tokens,
                audit,
            })))
            .await;
        let submitted = match outcome {
            Ok(RunOpOutcome::Enqueued(run)) => return Ok(self.enqueued(*run, start_now, overlap)),
            Ok(RunOpOutcome::Replayed(id)) => Ok(Submitted::Replayed(id)),
            Ok(other) => {
                Err(StoreError::Db(format!("unexpected enqueue outcome {other:?}")).into())
            }
            Err(e) => Err(e.into()),
        };
        // Nothing new became active: give back what admission counted.
        self.admission().forget_new(&env, schedule, start_now);
        submitted
    }

    /// Admission for a new run: true (with its first attempt claimed on `run`) when it may
    /// start now; `Busy` under overlap `skip` with a run active.
    fn admit_submitted(&self, run: &mut Run, overlap: Overlap) -> Result<bool, EngineError> {
        let start_now = self
            .admission()
            .admit_new(&run.env, run.schedule_id, overlap)
            .ok_or(EngineError::Busy)?;
        let start_now = start_now && !self.stopping.is_cancelled();
        if start_now {
            run.state = RunState::Running;
            run.attempts = 1;
            run.started_at = Some(self.clock.now());
            run.epoch = self.store.epoch();
        }
        Ok(start_now)
    }

    /// A new run is committed: it starts, or waits its turn.
    fn enqueued(self: &Arc<Self>, run: Run, started: bool, overlap: Overlap) -> Submitted {
        self.metrics
            .runs_enqueued
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if started {
            self.spawn_attempt(run.clone());
            return Submitted::Started(Box::new(run));
        }
        self.admission().enqueue(Waiting {
            run_id: run.id,
            env: run.env.clone(),
            schedule_id: run.schedule_id,
            overlap,
            not_before: None,
        });
        self.wake.notify_one();
        Submitted::Queued(Box::new(run))
    }

    /// Starts waiting runs as slots free up and retries come due, until intake stops.
    pub async fn dispatch(self: Arc<Self>) {
        loop {
            let (ready, wake_at) = {
                let mut adm = self.admission();
                (adm.take_ready(self.clock.now()), adm.next_wakeup())
            };
            for w in ready {
                let engine = self.clone();
                self.workers
                    .spawn_on(async move { engine.claim_and_run(w).await }, &self.runtime);
            }
            let sleep = wake_at.map(|t| (t - self.clock.now()).to_std().unwrap_or_default());
            tokio::select! {
                () = self.wake.notified() => {}
                () = async { match sleep { Some(d) => tokio::time::sleep(d).await, None => std::future::pending().await } } => {}
                () = self.stopping.cancelled() => return,
            }
        }
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    fn spawn_attempt(self: &Arc<Self>, run: Run) {
        let engine = self.clone();
        self.workers
            .spawn_on(async move { engine.execute(run).await }, &self.runtime);
    }

    async fn claim_and_run(self: Arc<Self>, w: Waiting) {
        let op = RunOp::Claim {
            run_id: w.run_id,
            at: self.clock.now(),
            epoch: self.store.epoch(),
        };
        match self.committer.submit(op).await {
            Ok(RunOpOutcome::Claimed(run)) => self.execute(*run).await,
            Ok(_) | Err(_) => {
                // Cancelled or gone meanwhile: give the slot back.
                self.admission().release_slot(&w.env, w.schedule_id);
                self.wake.notify_one();
            }
        }
    }
}
