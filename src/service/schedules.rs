//! Schedules: create, replace, delete, read; trigger previews and the kinds list.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::schedule_input::ScheduleInput;
use super::views::ScheduleView;
use super::{Service, ServiceError};
use crate::chain::dynamic::{tokens, GLOBAL_NAMES};
use crate::crypto::Place;
use crate::domain::schedule::is_valid_param_name;
use crate::domain::trigger::Trigger;
use crate::domain::{
    Environment, ParamValue, Problems, RetryPolicy, Role, Schedule, ScheduleParam, User,
    TASK_CHAIN_PARAM,
};
use crate::tasks::{KindSpec, ParamProblems};

/// Limits on a schedule's numbers.
const MAX_ATTEMPTS: u32 = 100;
const MAX_BACKOFF_SECONDS: u64 = 86_400;
const MAX_TIMEOUT_SECONDS: u64 = 7 * 86_400;
use crate::domain::run::DEFAULT_TIMEOUT_SECONDS;

impl Service {
    pub fn list_schedules(
        &self,
        caller: &User,
        env: &str,
    ) -> Result<Vec<ScheduleView>, ServiceError> {
        let e = self.require(caller, env, Role::Viewer)?;
        let sees_chain = caller.role_in(&e.id) >= Some(Role::Integration);
        Ok(self
            .store
            .schedules_of(env)?
            .iter()
            .map(|s| ScheduleView::new(s, sees_chain))
            .collect())
    }

    /// A schedule of `env`, or 404 (also for another environment's id).
    pub fn schedule_in(&self, env: &str, id: Uuid) -> Result<Schedule, ServiceError> {
        match self.store.schedule(id)? {
            Some(s) if s.env == env => Ok(s),
            _ => Err(ServiceError::NotFound(format!("schedule {id}"))),
        }
    }

    pub fn get_schedule(
        &self,
        caller: &User,
        env: &str,
        id: Uuid,
    ) -> Result<ScheduleView, ServiceError> {
        self.require(caller, env, Role::Viewer)?;
        let s = self.schedule_in(env, id)?;
        Ok(ScheduleView::new(
            &s,
            caller.role_in(env) >= Some(Role::Integration),
        ))
    }

    pub fn create_schedule(
        &self,
        caller: &User,
        env: &str,
        input: ScheduleInput,
    ) -> Result<ScheduleView, ServiceError> {
        let e = self.require(caller, env, Role::Operator)?;
        let schedule = self.build_schedule(caller, &e, Uuid::now_v7(), input, None)?;
        let audit = self.audit_entry(
            &caller.username,
            "schedule.create",
            Some(env),
            Some(schedule.id.to_string()),
            schedule.name.clone(),
        );
        self.store.put_schedule(&schedule, &audit)?;
        self.scheduler.update(schedule.id, schedule.next_fire_at);
        Ok(ScheduleView::new(
            &schedule,
            caller.role_in(env) >= Some(Role::Integration),
        ))
    }

    pub fn replace_schedule(
        &self,
        caller: &User,
        env: &str,
        id: Uuid,
        input: ScheduleInput,
    ) -> Result<ScheduleView, ServiceError> {
        let e = self.require(caller, env, Role::Operator)?;
        let old = self.schedule_in(env, id)?;
        let schedule = self.build_schedule(caller, &e, id, input, Some(&old))?;
        let audit = self.audit_entry(
            &caller.username,
            "schedule.update",
            Some(env),
            Some(id.to_string()),
            schedule.name.clone(),
        );
        self.store.put_schedule(&schedule, &audit)?;
        self.scheduler.update(schedule.id, schedule.next_fire_at);
        Ok(ScheduleView::new(
            &schedule,
            caller.role_in(env) >= Some(Role::Integration),
        ))
    }

    pub fn delete_schedule(&self, caller: &User, env: &str, id: Uuid) -> Result<(), ServiceError> {
        self.require(caller, env, Role::Operator)?;
        let s = self.schedule_in(env, id)?;
        let templates: Vec<_> = self
            .store
            .all_chains()?
            .into_iter()
            .filter(|c| c.schedule_id == id)
            .collect();
        if !templates.is_empty() {
            let details = templates
                .iter()
                .map(|c| crate::domain::FieldProblem {
                    field: format!("chains/{}", c.name),
                    message: format!("chain {:?} points at this schedule", c.name),
                    line: None,
                    column: None,
                })
                .collect();
            return Err(ServiceError::Conflict {
                message: "a chain points at this schedule: delete or repoint the chain first"
                    .into(),
                details,
            });
        }
        let audit = self.audit_entry(
            &caller.username,
            "schedule.delete",
            Some(env),
            Some(id.to_string()),
            s.name,
        );
        self.store.delete_schedule(id, &audit)?;
        self.scheduler.update(id, None);
        Ok(())
    }

