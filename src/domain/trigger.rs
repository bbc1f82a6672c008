//! When a schedule fires: manual, cron (5 or 6 fields), fixed interval, or once.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use serde::{Deserialize, Serialize};

use super::Problems;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Trigger {
    Manual,
    Cron {
        expr: String,
        /// `None`: the environment's zone.
        #[serde(default)]
        time_zone: Option<String>,
    },
    Interval {
        seconds: u64,
    },
    Once {
        at: DateTime<Utc>,
    },
}

/// Parses a cron expression: 5 fields, or 6 with seconds first; 7 is refused.
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    let fields = expr.split_whitespace().count();
    if !(5..=6).contains(&fields) {
        return Err(format!(
            "a cron expression has 5 fields, or 6 with seconds first; this one has {fields}"
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| format!("invalid cron expression: {e}"))
}

pub fn parse_zone(tz: &str) -> Result<Tz, String> {
    Tz::from_str(tz)
        .map_err(|_| format!("unknown time zone {tz:?} (use an IANA name such as Europe/Paris)"))
}

/// The longest interval: ten years (longer is surely a mistake, and far longer overflows
/// time arithmetic).
pub const MAX_INTERVAL_SECONDS: u64 = 10 * 366 * 86_400;

impl Trigger {
    /// Checks the trigger's own fields; `field` is the path to it in the input.
    pub fn validate(&self, field: &str, problems: &mut Problems) {
        match self {
            Trigger::Manual | Trigger::Once { .. } => {}
            Trigger::Cron { expr, time_zone } => {
                if let Err(e) = parse_cron(expr) {
                    problems.push(format!("{field}.expr"), e);
                }
                if let Some(tz) = time_zone {
                    if let Err(e) = parse_zone(tz) {
                        problems.push(format!("{field}.time_zone"), e);
                    }
                }
            }
            Trigger::Interval { seconds } => {
                if !(1..=MAX_INTERVAL_SECONDS).contains(seconds) {
                    problems.push(
                        format!("{field}.seconds"),
                        format!("an interval is between 1 second and {MAX_INTERVAL_SECONDS} (ten years)"),
                    );
                }
            }
        }
    }

    /// True when [`Trigger::validate`] finds nothing.
    pub fn validate_ok(&self) -> bool {
        let mut p = Problems::new();
        self.validate("trigger", &mut p);
        p.is_empty()
    }

    /// True for triggers that start runs without a person or a chain.
    pub fn fires_on_its_own(&self) -> bool {
        !matches!(self, Trigger::Manual)
    }

    /// The first due time strictly after `after`. `env_zone` is used when a cron trigger names
    /// none. For an interval, `after` is the previous due time (or the save time).
    pub fn next_after(&self, after: DateTime<Utc>, env_zone: &str) -> Option<DateTime<Utc>> {
        match self {
            Trigger::Manual => None,
            Trigger::Once { at } => (*at > after).then_some(*at),
            Trigger::Interval { seconds } => {
                // Checked: a stored interval is bounded, but time itself ends (year 262143).
                let step = chrono::Duration::try_seconds(i64::try_from(*seconds).ok()?)?;
                after.checked_add_signed(step)
            }
            Trigger::Cron { expr, time_zone } => {
                let cron = parse_cron(expr).ok()?;
                let zone = parse_zone(time_zone.as_deref().unwrap_or(env_zone)).ok()?;
                next_cron(&cron, zone, after)
            }
        }
    }

    /// Up to `n` due times after `from`, for previews.
    pub fn upcoming(&self, from: DateTime<Utc>, env_zone: &str, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut t = from;
        while out.len() < n {
            match self.next_after(t, env_zone) {
                Some(next) => {
                    out.push(next);
                    t = next;
                }
                None => break,
            }
        }
        out
    }

    /// A sentence for people ("At 02:30:00 every day").
    pub fn describe(&self) -> String {
        match self {
            Trigger::Manual => "Manual only".to_string(),
            Trigger::Once { at } => format!("Once at {}", super::format_time(*at)),
            Trigger::Interval { seconds } => format!("Every {seconds} seconds"),
            Trigger::Cron { expr, .. } => match parse_cron(expr) {
                Ok(c) => c.describe(),
                Err(e) => e,
            },
        }
    }
}

/// croner resolves DST for us: a time in the gap fires once at the gap's end, a time in the
/// overlap at its first occurrence.
fn next_cron(cron: &Cron, zone: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = zone.from_utc_datetime(&after.naive_utc());
    cron.find_next_occurrence(&local, false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn cron_accepts_five_and_six_fields_but_not_seven() {
        assert!(parse_cron("*/5 * * * *").is_ok());
        assert!(parse_cron("0 30 2 * * *").is_ok());
        assert!(parse_cron("0 30 2 * * * 2030").is_err());
        assert!(parse_cron("not a cron").is_err());
    }

    #[test]
    fn cron_next_uses_the_zone() {
        let t = Trigger::Cron {
            expr: "0 30 2 * * *".into(),
            time_zone: Some("America/Denver".into()),
        };
        let next = t.next_after(utc("2026-11-28T00:00:00Z"), "UTC").unwrap();
        assert_eq!(next, utc("2026-11-28T09:30:00Z"));
    }

    #[test]
    fn cron_in_the_spring_gap_fires_once_at_the_gap_end() {
        // 2027-03-14 02:30 does not exist in America/Denver.
        let t = Trigger::Cron {
            expr: "30 2 * * *".into(),
            time_zone: Some("America/Denver".into()),
        };
        let next = t.next_after(utc("2027-03-14T07:00:00Z"), "UTC").unwrap();
        assert_eq!(next, utc("2027-03-14T09:00:00Z"));
        let after = t.next_after(next, "UTC").unwrap();
        assert_eq!(after, utc("2027-03-15T08:30:00Z"));
    }

    #[test]
    fn cron_in_the_autumn_overlap_fires_at_the_first_occurrence_only() {
        // 01:30 happens twice on 2026-11-01 in America/Denver.
        let t = Trigger::Cron {
            expr: "30 1 * * *".into(),
            time_zone: Some("America/Denver".into()),
        };
        let first = t.next_after(utc("2026-11-01T06:00:00Z"), "UTC").unwrap();
        assert_eq!(first, utc("2026-11-01T07:30:00Z"));
        let second = t.next_after(first, "UTC").unwrap();
        assert_eq!(second, utc("2026-11-02T08:30:00Z"));
    }

    #[test]
    fn interval_counts_from_the_previous_due_time() {
        let t = Trigger::Interval { seconds: 60 };
        assert_eq!(
            t.next_after(utc("2026-01-01T00:00:00Z"), "UTC"),
            Some(utc("2026-01-01T00:01:00Z"))
        );
    }

    #[test]
    fn an_interval_too_long_is_refused_and_never_overflows() {
        let huge = Trigger::Interval { seconds: u64::MAX };
        assert!(!huge.validate_ok());
        assert!(!Trigger::Interval {
            seconds: 8_000_000_000_000
        }
        .validate_ok());
        assert!(Trigger::Interval {
            seconds: MAX_INTERVAL_SECONDS
        }
        .validate_ok());
        // Even unchecked (a file from before the limit), times past the end of time are
        // "none", not a panic.
        let from = utc("2026-01-01T00:00:00Z");
        assert_eq!(huge.next_after(from, "UTC"), None);
        let t = Trigger::Interval {
            seconds: 8_000_000_000_000,
        };
        assert!(t.upcoming(from, "UTC", 5).len() < 5);
    }

    #[test]
    fn once_fires_only_before_its_time() {
        let t = Trigger::Once {
            at: utc("2026-01-01T00:00:00Z"),
        };
        assert!(t.next_after(utc("2025-12-31T00:00:00Z"), "UTC").is_some());
        assert!(t.next_after(utc("2026-01-01T00:00:00Z"), "UTC").is_none());
    }
}
