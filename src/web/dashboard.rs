//! The dashboard of one environment: running now, recent failures, next due, and runs per
//! hour by state over the last day.

use actix_web::{web, HttpResponse};
use askama::Template;
use uuid::Uuid;

use super::auth::html;
use super::error::WebResult;
use super::layout::{local_opt, local_time, Nav, SignedIn};
use super::svg;
use crate::api::State;
use crate::domain::{Role, RunState, Schedule};
use crate::store::RunFilter;

pub struct RunRow {
    pub id: String,
    pub schedule: String,
    pub state: String,
    pub class: &'static str,
    pub when: String,
    pub error: String,
}

pub struct DueRow {
    pub id: String,
    pub name: String,
    pub at: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    nav: Nav,
    running: Vec<RunRow>,
    queued: usize,
    failures: Vec<RunRow>,
    due: Vec<DueRow>,
    chart: String,
    zone: String,
}

pub async fn page(state: State, me: SignedIn, env: web::Path<String>) -> WebResult<HttpResponse> {
    let e = state.require(&me.user, &env, Role::Viewer)?;
    let zone = e.time_zone.as_str();
    let schedules = state.store.schedules_of(&env)?;
    let recent =
        |states: Vec<RunState>, limit| recent_runs(&state, &env, &schedules, states, limit, zone);
    let running = recent(vec![RunState::Running], 20)?;
    let queued = state.store.count_in_state(&env, RunState::Queued)?;
    let failures = recent(vec![RunState::Failed, RunState::TimedOut], 10)?;
    let hours = runs_per_hour(&state, &env, zone)?;
    let page = DashboardPage {
        nav: Nav::new(&state, &me, &env, "dashboard"),
        running,
        queued,
        failures,
        due: next_due(&schedules, zone),
        chart: svg::hourly_chart(&hours),
        zone: e.time_zone.clone(),
    };
    Ok(html(page.render(), actix_web::http::StatusCode::OK))
}

/// The newest `limit` runs in one of `states`, newest first.
fn recent_runs(
    state: &State,
    env: &str,
    schedules: &[Schedule],
    states: Vec<RunState>,
    limit: usize,
    zone: &str,
) -> WebResult<Vec<RunRow>> {
    let runs = state.store.page_runs(
        env,
        &RunFilter {
            states: Some(states),
            limit,
            ..Default::default()
        },
    )?;
    Ok(runs
        .iter()
        .map(|r| RunRow {
            id: r.id.to_string(),
            schedule: schedule_name(schedules, r.schedule_id),
            state: r.state.as_str().to_string(),
            class: svg::state_class(r.state.as_str()),
            when: local_opt(r.finished_at.or(r.started_at).or(Some(r.queued_at)), zone),
            error: r.error.clone().unwrap_or_default(),
        })
        .collect())
}

/// A schedule's name, or "(deleted)" when it is gone (as the runs pages say).
fn schedule_name(schedules: &[Schedule], id: Uuid) -> String {
    schedules
        .iter()
        .find(|s| s.id == id)
        .map_or_else(|| "(deleted)".into(), |s| s.name.clone())
}

/// The ten enabled schedules due soonest.
fn next_due(schedules: &[Schedule], zone: &str) -> Vec<DueRow> {
    let mut due: Vec<_> = schedules
        .iter()
        .filter(|s| s.enabled)
        .filter_map(|s| s.next_fire_at.map(|t| (t, s)))
        .collect();
    due.sort_by_key(|(t, _)| *t);
    due.into_iter()
        .take(10)
        .map(|(t, s)| DueRow {
            id: s.id.to_string(),
            name: s.name.clone(),
            at: local_time(t, zone),
        })
        .collect()
}

/// An hour's label and its runs per state: one bar of the chart.
type HourCounts = (String, Vec<(RunState, u64)>);

/// Runs per state in each of the last 24 hours (this one included), labelled with the
/// hour in the environment's zone.
fn runs_per_hour(state: &State, env: &str, zone: &str) -> WebResult<Vec<HourCounts>> {
    let now_hour = state.clock.now().timestamp().div_euclid(3600);
    let counts = state.store.hourly_counts(env, now_hour - 23, now_hour)?;
    let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    Ok((now_hour - 23..=now_hour)
        .map(|h| {
            let label = chrono::DateTime::from_timestamp(h * 3600, 0)
                .map_or_else(String::new, |t| {
                    t.with_timezone(&tz).format("%H:00").to_string()
                });
            let c = counts
                .iter()
                .filter(|(hh, _, _)| *hh == h)
                .map(|(_, s, n)| (*s, *n))
                .collect();
            (label, c)
        })
        .collect())
}
