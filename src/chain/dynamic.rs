//! Dynamic values (design §3): `@NAME@` tokens in parameter values.
//!
//! Scanning goes left to right and `@@` is a literal `@`. An `@` that does not start a
//! well-formed `@NAME@` is plain text (`ops@example.com`), but every `@NAME@` that matches is a
//! token, so `a@b@c` names `b`. An unknown name is an error, never an empty string.

use std::borrow::Cow;

/// One piece of a value: text to keep, or a name to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment<'a> {
    Text(Cow<'a, str>),
    Token(&'a str),
}

/// Where a token points: `@Output.X@`, `@Param.X@`, or a bare `@X@` (outputs, then
/// parameters, then globals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference<'a> {
    Output(&'a str),
    Param(&'a str),
    Bare(&'a str),
}

impl<'a> Reference<'a> {
    pub fn parse(token: &'a str) -> Reference<'a> {
        if let Some(n) = token.strip_prefix("Output.") {
            Reference::Output(n)
        } else if let Some(n) = token.strip_prefix("Param.") {
            Reference::Param(n)
        } else {
            Reference::Bare(token)
        }
    }
}

/// A looked-up value and whether it came from a secret (an encrypted parameter, a token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub text: String,
    pub secret: bool,
}

/// What a token can resolve against. Implemented by the run-start globals and by the hop
/// resolver (outputs and parameters of the source run).
pub trait Lookup {
    fn lookup(&self, reference: Reference<'_>) -> Option<Value>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DynamicError {
    #[error("unknown dynamic value @{name}@ (write @@ for a literal @)")]
    Unknown { name: String, column: u32 },
}

/// The resolved text, and whether any part of it came from a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub text: String,
    pub secret: bool,
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic()
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'-')
}

/// Splits a value into text and tokens, with each token's 1-based column.
pub fn segments(value: &str) -> Vec<(Segment<'_>, u32)> {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut text = String::new();
    let mut text_start = 0usize;
    let mut i = 0usize;
    let flush = |text: &mut String, out: &mut Vec<(Segment<'_>, u32)>, at: usize| {
        if !text.is_empty() {
            out.push((
                Segment::Text(Cow::Owned(std::mem::take(text))),
                col(value, at),
            ));
        }
    };
    while i < bytes.len() {
        if bytes[i] != b'@' {
            // Copy a whole UTF-8 character.
            let ch_len = value[i..].chars().next().map_or(1, char::len_utf8);
            if text.is_empty() {
                text_start = i;
            }
            text.push_str(&value[i..i + ch_len]);
            i += ch_len;
            continue;
        }
        if bytes.get(i + 1) == Some(&b'@') {
            if text.is_empty() {
                text_start = i;
            }
            text.push('@');
            i += 2;
            continue;
        }
        if let Some(end) = token_end(bytes, i + 1) {
            flush(&mut text, &mut out, text_start);
            out.push((Segment::Token(&value[i + 1..end]), col(value, i)));
            i = end + 1;
        } else {
            if text.is_empty() {
                text_start = i;
            }
            text.push('@');
            i += 1;
        }
    }
    flush(&mut text, &mut out, text_start);
    out
}

/// With `start` just after an `@`: the index of the closing `@` of a well-formed name.
fn token_end(bytes: &[u8], start: usize) -> Option<usize> {
    if !bytes.get(start).copied().is_some_and(is_name_start) {
        return None;
    }
    let mut j = start + 1;
    while j < bytes.len() && is_name_char(bytes[j]) {
        j += 1;
    }
    (bytes.get(j) == Some(&b'@')).then_some(j)
}

fn col(value: &str, byte_index: usize) -> u32 {
    u32::try_from(value[..byte_index].chars().count() + 1).unwrap_or(u32::MAX)
}

/// The tokens a value names, for save-time checks.
pub fn tokens(value: &str) -> Vec<(&str, u32)> {
    segments(value)
        .into_iter()
        .filter_map(|(s, c)| match s {
            Segment::Token(t) => Some((t, c)),
            Segment::Text(_) => None,
        })
        .collect()
}

/// Resolves every token in `value`; the first unknown name is an error.
pub fn resolve(value: &str, lookup: &dyn Lookup) -> Result<Resolved, DynamicError> {
    let mut text = String::with_capacity(value.len());
    let mut secret = false;
    for (segment, column) in segments(value) {
        match segment {
            Segment::Text(t) => text.push_str(&t),
            Segment::Token(name) => {
                let v =
                    lookup
                        .lookup(Reference::parse(name))
                        .ok_or_else(|| DynamicError::Unknown {
                            name: name.to_string(),
                            column,
                        })?;
                secret |= v.secret;
                text.push_str(&v.text);
            }
        }
    }
    Ok(Resolved { text, secret })
}

/// The global dynamic values, available everywhere (design §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Globals {
    pub user_id: String,
    pub date: String,
    pub datetime: String,
    pub run_id: String,
    pub schedule_id: String,
    pub customer_id: String,
}

pub const GLOBAL_NAMES: [&str; 7] = [
    "UserID",
    "DATE",
    "DATETIME",
    "RunID",
    "ScheduleID",
    "CustomerID",
    "FileToken",
];

impl Globals {
    /// `@DATE@` and `@DATETIME@` in `zone` (to the second, with the zone's offset).
    pub fn new(
        now: chrono::DateTime<chrono::Utc>,
        zone: &str,
        user_id: &str,
        run_id: &str,
        schedule_id: &str,
        env: &str,
    ) -> Self {
        let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
        let local = now.with_timezone(&tz);
        Self {
            user_id: user_id.to_string(),
            date: local.format("%Y-%m-%d").to_string(),
            datetime: local.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            run_id: run_id.to_string(),
            schedule_id: schedule_id.to_string(),
            customer_id: env.to_string(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        Some(match name {
            "UserID" => &self.user_id,
            "DATE" => &self.date,
            "DATETIME" => &self.datetime,
            "RunID" => &self.run_id,
            "ScheduleID" => &self.schedule_id,
            "CustomerID" => &self.customer_id,
            _ => return None,
        })
    }
}

impl Lookup for Globals {
    fn lookup(&self, reference: Reference<'_>) -> Option<Value> {
        match reference {
            Reference::Bare(name) => self.get(name).map(|t| Value {
                text: t.to_string(),
                secret: false,
            }),
            Reference::Output(_) | Reference::Param(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Map(HashMap<&'static str, Value>);

    impl Lookup for Map {
        fn lookup(&self, r: Reference<'_>) -> Option<Value> {
            let key = match r {
                Reference::Output(n) => format!("out:{n}"),
                Reference::Param(n) => format!("param:{n}"),
                Reference::Bare(n) => n.to_string(),
            };
            self.0.get(key.as_str()).cloned()
        }
    }

    fn v(text: &str, secret: bool) -> Value {
        Value {
            text: text.into(),
            secret,
        }
    }

    fn lookup() -> Map {
        Map(HashMap::from([
            ("DATE", v("2026-11-28", false)),
            ("out:FileName", v("report.csv", false)),
            ("param:Password", v("pw", true)),
            ("FileName", v("report.csv", false)),
        ]))
    }

    #[test]
    fn tokens_are_replaced_and_text_kept() {
        let r = resolve("runs-@DATE@.csv", &lookup()).unwrap();
        assert_eq!(r.text, "runs-2026-11-28.csv");
        assert!(!r.secret);
    }

    #[test]
    fn double_at_is_a_literal_at() {
        assert_eq!(resolve("a@@b@@c", &lookup()).unwrap().text, "a@b@c");
        assert_eq!(resolve("@@DATE@@", &lookup()).unwrap().text, "@DATE@");
    }

    #[test]
    fn an_email_address_is_not_a_token() {
        assert_eq!(
            resolve("ops@example.com", &lookup()).unwrap().text,
            "ops@example.com"
        );
        assert_eq!(resolve("trailing@", &lookup()).unwrap().text, "trailing@");
        assert_eq!(resolve("@1abc@", &lookup()).unwrap().text, "@1abc@");
    }

    #[test]
    fn a_at_b_at_c_is_an_error_naming_b() {
        let err = resolve("a@b@c", &lookup()).unwrap_err();
        assert_eq!(
            err,
            DynamicError::Unknown {
                name: "b".into(),
                column: 2
            }
        );
    }

    #[test]
    fn unknown_names_are_errors_not_empty_strings() {
        assert!(
            matches!(resolve("x-@Nope@", &lookup()), Err(DynamicError::Unknown { name, column: 3 }) if name == "Nope")
        );
    }

    #[test]
    fn qualified_references_and_secret_sources() {
        assert_eq!(
            resolve("@Output.FileName@", &lookup()).unwrap().text,
            "report.csv"
        );
        let r = resolve("pw=@Param.Password@", &lookup()).unwrap();
        assert_eq!(r.text, "pw=pw");
        assert!(r.secret, "a value taking a secret source is marked secret");
    }

    #[test]
    fn tokens_lists_names_with_columns() {
        assert_eq!(tokens("é@DATE@-@RunID@"), vec![("DATE", 2), ("RunID", 9)]);
    }

    #[test]
    fn globals_use_the_zone_for_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-28T03:00:00Z")
            .unwrap()
            .to_utc();
        let g = Globals::new(now, "America/Denver", "ivy", "r", "s", "training");
        assert_eq!(g.date, "2026-11-27");
        assert_eq!(g.datetime, "2026-11-27T20:00:00-07:00");
        assert_eq!(
            resolve("@UserID@/@CustomerID@", &g).unwrap().text,
            "ivy/training"
        );
        assert!(resolve("@Output.X@", &g).is_err());
    }
}
