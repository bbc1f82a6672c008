use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use suppaftp::tokio::{AsyncRustlsConnector, AsyncRustlsFtpStream};
use suppaftp::types::FileType;

use super::source_file::read_source_file;
use super::{
    or_stopped, parse_bool, KindSpec, Outputs, ParamProblems, ParamSpec, TaskContext, TaskError,
    TaskKind,
};

/// Uploads a file to an FTP server: plain FTP, or explicit FTPS (`Secure=true`).
pub struct FtpUpload;

static SPEC: KindSpec = KindSpec {
    name: "ftp-upload",
    params: &[
        ParamSpec {
            name: "SourceFile",
            required: true,
            secret: false,
            default: None,
            description: "A file name in this environment's file store, or a file token",
            example: "@FileToken@",
        },
        ParamSpec {
            name: "Host",
            required: true,
            secret: false,
            default: None,
            description: "FTP server host name",
            example: "ftp.partner.example",
        },
        ParamSpec {
            name: "Port",
            required: false,
            secret: false,
            default: Some("21"),
            description: "FTP control port",
            example: "21",
        },
        ParamSpec {
            name: "Username",
            required: false,
            secret: false,
            default: Some("anonymous"),
            description: "FTP user",
            example: "upload",
        },
        ParamSpec {
            name: "Password",
            required: false,
            secret: true,
            default: Some(""),
            description: "FTP password (always sealed)",
            example: "",
        },
        ParamSpec {
            name: "Directory",
            required: false,
            secret: false,
            default: Some("/"),
            description: "Remote directory",
            example: "/incoming",
        },
        ParamSpec {
            name: "Secure",
            required: false,
            secret: false,
            default: Some("false"),
            description: "true: explicit FTPS (AUTH TLS)",
            example: "true",
        },
    ],
    outputs: &["FTP-URL"],
};

fn parse_port(v: &str) -> Result<u16, String> {
    v.trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("Port must be 1–65535, not {v:?}"))
}

impl TaskKind for FtpUpload {
    fn spec(&self) -> &'static KindSpec {
        &SPEC
    }

    fn validate(&self, p: &HashMap<&str, &str>, problems: &mut ParamProblems<'_>) {
        if let Some(Err(e)) = p.get("Port").map(|v| parse_port(v)) {
            problems.push("Port", e);
        }
        if p.get("Secure").is_some_and(|v| parse_bool(v).is_none()) {
            problems.push("Secure", "Secure must be true or false");
        }
    }

    fn run<'a>(&'a self, ctx: &'a TaskContext) -> BoxFuture<'a, Result<Outputs, TaskError>> {
        async move { or_stopped(&ctx.cancel, upload(ctx)).await? }.boxed()
    }
}

async fn upload(ctx: &TaskContext) -> Result<Outputs, TaskError> {
    let (name, bytes) = read_source_file(ctx, &ctx.required("SourceFile")?)?;
    let host = ctx.required("Host")?;
    let port = parse_port(&ctx.param(&SPEC, "Port")).map_err(TaskError::Abort)?;
    let user = ctx.param(&SPEC, "Username");
    let password = ctx.param(&SPEC, "Password");
    let dir = ctx.param(&SPEC, "Directory");
    let secure = parse_bool(&ctx.param(&SPEC, "Secure")).unwrap_or(false);
    let retry = |what: &str, e: suppaftp::FtpError| TaskError::Retry(format!("{what} failed: {e}"));
    ctx.info(format!(
        "connecting to {host}:{port}{}",
        if secure { " (FTPS)" } else { "" }
    ));
    let mut ftp = AsyncRustlsFtpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| retry("connecting", e))?;
    if secure {
        let connector =
            AsyncRustlsConnector::from(tokio_rustls::TlsConnector::from(tls_config(ctx)?));
        ftp = ftp
            .into_secure(connector, &host)
            .await
            .map_err(|e| retry("starting TLS", e))?;
    }
    ftp.login(user.as_str(), password.as_str())
        .await
        .map_err(|e| TaskError::Abort(format!("login as {user} failed: {e}")))?;
    ftp.transfer_type(FileType::Binary)
        .await
        .map_err(|e| retry("binary mode", e))?;
    if !dir.is_empty() && dir != "/" {
        ftp.cwd(&dir)
            .await
            .map_err(|e| TaskError::Abort(format!("cannot enter directory {dir}: {e}")))?;
    }
    let mut reader = std::io::Cursor::new(bytes);
    let sent = ftp
        .put_file(&name, &mut reader)
        .await
        .map_err(|e| retry("upload", e))?;
    let _ = ftp.quit().await;
    let scheme = if secure { "ftps" } else { "ftp" };
    let path = format!("{}/{}", dir.trim_end_matches('/'), name);
    let url = format!(
        "{scheme}://{host}:{port}{}",
        if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        }
    );
    ctx.info(format!("uploaded {sent} bytes to {url}"));
    Ok(Outputs::from([("FTP-URL".to_string(), url)]))
}

/// Mozilla's roots, plus the operator's own CA file (`--ftp-ca-file`) for private servers.
fn tls_config(ctx: &TaskContext) -> Result<Arc<rustls::ClientConfig>, TaskError> {
    use rustls_pki_types::pem::PemObject;
    crate::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &ctx.settings.extra_ca_file {
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| TaskError::Abort(format!("cannot read {}: {e}", path.display())))?;
        for cert in certs {
            let cert = cert.map_err(|e| {
                TaskError::Abort(format!("bad certificate in {}: {e}", path.display()))
            })?;
            roots.add(cert).map_err(|e| {
                TaskError::Abort(format!("bad certificate in {}: {e}", path.display()))
            })?;
        }
    }
    Ok(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}
