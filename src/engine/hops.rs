//! Chain hops at fire time: when a run ends, its `async-TaskChain` is checked again against
//! the store as it is now, and each hop whose `when` matches becomes a started run (or a
//! recorded chain error). The caller commits them with the run's final state.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use uuid::Uuid;

use super::{Engine, Waiting};
use crate::chain::dynamic::{resolve, DynamicError, Globals, Lookup, Reference, Value};
use crate::chain::plan::{check_settable, target};
use crate::chain::spec::{self, ChainSpec, Hop, HopValue};
use crate::crypto::{token_hash, Place};
use crate::domain::chain::FILE_TOKEN_PREFIX;
use crate::domain::run::{ChainError, RunParam};
use crate::domain::{FileToken, Origin, Overlap, ParamValue, Run, RunState, TASK_CHAIN_PARAM};
use crate::store::Hops;

/// Hops planned for one commit, with what admission decided for each started run.
#[derive(Default)]
pub struct PlannedHops {
    pub hops: Hops,
    /// Per started run: its schedule's overlap, whether it was claimed at once, and the
    /// chain's name (for a "target busy" refusal at admission).
    admitted: Vec<(Overlap, bool, String)>,
}

/// A hop's dynamic values: the source run's outputs, then its parameters, then the globals;
/// `@FileToken@` mints a token the first time it is named.
struct HopLookup<'a> {
    outputs: &'a BTreeMap<String, String>,
    params: &'a HashMap<String, (String, bool)>,
    globals: &'a Globals,
    mint: &'a dyn Fn() -> Result<(String, FileToken), String>,
    minted: RefCell<Option<(String, FileToken)>>,
    mint_error: RefCell<Option<String>>,
}

impl Lookup for HopLookup<'_> {
    fn lookup(&self, r: Reference<'_>) -> Option<Value> {
        let plain = |t: &String| Value {
            text: t.clone(),
            secret: false,
        };
        let param = |(t, s): &(String, bool)| Value {
            text: t.clone(),
            secret: *s,
        };
        match r {
            Reference::Output(n) => self.outputs.get(n).map(plain),
            Reference::Param(n) => self.params.get(n).map(param),
            Reference::Bare("FileToken") => {
                if self.minted.borrow().is_none() {
                    match (self.mint)() {
                        Ok(m) => *self.minted.borrow_mut() = Some(m),
                        Err(e) => {
                            *self.mint_error.borrow_mut() = Some(e);
                            return None;
                        }
                    }
                }
                self.minted.borrow().as_ref().map(|(text, _)| Value {
                    text: text.clone(),
                    secret: true,
                })
            }
            Reference::Bare(n) => self
                .outputs
                .get(n)
                .map(plain)
                .or_else(|| self.params.get(n).map(param))
                .or_else(|| {
                    self.globals.get(n).map(|g| Value {
                        text: g.to_string(),
                        secret: false,
                    })
                }),
        }
    }
}

impl Engine {
    /// The chain text a run carries, parsed; `Err` is a chain error to record.
    pub(super) fn chain_of(text: Option<&str>) -> Result<Option<ChainSpec>, String> {
        match text {
            None => Ok(None),
            Some(t) => spec::parse(t, spec::Origin::Stored).map(Some).map_err(|p| {
                format!(
                    "the {TASK_CHAIN_PARAM} text is invalid: {}",
                    p.0.first().map_or("", |x| x.message.as_str())
                )
            }),
        }
    }

    /// The source run's own parameters, opened, each with whether it is secret.
    fn source_params(&self, run: &Run, globals: &Globals) -> HashMap<String, (String, bool)> {
        let record = format!("run:{}", run.id);
        let mut out = HashMap::new();
        for p in run.params.iter().filter(|p| p.name != TASK_CHAIN_PARAM) {
            let v = match &p.value {
                ParamValue::Sealed(s) => match self.keyring.open(
                    &Place {
                        env: &run.env,
                        record: record.clone(),
                        name: &p.name,
                    },
                    s,
                ) {
                    Ok(v) => (v.to_string(), true),
                    Err(_) => continue,
                },
                ParamValue::Plain(v) if p.literal => (v.clone(), false),
                ParamValue::Plain(v) => (
                    resolve(v, globals)
                        .map(|r| r.text)
                        .unwrap_or_else(|_| v.clone()),
                    false,
                ),
            };
            out.insert(p.name.clone(), v);
        }
        out
    }

    /// Plans every hop of `run` that matches its final `state`.
    pub(super) fn plan_hops(
        &self,
        run: &Run,
        state: RunState,
        outputs: &BTreeMap<String, String>,
    ) -> PlannedHops {
        let text = run
            .params
            .iter()
            .find(|p| p.name == TASK_CHAIN_PARAM)
            .and_then(|p| match &p.value {
                ParamValue::Plain(t) => Some(t.as_str()),
                ParamValue::Sealed(_) => None,
            });
        let mut planned = PlannedHops::default();
        let now = self.clock.now();
        let spec = match Self::chain_of(text) {
            Ok(Some(s)) => s,
            Ok(None) => return planned,
            Err(message) => {
                planned.hops.chain_errors.push(ChainError {
                    hop: 0,
                    env: run.env.clone(),
                    chain: String::new(),
                    message,
                    at: now,
                });
                return planned;
            }
        };
        for (i, hop) in spec.hops.iter().enumerate() {
            if hop.when.matches(state) {
                self.plan_one(run, outputs, i, hop, &mut planned);
            }
        }
        self.admit(&mut planned);
        planned
    }

