//! The run history: filters by schedule, state and day, and key-based paging.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::super::auth::html;
use super::super::error::{urlencode, WebResult};
use super::super::layout::{duration, local_time, Nav, SignedIn};
use super::super::svg;
use crate::api::State;
use crate::domain::{Role, RunState, Schedule};
use crate::service::views::RunView;
use crate::service::{parse_states, ServiceError};
use crate::store::RunFilter;

const PAGE: usize = 50;

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

pub async fn history(
    state: State,
    me: SignedIn,
    env: web::Path<String>,
    q: web::Query<HistoryQuery>,
) -> WebResult<HttpResponse> {
    let e = state.require(&me.user, &env, Role::Viewer)?;
    let schedules = state.store.schedules_of(&env)?;
    let q = q.into_inner();
    let filter = q.run_filter(&e.time_zone)?;
    let runs = state.page_runs(&me.user, &env, filter).await?;
    let rows = history_rows(&runs, &schedules, &e.time_zone);
    let next = match rows.last() {
        Some(last) if rows.len() == PAGE => q.older_runs_link(&env, &last.id),
        _ => String::new(),
    };
    let page = HistoryPage {
        nav: Nav::new(&state, &me, &env, "runs"),
        rows,
        schedules: schedule_choices(&schedules),
        states: RunState::ALL.iter().map(|s| s.as_str()).collect(),
        schedule: q.schedule.unwrap_or_default(),
        state: q.state.unwrap_or_default(),
        since: q.since.unwrap_or_default(),
        until: q.until.unwrap_or_default(),
        next,
        zone: e.time_zone.clone(),
    };
    Ok(html(page.render(), StatusCode::OK))
}

impl HistoryQuery {
    /// The runs the filters ask for: one page, older than `before` when paging.
    fn run_filter(&self, zone: &str) -> WebResult<RunFilter> {
        Ok(RunFilter {
            schedule: given(&self.schedule)
                .map(|s| super::super::id(s, "schedule"))
                .transpose()?,
            states: given(&self.state).map(parse_states).transpose()?,
            since: parse_day("since", self.since.as_deref().unwrap_or(""), zone)?,
            until: parse_day("until", self.until.as_deref().unwrap_or(""), zone)?,
            before: given(&self.before)
                .map(|b| super::super::id(b, "run"))
                .transpose()?,
            limit: PAGE,
        })
    }

    /// The next page: the same filters, runs older than `last_id`.
    fn older_runs_link(&self, env: &str, last_id: &str) -> String {
        let mut qs = vec![];
        for (k, v) in [
            ("schedule", &self.schedule),
            ("state", &self.state),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if let Some(v) = given(v) {
                qs.push(format!("{k}={}", urlencode(v)));
            }
        }
        qs.push(format!("before={last_id}"));
        format!("/envs/{env}/runs?{}", qs.join("&"))
    }
}

/// A filter the form sent with a value (an empty one means "all").
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// A date (`YYYY-MM-DD`) from the filter form, at midnight in the environment's zone, or an
/// RFC 3339 time. A problem names `field`.
fn parse_day(field: &str, text: &str, zone: &str) -> Result<Option<DateTime<Utc>>, ServiceError> {
    use chrono::TimeZone;
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(Some(t.to_utc()));
    }
    let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| tz.from_local_datetime(&t).earliest())
        .map(|t| Some(t.to_utc()))
        .ok_or_else(|| ServiceError::invalid(field, format!("{text:?} is not a date (YYYY-MM-DD)")))
}

/// A row a run, with its schedule's name and its times in the environment's zone.
fn history_rows(runs: &[RunView], schedules: &[Schedule], zone: &str) -> Vec<HistoryRow> {
    let names: HashMap<Uuid, &str> = schedules.iter().map(|s| (s.id, s.name.as_str())).collect();
    runs.iter()
        .map(|r| HistoryRow {
            id: r.id.to_string(),
            schedule: names
                .get(&r.schedule_id)
                .map_or_else(|| "(deleted)".into(), |n| (*n).to_string()),
            state: r.state.to_string(),
            class: svg::state_class(r.state),
            origin: format!("{:?}", r.origin).to_lowercase(),
            queued: rfc3339(Some(&r.queued_at)).map_or_else(String::new, |t| local_time(t, zone)),
            took: duration(
                rfc3339(r.started_at.as_deref()),
                rfc3339(r.finished_at.as_deref()),
            ),
            attempts: r.attempts,
        })
        .collect()
}

/// A time as the service's run view writes it (RFC 3339).
fn rfc3339(text: Option<&str>) -> Option<DateTime<Utc>> {
    text.and_then(|x| DateTime::parse_from_rfc3339(x).ok())
        .map(|x| x.to_utc())
}

/// The schedule filter's options.
fn schedule_choices(schedules: &[Schedule]) -> Vec<Choice> {
    schedules
        .iter()
        .map(|s| Choice {
            value: s.id.to_string(),
            label: s.name.clone(),
        })
        .collect()
}
