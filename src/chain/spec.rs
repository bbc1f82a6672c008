//! The `async-TaskChain` text (design §2): JSON with `//` comments, one hop object or an
//! array of them (fan-out). Every problem names its field and, where it has one, its line
//! and column in the text.

use jsonc_parser::ast::{Object, ObjectProp, Value};
use jsonc_parser::common::Ranged;
use jsonc_parser::{CollectOptions, ParseOptions};
use serde_json::json;

use crate::domain::run::RunState;
use crate::domain::{FieldProblem, Problems, SealedValue};

/// When a hop fires, judged once on the source run's final state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum When {
    #[default]
    Success,
    Failure,
    Always,
}

impl When {
    pub fn as_str(self) -> &'static str {
        match self {
            When::Success => "success",
            When::Failure => "failure",
            When::Always => "always",
        }
    }

    /// `success` = succeeded; `failure` = failed or timed_out; `always` = any final state.
    pub fn matches(self, state: RunState) -> bool {
        match self {
            When::Success => state == RunState::Succeeded,
            When::Failure => matches!(state, RunState::Failed | RunState::TimedOut),
            When::Always => state.is_final(),
        }
    }
}

/// A parameter value inside the chain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HopValue {
    /// Literal text, possibly with dynamic values.
    Text(String),
    /// A literal sealed at save (stored form only).
    Sealed(SealedValue),
    /// `"value": null` with `encrypt: true`: keep what is stored for this hop and name.
    Keep,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopParam {
    pub name: String,
    pub value: HopValue,
    pub encrypt: bool,
    /// Path inside the chain text (`value[0].params[1]`).
    pub field: String,
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// Target environment; `None` = the source's own.
    pub customer_id: Option<String>,
    pub name: String,
    pub params: Vec<HopParam>,
    pub when: When,
    pub field: String,
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSpec {
    pub hops: Vec<Hop>,
    /// Written as an array (fan-out) rather than one object.
    pub is_array: bool,
}

/// Where the text comes from: a person (sealed forms refused) or the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    User,
    Stored,
}

struct Ctx<'t> {
    text: &'t str,
    origin: Origin,
    problems: Problems,
}

impl Ctx<'_> {
    fn at(&self, offset: usize) -> (u32, u32) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (
            u32::try_from(line).unwrap_or(u32::MAX),
            u32::try_from(col).unwrap_or(u32::MAX),
        )
    }

    fn problem(&mut self, field: &str, offset: usize, message: impl Into<String>) {
        let (line, column) = self.at(offset);
        self.problems.0.push(FieldProblem {
            field: field.to_string(),
            message: message.into(),
            line: Some(line),
            column: Some(column),
        });
    }
}

/// Parses chain text. Problems name fields relative to the parameter's value (`value…`).
pub fn parse(text: &str, origin: Origin) -> Result<ChainSpec, Problems> {
    let options = ParseOptions {
        allow_comments: true,
        allow_loose_object_property_names: false,
        allow_trailing_commas: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    };
    let mut ctx = Ctx {
        text,
        origin,
        problems: Problems::new(),
    };
    let ast = match jsonc_parser::parse_to_ast(text, &CollectOptions::default(), &options) {
        Ok(r) => r,
        Err(e) => {
            ctx.problems.0.push(FieldProblem {
                field: "value".into(),
                message: format!("not valid JSON: {}", e.kind()),
                line: u32::try_from(e.line_display()).ok(),
                column: u32::try_from(e.column_display()).ok(),
            });
            return Err(ctx.problems);
        }
    };
    let mut spec = ChainSpec {
        hops: Vec::new(),
        is_array: false,
    };
    match ast.value {
        Some(Value::Object(o)) => {
            if let Some(h) = hop(&mut ctx, &o, "value".into()) {
                spec.hops.push(h);
            }
        }
        Some(Value::Array(a)) => {
            spec.is_array = true;
            if a.elements.is_empty() {
                ctx.problem(
                    "value",
                    a.range.start,
                    "an empty list starts nothing: give at least one {\"name\": …}",
                );
            }
            for (i, el) in a.elements.iter().enumerate() {
                let field = format!("value[{i}]");
                match el {
                    Value::Object(o) => {
                        if let Some(h) = hop(&mut ctx, o, field) {
                            spec.hops.push(h);
                        }
                    }
                    other => ctx.problem(
                        &field,
                        other.range().start,
                        "each element is an object like {\"name\": \"chain\"}",
                    ),
                }
            }
        }
        Some(other) => ctx.problem(
            "value",
            other.range().start,
            "expected an object like {\"name\": \"chain\"} or a list of them",
        ),
        None => ctx.problem(
            "value",
            0,
            "empty: expected an object like {\"name\": \"chain\"}",
        ),
    }
    ctx.problems.into_result().map(|()| spec)
}

