//! Refires and previews: hop `n` of a finished run fired again as its schedule now defines
//! it, and what a chain would start, changing nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

use super::hops::PlannedHops;
use super::Engine;
use crate::chain::spec::Hop;
use crate::domain::run::ChainError;
use crate::domain::{Origin, ParamValue, Run, TASK_CHAIN_PARAM};

impl Engine {
    /// Hop `n` of `run`'s schedule as it is now, if a refire can apply to it: the schedule
    /// and its hop exist, and the hop's `when` matches the run's final state. `Err` says why
    /// not (the caller's mistake, not a hop refusal: nothing is recorded on the run).
    fn refire_target(&self, run: &Run, n: usize) -> Result<Hop, String> {
        let schedule = self
            .store
            .schedule(run.schedule_id)
            .map_err(|e| e.to_string())?
            .ok_or("the run's schedule was deleted")?;
        let text = schedule
            .param(TASK_CHAIN_PARAM)
            .and_then(|p| match &p.value {
                ParamValue::Plain(t) => Some(t.clone()),
                ParamValue::Sealed(_) => None,
            });
        let spec = Self::chain_of(text.as_deref())?
            .ok_or("the schedule no longer has an async-TaskChain")?;
        let hop = spec
            .hops
            .into_iter()
            .nth(n)
            .ok_or_else(|| format!("the schedule's async-TaskChain has no hop {n}"))?;
        if !hop.when.matches(run.state) {
            return Err(format!(
                "hop {n} fires when the run ends {}; this run is {}",
                hop.when.as_str(),
                run.state.as_str()
            ));
        }
        Ok(hop)
    }

    /// Plans `hop` (hop `n` of `run`) again. `Err` is the chain error to record.
    fn plan_refire(&self, run: &Run, n: usize, hop: &Hop) -> Result<PlannedHops, ChainError> {
        let mut planned = PlannedHops::default();
        self.plan_one(run, &run.outputs, n, hop, &mut planned);
        if let Some(e) = planned.hops.chain_errors.first() {
            return Err(e.clone());
        }
        // A run a refire starts says so (design §9: origin `refire`); `plan_one` builds
        // every hop run as origin `chain`.
        for child in &mut planned.hops.started {
            child.origin = Origin::Refire;
        }
        self.admit(&mut planned);
        if let Some(e) = planned.hops.chain_errors.first() {
            return Err(e.clone());
        }
        Ok(planned)
    }
}

/// What a refire came to.
#[derive(Debug)]
pub enum Refired {
    Started(Uuid),
    /// Still refused; the reason is recorded on the run.
    Refused(String),
    /// No such hop to refire, or its `when` does not match the run; nothing recorded.
    NotApplicable(String),
}

impl Engine {
    /// Fires hop `n` of a finished run again, as its schedule now defines it.
    pub async fn refire(
        self: &Arc<Self>,
        run: &Run,
        n: usize,
    ) -> Result<Refired, super::EngineError> {
        if !run.state.is_final() {
            return Err(super::EngineError::WrongState(run.state.as_str()));
        }
        // A hop that already started a run answers 409 before anything is re-checked.
        for child in &run.children {
            if self
                .store
                .run(child.id)?
                .is_some_and(|c| c.parent_hop == Some(n as u32))
            {
                return Err(crate::store::StoreError::Conflict(format!(
                    "hop {n} already started run {}",
                    child.id
                ))
                .into());
            }
        }
        let hop = match self.refire_target(run, n) {
            Ok(hop) => hop,
            Err(message) => return Ok(Refired::NotApplicable(message)),
        };
        match self.plan_refire(run, n, &hop) {
            Ok(planned) => {
                let child = planned.hops.started.first().map(|c| c.id);
                let op = crate::store::RunOp::Refire {
                    source_id: run.id,
                    hop: n as u32,
                    hops: Box::new(planned.hops.clone()),
                };
                let result = self.committer.submit(op).await;
                self.hops_committed(planned, result.is_ok());
                result?;
                Ok(Refired::Started(child.unwrap_or_default()))
            }
            Err(error) => {
                let message = error.message.clone();
                self.committer
                    .submit(crate::store::RunOp::RecordChainError {
                        run_id: run.id,
                        error,
                    })
                    .await?;
                self.metrics
                    .hops_refused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(Refired::Refused(message))
            }
        }
    }
}

/// One parameter a previewed hop would deliver: `None` when sealed (masked).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PreviewParam {
    pub name: String,
    pub value: Option<String>,
    pub encrypt: bool,
}

impl Engine {
    /// What hop `i` would start from `run`, changing nothing: no token is stored, no run
    /// is committed. Secrets and tokens are masked.
    pub fn preview_hop(
        &self,
        run: &Run,
        outputs: &BTreeMap<String, String>,
        i: usize,
        hop: &Hop,
    ) -> Result<Vec<PreviewParam>, String> {
        let child = self.build_hop_run(run, outputs, i, hop, true)?.run;
        Ok(hop
            .params
            .iter()
            .filter_map(|hp| child.params.iter().find(|p| p.name == hp.name))
            .map(|p| match &p.value {
                ParamValue::Plain(v) => PreviewParam {
                    name: p.name.clone(),
                    value: Some(v.clone()),
                    encrypt: false,
                },
                ParamValue::Sealed(_) => PreviewParam {
                    name: p.name.clone(),
                    value: None,
                    encrypt: true,
                },
            })
            .collect())
    }
}
