//! Use cases and their permission checks. The JSON API and the pages both call these; none
//! of them trusts its caller to have checked anything.

mod accounts;
mod bootstrap;
mod chaining;
mod chains;
mod environments;
mod error;
mod files;
mod keys;
mod runs;
mod schedule_build;
mod schedule_input;
mod schedules;
mod sessions;
mod users;
pub mod views;

use std::sync::Arc;

pub use accounts::{PasswordChange, TokenRequest};
pub use bootstrap::{open_baton, Baton, Config, FirstStart};
pub use chains::{ChainInput, ChainPreview, ChainView, SharedChain};
pub use environments::EnvironmentInput;
pub use error::{blocking, ServiceError};
pub use files::{Download, FileTokenView};
pub use keys::rotate_keys;
pub use runs::{parse_states, RunNowInput, MAX_PAGE};
pub use schedule_input::{ParamInput, RetryInput, ScheduleInput};
pub use users::UserInput;

use crate::crypto::Keyring;
use crate::domain::{AuditEntry, Clock, Environment, Role, User};
use crate::engine::scheduler::Scheduler;
use crate::engine::Engine;
use crate::store::Store;
use crate::tasks::Kinds;

pub struct Service {
    pub store: Arc<Store>,
    pub engine: Arc<Engine>,
    pub scheduler: Arc<Scheduler>,
    pub keyring: Arc<Keyring>,
    pub kinds: Arc<Kinds>,
    pub clock: Arc<dyn Clock>,
    pub throttle: sessions::Throttle,
    /// Held from a save's cycle check to its write, for every save that can change the
    /// chain graph (schedules, chains, grants): two saves that each close half of a cycle
    /// cannot both pass their check.
    pub graph_saves: std::sync::Mutex<()>,
}

impl Service {
    /// Serialises saves that can change the chain graph (see [`Service::graph_saves`]).
    fn graph_save(&self) -> std::sync::MutexGuard<'_, ()> {
        self.graph_saves.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The environment, if `caller` holds at least `role` in it. No role at all (or no such
    /// environment) reads as "not found", so one cannot probe another tenant's names.
    pub fn require(
        &self,
        caller: &User,
        env: &str,
        role: Role,
    ) -> Result<Environment, ServiceError> {
        let not_found = || ServiceError::NotFound(format!("environment {env:?}"));
        let held = caller.role_in(env).ok_or_else(not_found)?;
        let environment = self.store.environment(env)?.ok_or_else(not_found)?;
        if held < role {
            return Err(ServiceError::Forbidden(format!(
                "this needs the {} role in {env}; you have {}",
                role.as_str(),
                held.as_str()
            )));
        }
        Ok(environment)
    }

    pub fn require_admin(&self, caller: &User) -> Result<(), ServiceError> {
        if caller.admin {
            Ok(())
        } else {
            Err(ServiceError::Forbidden("this needs an admin".into()))
        }
    }

    pub fn audit_entry(
        &self,
        actor: &str,
        action: &str,
        env: Option<&str>,
        target: Option<String>,
        detail: impl Into<String>,
    ) -> AuditEntry {
        AuditEntry {
            id: uuid::Uuid::now_v7(),
            at: self.clock.now(),
            actor: actor.to_string(),
            action: action.to_string(),
            env: env.map(str::to_string),
            target,
            detail: detail.into(),
        }
    }
}
