//! Chains and their share grants; the `async-TaskChain` parameter at save; previews and
//! refires.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Service, ServiceError};
use crate::chain::plan::{self, Overlay, SourceFacts};
use crate::chain::spec::{self, ChainSpec, HopValue};
use crate::crypto::Place;
use crate::domain::chain::is_valid_chain_name;
use crate::domain::{
    Chain, FieldProblem, ParamValue, Problems, Role, Schedule, User, TASK_CHAIN_PARAM,
};
use crate::engine::{PreviewParam, Refired};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainInput {
    pub name: Option<String>,
    pub schedule_id: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub share_with: Option<Vec<String>>,
    /// Read-only.
    #[serde(default)]
    pub env: Option<serde_json::Value>,
    #[serde(default)]
    pub started_by: Option<serde_json::Value>,
    #[serde(default)]
    pub updated_at: Option<serde_json::Value>,
    #[serde(default)]
    pub updated_by: Option<serde_json::Value>,
}

/// A schedule that starts a chain, as the caller may see it.
#[derive(Debug, Clone, Serialize)]
pub struct Starter {
    pub env: String,
    pub schedule_id: Uuid,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChainView {
    pub env: String,
    pub name: String,
    pub schedule_id: Uuid,
    pub description: String,
    pub enabled: bool,
    pub share_with: Vec<String>,
    /// The schedules (in any environment the caller can see) whose `async-TaskChain` names it.
    pub started_by: Vec<Starter>,
    pub updated_by: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SharedChain {
    pub env: String,
    pub name: String,
    pub description: String,
    pub kind: String,
    pub settable: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PreviewHop {
    pub env: String,
    pub chain: String,
    pub when: &'static str,
    pub params: Vec<PreviewParam>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChainPreview {
    pub hops: Vec<PreviewHop>,
    pub errors: Vec<FieldProblem>,
}

/// The chain text a schedule stores, parsed.
pub fn stored_spec(s: &Schedule) -> Option<ChainSpec> {
    match &s.param(TASK_CHAIN_PARAM)?.value {
        ParamValue::Plain(t) => spec::parse(t, spec::Origin::Stored).ok(),
        ParamValue::Sealed(_) => None,
    }
}

impl Service {
    fn starters(&self, caller: &User, chain: &Chain) -> Result<Vec<Starter>, ServiceError> {
        let mut out = Vec::new();
        for env in self.store.environments()? {
            if caller.role_in(&env.id).is_none() {
                continue;
            }
            for s in self.store.schedules_of(&env.id)? {
                let names_it = stored_spec(&s).is_some_and(|sp| {
                    sp.hops.iter().any(|h| {
                        h.name == chain.name
                            && h.customer_id.as_deref().unwrap_or(&s.env) == chain.env
                    })
                });
                if names_it {
                    out.push(Starter {
                        env: s.env.clone(),
                        schedule_id: s.id,
                        name: s.name.clone(),
                    });
                }
            }
        }
        Ok(out)
    }

    fn chain_view(&self, caller: &User, c: &Chain) -> Result<ChainView, ServiceError> {
        Ok(ChainView {
            env: c.env.clone(),
            name: c.name.clone(),
            schedule_id: c.schedule_id,
            description: c.description.clone(),
            enabled: c.enabled,
            share_with: c.share_with.clone(),
            started_by: self.starters(caller, c)?,
            updated_by: c.updated_by.clone(),
            updated_at: crate::domain::format_time(c.updated_at),
        })
    }

    pub fn list_chains(&self, caller: &User, env: &str) -> Result<Vec<ChainView>, ServiceError> {
        self.require(caller, env, Role::Integration)?;
        let chains: Vec<Chain> = self
            .store
            .all_chains()?
            .into_iter()
            .filter(|c| c.env == env)
            .collect();
        chains.iter().map(|c| self.chain_view(caller, c)).collect()
    }

    fn chain_in(&self, env: &str, name: &str) -> Result<Chain, ServiceError> {
        self.store
            .chain(env, name)?
            .ok_or_else(|| ServiceError::NotFound(format!("chain {name:?}")))
    }

    pub fn get_chain(
        &self,
        caller: &User,
        env: &str,
        name: &str,
    ) -> Result<ChainView, ServiceError> {
        self.require(caller, env, Role::Integration)?;
        self.chain_view(caller, &self.chain_in(env, name)?)
    }

    fn build_chain(
        &self,
        caller: &User,
        env: &str,
        input: ChainInput,
    ) -> Result<Chain, ServiceError> {
        let mut p = Problems::new();
        let name = input.name.unwrap_or_default();
        if name.is_empty() {
            p.push("name", "required");
        } else if !is_valid_chain_name(&name) {
            p.push(
                "name",
                "letters, digits, . _ - (at most 64), starting with a letter or digit",
            );
        }
        let schedule_id = match input.schedule_id.as_deref().map(Uuid::parse_str) {
            None => {
                p.push("schedule_id", "required");
                Uuid::nil()
            }
            Some(Ok(id)) if self.store.schedule(id)?.is_some_and(|s| s.env == env) => id,
            Some(_) => {
                p.push(
                    "schedule_id",
                    "no schedule with that id in this environment",
                );
                Uuid::nil()
            }
        };
        let mut share_with = input.share_with.unwrap_or_default();
        share_with.sort();
        share_with.dedup();
        for (i, e) in share_with.iter().enumerate() {
            if e == env {
                p.push(
                    format!("share_with[{i}]"),
                    "an environment can always start its own chains",
                );
            } else if self.store.environment(e)?.is_none() {
                p.push(format!("share_with[{i}]"), format!("no environment {e:?}"));
            }
        }
        p.into_result()?;
        Ok(Chain {
            env: env.to_string(),
            name,
            schedule_id,
            description: input.description.unwrap_or_default(),
            enabled: input.enabled.unwrap_or(true),
            share_with,
            updated_by: caller.username.clone(),
            updated_at: self.clock.now(),
        })
    }

    fn refuse_cycle(&self, overlay: Overlay<'_>, field: &str) -> Result<(), ServiceError> {
        if let Some(cycle) = plan::cycle_after(&self.store, overlay)? {
            return Err(ServiceError::invalid(
                field,
                format!("this closes a chain cycle: {} → back to the start (set allow_loops on a schedule of the cycle to allow it)", cycle.join(" → ")),
            ));
        }
        Ok(())
    }

    pub fn create_chain(
        &self,
        caller: &User,
        env: &str,
        input: ChainInput,
    ) -> Result<ChainView, ServiceError> {
        self.require(caller, env, Role::Integration)?;
        let chain = self.build_chain(caller, env, input)?;
        self.refuse_cycle(
            Overlay {
                schedule: None,
                chain: Some((&chain, None)),
            },
            "schedule_id",
        )?;
        let audit = self.audit_entry(
            &caller.username,
            "chain.create",
            Some(env),
            Some(chain.name.clone()),
            format!("share_with: {:?}", chain.share_with),
        );
        self.store.put_chain(&chain, None, &audit)?;
        self.chain_view(caller, &chain)
    }

    pub fn replace_chain(
        &self,
        caller: &User,
        env: &str,
        name: &str,
        input: ChainInput,
    ) -> Result<ChainView, ServiceError> {
        self.require(caller, env, Role::Integration)?;
        let old = self.chain_in(env, name)?;
        let input = ChainInput {
            name: input.name.or_else(|| Some(name.to_string())),
            ..input
        };
        let chain = self.build_chain(caller, env, input)?;
        if chain.name != old.name {
            self.refuse_dependents(caller, &old, "renamed")?;
        }
        self.refuse_cycle(
            Overlay {
                schedule: None,
                chain: Some((&chain, Some(name))),
            },
            "share_with",
        )?;
        let audit = self.audit_entry(
            &caller.username,
            "chain.update",
            Some(env),
            Some(chain.name.clone()),
            format!("share_with: {:?}", chain.share_with),
        );
        self.store.put_chain(&chain, Some(name), &audit)?;
        self.chain_view(caller, &chain)
    }

    pub fn delete_chain(&self, caller: &User, env: &str, name: &str) -> Result<(), ServiceError> {
        self.require(caller, env, Role::Integration)?;
        let old = self.chain_in(env, name)?;
        self.refuse_dependents(caller, &old, "deleted")?;
        let audit = self.audit_entry(
            &caller.username,
            "chain.delete",
            Some(env),
            Some(name.to_string()),
            "",
        );
        Ok(self.store.delete_chain(env, name, &audit)?)
    }

    /// 409 with the schedules that name the chain (those the caller may see).
    fn refuse_dependents(
        &self,
        caller: &User,
        chain: &Chain,
        verb: &str,
    ) -> Result<(), ServiceError> {
        let starters = self.starters(caller, chain)?;
        let hidden = self
            .count_all_starters(chain)?
            .saturating_sub(starters.len());
        if starters.is_empty() && hidden == 0 {
            return Ok(());
        }
        let mut details: Vec<FieldProblem> = starters
            .iter()
            .map(|s| FieldProblem {
                field: format!("{}/{}", s.env, s.schedule_id),
                message: format!("schedule {:?} starts this chain", s.name),
                line: None,
                column: None,
            })
            .collect();
        if hidden > 0 {
            details.push(FieldProblem {
                field: "other environments".into(),
                message: format!("{hidden} schedules you cannot see start this chain"),
                line: None,
                column: None,
            });
        }
        Err(ServiceError::Conflict {
            message: format!(
                "chain {:?} cannot be {verb}: schedules start it",
                chain.name
            ),
            details,
        })
    }

    fn count_all_starters(&self, chain: &Chain) -> Result<usize, ServiceError> {
        let everyone = User {
            username: String::new(),
            password_hash: String::new(),
            admin: true,
            roles: Default::default(),
            created_at: self.clock.now(),
        };
        Ok(self.starters(&everyone, chain)?.len())
    }

    /// What other environments offer `env`.
    pub fn shared_chains(
        &self,
        caller: &User,
        env: &str,
    ) -> Result<Vec<SharedChain>, ServiceError> {
        self.require(caller, env, Role::Integration)?;
        let mut out = Vec::new();
        for c in self.store.all_chains()? {
            if c.env == env || !c.share_with.iter().any(|e| e == env) {
                continue;
            }
            let Some(s) = self.store.schedule(c.schedule_id)? else {
                continue;
            };
            let kind = self.kinds.get(&s.kind).map(|k| k.spec());
            out.push(SharedChain {
                env: c.env.clone(),
                name: c.name.clone(),
                description: c.description.clone(),
                kind: s.kind.clone(),
                settable: plan::settable(&s, kind),
            });
        }
        Ok(out)
    }

    /// The `async-TaskChain` value of a schedule being saved: parsed, kept values matched with
    /// what is stored (by hop index and name), literal secrets sealed, every rule checked.
    /// Returns the stored text, or every problem with its path, line and column.
    pub(super) fn chain_param_at_save(
        &self,
        schedule: &Schedule,
        index: usize,
        text: &str,
        old: Option<&Schedule>,
    ) -> Result<String, Problems> {
        let prefix = format!("params[{index}]");
        let with_prefix = |p: Problems| {
            Problems(
                p.0.into_iter()
                    .map(|mut x| {
                        x.field = format!("{prefix}.{}", x.field);
                        x
                    })
                    .collect(),
            )
        };
        let mut parsed = spec::parse(text, spec::Origin::User).map_err(with_prefix)?;
        let stored = old.and_then(stored_spec);
        let mut p = Problems::new();
        for (i, hop) in parsed.hops.iter_mut().enumerate() {
            for hp in &mut hop.params {
                let kept = stored
                    .as_ref()
                    .and_then(|s| s.hops.get(i))
                    .and_then(|h| h.params.iter().find(|x| x.name == hp.name))
                    .map(|x| x.value.clone());
                match (&hp.value, kept) {
                    (HopValue::Keep, Some(v @ HopValue::Sealed(_))) => hp.value = v,
                    (HopValue::Keep, _) => p.0.push(FieldProblem {
                        field: format!("{prefix}.{}.value", hp.field),
                        message: "no stored value to keep: give a value".into(),
                        line: Some(hp.line),
                        column: Some(hp.column),
                    }),
                    (HopValue::Text(t), _)
                        if hp.encrypt && crate::chain::dynamic::tokens(t).is_empty() =>
                    {
                        let name = spec::sealed_literal_name(i, &hp.name);
                        let place = Place {
                            env: &schedule.env,
                            record: format!("schedule:{}", schedule.id),
                            name: &name,
                        };
                        match self.keyring.seal(&place, t) {
                            Ok(s) => hp.value = HopValue::Sealed(s),
                            Err(e) => p.push(format!("{prefix}.{}.value", hp.field), e.to_string()),
                        }
                    }
                    _ => {}
                }
            }
        }
        let facts = SourceFacts::of(schedule, &self.kinds);
        match plan::check_at_save(
            &self.store,
            &self.kinds,
            &schedule.env,
            &facts,
            &parsed,
            &prefix,
        ) {
            Ok(found) => p.extend(found),
            Err(e) => p.push(prefix.clone(), e.to_string()),
        }
        p.into_result()?;
        Ok(parsed.to_stored())
    }

    /// Refuses a schedule save that closes a chain cycle.
    pub(super) fn refuse_schedule_cycle(&self, schedule: &Schedule) -> Result<(), ServiceError> {
        let index = schedule
            .params
            .iter()
            .position(|p| p.name == TASK_CHAIN_PARAM)
            .unwrap_or(0);
        self.refuse_cycle(
            Overlay {
                schedule: Some(schedule),
                chain: None,
            },
            &format!("params[{index}].value"),
        )
    }

    /// Resolves a schedule's chain (or `value`, unsaved) against its last run.
    pub async fn chain_preview(
        &self,
        caller: &User,
        env: &str,
        id: Uuid,
        value: Option<String>,
    ) -> Result<ChainPreview, ServiceError> {
        self.require(caller, env, Role::Integration)?;
        let schedule = self.schedule_in(env, id)?;
        let parsed = match value {
            Some(text) => match spec::parse(&text, spec::Origin::User) {
                Ok(mut s) => {
                    let stored = stored_spec(&schedule);
                    for (i, hop) in s.hops.iter_mut().enumerate() {
                        for hp in &mut hop.params {
                            if hp.value == HopValue::Keep {
                                if let Some(v) = stored
                                    .as_ref()
                                    .and_then(|st| st.hops.get(i))
                                    .and_then(|h| h.params.iter().find(|x| x.name == hp.name))
                                {
                                    hp.value = v.value.clone();
                                }
                            }
                        }
                    }
                    s
                }
                Err(p) => {
                    return Ok(ChainPreview {
                        hops: Vec::new(),
                        errors: p.0,
                    })
                }
            },
            None => stored_spec(&schedule).ok_or_else(|| {
                ServiceError::invalid("value", format!("the schedule has no {TASK_CHAIN_PARAM}"))
            })?,
        };
        let last = self
            .store
            .page_runs(
                env,
                &crate::store::RunFilter {
                    schedule: Some(id),
                    limit: 1,
                    ..Default::default()
                },
            )?
            .into_iter()
            .next();
        let source = match last {
            Some(r) => r,
            None => {
                let mut r = self.engine.new_run(
                    &schedule,
                    crate::domain::Origin::Manual,
                    &caller.username,
                    None,
                    None,
                )?;
                r.state = crate::domain::RunState::Succeeded;
                r
            }
        };
        let mut preview = ChainPreview {
            hops: Vec::new(),
            errors: Vec::new(),
        };
        for (i, hop) in parsed.hops.iter().enumerate() {
            let target_env = hop.customer_id.clone().unwrap_or_else(|| env.to_string());
            match self.engine.preview_hop(&source, &source.outputs, i, hop) {
                Ok(params) => preview.hops.push(PreviewHop {
                    env: target_env,
                    chain: hop.name.clone(),
                    when: hop.when.as_str(),
                    params,
                }),
                Err(message) => preview.errors.push(FieldProblem {
                    field: hop.field.clone(),
                    message,
                    line: Some(hop.line),
                    column: Some(hop.column),
                }),
            }
        }
        Ok(preview)
    }

    /// Previews the chain of a form that is not saved yet (`id`: the schedule it edits, whose
    /// last run the values resolve against). Validation problems come back as errors.
    pub async fn preview_unsaved(
        &self,
        caller: &User,
        env: &str,
        id: Option<Uuid>,
        input: super::ScheduleInput,
    ) -> Result<ChainPreview, ServiceError> {
        let e = self.require(caller, env, Role::Integration)?;
        let old = match id {
            Some(id) => Some(self.schedule_in(env, id)?),
            None => None,
        };
        let schedule = match self.build_schedule(
            caller,
            &e,
            id.unwrap_or_else(Uuid::now_v7),
            input,
            old.as_ref(),
        ) {
            Ok(s) => s,
            Err(ServiceError::Validation(p)) => {
                return Ok(ChainPreview {
                    hops: Vec::new(),
                    errors: p.0,
                })
            }
            Err(other) => return Err(other),
        };
        let Some(parsed) = stored_spec(&schedule) else {
            return Ok(ChainPreview {
                hops: Vec::new(),
                errors: Vec::new(),
            });
        };
        let last = match id {
            Some(id) => self
                .store
                .page_runs(
                    env,
                    &crate::store::RunFilter {
                        schedule: Some(id),
                        limit: 1,
                        ..Default::default()
                    },
                )?
                .into_iter()
                .next(),
            None => None,
        };
        let source = match last {
            Some(r) => r,
            None => self.placeholder_run(&schedule, &caller.username)?,
        };
        // The form's chain, as saved, resolves against the schedule it would be saved with.
        let mut preview = ChainPreview {
            hops: Vec::new(),
            errors: Vec::new(),
        };
        for (i, hop) in parsed.hops.iter().enumerate() {
            let target_env = hop.customer_id.clone().unwrap_or_else(|| env.to_string());
            match self.engine.preview_hop(&source, &source.outputs, i, hop) {
                Ok(params) => preview.hops.push(PreviewHop {
                    env: target_env,
                    chain: hop.name.clone(),
                    when: hop.when.as_str(),
                    params,
                }),
                Err(message) => preview.errors.push(FieldProblem {
                    field: hop.field.clone(),
                    message,
                    line: Some(hop.line),
                    column: Some(hop.column),
                }),
            }
        }
        Ok(preview)
    }

    /// A stand-in for a schedule that never ran: its declared outputs shown as ‹Name›.
    fn placeholder_run(
        &self,
        schedule: &Schedule,
        user: &str,
    ) -> Result<crate::domain::Run, ServiceError> {
        let mut r =
            self.engine
                .new_run(schedule, crate::domain::Origin::Manual, user, None, None)?;
        r.state = crate::domain::RunState::Succeeded;
        if let Some(kind) = self.kinds.get(&schedule.kind) {
            for o in kind.spec().outputs {
                r.outputs.insert(o.to_string(), format!("‹{o}›"));
            }
        }
        Ok(r)
    }

    /// `…/hops/{n}/refire`: fires a refused hop again after its cause is fixed.
    pub async fn refire_hop(
        &self,
        caller: &User,
        env: &str,
        run_id: Uuid,
        n: usize,
    ) -> Result<Uuid, ServiceError> {
        self.require(caller, env, Role::Integration)?;
        let run = self.run_in(env, run_id)?;
        let outcome = self.engine.refire(&run, n).await?;
        let detail = match &outcome {
            Refired::Started(id) => format!("hop {n} started run {id}"),
            Refired::Refused(m) => format!("hop {n} refused again: {m}"),
        };
        let audit = self.audit_entry(
            &caller.username,
            "chain.refire",
            Some(env),
            Some(run_id.to_string()),
            detail,
        );
        self.store.append_audit(&audit)?;
        match outcome {
            Refired::Started(id) => Ok(id),
            Refired::Refused(m) => Err(ServiceError::invalid(format!("hops[{n}]"), m)),
        }
    }
}