    pub(super) fn plan_one(
        &self,
        run: &Run,
        outputs: &BTreeMap<String, String>,
        i: usize,
        hop: &Hop,
        planned: &mut PlannedHops,
    ) {
        let now = self.clock.now();
        let env = hop.customer_id.clone().unwrap_or_else(|| run.env.clone());
        let refuse = |planned: &mut PlannedHops, message: String| {
            self.metrics.hops_refused.fetch_add(1, Ordering::Relaxed);
            planned.hops.audit.push(self.audit_hop(
                run,
                "chain.refused",
                &env,
                &hop.name,
                &message,
            ));
            planned.hops.chain_errors.push(ChainError {
                hop: i as u32,
                env: env.clone(),
                chain: hop.name.clone(),
                message,
                at: now,
            });
        };
        match self.build_hop_run(run, outputs, i, hop, false) {
            Ok((child, overlap, token)) => {
                self.metrics.hops_fired.fetch_add(1, Ordering::Relaxed);
                planned.hops.audit.push(self.audit_hop(
                    run,
                    "chain.hop",
                    &env,
                    &hop.name,
                    &format!("started run {}", child.id),
                ));
                if let Some((text, tok)) = token {
                    planned.hops.audit.push(self.audit_hop(
                        run,
                        "file_token.mint",
                        &env,
                        &hop.name,
                        &format!(
                            "token {} for {} v{}",
                            tok.id, tok.file_name, tok.file_version
                        ),
                    ));
                    planned.hops.tokens.push((token_hash(&text), tok));
                }
                planned.hops.started.push(child);
                planned.admitted.push((overlap, false, hop.name.clone()));
            }
            Err(message) => refuse(planned, message),
        }
    }

    fn audit_hop(
        &self,
        run: &Run,
        action: &str,
        env: &str,
        chain: &str,
        detail: &str,
    ) -> crate::domain::AuditEntry {
        crate::domain::AuditEntry {
            id: Uuid::now_v7(),
            at: self.clock.now(),
            actor: run.acting_user.clone(),
            action: action.to_string(),
            env: Some(run.env.clone()),
            target: Some(format!("run {} → {env}/{chain}", run.id)),
            detail: detail.to_string(),
        }
    }

    /// The run one hop starts, with its parameters resolved and sealed for it. With
    /// `dry_run` (previews) no file is looked up for `@FileToken@`.
    #[allow(clippy::type_complexity)]
    pub(super) fn build_hop_run(
        &self,
        run: &Run,
        outputs: &BTreeMap<String, String>,
        i: usize,
        hop: &Hop,
        dry_run: bool,
    ) -> Result<(Run, Overlap, Option<(String, FileToken)>), String> {
        let target = target(&self.store, &run.env, hop).map_err(|e| e.to_string())??;
        if !target.chain.enabled {
            return Err(format!("chain {:?} is disabled", hop.name));
        }
        if !target.schedule.enabled {
            return Err("the chain's template schedule is disabled".into());
        }
        if run.depth + 1 > self.max_chain_depth {
            return Err(format!(
                "the chain would be {} hops deep; the limit is {}",
                run.depth + 1,
                self.max_chain_depth
            ));
        }
        let mut child = self
            .new_run(
                &target.schedule,
                Origin::Chain,
                &run.acting_user,
                None,
                Some(run),
            )
            .map_err(|e| e.to_string())?;
        child.parent_hop = Some(i as u32);
        let globals = self.globals_for(run);
        let params = self.source_params(run, &globals);
        let mint = || {
            if dry_run && outputs.contains_key("FileName") {
                let (text, token) =
                    self.mint_token_for(&run.env, "(preview)", 0, &target.env, child.id);
                return Ok((text, token));
            }
            self.mint_token(run, outputs, &target.env, child.id)
        };
        let lookup = HopLookup {
            outputs,
            params: &params,
            globals: &globals,
            mint: &mint,
            minted: RefCell::new(None),
            mint_error: RefCell::new(None),
        };
        for hp in &hop.params {
            check_settable(&target, &self.kinds, &hp.name)?;
            let (text, secret) = match &hp.value {
                HopValue::Sealed(s) => {
                    let place = Place {
                        env: &run.env,
                        record: format!("schedule:{}", run.schedule_id),
                        name: &spec::sealed_literal_name(i, &hp.name),
                    };
                    (
                        self.keyring
                            .open(&place, s)
                            .map_err(|e| e.to_string())?
                            .to_string(),
                        true,
                    )
                }
                HopValue::Keep => {
                    return Err(format!("parameter {:?} has no stored value", hp.name))
                }
                HopValue::Text(t) => match resolve(t, &lookup) {
                    Ok(r) => (r.text, r.secret),
                    Err(DynamicError::Unknown { name, .. }) => {
                        return Err(lookup.mint_error.borrow_mut().take().unwrap_or_else(|| {
                            match name.strip_prefix("Output.") {
                                Some(o) => format!("@{name}@: the run produced no output {o}"),
                                None => format!("@{name}@: the source run has no such value"),
                            }
                        }))
                    }
                },
            };
            let holds_token = text.contains(FILE_TOKEN_PREFIX)
                && lookup
                    .minted
                    .borrow()
                    .as_ref()
                    .is_some_and(|(t, _)| text.contains(t.as_str()));
            if secret && !hp.encrypt && !holds_token {
                return Err(format!(
                    "parameter {:?} takes an encrypted value but is not marked encrypt",
                    hp.name
                ));
            }
            let value = if hp.encrypt || holds_token || secret {
                let place = Place {
                    env: &target.env,
                    record: format!("run:{}", child.id),
                    name: &hp.name,
                };
                ParamValue::Sealed(
                    self.keyring
                        .seal(&place, &text)
                        .map_err(|e| e.to_string())?,
                )
            } else {
                ParamValue::Plain(text)
            };
            child.params.retain(|p| p.name != hp.name);
            let file_token = if holds_token {
                lookup.minted.borrow().as_ref().map(|(_, t)| t.id)
            } else {
                None
            };
            child.params.push(RunParam {
                name: hp.name.clone(),
                value,
                literal: true,
                file_token,
            });
        }
        let minted = lookup.minted.borrow_mut().take();
        Ok((child, target.schedule.overlap, minted))
    }

