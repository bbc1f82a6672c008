use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{ChildStderr, ChildStdout};

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

/// What one run starts, read from its parameters.
struct Invocation {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    working_dir: String,
    save_stdout: bool,
}

impl Invocation {
    /// The run's parameters, parsed; a program off the allowlist is refused here.
    fn read(ctx: &TaskContext) -> Result<Self, TaskError> {
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
        Ok(Self {
            args: parse_args(&ctx.param(&SPEC, "Args")).map_err(TaskError::Abort)?,
            env: parse_env(&ctx.param(&SPEC, "Env")).map_err(TaskError::Abort)?,
            save_stdout: parse_bool(&ctx.param(&SPEC, "SaveStdout")).unwrap_or(false),
            working_dir: ctx.param(&SPEC, "WorkingDir"),
            program,
        })
    }

    /// The process to spawn: no shell, a clean environment, no stdin, and its own process
    /// group so a cancel can kill everything it started.
    fn command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&self.args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        if !self.working_dir.is_empty() {
            cmd.current_dir(&self.working_dir);
        }
        cmd
    }
}

async fn run_command(ctx: &TaskContext) -> Result<Outputs, TaskError> {
    let call = Invocation::read(ctx)?;
    let program = &call.program;
    let mut child = call
        .command()
        .spawn()
        .map_err(|e| TaskError::Abort(format!("cannot start {program}: {e}")))?;
    ctx.info(format!(
        "started {program} (pid {})",
        child.id().unwrap_or(0)
    ));
    let pgid = child.id();
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| TaskError::Abort("no stdout".into()))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| TaskError::Abort("no stderr".into()))?;
    let work = async { tokio::join!(read_capped(stdout), log_stderr(ctx, stderr), child.wait()) };
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
    if !status.success() {
        // A failed run has no outputs, so stdout is not saved (no file nothing points to);
        // its start goes to the log, where the person looking into the failure reads.
        log_stdout_head(ctx, &out);
        return Err(TaskError::Retry(format!("{program} exited with {code}")));
    }
    command_outputs(ctx, &code, &out, call.save_stdout)
}

/// The first lines of a failed command's stdout, in the run log (about 4 KiB at most).
fn log_stdout_head(ctx: &TaskContext, out: &[u8]) {
    let text = cap_text(String::from_utf8_lossy(out).into_owned(), 4096);
    for line in text.lines() {
        ctx.log.push(ctx.clock.now(), "stdout", line.to_string());
    }
}

/// Reads stdout to its end, keeping the first sixteen output caps of it.
async fn read_capped(mut stdout: ChildStdout) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match stdout.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            // Keep reading past the cap so the child never blocks on a full pipe.
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n.min((OUTPUT_CAP * 16).saturating_sub(buf.len()))]);
            }
        }
    }
    buf
}

/// Logs stderr line by line until about one output cap has been logged, then reads the rest
/// unlogged so the child never blocks on a full pipe.
async fn log_stderr(ctx: &TaskContext, stderr: ChildStderr) {
    let mut lines = BufReader::new(stderr).lines();
    let mut logged = 0usize;
    while let Ok(Some(line)) = lines.next_line().await {
        if logged < OUTPUT_CAP {
            logged += line.len();
            ctx.log
                .push(ctx.clock.now(), "stderr", cap_text(line, 4096));
        }
    }
}

/// `ExitCode`, `Stdout` (capped) and, when asked, `FileName`: stdout saved in the file store.
fn command_outputs(
    ctx: &TaskContext,
    code: &str,
    out: &[u8],
    save_stdout: bool,
) -> Result<Outputs, TaskError> {
    let mut outputs = Outputs::new();
    outputs.insert("ExitCode".into(), code.to_string());
    outputs.insert(
        "Stdout".into(),
        cap_text(String::from_utf8_lossy(out).into_owned(), OUTPUT_CAP),
    );
    if save_stdout {
        let name = format!("stdout-{}.txt", ctx.run_id);
        ctx.store
            .write_file(&ctx.env, &name, out, Some(ctx.run_id), ctx.clock.now())
            .map_err(|e| TaskError::Retry(format!("saving stdout failed: {e}")))?;
        outputs.insert("FileName".into(), name);
    }
    Ok(outputs)
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
