//! The command line (design §9). Every flag is also a `BATON_*` variable.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::domain::{SystemClock, User};
use crate::service::{open_baton, Config, EnvironmentInput, Service, ServiceError, UserInput};

#[derive(Debug, Parser)]
#[command(
    name = "baton",
    version,
    about = "A job scheduler whose heart is safe task chaining"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Where the database, the file store and the master key live.
    #[arg(
        long,
        env = "BATON_DATA_DIR",
        default_value = "./baton-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// The master key file (default: <data-dir>/master.key). BATON_MASTER_KEY (64 hex) wins.
    #[arg(long, env = "BATON_MASTER_KEY_FILE", global = true)]
    pub master_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to serve on; port 0 picks a free one.
    #[arg(
        long,
        env = "BATON_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,
    /// An absolute path the `command` kind may run (repeatable).
    #[arg(
        long,
        env = "BATON_ALLOW_COMMAND",
        value_delimiter = ',',
        global = true
    )]
    pub allow_command: Vec<PathBuf>,
    /// Extra CA certificates (PEM) trusted for FTPS uploads.
    #[arg(long, env = "BATON_FTP_CA_FILE", global = true)]
    pub ftp_ca_file: Option<PathBuf>,
    #[arg(
        long,
        env = "BATON_MAX_CONCURRENT_RUNS",
        default_value_t = 32,
        global = true
    )]
    pub max_concurrent_runs: usize,
    #[arg(
        long,
        env = "BATON_MAX_CHAIN_DEPTH",
        default_value_t = 32,
        global = true
    )]
    pub max_chain_depth: u32,
    /// How long a file token lives (90s, 15m, 24h or seconds).
    #[arg(long, env = "BATON_FILE_TOKEN_TTL", default_value = "24h", value_parser = parse_duration, global = true)]
    pub file_token_ttl: Duration,
    /// How long running runs get to finish on SIGTERM or SIGINT.
    #[arg(long, env = "BATON_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration, global = true)]
    pub shutdown_grace: Duration,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Run the server on a fresh temporary data dir seeded with a demo: two environments, a
    /// user per role (printed as `USER PASSWORD ROLE`), schedules, a cross-environment chain
    /// and some history.
    Demo,
    /// Manage environments.
    #[command(subcommand)]
    Env(EnvCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage encryption keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Create an environment.
    Add {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "UTC")]
        time_zone: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; prints `password: PW` unless --password-stdin.
    Add {
        name: String,
        #[arg(long)]
        admin: bool,
        /// ENV=ROLE (viewer, operator, integration); repeatable.
        #[arg(long = "role")]
        roles: Vec<String>,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user; the token is the last line printed.
    Create {
        user: String,
        #[arg(long, default_value = "cli")]
        label: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// New data keys and everything re-sealed; with --new-master-key-file, the data keys
    /// re-wrapped under that key, which becomes the key file.
    Rotate {
        #[arg(long)]
        new_master_key_file: Option<PathBuf>,
    },
}

/// `90s`, `15m`, `24h`, or bare seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (like 90s, 15m, 24h)"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{text:?}: the unit is s, m or h")),
    };
    Ok(Duration::from_secs(secs))
}

fn config(global: &GlobalArgs, serve: &ServeArgs, start_engine: bool) -> Config {
    Config {
        data_dir: global.data_dir.clone(),
        master_key_file: global.master_key_file.clone(),
        master_key_hex: std::env::var("BATON_MASTER_KEY")
            .ok()
            .filter(|v| !v.is_empty()),
        max_concurrent_runs: serve.max_concurrent_runs,
        max_chain_depth: serve.max_chain_depth,
        file_token_ttl: serve.file_token_ttl,
        allow_commands: serve.allow_command.clone(),
        ftp_ca_file: serve.ftp_ca_file.clone(),
        admin_password: std::env::var("BATON_ADMIN_PASSWORD")
            .ok()
            .filter(|v| !v.is_empty()),
        start_engine,
    }
}

/// Runs the command line; the error is printed by `main`.
pub async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Some(Command::Demo) => {
            let dir = std::env::temp_dir().join(format!("baton-demo-{}", uuid::Uuid::now_v7()));
            let global = GlobalArgs {
                data_dir: dir.clone(),
                master_key_file: None,
            };
            let mut cfg = config(&global, &cli.serve, true);
            cfg.master_key_hex = None;
            println!("demo data dir: {}", dir.display());
            crate::server::serve(cfg, cli.serve, true).await
        }
        None | Some(Command::Serve) => {
            crate::server::serve(config(&cli.global, &cli.serve, true), cli.serve, false).await
        }
        Some(cmd) => admin_command(config(&cli.global, &cli.serve, false), cmd).await,
    }
}

