//! Schedules: create, replace, delete, read; trigger previews and the kinds list.

use uuid::Uuid;

use super::schedule_build::parse_trigger;
use super::schedule_input::ScheduleInput;
use super::views::ScheduleView;
use super::{Service, ServiceError};
use crate::domain::trigger::Trigger;
use crate::domain::{Problems, Role, Schedule, User};

impl Service {
    pub fn list_schedules(
        &self,
        caller: &User,
        env: &str,
    ) -> Result<Vec<ScheduleView>, ServiceError> {
        let e = self.require(caller, env, Role::Viewer)?;
        let sees_chain = caller.role_in(&e.id) >= Some(Role::Integration);
        Ok(self
            .store
            .schedules_of(env)?
            .iter()
            .map(|s| ScheduleView::new(s, sees_chain))
            .collect())
    }

    /// A schedule of `env`, or 404 (also for another environment's id).
    pub fn schedule_in(&self, env: &str, id: Uuid) -> Result<Schedule, ServiceError> {
        match self.store.schedule(id)? {
            Some(s) if s.env == env => Ok(s),
            _ => Err(ServiceError::NotFound(format!("schedule {id}"))),
        }
    }

    pub fn get_schedule(
        &self,
        caller: &User,
        env: &str,
        id: Uuid,
    ) -> Result<ScheduleView, ServiceError> {
        self.require(caller, env, Role::Viewer)?;
        let s = self.schedule_in(env, id)?;
        Ok(ScheduleView::new(
            &s,
            caller.role_in(env) >= Some(Role::Integration),
        ))
    }

    pub fn create_schedule(
        &self,
        caller: &User,
        env: &str,
        input: ScheduleInput,
    ) -> Result<ScheduleView, ServiceError> {
        let e = self.require(caller, env, Role::Operator)?;
        let _graph = self.graph_save();
        let schedule = self.build_schedule(caller, &e, Uuid::now_v7(), input, None)?;
        let audit = self.audit_entry(
            &caller.username,
            "schedule.create",
            Some(env),
            Some(schedule.id.to_string()),
            schedule.name.clone(),
        );
        self.store.put_schedule(&schedule, &audit)?;
        self.scheduler.update(schedule.id, schedule.next_fire_at);
        Ok(ScheduleView::new(
            &schedule,
            caller.role_in(env) >= Some(Role::Integration),
        ))
    }

    pub fn replace_schedule(
        &self,
        caller: &User,
        env: &str,
        id: Uuid,
        input: ScheduleInput,
    ) -> Result<ScheduleView, ServiceError> {
        let e = self.require(caller, env, Role::Operator)?;
        let _graph = self.graph_save();
        let old = self.schedule_in(env, id)?;
        let schedule = self.build_schedule(caller, &e, id, input, Some(&old))?;
        let audit = self.audit_entry(
            &caller.username,
            "schedule.update",
            Some(env),
            Some(id.to_string()),
            schedule.name.clone(),
        );
        self.store.put_schedule(&schedule, &audit)?;
        self.scheduler.update(schedule.id, schedule.next_fire_at);
        Ok(ScheduleView::new(
            &schedule,
            caller.role_in(env) >= Some(Role::Integration),
        ))
    }

    pub fn delete_schedule(&self, caller: &User, env: &str, id: Uuid) -> Result<(), ServiceError> {
        self.require(caller, env, Role::Operator)?;
        let s = self.schedule_in(env, id)?;
        let templates: Vec<_> = self
            .store
            .all_chains()?
            .into_iter()
            .filter(|c| c.schedule_id == id)
            .collect();
        if !templates.is_empty() {
            let details = templates
                .iter()
                .map(|c| crate::domain::FieldProblem {
                    field: format!("chains/{}", c.name),
                    message: format!("chain {:?} points at this schedule", c.name),
                    line: None,
                    column: None,
                })
                .collect();
            return Err(ServiceError::Conflict {
                message: "a chain points at this schedule: delete or repoint the chain first"
                    .into(),
                details,
            });
        }
        let audit = self.audit_entry(
            &caller.username,
            "schedule.delete",
            Some(env),
            Some(id.to_string()),
            s.name,
        );
        self.store.delete_schedule(id, &audit)?;
        self.scheduler.update(id, None);
        Ok(())
    }

    pub fn trigger_preview(
        &self,
        trigger: Option<serde_json::Value>,
    ) -> Result<(String, Vec<String>), ServiceError> {
        let mut p = Problems::new();
        let t = parse_trigger(trigger, &mut p);
        if let Some(t) = &t {
            t.validate("trigger", &mut p);
        }
        p.into_result()?;
        let t = t.unwrap_or(Trigger::Manual);
        let next = t
            .upcoming(self.clock.now(), "UTC", 5)
            .into_iter()
            .map(crate::domain::format_time)
            .collect();
        Ok((t.describe(), next))
    }
}
