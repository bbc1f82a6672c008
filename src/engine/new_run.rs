//! A new run of a schedule: its own copy of the schedule's parameters and limits, and its
//! place in a chain's lineage.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Engine, EngineError};
use crate::crypto::Place;
use crate::domain::run::RunParam;
use crate::domain::{Origin, ParamValue, Run, RunState, Schedule};

impl Engine {
    /// A new run of `schedule`: its own copy of the parameters (secrets re-sealed for the
    /// run's place), the schedule's limits, and its lineage. Callers add the values given
    /// for this run (run-now, a hop) afterwards, sealed for the run's id.
    pub fn new_run(
        &self,
        schedule: &Schedule,
        origin: Origin,
        acting_user: &str,
        due_at: Option<DateTime<Utc>>,
        parent: Option<&Run>,
    ) -> Result<Run, EngineError> {
        let id = Uuid::now_v7();
        let params = self.params_for_run(schedule, id)?;
        let (root, depth) = match parent {
            Some(p) => (Some(p.root()), p.depth + 1),
            None => (None, 0),
        };
        Ok(Run {
            id,
            env: schedule.env.clone(),
            schedule_id: schedule.id,
            kind: schedule.kind.clone(),
            state: RunState::Queued,
            origin,
            due_at,
            attempts: 0,
            retry: schedule.retry,
            timeout_seconds: schedule.timeout_seconds,
            queued_at: self.clock.now(),
            started_at: None,
            finished_at: None,
            not_before: None,
            acting_user: acting_user.to_string(),
            params,
            outputs: Default::default(),
            error: None,
            root,
            parent: parent.map(Run::as_ref),
            parent_hop: None,
            depth,
            children: Vec::new(),
            chain_errors: Vec::new(),
            epoch: 0,
        })
    }

    /// The schedule's parameters as run `id` holds them: a sealed value is opened from the
    /// schedule's place and sealed again for the run's, so neither can be moved to the other.
    fn params_for_run(&self, schedule: &Schedule, id: Uuid) -> Result<Vec<RunParam>, EngineError> {
        let schedule_record = crate::crypto::schedule_record(schedule.id);
        let run_record = crate::crypto::run_record(id);
        let mut params = Vec::with_capacity(schedule.params.len());
        for p in &schedule.params {
            let value = match &p.value {
                ParamValue::Plain(v) => ParamValue::Plain(v.clone()),
                ParamValue::Sealed(s) => {
                    let from = Place {
                        env: &schedule.env,
                        record: schedule_record.clone(),
                        name: &p.name,
                    };
                    let plain = self.keyring.open(&from, s)?;
                    let to = Place {
                        env: &schedule.env,
                        record: run_record.clone(),
                        name: &p.name,
                    };
                    ParamValue::Sealed(self.keyring.seal(&to, &plain)?)
                }
            };
            params.push(RunParam {
                name: p.name.clone(),
                value,
                literal: false,
                file_token: None,
            });
        }
        Ok(params)
    }
}
