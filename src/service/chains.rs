//! Chains and their share grants; the `async-TaskChain` parameter at save; previews and
//! refires.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Service, ServiceError};
use crate::chain::plan::{self, Overlay};
use crate::chain::spec::{self, ChainSpec};
use crate::domain::chain::is_valid_chain_name;
use crate::domain::{
    Chain, FieldProblem, ParamValue, Problems, Role, Schedule, User, TASK_CHAIN_PARAM,
};
use crate::engine::PreviewParam;

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
    /// Every schedule, in any environment, whose `async-TaskChain` names `chain`.
    fn all_starters(&self, chain: &Chain) -> Result<Vec<Starter>, ServiceError> {
        let mut out = Vec::new();
        for env in self.store.environments()? {
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

    /// The starters `caller` may see (those in environments where they hold a role).
    fn starters(&self, caller: &User, chain: &Chain) -> Result<Vec<Starter>, ServiceError> {
        let mut all = self.all_starters(chain)?;
        all.retain(|s| caller.role_in(&s.env).is_some());
        Ok(all)
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

    /// Refuses a save that closes a cycle no schedule on it allows. The message names the
    /// schedules on the cycle that `caller` may see; the others only by their environment
    /// being another one, so a refusal tells nothing about environments the caller has no
    /// role in.
    pub(super) fn refuse_cycle(
        &self,
        caller: &User,
        overlay: Overlay<'_>,
        field: &str,
    ) -> Result<(), ServiceError> {
        let Some(cycle) = plan::cycle_after(&self.store, overlay)? else {
            return Ok(());
        };
        let steps: Vec<String> = cycle
            .iter()
            .map(|s| {
                if caller.role_in(&s.env).is_some() {
                    format!("{} ({}/{})", s.name, s.env, s.id)
                } else {
                    "a schedule in another environment".to_string()
                }
            })
            .collect();
        Err(ServiceError::invalid(
            field,
            format!("this closes a chain cycle: {} → back to the start (set allow_loops on a schedule of the cycle to allow it)", steps.join(" → ")),
        ))
    }

    pub fn create_chain(
        &self,
        caller: &User,
        env: &str,
        input: ChainInput,
    ) -> Result<ChainView, ServiceError> {
        self.require(caller, env, Role::Integration)?;
        let _graph = self.graph_save();
        let chain = self.build_chain(caller, env, input)?;
        self.refuse_cycle(
            caller,
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
        let _graph = self.graph_save();
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
            caller,
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
        let _graph = self.graph_save();
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
        // One scan: what the caller may see is listed, the rest only counted.
        let (starters, others): (Vec<Starter>, Vec<Starter>) = self
            .all_starters(chain)?
            .into_iter()
            .partition(|s| caller.role_in(&s.env).is_some());
        let hidden = others.len();
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
}
