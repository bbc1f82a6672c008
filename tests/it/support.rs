//! Starts the real `baton` binary on its own data dir and talks to it over HTTP.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const ADMIN_PASSWORD: &str = "admin-password-1";

/// A running `baton serve`. Killed (SIGKILL) on drop.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub http: reqwest::Client,
}

#[derive(Default)]
pub struct Options {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_baton")
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        let mut s = Self::start_in(&dir, opts).expect("server starts");
        s._tmp = Some(tmp);
        s
    }

    /// Starts on `dir` (kept by the caller, for restarts). Err carries stderr when the
    /// process exits before it listens.
    pub fn start_in(dir: &Path, opts: Options) -> Result<Server, String> {
        baton::install_crypto_provider();
        let mut cmd = Command::new(bin());
        cmd.arg("--data-dir")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(&opts.args)
            .env("BATON_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("RUST_LOG", "info")
            .env_remove("BATON_MASTER_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut url = None;
        for line in lines.by_ref() {
            let line = line.map_err(|e| e.to_string())?;
            if let Some(u) = line.strip_prefix("listening on ") {
                url = Some(u.trim().to_string());
                break;
            }
        }
        let Some(url) = url else {
            let _ = child.wait();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            return Err(err);
        };
        // Keep draining both pipes so the server never blocks on a full pipe; stderr is
        // kept in a file for tests that read the log.
        std::thread::spawn(move || for _ in lines {});
        if let Some(stderr) = child.stderr.take() {
            let log_path = dir.join("test-stderr.log");
            std::thread::spawn(move || {
                use std::io::Write;
                let mut f = std::fs::File::create(log_path).ok();
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(f) = f.as_mut() {
                        let _ = writeln!(f, "{line}");
                    }
                }
            });
        }
        Ok(Server {
            child,
            url,
            dir: dir.to_path_buf(),
            _tmp: None,
            http: reqwest::Client::new(),
        })
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        self.child.wait().expect("wait")
    }

    pub fn stderr_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("test-stderr.log")).unwrap_or_default()
    }

    pub async fn token(&self, user: &str, password: &str) -> String {
        let (status, body) = self
            .call(
                "POST",
                "/api/v1/tokens",
                None,
                Some(json!({"username": user, "password": password, "label": "test"})),
            )
            .await;
        assert_eq!(status, 201, "token for {user}: {body}");
        body["token"].as_str().expect("token text").to_string()
    }

    pub async fn admin(&self) -> Client<'_> {
        let token = self.token("admin", ADMIN_PASSWORD).await;
        Client {
            server: self,
            token,
        }
    }

    /// Creates a user with `roles` (env → role) and returns a client acting as them.
    pub async fn user(
        &self,
        admin: &Client<'_>,
        name: &str,
        roles: Value,
        is_admin: bool,
    ) -> Client<'_> {
        let pw = format!("{name}-password");
        let (s, b) = admin
            .post(
                "/api/v1/users",
                json!({"username": name, "password": pw, "admin": is_admin, "roles": roles}),
            )
            .await;
        assert_eq!(s, 201, "create user {name}: {b}");
        Client {
            server: self,
            token: self.token(name, &pw).await,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (s, _, text) = self
            .raw(method, path, token, body.map(|b| b.to_string()), &[])
            .await;
        (
            s,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(m, format!("{}{}", self.url, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        (status, headers, text)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Calls as one user.
pub struct Client<'a> {
    pub server: &'a Server,
    pub token: String,
}

impl Client<'_> {
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.server.call("GET", path, Some(&self.token), None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.server
            .call("POST", path, Some(&self.token), Some(body))
            .await
    }
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.server
            .call("PUT", path, Some(&self.token), Some(body))
            .await
    }
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.server
            .call("DELETE", path, Some(&self.token), None)
            .await
    }

    /// Creates a schedule in `env`; returns its id.
    pub async fn schedule(&self, env: &str, body: Value) -> String {
        let (s, b) = self
            .post(&format!("/api/v1/envs/{env}/schedules"), body)
            .await;
        assert_eq!(s, 201, "create schedule: {b}");
        b["id"].as_str().expect("id").to_string()
    }

    /// Creates a chain in `env` (body: name, schedule_id, optional share_with …).
    pub async fn chain(&self, env: &str, body: Value) {
        let (s, b) = self.post(&format!("/api/v1/envs/{env}/chains"), body).await;
        assert_eq!(s, 201, "create chain: {b}");
    }

    /// Runs a schedule now; returns the run id.
    pub async fn run_now(&self, env: &str, schedule: &str) -> String {
        let (s, b) = self
            .post(
                &format!("/api/v1/envs/{env}/schedules/{schedule}/run"),
                json!({}),
            )
            .await;
        assert_eq!(s, 202, "run now: {b}");
        b["run_id"].as_str().expect("run_id").to_string()
    }

    /// Polls a run until it reaches a final state (or the deadline passes).
    pub async fn wait_final(&self, env: &str, run: &str, deadline: Duration) -> Value {
        let end = Instant::now() + deadline;
        loop {
            let (s, b) = self.get(&format!("/api/v1/envs/{env}/runs/{run}")).await;
            assert_eq!(s, 200, "get run: {b}");
            let state = b["state"].as_str().unwrap_or("");
            if !matches!(state, "queued" | "running") {
                return b;
            }
            assert!(
                Instant::now() < end,
                "run {run} still {state} after {deadline:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `GET path` until `pred` holds on the JSON (or the deadline passes).
    pub async fn wait_for(
        &self,
        path: &str,
        deadline: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let end = Instant::now() + deadline;
        loop {
            let (_, b) = self.get(path).await;
            if pred(&b) {
                return b;
            }
            assert!(
                Instant::now() < end,
                "condition on {path} not met in {deadline:?}; last: {b}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Every file under `dir`, read whole (for "the secret is in no byte of the data dir").
pub fn all_bytes_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.push((p, bytes));
            }
        }
    }
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The secret literal `seed_example` puts in its chain text.
pub const SEED_SECRET: &str = "s3cret-Chain-7f1c";

/// `training` → `production`: the seed's own example (the same setup as `chains.rs`), for
/// other modules. Returns (training schedule id, production template id).
pub async fn seed_example(admin: &Client<'_>) -> (String, String) {
    let (s, b) = admin
        .post(
            "/api/v1/environments",
            json!({"id": "training", "time_zone": "America/Denver"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let template = admin
        .schedule("production", json!({"name": "Store partner file", "kind": "file-store", "trigger": {"type": "manual"},
            "params": [
                {"name": "Password", "value": "placeholder", "encrypt": true},
                {"name": "Note", "value": ""},
                {"name": "Who", "value": ""}
            ]}))
        .await;
    admin
        .chain("production", json!({"name": "nightly-upload", "schedule_id": template, "description": "partner upload", "share_with": ["training"]}))
        .await;
    let chain_text = format!(
        r#"{{
  "customerId": "production",          // optional: target environment
  "name": "nightly-upload",            // required
  "params": [
    {{ "name": "SourceFile", "value": "@FileToken@" }},
    {{ "name": "Password",   "value": "{SEED_SECRET}", "encrypt": true }},
    {{ "name": "Note",       "value": "@DATE@ by @UserID@" }},
    {{ "name": "Who",        "value": "@Output.FileName@" }}
  ]
}}"#
    );
    let source = admin
        .schedule(
            "training",
            json!({"name": "Nightly export", "kind": "file-export", "trigger": {"type": "manual"},
            "params": [
                {"name": "FileName", "value": "report-@DATE@.csv"},
                {"name": "Content", "value": "id,amount\n1,42\n"},
                {"name": "async-TaskChain", "value": chain_text}
            ]}),
        )
        .await;
    (source, template)
}

/// A parameter of a schedule or run answer, by name.
pub fn param_of(object: &Value, name: &str) -> Value {
    object["params"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no parameter {name} in {object}"))
}

impl Client<'_> {
    /// Every run of `schedule` in `env` (newest first; at most 500).
    pub async fn runs_of(&self, env: &str, schedule: &str) -> Vec<Value> {
        let (s, b) = self
            .get(&format!(
                "/api/v1/envs/{env}/runs?schedule={schedule}&limit=500"
            ))
            .await;
        assert_eq!(s, 200, "list runs: {b}");
        b.as_array().expect("a list").clone()
    }

    /// Every run of `env` (newest first; at most 500).
    pub async fn runs_in(&self, env: &str) -> Vec<Value> {
        let (s, b) = self
            .get(&format!("/api/v1/envs/{env}/runs?limit=500"))
            .await;
        assert_eq!(s, 200, "list runs: {b}");
        b.as_array().expect("a list").clone()
    }

    /// GET a schedule, let `edit` change it, PUT it back; panics unless 200.
    pub async fn edit_schedule(&self, env: &str, id: &str, edit: impl FnOnce(&mut Value)) {
        let path = format!("/api/v1/envs/{env}/schedules/{id}");
        let (s, mut b) = self.get(&path).await;
        assert_eq!(s, 200, "get schedule: {b}");
        edit(&mut b);
        let (s, b) = self.put(&path, b).await;
        assert_eq!(s, 200, "put schedule: {b}");
    }

    /// Runs a schedule now with a body; returns the run id.
    pub async fn run_now_with(&self, env: &str, schedule: &str, body: Value) -> String {
        let (s, b) = self
            .post(
                &format!("/api/v1/envs/{env}/schedules/{schedule}/run"),
                body,
            )
            .await;
        assert_eq!(s, 202, "run now: {b}");
        b["run_id"].as_str().expect("run_id").to_string()
    }
}

/// Every run of `env`, following the pages newest first.
pub async fn all_runs(server: &Server, token: &str, env: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut before = String::new();
    loop {
        let path = format!("/api/v1/envs/{env}/runs?limit=500{before}");
        let (s, page) = server.call("GET", &path, Some(token), None).await;
        assert_eq!(s, 200, "{page}");
        let page = page.as_array().unwrap().clone();
        if page.is_empty() {
            return out;
        }
        before = format!("&before={}", page.last().unwrap()["id"].as_str().unwrap());
        out.extend(page);
    }
}

/// Run-now requests from `workers` tasks, round-robin over `schedules` in production,
/// until stopped; keeps the run ids the server acknowledged.
pub struct Load {
    acked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub fn start(server: &Server, token: &str, schedules: &[String], workers: usize) -> Load {
        use std::sync::atomic::Ordering;
        let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks = (0..workers)
            .map(|i| {
                let url = format!(
                    "{}/api/v1/envs/production/schedules/{}/run",
                    server.url,
                    schedules[i % schedules.len()]
                );
                let (token, acked, stop) = (token.to_string(), acked.clone(), stop.clone());
                tokio::spawn(async move {
                    let http = reqwest::Client::new();
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(resp) = http
                            .post(&url)
                            .bearer_auth(&token)
                            .json(&json!({}))
                            .send()
                            .await
                        else {
                            return;
                        };
                        if resp.status().as_u16() != 202 {
                            continue;
                        }
                        if let Some(id) = resp
                            .json::<Value>()
                            .await
                            .ok()
                            .and_then(|b| b["run_id"].as_str().map(str::to_string))
                        {
                            acked.lock().unwrap().push(id);
                        }
                        // A breath between requests keeps the backlog to hundreds of runs.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                })
            })
            .collect();
        Load { acked, stop, tasks }
    }

    /// Stops the requests (the server may be dead by now) and returns the acknowledged ids.
    pub async fn stop(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        let acked = self.acked.lock().unwrap().clone();
        acked
    }
}

/// Three rounds of: run-now load for `pause`, SIGKILL mid-flight, restart on `dir`. Returns
/// the server running after the last restart and every run id it acknowledged.
pub async fn kill_rounds(
    mut server: Server,
    dir: &Path,
    token: &str,
    schedules: &[String],
    workers: usize,
    pause: Duration,
) -> (Server, Vec<String>) {
    let mut acknowledged = Vec::new();
    for round in 0..3 {
        let load = Load::start(&server, token, schedules, workers);
        tokio::time::sleep(pause).await;
        server.kill(); // SIGKILL while requests and runs are in flight
        let got = load.stop().await;
        assert!(
            !got.is_empty(),
            "round {round}: some runs were acknowledged"
        );
        acknowledged.extend(got);
        drop(server);
        server = Server::start_in(dir, Options::default()).unwrap();
    }
    (server, acknowledged)
}