/// Checks an object's keys against `allowed`; reports unknown and duplicate ones.
fn keys<'a, 'b>(
    ctx: &mut Ctx<'_>,
    o: &'b Object<'a>,
    field: &str,
    allowed: &[&str],
) -> Vec<(&'b str, &'b ObjectProp<'a>)> {
    let mut seen: Vec<(&str, &ObjectProp)> = Vec::new();
    for p in &o.properties {
        let name = p.name.as_str();
        if !allowed.contains(&name) {
            ctx.problem(
                &format!("{field}.{name}"),
                p.range.start,
                format!(
                    "unknown field {name:?} (expected one of: {})",
                    allowed.join(", ")
                ),
            );
        } else if seen.iter().any(|(n, _)| *n == name) {
            ctx.problem(
                &format!("{field}.{name}"),
                p.range.start,
                format!("{name:?} is given twice"),
            );
        } else {
            seen.push((name, p));
        }
    }
    seen
}

fn string_of<'a>(ctx: &mut Ctx<'_>, v: &'a Value<'_>, field: &str) -> Option<&'a str> {
    match v {
        Value::StringLit(s) => Some(&s.value),
        other => {
            ctx.problem(field, other.range().start, "must be a string");
            None
        }
    }
}

fn hop(ctx: &mut Ctx<'_>, o: &Object<'_>, field: String) -> Option<Hop> {
    let (line, column) = ctx.at(o.range.start);
    let props = keys(ctx, o, &field, &["customerId", "name", "params", "when"]);
    let mut h = Hop {
        customer_id: None,
        name: String::new(),
        params: Vec::new(),
        when: When::Success,
        field: field.clone(),
        line,
        column,
    };
    let mut ok = true;
    let mut has_name = false;
    for (key, p) in props {
        let f = format!("{field}.{key}");
        match key {
            "customerId" => match string_of(ctx, &p.value, &f) {
                Some(s) if crate::domain::environment::is_valid_env_id(s) => {
                    h.customer_id = Some(s.to_string())
                }
                Some(s) => {
                    ctx.problem(
                        &f,
                        p.value.range().start,
                        format!("{s:?} is not an environment id"),
                    );
                    ok = false;
                }
                None => ok = false,
            },
            "name" => match string_of(ctx, &p.value, &f) {
                Some(s) if crate::domain::chain::is_valid_chain_name(s) => {
                    h.name = s.to_string();
                    has_name = true;
                }
                Some(s) => {
                    ctx.problem(
                        &f,
                        p.value.range().start,
                        format!("{s:?} is not a chain name (letters, digits, . _ -)"),
                    );
                    ok = false;
                }
                None => ok = false,
            },
            "when" => match string_of(ctx, &p.value, &f) {
                Some("success") => h.when = When::Success,
                Some("failure") => h.when = When::Failure,
                Some("always") => h.when = When::Always,
                Some(other) => {
                    ctx.problem(
                        &f,
                        p.value.range().start,
                        format!("{other:?}: when is success, failure or always"),
                    );
                    ok = false;
                }
                None => ok = false,
            },
            _ => {
                match &p.value {
                    Value::Array(a) => {
                        for (i, el) in a.elements.iter().enumerate() {
                            let pf = format!("{f}[{i}]");
                            match el {
                                Value::Object(po) => match param(ctx, po, pf) {
                                    Some(hp) if h.params.iter().any(|x| x.name == hp.name) => {
                                        ctx.problem(
                                            &format!("{}.name", hp.field),
                                            po.range.start,
                                            format!("parameter {:?} is set twice", hp.name),
                                        );
                                        ok = false;
                                    }
                                    Some(hp) => h.params.push(hp),
                                    None => ok = false,
                                },
                                other => {
                                    ctx.problem(&pf, other.range().start, "each parameter is an object like {\"name\": …, \"value\": …}");
                                    ok = false;
                                }
                            }
                        }
                    }
                    other => {
                        ctx.problem(&f, other.range().start, "params is a list");
                        ok = false;
                    }
                }
            }
        }
    }
    if !has_name && ok {
        ctx.problem(
            &format!("{field}.name"),
            o.range.start,
            "required: the chain's name in the target environment",
        );
    }
    (ok && has_name).then_some(h)
}

