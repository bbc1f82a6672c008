use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::source_file::read_source_file;
use super::{KindSpec, Outputs, ParamSpec, TaskContext, TaskError, TaskKind};

/// Stores a file in the FileUpload table; its row id is the `ImageID` output.
pub struct FileStore;

static SPEC: KindSpec = KindSpec {
    name: "file-store",
    params: &[ParamSpec {
        name: "SourceFile",
        required: true,
        secret: false,
        default: None,
        description: "A file name in this environment's file store, or a file token",
        example: "@FileToken@",
    }],
    outputs: &["ImageID"],
};

impl TaskKind for FileStore {
    fn spec(&self) -> &'static KindSpec {
        &SPEC
    }

    fn run<'a>(&'a self, ctx: &'a TaskContext) -> BoxFuture<'a, Result<Outputs, TaskError>> {
        async move {
            let (name, bytes) = read_source_file(ctx, &ctx.required("SourceFile")?)?;
            let upload = ctx
                .store
                .write_upload(&ctx.env, &name, &bytes, Some(ctx.run_id), ctx.clock.now())
                .map_err(|e| TaskError::Retry(format!("storing the upload failed: {e}")))?;
            ctx.info(format!(
                "stored {name} ({} bytes) as upload {}",
                upload.size, upload.id
            ));
            Ok(Outputs::from([(
                "ImageID".to_string(),
                upload.id.to_string(),
            )]))
        }
        .boxed()
    }
}
