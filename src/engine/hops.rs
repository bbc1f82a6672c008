//! Chain hops at fire time: when a run ends, its `async-TaskChain` is checked again against
//! the store as it is now, and each hop whose `when` matches becomes a started run (or a
//! recorded chain error). The caller commits them with the run's final state.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use uuid::Uuid;

use super::hop_run::HopRun;
use super::{Engine, Waiting};
use crate::chain::spec::{self, ChainSpec, Hop};
use crate::crypto::token_hash;
use crate::domain::run::ChainError;
use crate::domain::{Overlap, ParamValue, Run, RunState, TASK_CHAIN_PARAM};
use crate::store::Hops;

/// Hops planned for one commit, with what admission decided for each started run.
#[derive(Default)]
pub struct PlannedHops {
    pub hops: Hops,
    /// Per started run: its schedule's overlap, whether it was claimed at once, and the
    /// chain's name (for a "target busy" refusal at admission).
    admitted: Vec<(Overlap, bool, String)>,
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
            Ok(HopRun {
                run: child,
                overlap,
                token,
            }) => {
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

    /// After the commit: the hops are counted, claimed runs start, the others wait; a
    /// failed commit fired and refused nothing, and gives the admissions back.
    pub(super) fn hops_committed(self: &Arc<Self>, planned: PlannedHops, committed: bool) {
        if committed {
            let (fired, refused) = (planned.hops.started.len(), planned.hops.chain_errors.len());
            self.metrics
                .hops_fired
                .fetch_add(fired as u64, Ordering::Relaxed);
            self.metrics
                .hops_refused
                .fetch_add(refused as u64, Ordering::Relaxed);
        }
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