fn param(ctx: &mut Ctx<'_>, o: &Object<'_>, field: String) -> Option<HopParam> {
    let props = keys(ctx, o, &field, &["name", "value", "encrypt", "is_set"]);
    let (mut name, mut value, mut encrypt, mut ok) = (None, None, false, true);
    let (mut line, mut column) = ctx.at(o.range.start);
    for (key, p) in props {
        let f = format!("{field}.{key}");
        match key {
            "name" => match string_of(ctx, &p.value, &f) {
                Some("") => {
                    ctx.problem(
                        &f,
                        p.value.range().start,
                        "a parameter name cannot be empty",
                    );
                    ok = false;
                }
                Some(s) => name = Some(s.to_string()),
                None => ok = false,
            },
            "encrypt" => match &p.value {
                Value::BooleanLit(b) => encrypt = b.value,
                other => {
                    ctx.problem(&f, other.range().start, "encrypt is true or false");
                    ok = false;
                }
            },
            "is_set" => {} // read-only, accepted so GET → PUT round-trips
            _ => {
                (line, column) = ctx.at(p.value.range().start);
                match scalar(ctx, &p.value, &f) {
                    Some(v) => value = Some(v),
                    None => ok = false,
                }
            }
        }
    }
    if ok && name.is_none() {
        ctx.problem(&format!("{field}.name"), o.range.start, "required");
        ok = false;
    }
    let value = match value {
        Some(HopValue::Keep) if !encrypt => {
            ctx.problem(
                &format!("{field}.value"),
                o.range.start,
                "null keeps only an encrypted value (\"encrypt\": true)",
            );
            return None;
        }
        Some(v) => v,
        None if ok => {
            ctx.problem(&format!("{field}.value"), o.range.start, "required");
            return None;
        }
        None => return None,
    };
    ok.then(|| HopParam {
        name: name.unwrap_or_default(),
        value,
        encrypt,
        field,
        line,
        column,
    })
}

/// A string, number or boolean (as its JSON text); `null` keeps; a sealed form only from
/// the store.
fn scalar(ctx: &mut Ctx<'_>, v: &Value<'_>, field: &str) -> Option<HopValue> {
    match v {
        Value::StringLit(s) => Some(HopValue::Text(s.value.to_string())),
        Value::NumberLit(n) => Some(HopValue::Text(n.value.to_string())),
        Value::BooleanLit(b) => Some(HopValue::Text(b.value.to_string())),
        Value::NullKeyword(_) => Some(HopValue::Keep),
        Value::Object(o) if ctx.origin == Origin::Stored => {
            let sealed = o
                .properties
                .iter()
                .find(|p| p.name.as_str() == "sealed")
                .and_then(|p| {
                    let text = jsonc_value_text(ctx.text, &p.value);
                    serde_json::from_str::<SealedValue>(text).ok()
                });
            match sealed {
                Some(s) => Some(HopValue::Sealed(s)),
                None => {
                    ctx.problem(field, o.range.start, "damaged sealed value");
                    None
                }
            }
        }
        other => {
            ctx.problem(
                field,
                other.range().start,
                "a value is a string, number or boolean",
            );
            None
        }
    }
}

fn jsonc_value_text<'t>(text: &'t str, v: &Value<'_>) -> &'t str {
    let r = v.range();
    text.get(r.start..r.end).unwrap_or("")
}

impl ChainSpec {
    fn render(&self, masked: bool) -> serde_json::Value {
        let hops: Vec<serde_json::Value> = self
            .hops
            .iter()
            .map(|h| {
                let mut o = serde_json::Map::new();
                if let Some(c) = &h.customer_id {
                    o.insert("customerId".into(), json!(c));
                }
                o.insert("name".into(), json!(h.name));
                let params: Vec<serde_json::Value> = h
                    .params
                    .iter()
                    .map(|p| {
                        let mut po = serde_json::Map::new();
                        po.insert("name".into(), json!(p.name));
                        match &p.value {
                            HopValue::Text(t) => {
                                po.insert("value".into(), json!(t));
                            }
                            HopValue::Sealed(s) if !masked => {
                                po.insert("value".into(), json!({"sealed": s}));
                            }
                            HopValue::Sealed(_) | HopValue::Keep => {
                                po.insert("value".into(), serde_json::Value::Null);
                                po.insert("is_set".into(), json!(true));
                            }
                        }
                        if p.encrypt {
                            po.insert("encrypt".into(), json!(true));
                        }
                        serde_json::Value::Object(po)
                    })
                    .collect();
                if !params.is_empty() {
                    o.insert("params".into(), serde_json::Value::Array(params));
                }
                if h.when != When::Success {
                    o.insert("when".into(), json!(h.when.as_str()));
                }
                serde_json::Value::Object(o)
            })
            .collect();
        if self.is_array {
            serde_json::Value::Array(hops)
        } else {
            hops.into_iter().next().unwrap_or(serde_json::Value::Null)
        }
    }

    /// The stored form: compact, no comments, sealed literals as `{"sealed": …}`.
    pub fn to_stored(&self) -> String {
        self.render(false).to_string()
    }

    /// What people and the API see: sealed literals as `"value": null, "is_set": true`.
    pub fn to_masked(&self) -> String {
        self.render(true).to_string()
    }
}