    /// Admission for each started run: claimed at once when a slot is free, queued
    /// otherwise, refused ("target busy") under overlap `skip` with a run active.
    pub(super) fn admit(&self, planned: &mut PlannedHops) {
        let now = self.clock.now();
        let mut adm = self.admission();
        let mut kept = Vec::new();
        let mut kept_admitted = Vec::new();
        for (mut child, (overlap, _, chain)) in std::mem::take(&mut planned.hops.started)
            .into_iter()
            .zip(std::mem::take(&mut planned.admitted))
        {
            match adm.admit_new(&child.env, child.schedule_id, overlap) {
                None => {
                    let message = "target busy: its schedule has an active run (overlap: skip)";
                    // `plan_one` audited this hop as started (and its token as minted);
                    // neither happens, so the audit says it was refused instead.
                    let dropped: Vec<String> = planned
                        .hops
                        .tokens
                        .iter()
                        .filter(|(_, t)| t.run_id == child.id)
                        .map(|(_, t)| format!("token {} ", t.id))
                        .collect();
                    planned.hops.tokens.retain(|(_, t)| t.run_id != child.id);
                    let started = format!("started run {}", child.id);
                    planned.hops.audit.retain(|a| {
                        !(a.action == "file_token.mint"
                            && dropped.iter().any(|d| a.detail.starts_with(d.as_str())))
                    });
                    for a in planned.hops.audit.iter_mut() {
                        if a.action == "chain.hop" && a.detail == started {
                            a.action = "chain.refused".into();
                            a.detail = message.into();
                        }
                    }
                    self.metrics.hops_fired.fetch_sub(1, Ordering::Relaxed);
                    self.metrics.hops_refused.fetch_add(1, Ordering::Relaxed);
                    planned.hops.chain_errors.push(ChainError {
                        hop: child.parent_hop.unwrap_or(0),
                        env: child.env.clone(),
                        // The error names its chain like every other chain error.
                        chain,
                        message: message.into(),
                        at: now,
                    });
                }
                Some(claimed) => {
                    let claimed = claimed && !self.stopping.is_cancelled();
                    if claimed {
                        child.state = RunState::Running;
                        child.attempts = 1;
                        child.started_at = Some(now);
                        child.epoch = self.store.epoch();
                    }
                    kept.push(child);
                    kept_admitted.push((overlap, claimed, chain));
                }
            }
        }
        planned.hops.started = kept;
        planned.admitted = kept_admitted;
    }

    /// After the commit: claimed runs start, the others wait; a failed commit gives the
    /// admissions back.
    pub(super) fn hops_committed(self: &Arc<Self>, planned: PlannedHops, committed: bool) {
        for (child, (overlap, claimed, _)) in planned.hops.started.into_iter().zip(planned.admitted)
        {
            if !committed {
                self.admission()
                    .forget_new(&child.env, child.schedule_id, claimed);
                continue;
            }
            self.metrics.runs_enqueued.fetch_add(1, Ordering::Relaxed);
            if claimed {
                self.spawn_attempt(child);
            } else {
                self.admission().enqueue(Waiting {
                    run_id: child.id,
                    env: child.env.clone(),
                    schedule_id: child.schedule_id,
                    overlap,
                    not_before: None,
                });
            }
        }
        self.wake.notify_one();
    }
}
