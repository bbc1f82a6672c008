//! Run history (filters, key-based paging) and run detail (log, lineage graph, chain errors
//! with Refire, Retry and Cancel).

use std::collections::{HashMap, VecDeque};

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::auth::{html, see_other};
use super::error::{WebError, WebResult};
use super::form::PostForm;
use super::layout::{duration, local_opt, local_time, Nav, SignedIn};
use super::svg;
use crate::api::State;
use crate::domain::{format_time, ParamValue, Role, Run, RunState, TASK_CHAIN_PARAM};
use crate::service::{parse_states, ServiceError};
use crate::store::RunFilter;

const PAGE: usize = 50;
/// The most runs a lineage graph draws.
const GRAPH_LIMIT: usize = 60;

#[derive(Deserialize, Default)]
pub struct HistoryQuery {
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    before: Option<String>,
}

pub struct HistoryRow {
    pub id: String,
    pub schedule: String,
    pub state: String,
    pub class: &'static str,
    pub origin: String,
    pub queued: String,
    pub took: String,
    pub attempts: u32,
}

pub struct Choice {
    pub value: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "runs.html")]
struct HistoryPage {
    nav: Nav,
    rows: Vec<HistoryRow>,
    schedules: Vec<Choice>,
    states: Vec<&'static str>,
    schedule: String,
    state: String,
    since: String,
    until: String,
    next: String,
    zone: String,
}

/// A date (`YYYY-MM-DD`) from the filter form, at midnight in the environment's zone, or an
/// RFC 3339 time.
fn parse_day(
    text: &str,
    zone: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ServiceError> {
    use chrono::TimeZone;
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(Some(t.to_utc()));
    }
    let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| tz.from_local_datetime(&t).earliest())
        .map(|t| Some(t.to_utc()))
        .ok_or_else(|| {
            ServiceError::invalid("since", format!("{text:?} is not a date (YYYY-MM-DD)"))
        })
}

pub async fn history(
    state: State,
    me: SignedIn,
    env: web::Path<String>,
    q: web::Query<HistoryQuery>,
) -> WebResult<HttpResponse> {
    let e = state.require(&me.user, &env, Role::Viewer)?;
    let schedules = state.store.schedules_of(&env)?;
    let names: HashMap<uuid::Uuid, String> =
        schedules.iter().map(|s| (s.id, s.name.clone())).collect();
    let schedule = q.schedule.clone().filter(|s| !s.is_empty());
    let st = q.state.clone().filter(|s| !s.is_empty());
    let filter = RunFilter {
        schedule: schedule
            .as_deref()
            .map(|s| super::id(s, "schedule"))
            .transpose()?,
        states: st.as_deref().map(parse_states).transpose()?,
        since: parse_day(q.since.as_deref().unwrap_or(""), &e.time_zone)?,
        until: parse_day(q.until.as_deref().unwrap_or(""), &e.time_zone)?,
        before: q
            .before
            .as_deref()
            .filter(|b| !b.is_empty())
            .map(|b| super::id(b, "run"))
            .transpose()?,
        limit: PAGE,
    };
    let runs = state.page_runs(&me.user, &env, filter).await?;
    let rows: Vec<HistoryRow> = runs
        .iter()
        .map(|r| HistoryRow {
            id: r.id.to_string(),
            schedule: names
                .get(&r.schedule_id)
                .cloned()
                .unwrap_or_else(|| "(deleted)".into()),
            state: r.state.to_string(),
            class: svg::state_class(r.state),
            origin: format!("{:?}", r.origin).to_lowercase(),
            queued: r.queued_at.clone(),
            took: String::new(),
            attempts: r.attempts,
        })
        .collect();
    let next = if rows.len() == PAGE {
        let mut qs = vec![];
        for (k, v) in [
            ("schedule", &schedule),
            ("state", &st),
            ("since", &q.since),
            ("until", &q.until),
        ] {
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                qs.push(format!("{k}={}", super::error::urlencode(v)));
            }
        }
        qs.push(format!(
            "before={}",
            rows.last().map(|r| r.id.as_str()).unwrap_or("")
        ));
        format!("/envs/{env}/runs?{}", qs.join("&"))
    } else {
        String::new()
    };
    let mut rows = rows;
    for (row, r) in rows.iter_mut().zip(&runs) {
        let parse = |t: &Option<String>| {
            t.as_deref()
                .and_then(|x| chrono::DateTime::parse_from_rfc3339(x).ok())
                .map(|x| x.to_utc())
        };
        row.took = duration(parse(&r.started_at), parse(&r.finished_at));
        row.queued = parse(&Some(r.queued_at.clone()))
            .map_or_else(String::new, |t| local_time(t, &e.time_zone));
    }
    let page = HistoryPage {
        nav: Nav::new(&state, &me, &env, "runs"),
        rows,
        schedules: schedules
            .iter()
            .map(|s| Choice {
                value: s.id.to_string(),
                label: s.name.clone(),
            })
            .collect(),
        states: RunState::ALL.iter().map(|s| s.as_str()).collect(),
        schedule: schedule.unwrap_or_default(),
        state: st.unwrap_or_default(),
        since: q.since.clone().unwrap_or_default(),
        until: q.until.clone().unwrap_or_default(),
        next,
        zone: e.time_zone.clone(),
    };
    Ok(html(page.render(), StatusCode::OK))
}