/// The place a sealed literal of hop `hop`, parameter `name` is bound to.
pub fn sealed_literal_name(hop: usize, name: &str) -> String {
    format!("{}[{hop}].{name}", crate::domain::TASK_CHAIN_PARAM)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"{
  "customerId": "production",          // optional: target environment
  "name": "nightly-upload",            // required
  "params": [
    { "name": "SourceFile", "value": "@FileToken@" },
    { "name": "Password",   "value": "s3cret", "encrypt": true }
  ]
}"#;

    fn problems(text: &str) -> Vec<FieldProblem> {
        parse(text, Origin::User).unwrap_err().0
    }

    #[test]
    fn the_seed_example_parses() {
        let spec = parse(SEED, Origin::User).unwrap();
        assert!(!spec.is_array);
        let h = &spec.hops[0];
        assert_eq!(h.customer_id.as_deref(), Some("production"));
        assert_eq!(h.name, "nightly-upload");
        assert_eq!(h.params[0].value, HopValue::Text("@FileToken@".into()));
        assert!(h.params[1].encrypt);
        assert_eq!(h.when, When::Success);
        assert_eq!((h.params[1].line, h.params[1].column), (6, 38));
    }

    #[test]
    fn fan_out_and_when() {
        let spec = parse(r#"[{"name":"a"},{"name":"b","when":"always","params":[{"name":"N","value":3},{"name":"B","value":true}]}]"#, Origin::User).unwrap();
        assert!(spec.is_array);
        assert_eq!(spec.hops[1].when, When::Always);
        assert_eq!(spec.hops[1].params[0].value, HopValue::Text("3".into()));
        assert_eq!(spec.hops[1].params[1].value, HopValue::Text("true".into()));
    }

    #[test]
    fn errors_name_the_field_line_and_column() {
        let p = problems("{\n  \"name\": \"x\",\n  \"params\": [{\"name\": \"A\", \"value\": \"v\", \"encrypt\": \"yes\"}]\n}");
        assert_eq!(p[0].field, "value.params[0].encrypt");
        assert_eq!((p[0].line, p[0].column), (Some(3), Some(53)));

        let p = problems(r#"{"params": []}"#);
        assert_eq!(p[0].field, "value.name");

        let p = problems(r#"{"name": "x", "color": "red"}"#);
        assert_eq!(p[0].field, "value.color");

        let p = problems(
            r#"{"name": "x", "params": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}"#,
        );
        assert!(p[0].message.contains("twice"), "{p:?}");

        let p = problems(r#"{"name": "x", "params": [{"name": "", "value": "1"}]}"#);
        assert_eq!(p[0].field, "value.params[0].name");

        let p = problems(r#"{"name": "x", "params": [{"name": "A", "value": {"a": 1}}]}"#);
        assert_eq!(p[0].field, "value.params[0].value");

        let p = problems("{\"name\": \"x\",}");
        assert_eq!(p[0].field, "value");
        assert!(p[0].line.is_some());
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let p = problems(r#"[{"name": 1}, {"name": "ok", "when": "sometimes"}, 7]"#);
        let fields: Vec<&str> = p.iter().map(|x| x.field.as_str()).collect();
        assert_eq!(fields, vec!["value[0].name", "value[1].when", "value[2]"]);
    }

    #[test]
    fn users_cannot_send_a_sealed_form_but_the_store_can() {
        let stored = r#"{"name":"x","params":[{"name":"P","value":{"sealed":{"v":1,"key_id":1,"data":"AAAA"}},"encrypt":true}]}"#;
        assert!(parse(stored, Origin::User).is_err());
        let spec = parse(stored, Origin::Stored).unwrap();
        assert!(matches!(spec.hops[0].params[0].value, HopValue::Sealed(_)));
        assert_eq!(spec.to_stored(), stored);
        assert_eq!(
            spec.to_masked(),
            r#"{"name":"x","params":[{"name":"P","value":null,"is_set":true,"encrypt":true}]}"#
        );
        let back = parse(&spec.to_masked(), Origin::User).unwrap();
        assert_eq!(back.hops[0].params[0].value, HopValue::Keep);
    }

    #[test]
    fn null_keeps_only_encrypted_values() {
        let p = problems(r#"{"name":"x","params":[{"name":"P","value":null}]}"#);
        assert!(p[0].message.contains("encrypt"), "{p:?}");
    }

    #[test]
    fn when_is_judged_on_the_final_state() {
        assert!(When::Success.matches(RunState::Succeeded));
        assert!(!When::Success.matches(RunState::Failed));
        assert!(When::Failure.matches(RunState::TimedOut));
        assert!(!When::Failure.matches(RunState::Cancelled));
        assert!(When::Always.matches(RunState::Cancelled));
        assert!(!When::Always.matches(RunState::Running));
    }
}