    /// Validates `input` whole (every problem at once) and builds the stored schedule.
    pub(super) fn build_schedule(
        &self,
        caller: &User,
        env: &Environment,
        id: Uuid,
        input: ScheduleInput,
        old: Option<&Schedule>,
    ) -> Result<Schedule, ServiceError> {
        let integration = caller.role_in(&env.id) >= Some(Role::Integration);
        let mut p = Problems::new();
        let name = input.name.unwrap_or_default();
        if name.trim().is_empty() {
            p.push("name", "required");
        } else if name.chars().count() > 200 {
            p.push("name", "at most 200 characters");
        }
        let kind_name = input.kind.unwrap_or_default();
        let kind = self.kinds.get(&kind_name).cloned();
        if kind_name.is_empty() {
            p.push("kind", "required");
        } else if kind.is_none() {
            p.push(
                "kind",
                format!(
                    "unknown kind {kind_name:?} (known: {})",
                    self.kinds.names().join(", ")
                ),
            );
        }
        let now = self.clock.now();
        let trigger = parse_trigger(input.trigger, &mut p);
        if let Some(t) = &trigger {
            t.validate("trigger", &mut p);
            if let Trigger::Once { at } = t {
                let changed = old.is_none_or(|o| &o.trigger != t);
                if changed && *at <= now {
                    p.push("trigger.at", "a once trigger's time must be in the future");
                }
            }
        }
        let spec = kind.as_ref().map(|k| k.spec());
        let mut params = self.build_params(
            caller,
            env,
            id,
            input.params.unwrap_or_default(),
            spec,
            old,
            &mut p,
        )?;
        if !integration {
            // Below integration the chain stays as stored, unseen and unchanged.
            if let Some(chain) = old.and_then(|o| o.param(TASK_CHAIN_PARAM)) {
                params.push(chain.clone());
            }
        }
        if let (Some(kind), Some(spec)) = (&kind, spec) {
            check_kind_params(kind.as_ref(), spec, &params, trigger.as_ref(), &mut p);
        }
        let retry = input.retry.unwrap_or_default();
        let retry = RetryPolicy {
            max_attempts: retry.max_attempts.unwrap_or(1),
            backoff_seconds: retry.backoff_seconds.unwrap_or(30),
        };
        if !(1..=MAX_ATTEMPTS).contains(&retry.max_attempts) {
            p.push(
                "retry.max_attempts",
                format!("between 1 and {MAX_ATTEMPTS}"),
            );
        }
        if retry.backoff_seconds > MAX_BACKOFF_SECONDS {
            p.push(
                "retry.backoff_seconds",
                format!("at most {MAX_BACKOFF_SECONDS}"),
            );
        }
        let timeout_seconds = input.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
        if !(1..=MAX_TIMEOUT_SECONDS).contains(&timeout_seconds) {
            p.push(
                "timeout_seconds",
                format!("between 1 and {MAX_TIMEOUT_SECONDS}"),
            );
        }
        let trigger = trigger.unwrap_or(Trigger::Manual);
        let next_fire_at = match old {
            Some(o) if o.trigger == trigger => o.next_fire_at,
            _ => trigger.next_after(now, &env.time_zone),
        };
        let mut schedule = Schedule {
            id,
            env: env.id.clone(),
            name,
            description: input.description.unwrap_or_default(),
            kind: kind_name,
            enabled: input.enabled.unwrap_or(true),
            trigger,
            params,
            retry,
            timeout_seconds,
            overlap: input.overlap.unwrap_or_default(),
            catch_up: input.catch_up.unwrap_or_default(),
            allow_loops: input.allow_loops.unwrap_or(false),
            next_fire_at,
            saved_by: caller.username.clone(),
            updated_at: now,
        };
        if integration {
            self.check_chain_param(&mut schedule, old, &mut p);
        }
        p.into_result()?;
        self.refuse_schedule_cycle(&schedule)?;
        Ok(schedule)
    }

    /// Checks and seals the `async-TaskChain` value an integration user sent.
    fn check_chain_param(&self, schedule: &mut Schedule, old: Option<&Schedule>, p: &mut Problems) {
        let Some(index) = schedule
            .params
            .iter()
            .position(|x| x.name == TASK_CHAIN_PARAM)
        else {
            return;
        };
        let text = match &schedule.params[index].value {
            ParamValue::Plain(t) => t.clone(),
            ParamValue::Sealed(_) => {
                p.push(format!("params[{index}].encrypt"), format!("{TASK_CHAIN_PARAM} is not encrypted itself: mark the values inside it \"encrypt\": true"));
                return;
            }
        };
        match self.chain_param_at_save(schedule, index, &text, old) {
            Ok(stored) => schedule.params[index].value = ParamValue::Plain(stored),
            Err(found) => p.extend(found),
        }
    }

