//! The run one hop starts: its target checked again as the store is now, its parameters
//! resolved against the source run (outputs, then parameters, then the globals) and sealed
//! for the started run's place.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use super::Engine;
use crate::chain::dynamic::{resolve, DynamicError, Globals, Lookup, Reference, Value};
use crate::chain::plan::{check_settable, target, Target};
use crate::chain::spec::{self, Hop, HopParam, HopValue};
use crate::crypto::Place;
use crate::domain::chain::FILE_TOKEN_PREFIX;
use crate::domain::run::RunParam;
use crate::domain::{FileToken, Origin, Overlap, ParamValue, Run, TASK_CHAIN_PARAM};

/// What one hop starts: the run, its schedule's overlap (for admission) and the file token
/// minted for it (its text, delivered sealed, and its record), if it names `@FileToken@`.
pub(super) struct HopRun {
    pub run: Run,
    pub overlap: Overlap,
    pub token: Option<(String, FileToken)>,
}

/// A file token minted for a hop: its text and its record.
type Minted = (String, FileToken);

/// A hop's dynamic values: the source run's outputs, then its parameters, then the globals;
/// `@FileToken@` mints a token the first time it is named (and only then).
struct HopLookup<'a> {
    outputs: &'a BTreeMap<String, String>,
    params: &'a HashMap<String, (String, bool)>,
    globals: &'a Globals,
    mint: &'a dyn Fn() -> Result<Minted, String>,
    minted: RefCell<Option<Minted>>,
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
            Reference::Bare("FileToken") => self.file_token(),
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

impl HopLookup<'_> {
    /// The hop's file token, minted on first use; `None` (with the reason kept) when the
    /// source has no file to grant.
    fn file_token(&self) -> Option<Value> {
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

    /// The minted token's id when `text` carries its text (such a value is always sealed).
    fn token_in(&self, text: &str) -> Option<Uuid> {
        if !text.contains(FILE_TOKEN_PREFIX) {
            return None;
        }
        self.minted
            .borrow()
            .as_ref()
            .filter(|(t, _)| text.contains(t.as_str()))
            .map(|(_, token)| token.id)
    }

    /// Why `@name@` resolved to nothing: a failed mint says its own reason.
    fn unknown(&self, name: &str) -> String {
        self.mint_error
            .borrow_mut()
            .take()
            .unwrap_or_else(|| match name.strip_prefix("Output.") {
                Some(o) => format!("@{name}@: the run produced no output {o}"),
                None => format!("@{name}@: the source run has no such value"),
            })
    }
}

impl Engine {
    /// The run one hop starts, with its parameters resolved and sealed for it. With
    /// `dry_run` (previews) no file is looked up for `@FileToken@`.
    pub(super) fn build_hop_run(
        &self,
        run: &Run,
        outputs: &BTreeMap<String, String>,
        i: usize,
        hop: &Hop,
        dry_run: bool,
    ) -> Result<HopRun, String> {
        let target = self.hop_target(run, hop)?;
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
        let child_id = child.id;
        let mint = || {
            if dry_run && outputs.contains_key("FileName") {
                return Ok(self.mint_token_for(&run.env, "(preview)", 0, &target.env, child_id));
            }
            self.mint_token(run, outputs, &target.env, child_id)
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
            let (text, secret) = self.hop_value(run, i, hp, &lookup)?;
            let param = self.delivered(&target.env, child_id, hp, text, secret, &lookup)?;
            child.params.retain(|p| p.name != hp.name);
            child.params.push(param);
        }
        let token = lookup.minted.borrow_mut().take();
        Ok(HopRun {
            run: child,
            overlap: target.schedule.overlap,
            token,
        })
    }

    /// The hop's target as the store is now: refused when the chain is gone, not shared,
    /// disabled, its template disabled, or the hop would go too deep.
    fn hop_target(&self, run: &Run, hop: &Hop) -> Result<Target, String> {
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
        Ok(target)
    }

    /// A hop parameter's value in clear, and whether it came from a secret: a sealed value
    /// is opened first; then its dynamic values (and `@@`) are resolved.
    fn hop_value(
        &self,
        run: &Run,
        i: usize,
        hp: &HopParam,
        lookup: &HopLookup<'_>,
    ) -> Result<(String, bool), String> {
        let resolved = |text: &str| match resolve(text, lookup) {
            Ok(r) => Ok((r.text, r.secret)),
            Err(DynamicError::Unknown { name, .. }) => Err(lookup.unknown(&name)),
        };
        match &hp.value {
            HopValue::Sealed(s) => {
                let place = Place {
                    env: &run.env,
                    record: crate::crypto::schedule_record(run.schedule_id),
                    name: &spec::sealed_literal_name(i, &hp.name),
                };
                let opened = self.keyring.open(&place, s).map_err(|e| e.to_string())?;
                let (text, _) = resolved(&opened)?;
                Ok((text, true))
            }
            HopValue::Keep => Err(format!("parameter {:?} has no stored value", hp.name)),
            HopValue::Text(t) => resolved(t),
        }
    }

    /// The parameter as the started run receives it: sealed for its place when marked
    /// `encrypt`, taken from a secret, or carrying a file token. A secret source into a
    /// parameter not marked `encrypt` is refused (a token is exempt: it is always sealed).
    fn delivered(
        &self,
        target_env: &str,
        child: Uuid,
        hp: &HopParam,
        text: String,
        secret: bool,
        lookup: &HopLookup<'_>,
    ) -> Result<RunParam, String> {
        let file_token = lookup.token_in(&text);
        if secret && !hp.encrypt && file_token.is_none() {
            return Err(format!(
                "parameter {:?} takes an encrypted value but is not marked encrypt",
                hp.name
            ));
        }
        let value = if hp.encrypt || secret || file_token.is_some() {
            let place = Place {
                env: target_env,
                record: crate::crypto::run_record(child),
                name: &hp.name,
            };
            let sealed = self
                .keyring
                .seal(&place, &text)
                .map_err(|e| e.to_string())?;
            ParamValue::Sealed(sealed)
        } else {
            ParamValue::Plain(text)
        };
        Ok(RunParam {
            name: hp.name.clone(),
            value,
            literal: true,
            file_token,
        })
    }

    /// The source run's own parameters, opened, each with whether it is secret.
    fn source_params(&self, run: &Run, globals: &Globals) -> HashMap<String, (String, bool)> {
        let record = crate::crypto::run_record(run.id);
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
}
