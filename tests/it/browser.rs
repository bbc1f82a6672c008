//! The pages in a real headless Chromium (Debian's chromium and chromedriver, which
//! `tests/run.sh` installs): the chain flow from the original description, with and without
//! JavaScript, and an operator who cannot touch chaining.
//!
//! With `BATON_SCREENSHOTS=DIR` set, the flow also saves screenshots there (the README's
//! `docs/screenshots/` are made this way; CI leaves tracked files alone).

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client as Browser, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::support::*;

/// Browser tests run one at a time (2 cores; one Chromium is plenty).
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CHAIN_SECRET: &str = "ftp-Pa55-browser-9c2e";

struct Driver {
    child: Child,
    browser: Browser,
    _profile: tempfile::TempDir,
}

impl Driver {
    /// Ends the session: chromedriver closes Chromium, every process of it.
    async fn quit(self) {
        let _ = self.browser.clone().close().await;
    }
}

impl Drop for Driver {
    /// chromedriver leads its own process group, so Chromium (its child) goes with it.
    fn drop(&mut self) {
        // SAFETY: killpg only sends a signal; a stale group id at worst fails with ESRCH.
        unsafe {
            libc::killpg(self.child.id() as i32, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn start_browser(javascript: bool) -> Driver {
    let driver = which("chromedriver").expect("chromedriver is not installed: run `bash tests/run.sh`, which installs Debian's chromium and chromium-driver");
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("chromedriver starts");
    let profile = tempfile::tempdir().expect("profile dir");
    let mut prefs = json!({});
    if !javascript {
        prefs["profile.managed_default_content_settings.javascript"] = json!(2);
    }
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": which("chromium").unwrap_or_else(|| "/usr/bin/chromium".into()),
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
                     "--window-size=1280,1800", format!("--user-data-dir={}", profile.path().display())],
            "prefs": prefs
        }
    });
    let caps: serde_json::Map<String, Value> = serde_json::from_value(caps).expect("caps");
    let end = Instant::now() + Duration::from_secs(20);
    let browser = loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(b) => break b,
            Err(e) if Instant::now() < end => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("cannot start Chromium through chromedriver: {e}"),
        }
    };
    Driver {
        child,
        browser,
        _profile: profile,
    }
}

fn which(name: &str) -> Option<String> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| format!("{d}/{name}"))
        .find(|p| std::path::Path::new(p).exists())
}

/// Sets an input's value (typing into a form field).
async fn fill(b: &Browser, css: &str, value: &str) {
    let el = b
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"));
    el.clear().await.ok();
    el.send_keys(value)
        .await
        .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
}

async fn select(b: &Browser, css: &str, value: &str) {
    let el = b
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"));
    el.select_by_value(value)
        .await
        .unwrap_or_else(|e| panic!("selecting {value} in {css}: {e}"));
}

async fn click(b: &Browser, css: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
}

