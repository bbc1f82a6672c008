//! Opening a data dir: the store, the master key (checked before anything is written), the
//! first start's environment and admin, and the engine with its recovered queue.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use super::accounts::hash_password;
use super::Service;
use crate::crypto::{random_token, CryptoError, Keyring, MasterKey};
use crate::domain::{Clock, Environment, User};
use crate::engine::scheduler::Scheduler;
use crate::engine::{Engine, EngineSettings};
use crate::store::Store;
use crate::tasks::{Kinds, TaskSettings};

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub master_key_file: Option<PathBuf>,
    /// `BATON_MASTER_KEY`: 64 hex characters; wins over the file.
    pub master_key_hex: Option<String>,
    pub max_concurrent_runs: usize,
    pub max_chain_depth: u32,
    pub file_token_ttl: std::time::Duration,
    pub allow_commands: Vec<PathBuf>,
    /// Extra CA certificates (PEM) trusted for FTPS.
    pub ftp_ca_file: Option<PathBuf>,
    /// `BATON_ADMIN_PASSWORD` for the first start.
    pub admin_password: Option<String>,
    /// False for one-shot CLI commands: no recovery, no catch-up runs.
    pub start_engine: bool,
}

impl Config {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            master_key_file: None,
            master_key_hex: None,
            max_concurrent_runs: 32,
            max_chain_depth: 32,
            file_token_ttl: std::time::Duration::from_secs(24 * 3600),
            allow_commands: Vec::new(),
            ftp_ca_file: None,
            admin_password: None,
            start_engine: true,
        }
    }

    pub fn key_file(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }
}

/// What the first start made, to tell the person who ran it.
#[derive(Debug, Clone)]
pub struct FirstStart {
    pub admin_password: String,
}

pub struct Baton {
    pub service: Arc<Service>,
    pub first_start: Option<FirstStart>,
    pub orphans: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BootError(pub String);

impl From<crate::store::StoreError> for BootError {
    fn from(e: crate::store::StoreError) -> Self {
        BootError(e.to_string())
    }
}

impl From<CryptoError> for BootError {
    fn from(e: CryptoError) -> Self {
        BootError(e.to_string())
    }
}

/// `sealed`: the data dir already holds a master check, so a missing key file is an error.
fn load_master_key(cfg: &Config, sealed: bool) -> Result<MasterKey, BootError> {
    if let Some(hex) = &cfg.master_key_hex {
        return Ok(MasterKey::from_hex(hex)?);
    }
    let path = cfg.key_file();
    if !path.exists() && sealed {
        return Err(BootError(format!(
            "the master key file {} is missing, and this data dir was sealed with one (restore it, or set BATON_MASTER_KEY)",
            path.display()
        )));
    }
    Ok(MasterKey::load_or_create(&path)?)
}

/// Opens the data dir and everything on it. The engine's loops are not started yet.
pub async fn open_baton(cfg: &Config, clock: Arc<dyn Clock>) -> Result<Baton, BootError> {
    crate::install_crypto_provider();
    let (store, keyring) = open_store(cfg)?;
    let store = Arc::new(store);
    let kinds = Arc::new(Kinds::builtin());
    let settings = EngineSettings {
        max_concurrent_runs: cfg.max_concurrent_runs,
        max_chain_depth: cfg.max_chain_depth,
        file_token_ttl: cfg.file_token_ttl,
        tasks: TaskSettings {
            allowed_commands: cfg.allow_commands.clone(),
            extra_ca_file: cfg.ftp_ca_file.clone(),
        },
    };
    let keyring = Arc::new(keyring);
    let engine = Engine::new(
        store.clone(),
        kinds.clone(),
        keyring.clone(),
        clock.clone(),
        settings,
    );
    let scheduler = Scheduler::new(engine.clone());
    let service = Arc::new(Service {
        store,
        engine,
        scheduler,
        keyring,
        kinds,
        clock,
        throttle: Default::default(),
        graph_saves: Default::default(),
    });
    let first_start = first_start(&service, cfg).await?;
    let orphans = if cfg.start_engine {
        resume(&service).await?
    } else {
        0
    };
    Ok(Baton {
        service,
        first_start,
        orphans,
    })
}

/// The store with its keyring, the master key checked before anything is written.
fn open_store(cfg: &Config) -> Result<(Store, Keyring), BootError> {
    // A wrong or missing master key is refused before the writable open, which writes to the
    // file even when it commits nothing: a refused start changes no byte.
    if let Some(check) = Store::peek_meta(&cfg.data_dir, "master_check") {
        Keyring::new(load_master_key(cfg, true)?).verify_master_check(&check)?;
    }
    let mut store = Store::open(&cfg.data_dir)?;
    let check = store.meta("master_check")?;
    let keyring = Keyring::new(load_master_key(cfg, check.is_some())?);
    if let Some(check) = &check {
        keyring.verify_master_check(check)?;
    }
    keyring.load(&store.data_keys()?)?;
    // Only now, with the key known good, is anything written.
    store.start_epoch()?;
    if check.is_none() {
        store.set_meta("master_check", &keyring.master_check())?;
    }
    Ok((store, keyring))
}

/// Picks up where the last process stopped: environments' limits and zones, orphaned and
/// queued runs, and the due schedules. Answers how many orphans were found.
async fn resume(service: &Service) -> Result<usize, BootError> {
    let (store, engine) = (&service.store, &service.engine);
    let mut overlaps = HashMap::new();
    for env in store.environments()? {
        engine.set_environment(&env);
        for s in store.schedules_of(&env.id)? {
            overlaps.insert(s.id, s.overlap);
        }
    }
    let (orphans, _) = engine
        .recover(&overlaps)
        .await
        .map_err(|e| BootError(e.to_string()))?;
    service
        .scheduler
        .load()
        .await
        .map_err(|e| BootError(e.to_string()))?;
    Ok(orphans)
}

/// On a fresh data dir: environment `production` (UTC) and the user `admin`.
async fn first_start(service: &Service, cfg: &Config) -> Result<Option<FirstStart>, BootError> {
    if !service.store.users()?.is_empty() {
        return Ok(None);
    }
    let now = service.clock.now();
    if service.store.environment("production")?.is_none() {
        let env = Environment {
            id: "production".into(),
            name: "production".into(),
            time_zone: "UTC".into(),
            max_concurrent_runs: None,
            created_at: now,
        };
        let key = service.keyring.new_data_key(&env.id);
        let audit = service.audit_entry(
            "baton",
            "environment.create",
            Some("production"),
            Some("production".into()),
            "first start",
        );
        service.store.create_environment(&env, &key, &audit)?;
    }
    let password = cfg
        .admin_password
        .clone()
        .unwrap_or_else(|| random_token(15));
    let pw = password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .map_err(|e| BootError(e.to_string()))?
        .map_err(|e| BootError(e.to_string()))?;
    let admin = User {
        username: "admin".into(),
        password_hash: hash,
        admin: true,
        roles: BTreeMap::new(),
        created_at: now,
    };
    let audit = service.audit_entry(
        "baton",
        "user.create",
        None,
        Some("admin".into()),
        "first start",
    );
    service.store.put_user(&admin, true, Some(&audit))?;
    Ok(Some(FirstStart {
        admin_password: password,
    }))
}
