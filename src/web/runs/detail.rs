//! One run: its facts, parameters and outputs, chain errors, lineage graph and live log.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::super::auth::html;
use super::super::error::{urlencode, WebResult};
use super::super::layout::{duration, local_opt, local_time, Nav, SignedIn};
use super::super::svg;
use crate::api::State;
use crate::domain::{format_time, ParamValue, Role, Run, TASK_CHAIN_PARAM};

/// The most runs a lineage graph draws.
const GRAPH_LIMIT: usize = 60;

pub struct ParamLine {
    pub name: String,
    /// The name as a path segment (a name may hold `?`, `/` or `#`).
    pub name_in_path: String,
    pub value: Option<String>,
    /// A file token: downloadable from the run.
    pub file: bool,
}

pub struct OutputLine {
    pub name: String,
    pub value: String,
    pub href: Option<String>,
}

pub struct ChainErrorLine {
    pub hop: u32,
    pub env: String,
    pub chain: String,
    pub message: String,
    pub at: String,
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    nav: Nav,
    id: String,
    schedule_id: String,
    schedule: String,
    state: String,
    class: &'static str,
    origin: String,
    attempts: u32,
    max_attempts: u32,
    queued: String,
    started: String,
    finished: String,
    took: String,
    acting_user: String,
    error: String,
    params: Vec<ParamLine>,
    outputs: Vec<OutputLine>,
    chain_errors: Vec<ChainErrorLine>,
    log: Vec<crate::domain::LogLine>,
    last_seq: u32,
    live: bool,
    lineage: String,
    is_final: bool,
    zone: String,
}

pub async fn detail(
    state: State,
    me: SignedIn,
    path: web::Path<(String, String)>,
) -> WebResult<HttpResponse> {
    let (env, id) = path.into_inner();
    let e = state.require(&me.user, &env, Role::Viewer)?;
    let zone = e.time_zone.as_str();
    let id = super::super::id(&id, "run")?;
    let run = state.run_in(&env, id)?;
    let sees_chain = me.user.role_in(&env) >= Some(Role::Integration);
    let schedule = state
        .store
        .schedule(run.schedule_id)?
        .map_or_else(|| "(deleted)".into(), |s| s.name);
    let log = state.run_log(&me.user, &env, id, 0)?;
    let page = RunPage {
        nav: Nav::new(&state, &me, &env, "runs"),
        id: run.id.to_string(),
        schedule_id: run.schedule_id.to_string(),
        schedule,
        state: run.state.as_str().into(),
        class: svg::state_class(run.state.as_str()),
        origin: format!("{:?}", run.origin).to_lowercase(),
        attempts: run.attempts,
        max_attempts: run.retry.max_attempts,
        queued: local_time(run.queued_at, zone),
        started: local_opt(run.started_at, zone),
        finished: local_opt(run.finished_at, zone),
        took: duration(run.started_at, run.finished_at),
        acting_user: run.acting_user.clone(),
        error: run.error.clone().unwrap_or_default(),
        params: param_lines(&run, sees_chain),
        outputs: output_lines(&run, &env),
        chain_errors: chain_error_lines(&run, zone),
        last_seq: log.last().map_or(0, |l| l.seq),
        log,
        live: !run.state.is_final(),
        lineage: lineage_svg(&state, &me, &run)?,
        is_final: run.state.is_final(),
        zone: e.time_zone.clone(),
    };
    Ok(html(page.render(), StatusCode::OK))
}

/// The run's parameters; secrets stay hidden, and the chain (integration users only) is
/// shown with its encrypted values masked.
fn param_lines(run: &Run, sees_chain: bool) -> Vec<ParamLine> {
    run.params
        .iter()
        .filter(|p| sees_chain || p.name != TASK_CHAIN_PARAM)
        .map(|p| ParamLine {
            name: p.name.clone(),
            name_in_path: crate::web::error::path_segment(&p.name),
            value: match &p.value {
                ParamValue::Plain(v) if p.name == TASK_CHAIN_PARAM => Some(
                    crate::chain::spec::parse(v, crate::chain::spec::Origin::Stored)
                        .map_or_else(|_| v.clone(), |s| s.to_masked()),
                ),
                ParamValue::Plain(v) => Some(v.clone()),
                ParamValue::Sealed(_) => None,
            },
            file: p.file_token.is_some(),
        })
        .collect()
}

