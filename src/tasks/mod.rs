//! Task kinds: one file each, behind one trait. Each kind declares its parameters and
//! outputs; the forms, the API's `/kinds` and validation are built from that declaration.

mod command;
mod file_export;
mod file_store;
mod ftp_upload;
mod http;
mod noop;
mod sleep;
mod source_file;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::domain::run::NewLogLine;
use crate::domain::{Clock, Problems};
use crate::store::Store;

/// Outputs are capped at this many bytes (`Stdout`, `ResponseBody`).
pub const OUTPUT_CAP: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ParamSpec {
    pub name: &'static str,
    pub required: bool,
    pub secret: bool,
    pub default: Option<&'static str>,
    pub description: &'static str,
    pub example: &'static str,
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct KindSpec {
    pub name: &'static str,
    pub params: &'static [ParamSpec],
    pub outputs: &'static [&'static str],
}

impl KindSpec {
    pub fn param(&self, name: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// Why an attempt failed, and whether another attempt can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskError {
    /// A passing condition (network, remote status): retried while attempts remain.
    Retry(String),
    /// Another attempt would fail the same way (bad parameter, refused program).
    Abort(String),
    /// The run was cancelled or timed out while this attempt ran.
    Stopped,
}

pub type Outputs = BTreeMap<String, String>;

/// What the engine gives the operator's settings to kinds.
#[derive(Debug, Clone, Default)]
pub struct TaskSettings {
    /// Absolute paths `command` may run; empty refuses the kind.
    pub allowed_commands: Vec<std::path::PathBuf>,
    /// Extra trusted CA certificates (PEM) for FTPS servers with a private CA.
    pub extra_ca_file: Option<std::path::PathBuf>,
}

/// Lines a task reports; the engine commits them with the run's completion (and flushes
/// them while a long task runs).
#[derive(Debug, Clone, Default)]
pub struct LogSink(Arc<Mutex<Vec<NewLogLine>>>);

impl LogSink {
    pub fn push(&self, at: DateTime<Utc>, stream: &str, text: impl Into<String>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push((
            at,
            stream.to_string(),
            text.into(),
        ));
    }

    pub fn take(&self) -> Vec<NewLogLine> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Everything one attempt of a run sees.
pub struct TaskContext {
    pub run_id: Uuid,
    pub env: String,
    /// Resolved values, secrets opened (in memory only, wiped on drop).
    pub params: HashMap<String, Zeroizing<String>>,
    pub log: LogSink,
    pub cancel: CancellationToken,
    pub store: Arc<Store>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<TaskSettings>,
}

impl TaskContext {
    /// A parameter's value, or the kind's default, or `""`.
    pub fn param(&self, spec: &KindSpec, name: &str) -> String {
        match self.params.get(name) {
            Some(v) => v.to_string(),
            None => spec
                .param(name)
                .and_then(|p| p.default)
                .unwrap_or("")
                .to_string(),
        }
    }

    pub fn required(&self, name: &str) -> Result<String, TaskError> {
        match self.params.get(name) {
            Some(v) if !v.is_empty() => Ok(v.to_string()),
            _ => Err(TaskError::Abort(format!(
                "required parameter {name} has no value"
            ))),
        }
    }

    pub fn info(&self, text: impl Into<String>) {
        self.log.push(self.clock.now(), "task", text);
    }
}

/// One kind of task.
pub trait TaskKind: Send + Sync {
    fn spec(&self) -> &'static KindSpec;

    /// Checks the format of plain values a schedule stores for this kind (values with
    /// dynamic tokens are checked when the run starts).
    fn validate(&self, _params: &HashMap<&str, &str>, _problems: &mut ParamProblems<'_>) {}

    fn run<'a>(&'a self, ctx: &'a TaskContext) -> BoxFuture<'a, Result<Outputs, TaskError>>;
}

/// Collects problems for parameter `name`, addressed as the caller's field path.
pub struct ParamProblems<'a> {
    pub problems: &'a mut Problems,
    /// name → field path (`params[2].value`).
    pub fields: HashMap<&'a str, String>,
}

impl ParamProblems<'_> {
    pub fn push(&mut self, name: &str, message: impl Into<String>) {
        let field = self
            .fields
            .get(name)
            .cloned()
            .unwrap_or_else(|| format!("params.{name}"));
        self.problems.push(field, message);
    }
}

/// The kinds this build knows.
pub struct Kinds(BTreeMap<&'static str, Arc<dyn TaskKind>>);

impl Kinds {
    pub fn builtin() -> Self {
        let all: Vec<Arc<dyn TaskKind>> = vec![
            Arc::new(noop::Noop),
            Arc::new(sleep::Sleep),
            Arc::new(http::Http::new()),
            Arc::new(command::Command),
            Arc::new(file_export::FileExport),
            Arc::new(file_store::FileStore),
            Arc::new(ftp_upload::FtpUpload),
        ];
        Kinds(all.into_iter().map(|k| (k.spec().name, k)).collect())
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn TaskKind>> {
        self.0.get(name)
    }

    pub fn specs(&self) -> impl Iterator<Item = &'static KindSpec> + '_ {
        self.0.values().map(|k| k.spec())
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.keys().copied().collect()
    }
}

/// `true`/`false`, as all boolean parameters are written.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Cuts text to at most `cap` bytes on a character boundary.
pub fn cap_text(mut s: String, cap: usize) -> String {
    if s.len() > cap {
        let mut end = cap;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Waits for `fut` unless the run is stopped first.
pub async fn or_stopped<T>(
    cancel: &CancellationToken,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, TaskError> {
    tokio::select! {
        v = fut => Ok(v),
        () = cancel.cancelled() => Err(TaskError::Stopped),
    }
}
