//! The `async-TaskChain` text (design §2): JSON with `//` comments, one hop object or an
//! array of them (fan-out). Every problem names its field and, where it has one, its line
//! and column in the text.

mod parse;
mod render;

use crate::domain::run::RunState;
use crate::domain::SealedValue;

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

pub use parse::parse;

/// The place a sealed literal of hop `hop`, parameter `name` is bound to.
pub fn sealed_literal_name(hop: usize, name: &str) -> String {
    format!("{}[{hop}].{name}", crate::domain::TASK_CHAIN_PARAM)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FieldProblem;

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
