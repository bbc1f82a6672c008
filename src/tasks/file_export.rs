use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::{KindSpec, Outputs, ParamProblems, ParamSpec, TaskContext, TaskError, TaskKind};
use crate::domain::format_time;
use crate::store::{is_valid_file_name, RunFilter};

/// Writes a file to the environment's file store: given content, or a report of its runs.
pub struct FileExport;

static SPEC: KindSpec = KindSpec {
    name: "file-export",
    params: &[
        ParamSpec {
            name: "FileName",
            required: true,
            secret: false,
            default: None,
            description: "Name in the file store (no / or leading .)",
            example: "runs-@DATE@.csv",
        },
        ParamSpec {
            name: "Content",
            required: false,
            secret: false,
            default: Some(""),
            description: "The file's text",
            example: "hello",
        },
        ParamSpec {
            name: "Report",
            required: false,
            secret: false,
            default: Some(""),
            description:
                "runs-csv or runs-json: a report of this environment's runs instead of Content",
            example: "runs-csv",
        },
        ParamSpec {
            name: "From",
            required: false,
            secret: false,
            default: Some(""),
            description: "Report start (RFC 3339, inclusive)",
            example: "2026-11-01T00:00:00Z",
        },
        ParamSpec {
            name: "To",
            required: false,
            secret: false,
            default: Some(""),
            description: "Report end (RFC 3339, exclusive)",
            example: "2026-12-01T00:00:00Z",
        },
    ],
    outputs: &["FileName"],
};

/// The most runs one report holds.
const REPORT_LIMIT: usize = 100_000;

fn parse_time(name: &str, v: &str) -> Result<Option<DateTime<Utc>>, String> {
    if v.is_empty() {
        return Ok(None);
    }
    DateTime::parse_from_rfc3339(v)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|_| format!("{name} must be an RFC 3339 time such as 2026-11-01T00:00:00Z"))
}

impl TaskKind for FileExport {
    fn spec(&self) -> &'static KindSpec {
        &SPEC
    }

    fn validate(&self, p: &HashMap<&str, &str>, problems: &mut ParamProblems<'_>) {
        if let Some(n) = p.get("FileName") {
            if !n.contains('@') && !is_valid_file_name(n) {
                problems.push(
                    "FileName",
                    "a file name has no /, \\ or NUL and does not start with .",
                );
            }
        }
        if let Some(r) = p.get("Report") {
            if !matches!(*r, "" | "runs-csv" | "runs-json") {
                problems.push("Report", "Report must be runs-csv or runs-json");
            }
        }
        for name in ["From", "To"] {
            if let Some(Err(e)) = p
                .get(name)
                .filter(|v| !v.contains('@'))
                .map(|v| parse_time(name, v))
            {
                problems.push(name, e);
            }
        }
    }

    fn run<'a>(&'a self, ctx: &'a TaskContext) -> BoxFuture<'a, Result<Outputs, TaskError>> {
        async move {
            let name = ctx.required("FileName")?;
            if !is_valid_file_name(&name) {
                return Err(TaskError::Abort(format!("invalid file name {name:?}")));
            }
            let bytes = match ctx.param(&SPEC, "Report").as_str() {
                "" => ctx.param(&SPEC, "Content").into_bytes(),
                kind @ ("runs-csv" | "runs-json") => report(ctx, kind)?,
                other => return Err(TaskError::Abort(format!("unknown Report {other:?}"))),
            };
            let meta = ctx
                .store
                .write_file(&ctx.env, &name, &bytes, Some(ctx.run_id), ctx.clock.now())
                .map_err(|e| TaskError::Retry(format!("writing {name} failed: {e}")))?;
            ctx.info(format!(
                "wrote {name} (version {}, {} bytes)",
                meta.version, meta.size
            ));
            Ok(Outputs::from([("FileName".to_string(), name)]))
        }
        .boxed()
    }
}

fn report(ctx: &TaskContext, kind: &str) -> Result<Vec<u8>, TaskError> {
    let filter = RunFilter {
        since: parse_time("From", &ctx.param(&SPEC, "From")).map_err(TaskError::Abort)?,
        until: parse_time("To", &ctx.param(&SPEC, "To")).map_err(TaskError::Abort)?,
        limit: REPORT_LIMIT,
        ..RunFilter::default()
    };
    let runs = ctx
        .store
        .page_runs(&ctx.env, &filter)
        .map_err(|e| TaskError::Retry(format!("reading runs failed: {e}")))?;
    let t = |v: Option<DateTime<Utc>>| v.map(format_time).unwrap_or_default();
    if kind == "runs-json" {
        let rows: Vec<_> = runs
            .iter()
            .map(|r| serde_json::json!({"id": r.id, "schedule_id": r.schedule_id, "state": r.state.as_str(),
                "queued_at": format_time(r.queued_at), "started_at": t(r.started_at), "finished_at": t(r.finished_at), "attempts": r.attempts}))
            .collect();
        return serde_json::to_vec_pretty(&rows).map_err(|e| TaskError::Abort(e.to_string()));
    }
    let mut csv = String::from("id,schedule_id,state,queued_at,started_at,finished_at,attempts\n");
    for r in &runs {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            r.id,
            r.schedule_id,
            r.state.as_str(),
            format_time(r.queued_at),
            t(r.started_at),
            t(r.finished_at),
            r.attempts
        ));
    }
    Ok(csv.into_bytes())
}
