use std::collections::HashMap;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::{
    or_stopped, KindSpec, Outputs, ParamProblems, ParamSpec, TaskContext, TaskError, TaskKind,
};

/// Waits a number of seconds (a decimal ≥ 0).
pub struct Sleep;

static SPEC: KindSpec = KindSpec {
    name: "sleep",
    params: &[ParamSpec {
        name: "Seconds",
        required: true,
        secret: false,
        default: None,
        description: "How long to wait, in seconds (a decimal ≥ 0)",
        example: "2.5",
    }],
    outputs: &[],
};

fn parse_seconds(v: &str) -> Result<f64, String> {
    match v.trim().parse::<f64>() {
        Ok(s) if (0.0..=1e9).contains(&s) => Ok(s),
        _ => Err(format!("Seconds must be a decimal number ≥ 0, not {v:?}")),
    }
}

impl TaskKind for Sleep {
    fn spec(&self) -> &'static KindSpec {
        &SPEC
    }

    fn validate(&self, params: &HashMap<&str, &str>, problems: &mut ParamProblems<'_>) {
        if let Some(v) = params.get("Seconds") {
            if let Err(e) = parse_seconds(v) {
                problems.push("Seconds", e);
            }
        }
    }

    fn run<'a>(&'a self, ctx: &'a TaskContext) -> BoxFuture<'a, Result<Outputs, TaskError>> {
        async move {
            let secs = parse_seconds(&ctx.required("Seconds")?).map_err(TaskError::Abort)?;
            ctx.info(format!("sleeping {secs} s"));
            or_stopped(
                &ctx.cancel,
                tokio::time::sleep(std::time::Duration::from_secs_f64(secs)),
            )
            .await?;
            Ok(Outputs::new())
        }
        .boxed()
    }
}
