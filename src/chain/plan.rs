//! The rules a hop obeys, checked when a schedule is saved and again when the hop fires
//! (design §2 and the security rules): only a chain of the target environment that is
//! shared with the source, only parameters its template accepts and has not locked, every
//! dynamic value naming something that will exist, secrets staying sealed.

use std::collections::HashMap;

use uuid::Uuid;

use super::dynamic::{tokens, Reference, GLOBAL_NAMES};
use super::graph::ChainGraph;
use super::spec::{self, ChainSpec, Hop, HopValue};
use crate::domain::{Chain, FieldProblem, ParamValue, Problems, Schedule, TASK_CHAIN_PARAM};
use crate::store::{Store, StoreError};
use crate::tasks::{KindSpec, Kinds};

/// "No such chain" and "not shared with this environment" read the same, so one
/// environment cannot probe another's names.
pub const NO_CHAIN: &str = "no chain of that name is available to this environment";

/// A hop's target: the chain and its template schedule.
#[derive(Debug, Clone)]
pub struct Target {
    pub env: String,
    pub chain: Chain,
    pub schedule: Schedule,
}

/// What the source schedule offers a hop's dynamic values.
pub struct SourceFacts<'a> {
    pub kind: Option<&'static KindSpec>,
    /// Parameter name → is it secret (sealed, or declared secret by the kind).
    pub params: HashMap<&'a str, bool>,
}

impl<'a> SourceFacts<'a> {
    pub fn of(schedule: &'a Schedule, kinds: &Kinds) -> Self {
        let kind = kinds.get(&schedule.kind).map(|k| k.spec());
        let params = schedule
            .params
            .iter()
            .filter(|p| p.name != TASK_CHAIN_PARAM)
            .map(|p| {
                let secret = p.value.is_sealed()
                    || kind
                        .and_then(|k| k.param(&p.name))
                        .is_some_and(|d| d.secret);
                (p.name.as_str(), secret)
            })
            .collect();
        Self { kind, params }
    }

    fn output_declared(&self, name: &str) -> bool {
        self.kind.is_some_and(|k| k.outputs.contains(&name))
    }
}

/// Finds a hop's target as the store holds it now.
pub fn target(
    store: &Store,
    source_env: &str,
    hop: &Hop,
) -> Result<Result<Target, String>, StoreError> {
    let env = hop
        .customer_id
        .clone()
        .unwrap_or_else(|| source_env.to_string());
    let Some(chain) = store.chain(&env, &hop.name)? else {
        return Ok(Err(NO_CHAIN.into()));
    };
    if !chain.startable_from(source_env) {
        return Ok(Err(NO_CHAIN.into()));
    }
    match store.schedule(chain.schedule_id)? {
        Some(schedule) if schedule.env == env => Ok(Ok(Target {
            env,
            chain,
            schedule,
        })),
        _ => Ok(Err(format!(
            "chain {:?} points at a schedule that no longer exists",
            hop.name
        ))),
    }
}

/// The parameters a chain may set on its target: any unlocked one the template has or its
/// kind declares, except `async-TaskChain`.
pub fn settable(schedule: &Schedule, kind: Option<&KindSpec>) -> Vec<String> {
    let mut names: Vec<String> = schedule
        .params
        .iter()
        .filter(|p| !p.locked && p.name != TASK_CHAIN_PARAM)
        .map(|p| p.name.clone())
        .collect();
    if let Some(k) = kind {
        for d in k.params {
            if schedule.param(d.name).is_none() {
                names.push(d.name.to_string());
            }
        }
    }
    names
}

pub fn check_settable(target: &Target, kinds: &Kinds, name: &str) -> Result<(), String> {
    if name == TASK_CHAIN_PARAM {
        return Err(format!("{TASK_CHAIN_PARAM} cannot be set by a chain"));
    }
    if target.schedule.param(name).is_some_and(|p| p.locked) {
        return Err(format!("parameter {name:?} is locked on the target"));
    }
    let kind = kinds.get(&target.schedule.kind).map(|k| k.spec());
    if target.schedule.param(name).is_none() && kind.and_then(|k| k.param(name)).is_none() {
        return Err(format!("the target does not accept a parameter {name:?}"));
    }
    Ok(())
}

/// Is a dynamic value's name something the source run will have? `Ok(secret)` on success.
pub fn check_reference(facts: &SourceFacts<'_>, name: &str) -> Result<bool, String> {
    match Reference::parse(name) {
        Reference::Output(o) if facts.output_declared(o) => Ok(false),
        Reference::Output(o) => Err(format!(
            "@Output.{o}@: the source kind declares no output {o}"
        )),
        Reference::Param(p) => facts
            .params
            .get(p)
            .copied()
            .ok_or_else(|| format!("@Param.{p}@: the source has no parameter {p}")),
        Reference::Bare("FileToken") if facts.output_declared("FileName") => Ok(true),
        Reference::Bare("FileToken") => {
            Err("@FileToken@ needs a source that produces a FileName output".into())
        }
        Reference::Bare(n) if facts.output_declared(n) => Ok(false),
        Reference::Bare(n) if facts.params.contains_key(n) => Ok(facts.params[n]),
        Reference::Bare(n) if GLOBAL_NAMES.contains(&n) => Ok(false),
        Reference::Bare(n) => Err(format!(
            "unknown dynamic value @{n}@ (write @@ for a literal @)"
        )),
    }
}