pub struct ParamLine {
    pub name: String,
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
    let id = super::id(&id, "run")?;
    let run = state.run_in(&env, id)?;
    let sees_chain = me.user.role_in(&env) >= Some(Role::Integration);
    let schedule = state
        .store
        .schedule(run.schedule_id)?
        .map_or_else(|| "(deleted)".into(), |s| s.name);
    let log = state.run_log(&me.user, &env, id, 0)?;
    let params = run
        .params
        .iter()
        .filter(|p| sees_chain || p.name != TASK_CHAIN_PARAM)
        .map(|p| ParamLine {
            name: p.name.clone(),
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
        .collect();
    let outputs = run
        .outputs
        .iter()
        .map(|(k, v)| OutputLine {
            name: k.clone(),
            value: v.clone(),
            href: match k.as_str() {
                "FileName" => Some(format!("/envs/{env}/files/{}", super::error::urlencode(v))),
                "ImageID" => Some(format!("/envs/{env}/uploads/{v}")),
                "FTP-URL" if v.starts_with("ftp://") || v.starts_with("ftps://") => Some(v.clone()),
                _ => None,
            },
        })
        .collect();
    let chain_errors = run
        .chain_errors
        .iter()
        .map(|c| ChainErrorLine {
            hop: c.hop,
            env: c.env.clone(),
            chain: c.chain.clone(),
            message: c.message.clone(),
            at: local_time(c.at, &e.time_zone),
        })
        .collect();
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
        queued: local_time(run.queued_at, &e.time_zone),
        started: local_opt(run.started_at, &e.time_zone),
        finished: local_opt(run.finished_at, &e.time_zone),
        took: duration(run.started_at, run.finished_at),
        acting_user: run.acting_user.clone(),
        error: run.error.clone().unwrap_or_default(),
        params,
        outputs,
        chain_errors,
        last_seq: log.last().map_or(0, |l| l.seq),
        log,
        live: !run.state.is_final(),
        lineage: lineage_svg(&state, &me, &run)?,
        is_final: run.state.is_final(),
        zone: e.time_zone.clone(),
    };
    Ok(html(page.render(), StatusCode::OK))
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
            names
                .entry(r.schedule_id)
                .or_insert_with(|| {
                    state
                        .store
                        .schedule(r.schedule_id)
                        .ok()
                        .flatten()
                        .map_or_else(|| "(deleted)".into(), |s| s.name)
                })
                .clone()
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
    let id = super::id(&id, "run")?;
    let lines = state.run_log(&me.user, &env, id, q.after)?;
    let run = state.run_in(&env, id)?;
    let view: Vec<_> = lines.iter().map(|l| serde_json::json!({"seq": l.seq, "at": format_time(l.at), "stream": l.stream, "text": l.text})).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({"state": run.state.as_str(), "lines": view})))
}

pub async fn cancel(
    state: State,
    me: SignedIn,
    path: web::Path<(String, String)>,
    form: PostForm,
) -> WebResult<HttpResponse> {
    form.verify(&me)?;
    let (env, id) = path.into_inner();
    let id = super::id(&id, "run")?;
    state.cancel_run(&me.user, &env, id).await?;
    Ok(see_other(format!("/envs/{env}/runs/{id}")))
}

pub async fn retry(
    state: State,
    me: SignedIn,
    path: web::Path<(String, String)>,
    form: PostForm,
) -> WebResult<HttpResponse> {
    form.verify(&me)?;
    let (env, id) = path.into_inner();
    let new = state
        .retry_run(&me.user, &env, super::id(&id, "run")?)
        .await?;
    Ok(see_other(format!("/envs/{env}/runs/{new}")))
}

pub async fn refire(
    state: State,
    me: SignedIn,
    path: web::Path<(String, String, u32)>,
    form: PostForm,
) -> WebResult<HttpResponse> {
    form.verify(&me)?;
    let (env, id, n) = path.into_inner();
    let id = super::id(&id, "run")?;
    match state.refire_hop(&me.user, &env, id, n as usize).await {
        Ok(_) | Err(ServiceError::Validation(_)) => Ok(see_other(format!("/envs/{env}/runs/{id}"))),
        Err(e) => Err(WebError::Service(e)),
    }
}
