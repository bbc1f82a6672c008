//! The schedules list; run now and delete from the pages.

use actix_web::{web, HttpResponse};
use askama::Template;

use super::auth::{html, see_other};
use super::error::WebResult;
use super::form::PostForm;
use super::layout::{local_opt, Nav, SignedIn};
use crate::api::State;
use crate::domain::Role;
use crate::service::RunNowInput;

pub struct ScheduleRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub trigger: String,
    pub next: String,
    pub enabled: bool,
    pub chained: bool,
}

#[derive(Template)]
#[template(path = "schedules.html")]
struct SchedulesPage {
    nav: Nav,
    rows: Vec<ScheduleRow>,
}

pub async fn list(state: State, me: SignedIn, env: web::Path<String>) -> WebResult<HttpResponse> {
    let e = state.require(&me.user, &env, Role::Viewer)?;
    let sees_chain = me.user.role_in(&env) >= Some(Role::Integration);
    let rows = state
        .store
        .schedules_of(&env)?
        .iter()
        .map(|s| ScheduleRow {
            id: s.id.to_string(),
            name: s.name.clone(),
            kind: s.kind.clone(),
            trigger: s.trigger.describe(),
            next: if s.enabled {
                local_opt(s.next_fire_at, &e.time_zone)
            } else {
                "disabled".into()
            },
            enabled: s.enabled,
            chained: sees_chain && s.param(crate::domain::TASK_CHAIN_PARAM).is_some(),
        })
        .collect();
    let page = SchedulesPage {
        nav: Nav::new(&state, &me, &env, "schedules"),
        rows,
    };
    Ok(html(page.render(), actix_web::http::StatusCode::OK))
}

pub async fn run_now(
    state: State,
    me: SignedIn,
    path: web::Path<(String, String)>,
    form: PostForm,
) -> WebResult<HttpResponse> {
    form.verify(&me)?;
    let (env, id) = path.into_inner();
    let id = super::id(&id, "schedule")?;
    let run = state
        .run_now(&me.user, &env, id, RunNowInput::default(), b"", None)
        .await?;
    Ok(see_other(format!("/envs/{env}/runs/{run}")))
}

pub async fn delete(
    state: State,
    me: SignedIn,
    path: web::Path<(String, String)>,
    form: PostForm,
) -> WebResult<HttpResponse> {
    form.verify(&me)?;
    let (env, id) = path.into_inner();
    state.delete_schedule(&me.user, &env, super::id(&id, "schedule")?)?;
    Ok(see_other(format!("/envs/{env}/schedules")))
}
