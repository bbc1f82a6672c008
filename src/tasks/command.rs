use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use super::{
    cap_text, parse_bool, KindSpec, Outputs, ParamProblems, ParamSpec, TaskContext, TaskError,
    TaskKind, OUTPUT_CAP,
};

/// Runs a program from the operator's allowlist, never through a shell, with a clean
/// environment (so Baton's own variables, the master key among them, never reach it).
pub struct Command;

static SPEC: KindSpec = KindSpec {
    name: "command",
    params: &[
        ParamSpec {
            name: "Program",
            required: true,
            secret: false,
            default: None,
            description: "Absolute path of a program on the --allow-command list",
            example: "/usr/bin/env",
        },
        ParamSpec {
            name: "Args",
            required: false,
            secret: false,
            default: Some("[]"),
            description: "A JSON array of strings",
            example: "[\"--date\", \"@DATE@\"]",
        },
        ParamSpec {
            name: "WorkingDir",
            required: false,
            secret: false,
            default: Some(""),
            description: "Directory to run in",
            example: "/tmp",
        },
        ParamSpec {
            name: "Env",
            required: false,
            secret: false,
            default: Some(""),
            description: "Lines of K=V",
            example: "LANG=C",
        },
        ParamSpec {
            name: "SaveStdout",
            required: false,
            secret: false,
            default: Some("false"),
            description: "Store stdout in the file store (FileName output)",
            example: "true",
        },
    ],
    outputs: &["ExitCode", "Stdout", "FileName"],
};

fn parse_args(v: &str) -> Result<Vec<String>, String> {
    serde_json::from_str::<Vec<String>>(v)
        .map_err(|_| "Args must be a JSON array of strings".to_string())
}

fn parse_env(v: &str) -> Result<Vec<(String, String)>, String> {
    v.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| match l.split_once('=') {
            Some((k, val)) if !k.is_empty() => Ok((k.to_string(), val.to_string())),
            _ => Err(format!("Env line {} must look like K=V", i + 1)),
        })
        .collect()
}

impl TaskKind for Command {
    fn spec(&self) -> &'static KindSpec {
        &SPEC
    }

    fn validate(&self, p: &HashMap<&str, &str>, problems: &mut ParamProblems<'_>) {
        if let Some(prog) = p.get("Program") {
            if !Path::new(prog).is_absolute() {
                problems.push("Program", "Program must be an absolute path");
            }
        }
        if let Some(Err(e)) = p.get("Args").map(|v| parse_args(v)) {
            problems.push("Args", e);
        }
        if let Some(Err(e)) = p.get("Env").map(|v| parse_env(v)) {
            problems.push("Env", e);
        }
        if let Some(v) = p.get("SaveStdout") {
            if parse_bool(v).is_none() {
                problems.push("SaveStdout", "SaveStdout must be true or false");
            }
        }
    }

    fn run<'a>(&'a self, ctx: &'a TaskContext) -> BoxFuture<'a, Result<Outputs, TaskError>> {
        async move { run_command(ctx).await }.boxed()
    }
}

async fn run_command(ctx: &TaskContext) -> Result<Outputs, TaskError> {
    let program = ctx.required("Program")?;
    if !ctx
        .settings
        .allowed_commands
        .iter()
        .any(|a| a == Path::new(&program))
    {
        return Err(TaskError::Abort(format!(
            "{program} is not on the allowlist (start baton with --allow-command {program})"
        )));
    }
    let args = parse_args(&ctx.param(&SPEC, "Args")).map_err(TaskError::Abort)?;
    let env = parse_env(&ctx.param(&SPEC, "Env")).map_err(TaskError::Abort)?;
    let save = parse_bool(&ctx.param(&SPEC, "SaveStdout")).unwrap_or(false);
    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(&args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let dir = ctx.param(&SPEC, "WorkingDir");
    if !dir.is_empty() {
        cmd.current_dir(dir);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| TaskError::Abort(format!("cannot start {program}: {e}")))?;
    ctx.info(format!(
        "started {program} (pid {})",
        child.id().unwrap_or(0)
    ));
    let pgid = child.id();
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| TaskError::Abort("no stdout".into()))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| TaskError::Abort("no stderr".into()))?;
    let read_out = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match stdout.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                // Keep reading past the cap so the child never blocks on a full pipe.
                Ok(n) => buf.extend_from_slice(
                    &chunk[..n.min((OUTPUT_CAP * 16).saturating_sub(buf.len()))],
                ),
            }
        }
        buf
    };
    let read_err = async {
        let mut lines = BufReader::new(stderr).lines();
        let mut logged = 0usize;
        while let Ok(Some(line)) = lines.next_line().await {
            if logged < OUTPUT_CAP {
                logged += line.len();
                ctx.log
                    .push(ctx.clock.now(), "stderr", cap_text(line, 4096));
            }
        }
    };
    let work = async { tokio::join!(read_out, read_err, child.wait()) };
    let (out, (), status) = tokio::select! {
        r = work => r,
        () = ctx.cancel.cancelled() => {
            kill_group(pgid);
            return Err(TaskError::Stopped);
        }
    };
    let status =
        status.map_err(|e| TaskError::Retry(format!("waiting for {program} failed: {e}")))?;
    let code = status
        .code()
        .map_or_else(|| "signal".to_string(), |c| c.to_string());
    ctx.info(format!("exited with {code}"));
    let mut outputs = Outputs::new();
    outputs.insert("ExitCode".into(), code.clone());
    outputs.insert(
        "Stdout".into(),
        cap_text(String::from_utf8_lossy(&out).into_owned(), OUTPUT_CAP),
    );
    if save {
        let name = format!("stdout-{}.txt", ctx.run_id);
        ctx.store
            .write_file(&ctx.env, &name, &out, Some(ctx.run_id), ctx.clock.now())
            .map_err(|e| TaskError::Retry(format!("saving stdout failed: {e}")))?;
        outputs.insert("FileName".into(), name);
    }
    if status.success() {
        Ok(outputs)
    } else {
        Err(TaskError::Retry(format!("{program} exited with {code}")))
    }
}

/// Kills the whole process group the child leads, so grandchildren die with it.
fn kill_group(pgid: Option<u32>) {
    if let Some(pid) = pgid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: killpg only sends a signal; a stale id at worst fails with ESRCH.
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
    }
}
