//! Parsing the chain text with jsonc-parser, so that every problem can name its line and
//! column; all problems are gathered before answering.

use jsonc_parser::ast::{Array, Object, ObjectProp, Value};
use jsonc_parser::common::Ranged;
use jsonc_parser::{CollectOptions, ParseOptions};

use super::{ChainSpec, Hop, HopParam, HopValue, Origin, When};
use crate::domain::{FieldProblem, Problems, SealedValue};

/// JSON plus `//` and `/* */` comments, nothing looser.
const OPTIONS: ParseOptions = ParseOptions {
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
    let mut ctx = Ctx {
        text,
        origin,
        problems: Problems::new(),
    };
    let ast = match jsonc_parser::parse_to_ast(text, &CollectOptions::default(), &OPTIONS) {
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
        Some(Value::Object(o)) => spec.hops.extend(hop(&mut ctx, &o, "value".into())),
        Some(Value::Array(a)) => {
            spec.is_array = true;
            spec.hops = fan_out(&mut ctx, &a);
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

/// The array form: one hop per element, at least one.
fn fan_out(ctx: &mut Ctx<'_>, a: &Array<'_>) -> Vec<Hop> {
    if a.elements.is_empty() {
        ctx.problem(
            "value",
            a.range.start,
            "an empty list starts nothing: give at least one {\"name\": …}",
        );
    }
    let mut hops = Vec::new();
    for (i, el) in a.elements.iter().enumerate() {
        let field = format!("value[{i}]");
        match el {
            Value::Object(o) => hops.extend(hop(ctx, o, field)),
            other => ctx.problem(
                &field,
                other.range().start,
                "each element is an object like {\"name\": \"chain\"}",
            ),
        }
    }
    hops
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

/// A string field that must pass `valid`; the problem says what it should have been.
fn checked_string(
    ctx: &mut Ctx<'_>,
    v: &Value<'_>,
    field: &str,
    valid: fn(&str) -> bool,
    what: &str,
) -> Option<String> {
    let s = string_of(ctx, v, field)?;
    if valid(s) {
        return Some(s.to_string());
    }
    ctx.problem(field, v.range().start, format!("{s:?} {what}"));
    None
}

fn when_of(ctx: &mut Ctx<'_>, v: &Value<'_>, field: &str) -> Option<When> {
    match string_of(ctx, v, field)? {
        "success" => Some(When::Success),
        "failure" => Some(When::Failure),
        "always" => Some(When::Always),
        other => {
            ctx.problem(
                field,
                v.range().start,
                format!("{other:?}: when is success, failure or always"),
            );
            None
        }
    }
}

/// One hop object; `None` when it has a problem (already reported).
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
        let v = &p.value;
        let good = match key {
            "customerId" => {
                let valid = crate::domain::environment::is_valid_env_id;
                let id = checked_string(ctx, v, &f, valid, "is not an environment id");
                id.map(|id| h.customer_id = Some(id)).is_some()
            }
            "name" => {
                let valid = crate::domain::chain::is_valid_chain_name;
                let what = "is not a chain name (letters, digits, . _ -)";
                let name = checked_string(ctx, v, &f, valid, what);
                has_name = name.is_some();
                name.map(|n| h.name = n).is_some()
            }
            "when" => when_of(ctx, v, &f).map(|w| h.when = w).is_some(),
            _ => hop_params(ctx, v, &f, &mut h.params),
        };
        ok &= good;
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

/// A hop's `params` list into `out`; false when any element has a problem.
fn hop_params(ctx: &mut Ctx<'_>, v: &Value<'_>, field: &str, out: &mut Vec<HopParam>) -> bool {
    let Value::Array(a) = v else {
        ctx.problem(field, v.range().start, "params is a list");
        return false;
    };
    let mut ok = true;
    for (i, el) in a.elements.iter().enumerate() {
        let pf = format!("{field}[{i}]");
        let Value::Object(po) = el else {
            ctx.problem(
                &pf,
                el.range().start,
                "each parameter is an object like {\"name\": …, \"value\": …}",
            );
            ok = false;
            continue;
        };
        match param(ctx, po, pf) {
            Some(hp) if out.iter().any(|x| x.name == hp.name) => {
                ctx.problem(
                    &format!("{}.name", hp.field),
                    po.range.start,
                    format!("parameter {:?} is set twice", hp.name),
                );
                ok = false;
            }
            Some(hp) => out.push(hp),
            None => ok = false,
        }
    }
    ok
}

/// One parameter object of a hop; `None` when it has a problem (already reported).
fn param(ctx: &mut Ctx<'_>, o: &Object<'_>, field: String) -> Option<HopParam> {
    let props = keys(ctx, o, &field, &["name", "value", "encrypt", "is_set"]);
    let (mut name, mut value, mut encrypt, mut ok) = (None, None, false, true);
    let (mut line, mut column) = ctx.at(o.range.start);
    for (key, p) in props {
        let f = format!("{field}.{key}");
        match key {
            "name" => match string_of(ctx, &p.value, &f) {
                Some("") => {
                    let at = p.value.range().start;
                    ctx.problem(&f, at, "a parameter name cannot be empty");
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
                value = scalar(ctx, &p.value, &f);
                ok &= value.is_some();
            }
        }
    }
    if ok && name.is_none() {
        ctx.problem(&format!("{field}.name"), o.range.start, "required");
        ok = false;
    }
    let value = required_value(ctx, value, encrypt, ok, &field, o.range.start)?;
    ok.then(|| HopParam {
        name: name.unwrap_or_default(),
        value,
        encrypt,
        field,
        line,
        column,
    })
}

/// A parameter's value must be given (when nothing else was wrong), and `null` (keep)
/// only with `encrypt`.
fn required_value(
    ctx: &mut Ctx<'_>,
    value: Option<HopValue>,
    encrypt: bool,
    ok: bool,
    field: &str,
    at: usize,
) -> Option<HopValue> {
    match value {
        Some(HopValue::Keep) if !encrypt => {
            let message = "null keeps only an encrypted value (\"encrypt\": true)";
            ctx.problem(&format!("{field}.value"), at, message);
            None
        }
        Some(v) => Some(v),
        None if ok => {
            ctx.problem(&format!("{field}.value"), at, "required");
            None
        }
        None => None,
    }
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
            if sealed.is_none() {
                ctx.problem(field, o.range.start, "damaged sealed value");
            }
            sealed.map(HopValue::Sealed)
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
