//! A schedule built from what a user sent: every field checked (every problem at once, each
//! at its field), secrets sealed for the schedule's place, and the `async-TaskChain` checked
//! and sealed for integration users.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::schedule_input::{ParamInput, RetryInput, ScheduleInput};
use super::{Service, ServiceError};
use crate::chain::dynamic::{tokens, GLOBAL_NAMES};
use crate::crypto::Place;
use crate::domain::run::DEFAULT_TIMEOUT_SECONDS;
use crate::domain::schedule::is_valid_param_name;
use crate::domain::trigger::Trigger;
use crate::domain::{
    Environment, ParamValue, Problems, RetryPolicy, Role, Schedule, ScheduleParam, User,
    TASK_CHAIN_PARAM,
};
use crate::tasks::{KindSpec, ParamProblems, TaskKind};

/// Limits on a schedule's numbers.
const MAX_ATTEMPTS: u32 = 100;
const MAX_BACKOFF_SECONDS: u64 = 86_400;
const MAX_TIMEOUT_SECONDS: u64 = 7 * 86_400;
const MAX_NAME_CHARS: usize = 200;

impl Service {
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
        let now = self.clock.now();
        let name = input.name.unwrap_or_default();
        check_name(&name, &mut p);
        let kind_name = input.kind.unwrap_or_default();
        let kind = self.kind_named(&kind_name, &mut p);
        let trigger = checked_trigger(input.trigger, old, now, &mut p);
        let spec = kind.as_ref().map(|k| k.spec());
        let rows = input.params.unwrap_or_default();
        let mut params = self.build_params(caller, env, id, rows, spec, old, &mut p)?;
        if !integration {
            // Below integration the chain stays as stored, unseen and unchanged.
            if let Some(chain) = old.and_then(|o| o.param(TASK_CHAIN_PARAM)) {
                params.push(chain.clone());
            }
        }
        if let (Some(kind), Some(spec)) = (&kind, spec) {
            check_kind_params(kind.as_ref(), spec, &params, trigger.as_ref(), &mut p);
        }
        let retry = checked_retry(input.retry, &mut p);
        let timeout_seconds = checked_timeout(input.timeout_seconds, &mut p);
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
        self.refuse_schedule_cycle(caller, &schedule)?;
        Ok(schedule)
    }

    /// The kind a schedule names; a problem when it names none or an unknown one.
    fn kind_named(&self, name: &str, p: &mut Problems) -> Option<Arc<dyn TaskKind>> {
        let kind = self.kinds.get(name).cloned();
        if name.is_empty() {
            p.push("kind", "required");
        } else if kind.is_none() {
            let known = self.kinds.names().join(", ");
            p.push("kind", format!("unknown kind {name:?} (known: {known})"));
        }
        kind
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
        rows: Vec<ParamInput>,
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
            let stored = old.and_then(|o| o.param(&row.name)).map(|o| &o.value);
            // Below integration a stored secret stays one: it can be kept or deleted, not
            // replaced by plain text.
            let secret = row.encrypt
                || spec
                    .and_then(|s| s.param(&row.name))
                    .is_some_and(|d| d.secret)
                || (!integration && stored.is_some_and(ParamValue::is_sealed));
            let place = Place {
                env: &env.id,
                record: crate::crypto::schedule_record(id),
                name: &row.name,
            };
            let given = (secret, row.value);
            let Some(value) = self.param_value(given, &place, stored, integration, &field, p)?
            else {
                continue;
            };
            out.push(ScheduleParam {
                name: row.name,
                value,
                locked: row.locked,
            });
        }
        Ok(out)
    }

    /// One row's stored value: a secret sealed for the schedule's place (or the stored one
    /// kept, when none is given), a plain text checked for the dynamic values it may use.
    /// `None` after pushing the problem that leaves the row out.
    fn param_value(
        &self,
        (secret, value): (bool, Option<String>),
        place: &Place<'_>,
        stored: Option<&ParamValue>,
        integration: bool,
        field: &str,
        p: &mut Problems,
    ) -> Result<Option<ParamValue>, ServiceError> {
        let value = match (secret, value) {
            (true, Some(text)) => {
                if !integration {
                    return Err(ServiceError::Forbidden(
                        "setting an encrypted value needs the integration role".into(),
                    ));
                }
                let sealed = self
                    .keyring
                    .seal(place, &text)
                    .map_err(|e| ServiceError::Internal(e.to_string()))?;
                ParamValue::Sealed(sealed)
            }
            (true, None) => match stored {
                Some(v @ ParamValue::Sealed(_)) => v.clone(),
                _ => {
                    p.push(
                        format!("{field}.value"),
                        "no stored value to keep: give a value",
                    );
                    return Ok(None);
                }
            },
            (false, None) => {
                p.push(
                    format!("{field}.value"),
                    "a value is required (null keeps only encrypted values)",
                );
                return Ok(None);
            }
            (false, Some(text)) => {
                if place.name != TASK_CHAIN_PARAM {
                    check_own_tokens(&text, &format!("{field}.value"), p);
                }
                ParamValue::Plain(text)
            }
        };
        Ok(Some(value))
    }
}

fn check_name(name: &str, p: &mut Problems) {
    if name.trim().is_empty() {
        p.push("name", "required");
    } else if name.chars().count() > MAX_NAME_CHARS {
        p.push("name", format!("at most {MAX_NAME_CHARS} characters"));
    }
}

/// The trigger sent, checked; a changed `once` trigger must lie in the future.
fn checked_trigger(
    value: Option<serde_json::Value>,
    old: Option<&Schedule>,
    now: DateTime<Utc>,
    p: &mut Problems,
) -> Option<Trigger> {
    let trigger = parse_trigger(value, p)?;
    trigger.validate("trigger", p);
    if let Trigger::Once { at } = &trigger {
        let changed = old.is_none_or(|o| o.trigger != trigger);
        if changed && *at <= now {
            p.push("trigger.at", "a once trigger's time must be in the future");
        }
    }
    Some(trigger)
}

pub(super) fn parse_trigger(value: Option<serde_json::Value>, p: &mut Problems) -> Option<Trigger> {
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

fn checked_retry(input: Option<RetryInput>, p: &mut Problems) -> RetryPolicy {
    let input = input.unwrap_or_default();
    let retry = RetryPolicy {
        max_attempts: input.max_attempts.unwrap_or(1),
        backoff_seconds: input.backoff_seconds.unwrap_or(30),
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
    retry
}

fn checked_timeout(input: Option<u64>, p: &mut Problems) -> u64 {
    let timeout_seconds = input.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    if !(1..=MAX_TIMEOUT_SECONDS).contains(&timeout_seconds) {
        p.push(
            "timeout_seconds",
            format!("between 1 and {MAX_TIMEOUT_SECONDS}"),
        );
    }
    timeout_seconds
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