/// The run's outputs, linked where one names a stored file, an upload or an FTP address.
fn output_lines(run: &Run, env: &str) -> Vec<OutputLine> {
    run.outputs
        .iter()
        .map(|(k, v)| OutputLine {
            name: k.clone(),
            value: v.clone(),
            href: match k.as_str() {
                "FileName" => Some(format!("/envs/{env}/files/{}", urlencode(v))),
                "ImageID" => Some(format!("/envs/{env}/uploads/{v}")),
                "FTP-URL" if v.starts_with("ftp://") || v.starts_with("ftps://") => Some(v.clone()),
                _ => None,
            },
        })
        .collect()
}

/// The hops this run could not start, with when, in the environment's zone.
fn chain_error_lines(run: &Run, zone: &str) -> Vec<ChainErrorLine> {
    run.chain_errors
        .iter()
        .map(|c| ChainErrorLine {
            hop: c.hop,
            env: c.env.clone(),
            chain: c.chain.clone(),
            message: c.message.clone(),
            at: local_time(c.at, zone),
        })
        .collect()
}

/// The runs before and after `run` (from its root, breadth first), across environments;
/// runs in environments the viewer cannot see are drawn without a link or a name.
fn lineage_svg(state: &State, me: &SignedIn, run: &Run) -> WebResult<String> {
    let root = state
        .store
        .run(run.root().id)?
        .unwrap_or_else(|| run.clone());
    let mut nodes = Vec::new();
    let mut queue = VecDeque::from([root]);
    let mut names: HashMap<uuid::Uuid, String> = HashMap::new();
    while let Some(r) = queue.pop_front() {
        if nodes.len() >= GRAPH_LIMIT {
            break;
        }
        let visible = me.user.role_in(&r.env).is_some();
        let label = if visible {
            match names.entry(r.schedule_id) {
                Entry::Occupied(name) => name.get().clone(),
                Entry::Vacant(slot) => {
                    let name = state
                        .store
                        .schedule(r.schedule_id)?
                        .map_or_else(|| "(deleted)".into(), |s| s.name);
                    slot.insert(name).clone()
                }
            }
        } else {
            "(another environment)".into()
        };
        for c in &r.children {
            if let Some(child) = state.store.run(c.id)? {
                queue.push_back(child);
            }
        }
        nodes.push(svg::Node {
            id: r.id.to_string(),
            env: r.env.clone(),
            label,
            state: r.state.as_str().into(),
            depth: r.depth,
            href: visible.then(|| format!("/envs/{}/runs/{}", r.env, r.id)),
            parent: r.parent.as_ref().map(|p| p.id.to_string()),
            current: r.id == run.id,
        });
    }
    Ok(svg::lineage(&nodes))
}

#[derive(Deserialize)]
pub struct AfterQuery {
    #[serde(default)]
    after: u32,
}

/// New log lines for the live view.
pub async fn log_json(
    state: State,
    me: SignedIn,
    path: web::Path<(String, String)>,
    q: web::Query<AfterQuery>,
) -> WebResult<HttpResponse> {
    let (env, id) = path.into_inner();
    let id = super::super::id(&id, "run")?;
    let lines = state.run_log(&me.user, &env, id, q.after)?;
    let run = state.run_in(&env, id)?;
    let view: Vec<_> = lines.iter().map(|l| serde_json::json!({"seq": l.seq, "at": format_time(l.at), "stream": l.stream, "text": l.text})).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({"state": run.state.as_str(), "lines": view})))
}