async fn admin_command(cfg: Config, cmd: Command) -> Result<(), String> {
    let baton = open_baton(&cfg, Arc::new(SystemClock))
        .await
        .map_err(|e| e.to_string())?;
    if let Some(first) = &baton.first_start {
        println!("admin password: {}", first.admin_password);
    }
    let service = baton.service;
    let actor = cli_actor(&service);
    match cmd {
        Command::Serve | Command::Demo => Ok(()),
        Command::Env(EnvCommand::Add {
            id,
            name,
            time_zone,
        }) => add_environment(&service, &actor, id, name, time_zone),
        Command::User(UserCommand::Add {
            name,
            admin,
            roles,
            password_stdin,
        }) => add_user(&service, &actor, name, admin, roles, password_stdin).await,
        Command::Token(TokenCommand::Create { user, label }) => {
            create_token(&service, &user, label)
        }
        Command::Keys(KeysCommand::Rotate {
            new_master_key_file,
        }) => {
            let msg = crate::service::rotate_keys(&service, &cfg, new_master_key_file.as_deref())
                .map_err(problems_text)?;
            println!("{msg}");
            Ok(())
        }
    }
    .inspect(|()| {
        let _ = std::io::stdout().flush();
    })
}

/// Who the command line acts as: the admin account renamed `baton-cli` (so the audit log
/// tells them apart), or a stand-in admin when there is no `admin`.
fn cli_actor(service: &Service) -> User {
    match service.store.user("admin").ok().flatten() {
        Some(mut admin) => {
            admin.username = "baton-cli".into();
            admin
        }
        None => User {
            username: "baton-cli".into(),
            password_hash: String::new(),
            admin: true,
            roles: Default::default(),
            created_at: service.clock.now(),
        },
    }
}

/// A service error as the command line prints it: one `field: message` line a problem.
fn problems_text(e: ServiceError) -> String {
    match e {
        ServiceError::Validation(p) => {
            p.0.iter()
                .map(|d| format!("{}: {}", d.field, d.message))
                .collect::<Vec<_>>()
                .join("\n")
        }
        other => other.to_string(),
    }
}

/// `baton env add`.
fn add_environment(
    service: &Service,
    actor: &User,
    id: String,
    name: Option<String>,
    time_zone: String,
) -> Result<(), String> {
    let env = service
        .create_environment(
            actor,
            EnvironmentInput {
                id: Some(id),
                name,
                time_zone: Some(time_zone),
                max_concurrent_runs: None,
                created_at: None,
            },
        )
        .map_err(problems_text)?;
    println!("environment {} created ({})", env.id, env.time_zone);
    Ok(())
}

/// `baton user add`: the password is read from stdin or made up and printed.
async fn add_user(
    service: &Service,
    actor: &User,
    name: String,
    admin: bool,
    roles: Vec<String>,
    password_stdin: bool,
) -> Result<(), String> {
    let password = if password_stdin {
        read_password_line()?
    } else {
        crate::crypto::random_token(15)
    };
    let input = UserInput {
        username: Some(name.clone()),
        password: Some(password.clone()),
        admin: Some(admin),
        roles: Some(role_map(roles)?),
        created_at: None,
    };
    service
        .save_user(actor, input, None)
        .await
        .map_err(problems_text)?;
    println!("user {name} created");
    if !password_stdin {
        println!("password: {password}");
    }
    Ok(())
}

/// One line of stdin, without its line ending.
fn read_password_line() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// `--role ENV=ROLE` flags as the roles map a user carries.
fn role_map(roles: Vec<String>) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for r in roles {
        let (env, role) = r
            .split_once('=')
            .ok_or_else(|| format!("--role {r:?}: write ENV=ROLE"))?;
        map.insert(env.to_string(), role.to_string());
    }
    Ok(map)
}

/// `baton token create`: the token is printed last.
fn create_token(service: &Service, user: &str, label: String) -> Result<(), String> {
    if service
        .store
        .user(user)
        .map_err(|e| e.to_string())?
        .is_none()
    {
        return Err(format!("no user {user:?}"));
    }
    let (_, text) = service.create_token(user, label).map_err(problems_text)?;
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_or_bare_seconds() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("1d").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