    /// Parameter rows: names, duplicates, sealing, and the dynamic values a schedule's own
    /// values may use (the globals).
    #[allow(clippy::too_many_arguments)]
    fn build_params(
        &self,
        caller: &User,
        env: &Environment,
        id: Uuid,
        rows: Vec<super::ParamInput>,
        spec: Option<&'static KindSpec>,
        old: Option<&Schedule>,
        p: &mut Problems,
    ) -> Result<Vec<ScheduleParam>, ServiceError> {
        let integration = caller.role_in(&env.id) >= Some(Role::Integration);
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(rows.len());
        for (i, row) in rows.into_iter().enumerate() {
            let field = format!("params[{i}]");
            if !is_valid_param_name(&row.name) {
                p.push(
                    format!("{field}.name"),
                    "a parameter name is 1–128 printable characters without spaces or @",
                );
                continue;
            }
            if !seen.insert(row.name.clone()) {
                p.push(
                    format!("{field}.name"),
                    format!("duplicate parameter {:?}", row.name),
                );
                continue;
            }
            if row.name == TASK_CHAIN_PARAM && !integration {
                return Err(ServiceError::Forbidden(format!(
                    "{TASK_CHAIN_PARAM} needs the integration role"
                )));
            }
            let secret = row.encrypt
                || spec
                    .and_then(|s| s.param(&row.name))
                    .is_some_and(|d| d.secret);
            let value = match (secret, row.value) {
                (true, Some(text)) => {
                    if !integration {
                        return Err(ServiceError::Forbidden(
                            "setting an encrypted value needs the integration role".into(),
                        ));
                    }
                    let place = Place {
                        env: &env.id,
                        record: format!("schedule:{id}"),
                        name: &row.name,
                    };
                    ParamValue::Sealed(
                        self.keyring
                            .seal(&place, &text)
                            .map_err(|e| ServiceError::Internal(e.to_string()))?,
                    )
                }
                (true, None) => match old.and_then(|o| o.param(&row.name)).map(|o| &o.value) {
                    Some(v @ ParamValue::Sealed(_)) => v.clone(),
                    _ => {
                        p.push(
                            format!("{field}.value"),
                            "no stored value to keep: give a value",
                        );
                        continue;
                    }
                },
                (false, None) => {
                    p.push(
                        format!("{field}.value"),
                        "a value is required (null keeps only encrypted values)",
                    );
                    continue;
                }
                (false, Some(text)) => {
                    if row.name != TASK_CHAIN_PARAM {
                        check_own_tokens(&text, &format!("{field}.value"), p);
                    }
                    ParamValue::Plain(text)
                }
            };
            out.push(ScheduleParam {
                name: row.name,
                value,
                locked: row.locked,
            });
        }
        Ok(out)
    }

    pub fn trigger_preview(
        &self,
        trigger: Option<serde_json::Value>,
    ) -> Result<(String, Vec<String>), ServiceError> {
        let mut p = Problems::new();
        let t = parse_trigger(trigger, &mut p);
        if let Some(t) = &t {
            t.validate("trigger", &mut p);
        }
        p.into_result()?;
        let t = t.unwrap_or(Trigger::Manual);
        let next = t
            .upcoming(self.clock.now(), "UTC", 5)
            .into_iter()
            .map(crate::domain::format_time)
            .collect();
        Ok((t.describe(), next))
    }
}

fn parse_trigger(value: Option<serde_json::Value>, p: &mut Problems) -> Option<Trigger> {
    match value {
        None | Some(serde_json::Value::Null) => {
            p.push("trigger", "required");
            None
        }
        Some(v) => match serde_json::from_value::<Trigger>(v) {
            Ok(t) => Some(t),
            Err(e) => {
                p.push("trigger", format!("{e} (types: manual, cron {{expr, time_zone}}, interval {{seconds}}, once {{at}})"));
                None
            }
        },
    }
}

/// A schedule's own values can use only the globals (and not `@FileToken@`, which needs a
/// source run's file).
fn check_own_tokens(value: &str, field: &str, p: &mut Problems) {
    for (name, column) in tokens(value) {
        if !GLOBAL_NAMES.contains(&name) || name == "FileToken" {
            p.push(
                field,
                format!("unknown dynamic value @{name}@ at column {column} (here you can use @UserID@, @DATE@, @DATETIME@, @RunID@, @ScheduleID@, @CustomerID@; write @@ for a literal @)"),
            );
        }
    }
}

/// The kind's format checks and, for a schedule that fires on its own, its required values.
fn check_kind_params(
    kind: &dyn crate::tasks::TaskKind,
    spec: &KindSpec,
    params: &[ScheduleParam],
    trigger: Option<&Trigger>,
    p: &mut Problems,
) {
    let mut plain: HashMap<&str, &str> = HashMap::new();
    let mut fields = HashMap::new();
    for (i, sp) in params.iter().enumerate() {
        fields.insert(sp.name.as_str(), format!("params[{i}].value"));
        if let ParamValue::Plain(v) = &sp.value {
            if tokens(v).is_empty() {
                plain.insert(sp.name.as_str(), v.as_str());
            }
        }
    }
    kind.validate(
        &plain,
        &mut ParamProblems {
            problems: p,
            fields,
        },
    );
    if trigger.is_some_and(Trigger::fires_on_its_own) {
        for req in spec.params.iter().filter(|r| r.required) {
            let set = params.iter().any(|sp| {
                sp.name == req.name
                    && match &sp.value {
                        ParamValue::Plain(v) => !v.is_empty(),
                        ParamValue::Sealed(_) => true,
                    }
            });
            if !set {
                p.push(
                    "params",
                    format!(
                        "{} is required for a schedule that fires on its own",
                        req.name
                    ),
                );
            }
        }
    }
}