async fn wait_css(b: &Browser, css: &str) {
    let end = Instant::now() + Duration::from_secs(15);
    while b.find(Locator::Css(css)).await.is_err() {
        assert!(
            Instant::now() < end,
            "{css} did not appear; page: {}",
            b.source().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn screenshot(b: &Browser, name: &str) {
    if let Ok(dir) = std::env::var("BATON_SCREENSHOTS") {
        let png = b.screenshot().await.expect("screenshot");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(format!("{dir}/{name}.png"), png).expect("write screenshot");
    }
}

async fn login(b: &Browser, url: &str, user: &str, password: &str) {
    b.goto(&format!("{url}/login")).await.expect("login page");
    fill(b, "#username", user).await;
    fill(b, "#password", password).await;
    click(b, "form button[type=submit]").await;
    wait_css(b, "header.top nav").await;
}

/// Environments, the production template and the shared chain, made through the API.
async fn seed(admin: &Client<'_>) -> String {
    assert_eq!(
        admin
            .post(
                "/api/v1/environments",
                json!({"id": "training", "time_zone": "America/Denver"})
            )
            .await
            .0,
        201
    );
    let template = admin
        .schedule("production", json!({"name": "Store partner file", "kind": "file-store", "trigger": {"type": "manual"},
            "params": [{"name": "Password", "value": "placeholder", "encrypt": true}]}))
        .await;
    admin
        .chain(
            "production",
            json!({"name": "nightly-upload", "schedule_id": template, "share_with": ["training"]}),
        )
        .await;
    template
}

/// The whole flow of the original description, through the pages.
async fn chain_flow(javascript: bool) {
    let _one = ONE_BROWSER.lock().await;
    let server = Server::start().await;
    let admin = server.admin().await;
    seed(&admin).await;
    server
        .user(
            &admin,
            "ivy",
            json!({"training": "integration", "production": "viewer"}),
            false,
        )
        .await;
    let d = start_browser(javascript).await;
    let b = &d.browser;
    let mut pages = Vec::new();
    login(b, &server.url, "ivy", "ivy-password").await;

    b.goto(&format!("{}/envs/training/schedules/new", server.url))
        .await
        .unwrap();
    wait_css(b, "#run-another-task").await;
    fill(b, "#name", "Nightly export").await;
    select(b, "#kind", "file-export").await;
    fill(b, "input[name=p0_name]", "FileName").await;
    fill(b, "input[name=p0_value]", "report-@DATE@.csv").await;
    fill(b, "input[name=p1_name]", "Content").await;
    fill(b, "input[name=p1_value]", "id,amount\n1,42").await;
    select(b, "select[name=h0_env]", "production").await;
    select(b, "select[name=h0_chain]", "nightly-upload").await;
    fill(b, "input[name=h0_p0_name]", "SourceFile").await;
    fill(b, "input[name=h0_p0_value]", "@FileToken@").await;
    fill(b, "input[name=h0_p1_name]", "Password").await;
    fill(b, "input[name=h0_p1_value]", CHAIN_SECRET).await;
    click(b, "input[name=h0_p1_encrypt]").await;
    if javascript {
        // The advanced view follows the fields.
        let json_text: Value = b
            .execute("return document.getElementById('chain_json').value", vec![])
            .await
            .unwrap();
        assert!(
            json_text.as_str().unwrap_or("").contains("nightly-upload"),
            "advanced JSON kept in step: {json_text}"
        );
    }

    click(b, "#preview").await;
    wait_css(b, "#preview-result").await;
    let preview = b
        .find(Locator::Css("#preview-result"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        preview.contains("Would start nightly-upload in production"),
        "{preview}"
    );
    assert!(
        preview.contains("SourceFile") && preview.contains("sealed"),
        "{preview}"
    );
    pages.push(b.source().await.unwrap());
    screenshot(b, "edit-schedule-run-another-task").await;

    click(b, "#save").await;
    wait_css(b, "p.flash").await;
    pages.push(b.source().await.unwrap());
    click(b, "#run-now").await;
    wait_css(b, "svg.lineage").await;
    let run_url = b.current_url().await.unwrap().to_string();

    // Wait for the hop, then open the started run in production through the lineage graph.
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        b.goto(&run_url).await.unwrap();
        if b.find(Locator::Css(
            "svg.lineage a[href*='/envs/production/runs/']",
        ))
        .await
        .is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < end,
            "no run started in production: {}",
            b.source().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    pages.push(b.source().await.unwrap());
    let href = b
        .find(Locator::Css(
            "svg.lineage a[href*='/envs/production/runs/']",
        ))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    b.goto(&format!("{}{href}", server.url)).await.unwrap();
    wait_css(b, "svg.lineage").await;
    let graph = b
        .find(Locator::Css("svg.lineage"))
        .await
        .unwrap()
        .html(false)
        .await
        .unwrap();
    assert!(
        graph.contains("Nightly export") && graph.contains("Store partner file"),
        "{graph}"
    );
    assert!(
        graph.contains("training") && graph.contains("production"),
        "{graph}"
    );
    screenshot(b, "run-lineage").await;
    pages.push(b.source().await.unwrap());
    let source_run = run_url.rsplit('/').next().unwrap();
    let started = Client {
        server: &server,
        token: admin.token.clone(),
    };
    let child_id = href.rsplit('/').next().unwrap();
    let run = started
        .wait_final("production", child_id, Duration::from_secs(10))
        .await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["chain"]["parent"]["id"], source_run);

    b.goto(&format!("{}/envs/training/dashboard", server.url))
        .await
        .unwrap();
    wait_css(b, "svg.chart").await;
    screenshot(b, "dashboard").await;
    pages.push(b.source().await.unwrap());
    for page in &pages {
        assert!(!page.contains(CHAIN_SECRET), "the secret is on a page");
        assert!(!page.contains("bft_"), "a token's text is on a page");
    }
    d.quit().await;
}

#[tokio::test]
async fn the_chain_flow_works_in_a_browser() {
    chain_flow(true).await;
}

#[tokio::test]
async fn the_chain_flow_works_without_javascript() {
    chain_flow(false).await;
}

#[tokio::test]
async fn an_operator_sees_no_run_another_task_and_keeps_the_stored_chain() {
    let _one = ONE_BROWSER.lock().await;
    let server = Server::start().await;
    let admin = server.admin().await;
    seed(&admin).await;
    let chain = r#"{"customerId": "production", "name": "nightly-upload", "params": [{"name": "Password", "value": "kept-secret-1", "encrypt": true}]}"#;
    let id = admin
        .schedule("training", json!({"name": "Export", "kind": "file-export", "trigger": {"type": "manual"},
            "params": [{"name": "FileName", "value": "x.csv"}, {"name": "async-TaskChain", "value": chain}]}))
        .await;
    server
        .user(&admin, "otto", json!({"training": "operator"}), false)
        .await;
    let d = start_browser(true).await;
    let b = &d.browser;
    login(b, &server.url, "otto", "otto-password").await;
    b.goto(&format!("{}/envs/training/schedules/{id}", server.url))
        .await
        .unwrap();
    wait_css(b, "#schedule-form").await;
    let html = b.source().await.unwrap();
    assert!(
        !html.contains("Run another task")
            && !html.contains("async-TaskChain")
            && !html.contains("nightly-upload"),
        "hidden from an operator"
    );
    fill(b, "#description", "edited by the operator").await;
    click(b, "#save").await;
    wait_css(b, "p.flash").await;
    let (_, s) = admin
        .get(&format!("/api/v1/envs/training/schedules/{id}"))
        .await;
    assert_eq!(s["description"], "edited by the operator");
    let kept = s["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "async-TaskChain")
        .expect("the chain is kept");
    assert!(
        kept["value"].as_str().unwrap().contains("nightly-upload"),
        "{kept}"
    );

    // Posting Run another task fields as an operator is refused.
    let csrf: Value = b
        .execute(
            "return document.querySelector('input[name=csrf]').value",
            vec![],
        )
        .await
        .unwrap();
    let cookie = b.get_named_cookie("baton_session").await.unwrap();
    let form = format!("csrf={}&name=Export&kind=file-export&trigger_type=manual&h0_env=production&h0_chain=nightly-upload&action=save", csrf.as_str().unwrap());
    let resp = reqwest::Client::new()
        .post(format!("{}/envs/training/schedules/{id}", server.url))
        .header("cookie", format!("baton_session={}", cookie.value()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    d.quit().await;
}

/// A chain typed only in the advanced JSON, previewed, then saved: the preview brings the
/// fields in step with the JSON (its typed secret carried sealed, not shown), and the save
/// stores that chain rather than the empty fields.
#[tokio::test]
async fn json_typed_chain_survives_preview_then_save() {
    let _one = ONE_BROWSER.lock().await;
    let server = Server::start().await;
    let admin = server.admin().await;
    seed(&admin).await;
    server
        .user(&admin, "ivy", json!({"training": "integration"}), false)
        .await;
    let d = start_browser(false).await;
    let b = &d.browser;
    login(b, &server.url, "ivy", "ivy-password").await;
    b.goto(&format!("{}/envs/training/schedules/new", server.url))
        .await
        .unwrap();
    wait_css(b, "#chain_json").await;
    fill(b, "#name", "JSON only").await;
    select(b, "#kind", "noop").await;
    let typed = r#"{"customerId": "production", "name": "nightly-upload", "params": [{"name": "Password", "value": "json-typed-secret-5", "encrypt": true}]}"#;
    click(b, "details.advanced summary").await;
    fill(b, "#chain_json", typed).await;
    click(b, "#preview").await;
    wait_css(b, "#preview-result").await;
    let html = b.source().await.unwrap();
    assert!(
        !html.contains("json-typed-secret-5"),
        "the typed secret is not shown"
    );
    let chain: Value = b
        .execute(
            "return document.querySelector('select[name=h0_chain]').value",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(chain, "nightly-upload", "the fields follow the JSON");
    click(b, "#save").await;
    wait_css(b, "p.flash").await;
    let (_, list) = admin.get("/api/v1/envs/training/schedules").await;
    let saved = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "JSON only")
        .expect("saved")
        .clone();
    let text = param_of(&saved, "async-TaskChain")["value"]
        .as_str()
        .unwrap()
        .to_string();
    let stored: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(stored["name"], "nightly-upload", "{stored}");
    assert_eq!(
        stored["params"][0],
        json!({"name": "Password", "value": null, "is_set": true, "encrypt": true}),
        "the typed secret was saved (sealed): {stored}"
    );
    d.quit().await;
}
