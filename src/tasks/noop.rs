use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::{KindSpec, Outputs, ParamSpec, TaskContext, TaskError, TaskKind};

/// Does nothing but echo its message: for tests, benchmarks and placeholders.
pub struct Noop;

static SPEC: KindSpec = KindSpec {
    name: "noop",
    params: &[ParamSpec {
        name: "Message",
        required: false,
        secret: false,
        default: Some(""),
        description: "Text copied to the Echo output",
        example: "hello from @UserID@",
    }],
    outputs: &["Echo"],
};

impl TaskKind for Noop {
    fn spec(&self) -> &'static KindSpec {
        &SPEC
    }

    fn run<'a>(&'a self, ctx: &'a TaskContext) -> BoxFuture<'a, Result<Outputs, TaskError>> {
        async move {
            let msg = ctx.param(&SPEC, "Message");
            Ok(Outputs::from([("Echo".to_string(), msg)]))
        }
        .boxed()
    }
}