fn problem(
    p: &mut Problems,
    prefix: &str,
    field: &str,
    line: u32,
    column: u32,
    message: impl Into<String>,
) {
    p.0.push(FieldProblem {
        field: format!("{prefix}.{field}"),
        message: message.into(),
        line: Some(line),
        column: Some(column),
    });
}

/// Every save-time problem of `spec` for a source schedule in `source_env`. `prefix` is the
/// parameter's path (`params[3]`).
pub fn check_at_save(
    store: &Store,
    kinds: &Kinds,
    source_env: &str,
    facts: &SourceFacts<'_>,
    spec: &ChainSpec,
    prefix: &str,
) -> Result<Problems, StoreError> {
    let mut p = Problems::new();
    for hop in &spec.hops {
        let target = match target(store, source_env, hop)? {
            Ok(t) => Some(t),
            Err(msg) => {
                problem(
                    &mut p,
                    prefix,
                    &format!("{}.name", hop.field),
                    hop.line,
                    hop.column,
                    msg,
                );
                None
            }
        };
        for hp in &hop.params {
            if let Some(t) = &target {
                if let Err(msg) = check_settable(t, kinds, &hp.name) {
                    problem(
                        &mut p,
                        prefix,
                        &format!("{}.name", hp.field),
                        hp.line,
                        hp.column,
                        msg,
                    );
                }
            }
            if let HopValue::Text(text) = &hp.value {
                for (name, col) in tokens(text) {
                    match check_reference(facts, name) {
                        Ok(secret) if secret && !hp.encrypt && name != "FileToken" => problem(
                            &mut p,
                            prefix,
                            &format!("{}.value", hp.field),
                            hp.line,
                            hp.column + col,
                            format!("@{name}@ is encrypted at its source, so this value needs \"encrypt\": true"),
                        ),
                        Ok(_) => {}
                        Err(msg) => problem(&mut p, prefix, &format!("{}.value", hp.field), hp.line, hp.column + col, msg),
                    }
                }
            }
        }
    }
    Ok(p)
}

/// The schedules each hop of a stored chain text points at (edges of the chain graph).
fn targets_of(
    store: &Store,
    schedule: &Schedule,
    chains: &HashMap<(String, String), Chain>,
) -> Vec<Uuid> {
    let Some(ParamValue::Plain(text)) = schedule.param(TASK_CHAIN_PARAM).map(|p| &p.value) else {
        return Vec::new();
    };
    let Ok(parsed) = spec::parse(text, spec::Origin::Stored) else {
        return Vec::new();
    };
    let _ = store;
    parsed
        .hops
        .iter()
        .filter_map(|h| {
            let env = h
                .customer_id
                .clone()
                .unwrap_or_else(|| schedule.env.clone());
            chains
                .get(&(env, h.name.clone()))
                .filter(|c| c.startable_from(&schedule.env))
                .map(|c| c.schedule_id)
        })
        .collect()
}

/// What a save is about to change, laid over the stored graph.
#[derive(Default)]
pub struct Overlay<'a> {
    pub schedule: Option<&'a Schedule>,
    /// A chain as it will be, and the name it had (a rename or an edit).
    pub chain: Option<(&'a Chain, Option<&'a str>)>,
}

/// A schedule on a chain cycle: its environment (to decide who may see its name), its
/// name and id.
#[derive(Debug, Clone)]
pub struct CycleStep {
    pub env: String,
    pub name: String,
    pub id: Uuid,
}

/// Refuses a save that would close a cycle no schedule on it allows. Returns the schedules
/// on the cycle.
pub fn cycle_after(
    store: &Store,
    overlay: Overlay<'_>,
) -> Result<Option<Vec<CycleStep>>, StoreError> {
    let mut chains: HashMap<(String, String), Chain> = store
        .all_chains()?
        .into_iter()
        .map(|c| ((c.env.clone(), c.name.clone()), c))
        .collect();
    if let Some((chain, old)) = overlay.chain {
        if let Some(old) = old {
            chains.remove(&(chain.env.clone(), old.to_string()));
        }
        chains.insert((chain.env.clone(), chain.name.clone()), chain.clone());
    }
    let mut schedules: HashMap<Uuid, Schedule> = HashMap::new();
    for env in store.environments()? {
        for s in store.schedules_of(&env.id)? {
            schedules.insert(s.id, s);
        }
    }
    if let Some(s) = overlay.schedule {
        schedules.insert(s.id, s.clone());
    }
    let mut graph = ChainGraph::default();
    for s in schedules.values() {
        graph.add_schedule(s.id, s.allow_loops);
        graph.set_edges(s.id, targets_of(store, s, &chains));
    }
    Ok(graph.forbidden_cycle().map(|ids| {
        ids.iter()
            .map(|id| CycleStep {
                env: schedules.get(id).map(|s| s.env.clone()).unwrap_or_default(),
                name: schedules
                    .get(id)
                    .map(|s| s.name.clone())
                    .unwrap_or_default(),
                id: *id,
            })
            .collect()
    }))
}
