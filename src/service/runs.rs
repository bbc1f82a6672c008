//! Runs: run now (with an `Idempotency-Key`), history, one run, its log, cancel and retry.

use serde::Deserialize;
use sha2::Digest;
use uuid::Uuid;

use super::views::RunView;
use super::{blocking, Service, ServiceError};
use crate::crypto::{token_hash, Place};
use crate::domain::run::RunParam;
use crate::domain::FileToken;
use crate::domain::{
    LogLine, Origin, ParamValue, Problems, Role, Run, RunState, Schedule, User, TASK_CHAIN_PARAM,
};
use crate::engine::Submit;
use crate::store::{IdempotencyKey, RunFilter};
use crate::tasks::KindSpec;

/// The most runs or audit entries one page holds.
pub const MAX_PAGE: usize = 500;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunNowInput {
    #[serde(default)]
    pub params: Vec<RunNowParam>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunNowParam {
    pub name: String,
    #[serde(deserialize_with = "super::schedule_input::scalar_text")]
    pub value: Option<String>,
    #[serde(default)]
    pub encrypt: bool,
}

/// An `Idempotency-Key` used with another body is the caller's mistake (422 at that
/// header); other store errors stay what they are.
fn idempotency_error(e: crate::store::StoreError) -> ServiceError {
    match e {
        crate::store::StoreError::Conflict(msg) if msg.contains("Idempotency-Key") => {
            ServiceError::invalid("Idempotency-Key", msg)
        }
        other => other.into(),
    }
}

/// A value given for one run-now: (name, value, sealed?).
type Override = (String, String, bool);

/// Checks the values given for a run-now against the schedule: every problem at once, each
/// at its field. A value is sealed when asked, when the kind declares it secret, or when the
/// schedule holds it sealed.
fn run_now_overrides(
    schedule: &Schedule,
    spec: Option<&'static KindSpec>,
    params: Vec<RunNowParam>,
) -> Result<Vec<Override>, ServiceError> {
    let mut p = Problems::new();
    let mut overrides: Vec<Override> = Vec::new();
    for (i, param) in params.into_iter().enumerate() {
        let field = format!("params[{i}]");
        let declared = spec.and_then(|s| s.param(&param.name));
        let stored = schedule.param(&param.name);
        let refused = if param.name == TASK_CHAIN_PARAM {
            Some(format!("{TASK_CHAIN_PARAM} cannot be set when running"))
        } else if stored.is_none() && declared.is_none() {
            Some(format!("the schedule has no parameter {:?}", param.name))
        } else if stored.is_some_and(|s| s.locked) {
            Some(format!("parameter {:?} is locked", param.name))
        } else if overrides.iter().any(|(n, _, _)| n == &param.name) {
            Some(format!("duplicate parameter {:?}", param.name))
        } else {
            None
        };
        if let Some(message) = refused {
            p.push(format!("{field}.name"), message);
            continue;
        }
        match param.value {
            None => p.push(format!("{field}.value"), "a value is required"),
            Some(v) => {
                let secret = param.encrypt
                    || declared.is_some_and(|d| d.secret)
                    || stored.is_some_and(|s| s.value.is_sealed());
                overrides.push((param.name, v, secret));
            }
        }
    }
    p.into_result()?;
    Ok(overrides)
}

impl Service {
    /// Starts a run of a schedule by hand. `body` is the raw request body, hashed for the
    /// `Idempotency-Key` check.
    pub async fn run_now(
        &self,
        caller: &User,
        env: &str,
        id: Uuid,
        input: RunNowInput,
        body: &[u8],
        idempotency_key: Option<String>,
    ) -> Result<Uuid, ServiceError> {
        self.require(caller, env, Role::Operator)?;
        let schedule = self.schedule_in(env, id)?;
        let spec = self.kinds.get(&schedule.kind).map(|k| k.spec());
        let overrides = run_now_overrides(&schedule, spec, input.params)?;
        let idempotency = idempotency_key.map(|key| IdempotencyKey {
            key,
            body_hash: hex::encode(sha2::Sha256::digest(body)),
        });
        // A replay answers with its first run even while that run is active (overlap
        // `skip` would otherwise refuse it before the key is looked at).
        if let Some(idem) = &idempotency {
            let replay = self
                .store
                .idempotent_replay(id, idem, self.clock.now())
                .map_err(idempotency_error)?;
            if let Some(first) = replay {
                return Ok(first);
            }
        }
        let mut run =
            self.engine
                .new_run(&schedule, Origin::Manual, &caller.username, None, None)?;
        for (name, value, secret) in overrides {
            self.set_run_param(&mut run, name, value, secret)?;
        }
        // Audited in the run's own commit (a replay commits nothing, so is not audited).
        let audit = self.audit_entry(
            &caller.username,
            "run.start",
            Some(env),
            Some(run.id.to_string()),
            format!("schedule {id}"),
        );
        let submitted = self
            .engine
            .submit(
                run,
                Submit {
                    overlap: schedule.overlap,
                    idempotency,
                    audit: Some(audit),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| match e {
                crate::engine::EngineError::Store(e) => idempotency_error(e),
                other => other.into(),
            })?;
        Ok(submitted.run_id())
    }

    /// Gives `run` its own value of a parameter, sealed for the run's place when secret.
    fn set_run_param(
        &self,
        run: &mut Run,
        name: String,
        value: String,
        secret: bool,
    ) -> Result<(), ServiceError> {
        let value = if secret {
            let place = Place {
                env: &run.env,
                record: crate::crypto::run_record(run.id),
                name: &name,
            };
            let sealed = self
                .keyring
                .seal(&place, &value)
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
            ParamValue::Sealed(sealed)
        } else {
            ParamValue::Plain(value)
        };
        run.params.retain(|p| p.name != name);
        run.params.push(RunParam {
            name,
            value,
            literal: true,
            file_token: None,
        });
        Ok(())
    }

    /// A run of `env`, or 404 (also for another environment's id).
    pub fn run_in(&self, env: &str, id: Uuid) -> Result<Run, ServiceError> {
        match self.store.run(id)? {
            Some(r) if r.env == env => Ok(r),
            _ => Err(ServiceError::NotFound(format!("run {id}"))),
        }
    }

    pub fn get_run(&self, caller: &User, env: &str, id: Uuid) -> Result<RunView, ServiceError> {
        self.require(caller, env, Role::Viewer)?;
        let run = self.run_in(env, id)?;
        Ok(RunView::new(
            &run,
            caller.role_in(env) >= Some(Role::Integration),
        ))
    }

    pub async fn page_runs(
        &self,
        caller: &User,
        env: &str,
        mut filter: RunFilter,
    ) -> Result<Vec<RunView>, ServiceError> {
        self.require(caller, env, Role::Viewer)?;
        if filter.limit > MAX_PAGE {
            return Err(ServiceError::invalid(
                "limit",
                format!("at most {MAX_PAGE}"),
            ));
        }
        if filter.limit == 0 {
            filter.limit = 50;
        }
        if let Some(s) = filter.schedule {
            self.schedule_in(env, s)?;
        }
        let store = self.store.clone();
        let env_owned = env.to_string();
        let runs = blocking(move || Ok(store.page_runs(&env_owned, &filter)?)).await?;
        let sees_chain = caller.role_in(env) >= Some(Role::Integration);
        Ok(runs.iter().map(|r| RunView::new(r, sees_chain)).collect())
    }

    pub fn run_log(
        &self,
        caller: &User,
        env: &str,
        id: Uuid,
        after: u32,
    ) -> Result<Vec<LogLine>, ServiceError> {
        self.require(caller, env, Role::Viewer)?;
        self.run_in(env, id)?;
        Ok(self.store.run_log(id, after, 10_000)?)
    }

    pub async fn cancel_run(&self, caller: &User, env: &str, id: Uuid) -> Result<(), ServiceError> {
        self.require(caller, env, Role::Operator)?;
        let run = self.run_in(env, id)?;
        if run.state.is_final() {
            return Err(ServiceError::conflict(format!(
                "the run is {} and cannot be cancelled",
                run.state.as_str()
            )));
        }
        self.engine.cancel(&run).await?;
        let audit = self.audit_entry(
            &caller.username,
            "run.cancel",
            Some(env),
            Some(id.to_string()),
            "",
        );
        self.store.append_audit(&audit)?;
        Ok(())
    }

    /// A finished run again: a new run with the same parameters and the same parent.
    pub async fn retry_run(
        &self,
        caller: &User,
        env: &str,
        id: Uuid,
    ) -> Result<Uuid, ServiceError> {
        self.require(caller, env, Role::Operator)?;
        let old = self.run_in(env, id)?;
        if !old.state.is_final() {
            return Err(ServiceError::conflict(format!(
                "the run is {}; only a finished run can be retried",
                old.state.as_str()
            )));
        }
        let schedule = self
            .store
            .schedule(old.schedule_id)?
            .ok_or_else(|| ServiceError::conflict("the run's schedule was deleted"))?;
        let parent = match &old.parent {
            Some(p) => self.store.run(p.id)?,
            None => None,
        };
        let mut run = self.engine.new_run(
            &schedule,
            Origin::Retry,
            &caller.username,
            None,
            parent.as_ref(),
        )?;
        run.acting_user = old.acting_user.clone();
        let (params, tokens) = self.copy_params(&old, run.id)?;
        run.params = params;
        run.parent_hop = old.parent_hop;
        // The retry's fresh file tokens are audited with it, in the same commit.
        let minted: String = tokens
            .iter()
            .map(|(_, t)| {
                format!(
                    "; file token {} for {} v{} minted",
                    t.id, t.file_name, t.file_version
                )
            })
            .collect();
        let audit = self.audit_entry(
            &caller.username,
            "run.retry",
            Some(env),
            Some(run.id.to_string()),
            format!("retry of {id}{minted}"),
        );
        let submitted = self
            .engine
            .submit(
                run,
                Submit {
                    overlap: schedule.overlap,
                    tokens,
                    audit: Some(audit),
                    ..Default::default()
                },
            )
            .await?;
        Ok(submitted.run_id())
    }

    /// Whether a retry may renew `old` (the file token parameter `name` held): not once
    /// its owner revoked it or it expired, or a retry would undo the revocation.
    fn renewable(&self, name: &str, old: &FileToken) -> Result<(), ServiceError> {
        let why = if old.revoked_at.is_some() {
            "was revoked"
        } else if old.expires_at <= self.clock.now() {
            "has expired"
        } else {
            return Ok(());
        };
        Err(ServiceError::conflict(format!(
            "parameter {name:?} held a file token that {why}; a retry cannot renew it (refire the hop from its source run instead)"
        )))
    }

    /// The parameters of `from` for a new run, sealed values re-sealed for its place. A
    /// parameter that held a file token gets a fresh token bound to the new run.
    #[allow(clippy::type_complexity)]
    fn copy_params(
        &self,
        from: &Run,
        to: Uuid,
    ) -> Result<(Vec<RunParam>, Vec<([u8; 32], FileToken)>), ServiceError> {
        let internal = |e: crate::crypto::CryptoError| ServiceError::Internal(e.to_string());
        let mut tokens = Vec::new();
        let mut params = Vec::with_capacity(from.params.len());
        for p in &from.params {
            let dst = Place {
                env: &from.env,
                record: crate::crypto::run_record(to),
                name: &p.name,
            };
            let old_token = match p.file_token {
                Some(id) => self.store.file_token_by_id(id)?,
                None => None,
            };
            let (value, file_token) = match (&p.value, old_token) {
                (ParamValue::Sealed(_), Some(old)) => {
                    self.renewable(&p.name, &old)?;
                    let (text, fresh) = self.engine.fresh_token(&old, to);
                    let sealed = self.keyring.seal(&dst, &text).map_err(internal)?;
                    let id = fresh.id;
                    tokens.push((token_hash(&text), fresh));
                    (ParamValue::Sealed(sealed), Some(id))
                }
                (ParamValue::Plain(v), _) => (ParamValue::Plain(v.clone()), None),
                (ParamValue::Sealed(s), None) => {
                    let src = Place {
                        env: &from.env,
                        record: crate::crypto::run_record(from.id),
                        name: &p.name,
                    };
                    let plain = self.keyring.open(&src, s).map_err(internal)?;
                    (
                        ParamValue::Sealed(self.keyring.seal(&dst, &plain).map_err(internal)?),
                        None,
                    )
                }
            };
            params.push(RunParam {
                name: p.name.clone(),
                value,
                literal: p.literal,
                file_token,
            });
        }
        Ok((params, tokens))
    }
}

/// Parses the `state` filter: a comma list.
pub fn parse_states(text: &str) -> Result<Vec<RunState>, ServiceError> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| RunState::parse(s).ok_or_else(|| ServiceError::invalid("state", format!("unknown state {s:?} (queued, running, succeeded, failed, timed_out, cancelled)"))))
        .collect()
}
