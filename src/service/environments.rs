//! Environments: listing the ones a user may see, and creating and changing them (admins).

use serde::Deserialize;

use super::{Service, ServiceError};
use crate::domain::environment::{is_known_time_zone, is_valid_env_id};
use crate::domain::{Environment, Problems, User};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentInput {
    pub id: Option<String>,
    pub name: Option<String>,
    pub time_zone: Option<String>,
    #[serde(default, deserialize_with = "super::schedule_input::explicit_null")]
    pub max_concurrent_runs: Option<Option<u32>>,
    /// Read-only; accepted so GET → PUT round-trips.
    #[serde(default)]
    pub created_at: Option<serde_json::Value>,
}

impl Service {
    pub fn environments_for(&self, caller: &User) -> Result<Vec<Environment>, ServiceError> {
        Ok(self
            .store
            .environments()?
            .into_iter()
            .filter(|e| caller.role_in(&e.id).is_some())
            .collect())
    }

    pub fn environment(&self, caller: &User, id: &str) -> Result<Environment, ServiceError> {
        self.require_admin(caller)?;
        self.store
            .environment(id)?
            .ok_or_else(|| ServiceError::NotFound(format!("environment {id:?}")))
    }

    pub fn create_environment(
        &self,
        caller: &User,
        input: EnvironmentInput,
    ) -> Result<Environment, ServiceError> {
        self.require_admin(caller)?;
        let env = self.environment_from(input, None)?;
        let key = self.keyring.new_data_key(&env.id);
        let audit = self.audit_entry(
            &caller.username,
            "environment.create",
            Some(&env.id),
            Some(env.id.clone()),
            "",
        );
        self.store.create_environment(&env, &key, &audit)?;
        self.engine.set_environment(&env);
        Ok(env)
    }

    pub fn update_environment(
        &self,
        caller: &User,
        id: &str,
        input: EnvironmentInput,
    ) -> Result<Environment, ServiceError> {
        self.require_admin(caller)?;
        let old = self
            .store
            .environment(id)?
            .ok_or_else(|| ServiceError::NotFound(format!("environment {id:?}")))?;
        if input.id.as_deref().is_some_and(|i| i != id) {
            return Err(ServiceError::invalid(
                "id",
                "an environment's id cannot change",
            ));
        }
        let env = self.environment_from(
            EnvironmentInput {
                id: Some(id.to_string()),
                ..input
            },
            Some(&old),
        )?;
        let audit = self.audit_entry(
            &caller.username,
            "environment.update",
            Some(id),
            Some(id.to_string()),
            "",
        );
        self.store.update_environment(&env, &audit)?;
        self.engine.set_environment(&env);
        Ok(env)
    }

    fn environment_from(
        &self,
        input: EnvironmentInput,
        old: Option<&Environment>,
    ) -> Result<Environment, ServiceError> {
        let mut p = Problems::new();
        let id = input.id.unwrap_or_default();
        if id.is_empty() {
            p.push("id", "required");
        } else if !is_valid_env_id(&id) {
            p.push("id", "an environment id is a lowercase letter, then up to 31 lowercase letters, digits or -");
        }
        let time_zone = input.time_zone.unwrap_or_else(|| "UTC".into());
        if !is_known_time_zone(&time_zone) {
            p.push(
                "time_zone",
                format!("unknown time zone {time_zone:?} (use an IANA name such as Europe/Paris)"),
            );
        }
        let max = input.max_concurrent_runs.unwrap_or(None);
        if max == Some(0) {
            p.push(
                "max_concurrent_runs",
                "at least 1, or null for the global limit only",
            );
        }
        p.into_result()?;
        Ok(Environment {
            name: input
                .name
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| id.clone()),
            id,
            time_zone,
            max_concurrent_runs: max,
            created_at: old.map_or_else(|| self.clock.now(), |o| o.created_at),
        })
    }
}
