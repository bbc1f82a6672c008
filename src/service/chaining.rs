//! The `async-TaskChain` parameter when a schedule is saved, chain previews, and refires.

use uuid::Uuid;

use super::chains::{stored_spec, ChainPreview, PreviewHop};
use super::{Service, ServiceError};
use crate::chain::plan::{self, Overlay, SourceFacts};
use crate::chain::spec::{self, ChainSpec, Hop, HopValue};
use crate::crypto::Place;
use crate::domain::{FieldProblem, Problems, Role, Schedule, User, TASK_CHAIN_PARAM};
use crate::engine::Refired;

impl Service {
    /// The `async-TaskChain` value of a schedule being saved: parsed, kept values matched with
    /// what is stored (by hop index, its target and the parameter's name), every rule
    /// checked, then every value marked `encrypt` sealed. Returns the stored text, or every
    /// problem with its path, line and column.
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
        take_kept_values(&mut parsed, stored.as_ref(), &prefix, &mut p);
        // Checked while the values are still readable: their dynamic values are checked
        // like any other's.
        let facts = SourceFacts::of(schedule, &self.kinds);
        let env = &schedule.env;
        match plan::check_at_save(&self.store, &self.kinds, env, &facts, &parsed, &prefix) {
            Ok(found) => p.extend(found),
            Err(e) => p.push(prefix.clone(), e.to_string()),
        }
        p.into_result()?;
        if let Err(e) = self.seal_encrypted(schedule, &mut parsed) {
            let mut sealing = Problems::new();
            sealing.push(prefix, e);
            return Err(sealing);
        }
        Ok(parsed.to_stored())
    }

    /// Seals every value marked `encrypt` for the schedule's place, as written: dynamic
    /// values in it (and `@@`) are resolved when the hop fires, after it is opened. Nothing
    /// of a secret is left readable in the stored text.
    fn seal_encrypted(&self, schedule: &Schedule, parsed: &mut ChainSpec) -> Result<(), String> {
        for (i, hop) in parsed.hops.iter_mut().enumerate() {
            for hp in hop.params.iter_mut().filter(|hp| hp.encrypt) {
                let HopValue::Text(t) = &hp.value else {
                    continue;
                };
                let name = spec::sealed_literal_name(i, &hp.name);
                let place = Place {
                    env: &schedule.env,
                    record: crate::crypto::schedule_record(schedule.id),
                    name: &name,
                };
                let sealed = self.keyring.seal(&place, t).map_err(|e| e.to_string())?;
                hp.value = HopValue::Sealed(sealed);
            }
        }
        Ok(())
    }

    /// Refuses a schedule save that closes a chain cycle.
    pub(super) fn refuse_schedule_cycle(
        &self,
        caller: &User,
        schedule: &Schedule,
    ) -> Result<(), ServiceError> {
        // Without an async-TaskChain a schedule has no edge out, so it is on no cycle: skip
        // reading every schedule (saves stay fast with thousands of them).
        let Some(index) = schedule
            .params
            .iter()
            .position(|p| p.name == TASK_CHAIN_PARAM)
        else {
            return Ok(());
        };
        self.refuse_cycle(
            caller,
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
                        let kept = kept_hop(stored.as_ref(), i, hop);
                        for hp in hop
                            .params
                            .iter_mut()
                            .filter(|hp| hp.value == HopValue::Keep)
                        {
                            if let Some(v) = kept_value(kept, &hp.name) {
                                hp.value = v;
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
        let source = self.preview_source(&schedule, &caller.username)?;
        Ok(self.preview_hops(env, &source, &parsed))
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
        // The form's chain, as it would be saved, resolves against the schedule's last run.
        let source = self.preview_source(&schedule, &caller.username)?;
        Ok(self.preview_hops(env, &source, &parsed))
    }

    /// The newest run of a schedule.
    pub fn last_run(
        &self,
        env: &str,
        schedule: Uuid,
    ) -> Result<Option<crate::domain::Run>, ServiceError> {
        let filter = crate::store::RunFilter {
            schedule: Some(schedule),
            limit: 1,
            ..Default::default()
        };
        Ok(self.store.page_runs(env, &filter)?.into_iter().next())
    }

    /// What a preview resolves against: the schedule's last run, or a stand-in.
    fn preview_source(
        &self,
        schedule: &Schedule,
        user: &str,
    ) -> Result<crate::domain::Run, ServiceError> {
        match self.last_run(&schedule.env, schedule.id)? {
            Some(r) => Ok(r),
            None => self.placeholder_run(schedule, user),
        }
    }

    /// Each hop as it would start from `source`, or its error; nothing is committed.
    fn preview_hops(
        &self,
        env: &str,
        source: &crate::domain::Run,
        parsed: &spec::ChainSpec,
    ) -> ChainPreview {
        let mut preview = ChainPreview {
            hops: Vec::new(),
            errors: Vec::new(),
        };
        for (i, hop) in parsed.hops.iter().enumerate() {
            match self.engine.preview_hop(source, &source.outputs, i, hop) {
                Ok(params) => preview.hops.push(PreviewHop {
                    env: hop.customer_id.clone().unwrap_or_else(|| env.to_string()),
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
        preview
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
            Refired::NotApplicable(m) => format!("hop {n} cannot be refired: {m}"),
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
            Refired::Refused(m) | Refired::NotApplicable(m) => {
                Err(ServiceError::invalid(format!("hops[{n}]"), m))
            }
        }
    }
}

/// Stored hop `i`, when the hop now at `i` still points where it did: same place in the
/// list, same target. A hop moved or pointed elsewhere must be given its secrets again, or
/// a secret meant for one environment would go to another.
fn kept_hop<'a>(stored: Option<&'a ChainSpec>, i: usize, hop: &Hop) -> Option<&'a Hop> {
    stored?
        .hops
        .get(i)
        .filter(|h| h.customer_id == hop.customer_id && h.name == hop.name)
}

/// The value a kept hop stores for parameter `name`.
fn kept_value(kept: Option<&Hop>, name: &str) -> Option<HopValue> {
    kept?
        .params
        .iter()
        .find(|x| x.name == name)
        .map(|x| x.value.clone())
}

/// Replaces each `"value": null` with the sealed value stored for it; one with nothing to
/// keep is a problem.
fn take_kept_values(
    parsed: &mut ChainSpec,
    stored: Option<&ChainSpec>,
    prefix: &str,
    p: &mut Problems,
) {
    for (i, hop) in parsed.hops.iter_mut().enumerate() {
        let kept = kept_hop(stored, i, hop);
        for hp in hop
            .params
            .iter_mut()
            .filter(|hp| hp.value == HopValue::Keep)
        {
            match kept_value(kept, &hp.name) {
                Some(v @ HopValue::Sealed(_)) => hp.value = v,
                _ => p.0.push(FieldProblem {
                    field: format!("{prefix}.{}.value", hp.field),
                    message: "no stored value to keep: give a value".into(),
                    line: Some(hp.line),
                    column: Some(hp.column),
                }),
            }
        }
    }
}
