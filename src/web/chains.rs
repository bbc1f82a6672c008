//! Chains with their Share With lists, and the schedules that start each.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;

use super::auth::{html, see_other};
use super::error::{WebError, WebResult};
use super::form::PostForm;
use super::layout::{Nav, SignedIn};
use crate::api::State;
use crate::domain::{FieldProblem, Role};
use crate::service::{ChainInput, ChainView, ServiceError};

pub struct ScheduleChoice {
    pub id: String,
    pub name: String,
}

#[derive(Template)]
#[template(path = "chains.html")]
struct ChainsPage {
    nav: Nav,
    chains: Vec<ChainView>,
    editing: Option<ChainView>,
    /// The form's values (new or the one being edited).
    name: String,
    schedule_id: String,
    description: String,
    enabled: bool,
    share_with: Vec<String>,
    schedules: Vec<ScheduleChoice>,
    other_envs: Vec<String>,
    errors: Vec<FieldProblem>,
}

impl ChainsPage {
    pub fn shared_with(&self, env: &str) -> bool {
        self.share_with.iter().any(|e| e == env)
    }

    pub fn schedule_name(&self, id: &uuid::Uuid) -> String {
        let id = id.to_string();
        self.schedules
            .iter()
            .find(|s| s.id == id)
            .map_or(id, |s| s.name.clone())
    }
}

struct FormValues {
    name: String,
    schedule_id: String,
    description: String,
    enabled: bool,
    share_with: Vec<String>,
}

fn render(
    state: &State,
    me: &SignedIn,
    env: &str,
    editing: Option<ChainView>,
    v: FormValues,
    errors: Vec<FieldProblem>,
    status: StatusCode,
) -> WebResult<HttpResponse> {
    let chains = state.list_chains(&me.user, env)?;
    let schedules = state
        .store
        .schedules_of(env)?
        .into_iter()
        .map(|s| ScheduleChoice {
            id: s.id.to_string(),
            name: s.name,
        })
        .collect();
    let other_envs = state
        .store
        .environments()?
        .into_iter()
        .map(|e| e.id)
        .filter(|e| e != env)
        .collect();
    let page = ChainsPage {
        nav: Nav::new(state, me, env, "chains"),
        chains,
        editing,
        name: v.name,
        schedule_id: v.schedule_id,
        description: v.description,
        enabled: v.enabled,
        share_with: v.share_with,
        schedules,
        other_envs,
        errors,
    };
    Ok(html(page.render(), status))
}

fn empty() -> FormValues {
    FormValues {
        name: String::new(),
        schedule_id: String::new(),
        description: String::new(),
        enabled: true,
        share_with: Vec::new(),
    }
}

pub async fn list(state: State, me: SignedIn, env: web::Path<String>) -> WebResult<HttpResponse> {
    state.require(&me.user, &env, Role::Integration)?;
    render(&state, &me, &env, None, empty(), Vec::new(), StatusCode::OK)
}

pub async fn edit(
    state: State,
    me: SignedIn,
    path: web::Path<(String, String)>,
) -> WebResult<HttpResponse> {
    let (env, name) = path.into_inner();
    let c = state.get_chain(&me.user, &env, &name)?;
    let v = FormValues {
        name: c.name.clone(),
        schedule_id: c.schedule_id.to_string(),
        description: c.description.clone(),
        enabled: c.enabled,
        share_with: c.share_with.clone(),
    };
    render(&state, &me, &env, Some(c), v, Vec::new(), StatusCode::OK)
}

fn input(form: &PostForm) -> (ChainInput, FormValues) {
    let v = FormValues {
        name: form.trimmed("name"),
        schedule_id: form.trimmed("schedule_id"),
        description: form.text("description"),
        enabled: form.checked("enabled"),
        share_with: form.all("share_with"),
    };
    let input = ChainInput {
        name: Some(v.name.clone()),
        schedule_id: Some(v.schedule_id.clone()),
        description: Some(v.description.clone()),
        enabled: Some(v.enabled),
        share_with: Some(v.share_with.clone()),
        ..Default::default()
    };
    (input, v)
}

pub async fn create(
    state: State,
    me: SignedIn,
    env: web::Path<String>,
    form: PostForm,
) -> WebResult<HttpResponse> {
    form.verify(&me)?;
    let (input, v) = input(&form);
    match state.create_chain(&me.user, &env, input) {
        Ok(c) => Ok(see_other(format!("/envs/{env}/chains/{}", c.name))),
        Err(ServiceError::Validation(p)) => render(
            &state,
            &me,
            &env,
            None,
            v,
            p.0,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(e) => Err(WebError::Service(e)),
    }
}

pub async fn save(
    state: State,
    me: SignedIn,
    path: web::Path<(String, String)>,
    form: PostForm,
) -> WebResult<HttpResponse> {
    form.verify(&me)?;
    let (env, name) = path.into_inner();
    let (input, v) = input(&form);
    match state.replace_chain(&me.user, &env, &name, input) {
        Ok(c) => Ok(see_other(format!("/envs/{env}/chains/{}", c.name))),
        Err(ServiceError::Validation(p)) => {
            let c = state.get_chain(&me.user, &env, &name)?;
            render(
                &state,
                &me,
                &env,
                Some(c),
                v,
                p.0,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(e) => Err(WebError::Service(e)),
    }
}

pub async fn delete(
    state: State,
    me: SignedIn,
    path: web::Path<(String, String)>,
    form: PostForm,
) -> WebResult<HttpResponse> {
    form.verify(&me)?;
    let (env, name) = path.into_inner();
    state.delete_chain(&me.user, &env, &name)?;
    Ok(see_other(format!("/envs/{env}/chains")))
}
