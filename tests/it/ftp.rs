//! `ftp-upload` against a real FTP(S) server (libunftp on the local disk) started in the
//! test process: an export in production chains into an upload whose `SourceFile` is
//! `@FileToken@`; the bytes on the FTP server are the exported bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use libunftp::options::FtpsRequired;
use serde_json::{json, Value};
use unftp_core::auth::{AuthenticationError, Authenticator, Credentials, Principal};

use crate::support::*;

const WAIT: Duration = Duration::from_secs(20);
const FTP_USER: &str = "baton";
const FTP_PASSWORD: &str = "ftp-Pa55word-91c2";
const CONTENT: &str = "id,amount\n1,42\n2,7\n";

/// One user with one password.
#[derive(Debug)]
struct OneUser;

#[async_trait::async_trait]
impl Authenticator for OneUser {
    async fn authenticate(
        &self,
        username: &str,
        creds: &Credentials,
    ) -> Result<Principal, AuthenticationError> {
        if username != FTP_USER {
            return Err(AuthenticationError::BadUser);
        }
        if creds.password.as_deref() != Some(FTP_PASSWORD) {
            return Err(AuthenticationError::BadPassword);
        }
        Ok(Principal {
            username: username.to_string(),
        })
    }
}

/// Starts an FTP server on 127.0.0.1 serving `root`; with `tls` (certificate chain PEM,
/// key PEM) it offers explicit FTPS and requires it. Returns the control port.
async fn start_ftp(root: &Path, tls: Option<(PathBuf, PathBuf)>) -> u16 {
    // Two rustls providers may be compiled in; choose the process default before libunftp
    // or the client builds a config.
    baton::install_crypto_provider();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let root = root.to_path_buf();
    let mut builder = libunftp::ServerBuilder::with_authenticator(
        Box::new(move || unftp_sbe_fs::Filesystem::new(root.clone()).expect("ftp root")),
        Arc::new(OneUser),
    )
    .greeting("baton test ftp");
    if let Some((certs, key)) = tls {
        builder = builder
            .ftps(certs, key)
            .ftps_required(FtpsRequired::All, FtpsRequired::All);
    }
    let server = builder.build().expect("ftp server builds");
    tokio::spawn(async move {
        if let Err(e) = server.listen(format!("127.0.0.1:{port}")).await {
            eprintln!("ftp server stopped: {e}");
        }
    });
    // Wait until it accepts connections.
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return port;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the ftp server did not start on {port}");
}

/// Production: an ftp-upload template behind chain `to-ftp`, and a file-export that chains
/// into it with `@FileToken@`. Returns (export schedule id, upload template id).
async fn export_and_upload(admin: &Client<'_>, port: u16, secure: bool) -> (String, String) {
    let upload = admin
        .schedule(
            "production",
            json!({"name": "upload", "kind": "ftp-upload", "trigger": {"type": "manual"},
            "params": [
                {"name": "Host", "value": "127.0.0.1"},
                {"name": "Port", "value": port.to_string()},
                {"name": "Username", "value": FTP_USER},
                {"name": "Password", "value": FTP_PASSWORD, "encrypt": true},
                {"name": "Directory", "value": "/incoming"},
                {"name": "Secure", "value": secure.to_string()}
            ]}),
        )
        .await;
    admin
        .chain(
            "production",
            json!({"name": "to-ftp", "schedule_id": upload}),
        )
        .await;
    let export = admin
        .schedule(
            "production",
            json!({"name": "export", "kind": "file-export", "trigger": {"type": "manual"},
                "params": [
                    {"name": "FileName", "value": "partner.csv"},
                    {"name": "Content", "value": CONTENT},
                    {"name": "async-TaskChain", "value":
                        r#"{"name": "to-ftp", "params": [{"name": "SourceFile", "value": "@FileToken@"}]}"#}
                ]}),
        )
        .await;
    (export, upload)
}

/// Runs the export; returns (export run, the upload run it started, both final).
async fn export_then_upload(admin: &Client<'_>, export: &str) -> (Value, Value) {
    let run = admin.run_now("production", export).await;
    let done = admin.wait_final("production", &run, WAIT).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let kids = done["chain"]["children"].as_array().unwrap().clone();
    assert_eq!(kids.len(), 1, "{done}");
    let child = kids[0]["id"].as_str().unwrap();
    let upload = admin.wait_final("production", child, WAIT).await;
    (done, upload)
}

async fn log_text(admin: &Client<'_>, run: &str) -> String {
    let (_, log) = admin
        .get(&format!("/api/v1/envs/production/runs/{run}/log"))
        .await;
    log.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ftp_upload_sends_the_exported_file() {
    let ftp_root = tempfile::tempdir().unwrap();
    std::fs::create_dir(ftp_root.path().join("incoming")).unwrap();
    let port = start_ftp(ftp_root.path(), None).await;
    let server = Server::start().await;
    let admin = server.admin().await;
    let (export, upload) = export_and_upload(&admin, port, false).await;

    let (_, up) = export_then_upload(&admin, &export).await;
    let id = up["id"].as_str().unwrap();
    assert_eq!(
        up["state"],
        "succeeded",
        "{up}\n{}",
        log_text(&admin, id).await
    );
    assert_eq!(up["origin"], "chain");
    assert_eq!(
        up["outputs"]["FTP-URL"],
        format!("ftp://127.0.0.1:{port}/incoming/partner.csv")
    );
    let uploaded = std::fs::read(ftp_root.path().join("incoming/partner.csv")).unwrap();
    assert_eq!(uploaded, CONTENT.as_bytes(), "the bytes on the FTP server");
    // The password and the token stay masked.
    assert_eq!(param_of(&up, "Password")["value"], Value::Null);
    assert_eq!(param_of(&up, "SourceFile")["value"], Value::Null);
    let shown = format!("{up}{}", log_text(&admin, id).await);
    assert!(
        !shown.contains(FTP_PASSWORD) && !shown.contains("bft_"),
        "{shown}"
    );

    // A new export overwrites the partner's copy with the new version.
    admin
        .edit_schedule("production", &export, |s| {
            s["params"][1]["value"] = json!("id,amount\n3,1\n")
        })
        .await;
    let (_, up) = export_then_upload(&admin, &export).await;
    assert_eq!(up["state"], "succeeded", "{up}");
    let uploaded = std::fs::read(ftp_root.path().join("incoming/partner.csv")).unwrap();
    assert_eq!(uploaded, b"id,amount\n3,1\n");

    // A wrong password fails the run, naming the login, without the password.
    admin
        .edit_schedule("production", &upload, |s| {
            let i = s["params"]
                .as_array()
                .unwrap()
                .iter()
                .position(|p| p["name"] == "Password")
                .unwrap();
            s["params"][i]["value"] = json!("wrong-password");
        })
        .await;
    let by_hand = admin
        .run_now_with(
            "production",
            &upload,
            json!({"params": [{"name": "SourceFile", "value": "partner.csv"}]}),
        )
        .await;
    let failed = admin.wait_final("production", &by_hand, WAIT).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("login"),
        "{failed}"
    );
    assert!(!failed.to_string().contains("wrong-password"));
    drop(server);
}

/// A CA and a leaf certificate for 127.0.0.1, written as PEM files into `dir`: returns
/// (CA file, leaf chain file, leaf key file).
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "baton test CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let mut leaf_params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "127.0.0.1");
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
    let ca_file = dir.join("ca.pem");
    let chain_file = dir.join("server.pem");
    let key_file = dir.join("server.key");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    std::fs::write(&chain_file, format!("{}{}", leaf.pem(), ca.pem())).unwrap();
    std::fs::write(&key_file, leaf_key.serialize_pem()).unwrap();
    (ca_file, chain_file, key_file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ftps_upload_trusts_the_operator_ca() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, chain, key) = make_certs(certs.path());
    let ftp_root = tempfile::tempdir().unwrap();
    std::fs::create_dir(ftp_root.path().join("incoming")).unwrap();
    let port = start_ftp(ftp_root.path(), Some((chain, key))).await;

    // Without the CA the server's certificate is not trusted: the upload fails.
    {
        let server = Server::start().await;
        let admin = server.admin().await;
        let (export, _) = export_and_upload(&admin, port, true).await;
        let (_, up) = export_then_upload(&admin, &export).await;
        assert_eq!(up["state"], "failed", "{up}");
        assert!(
            up["error"].as_str().unwrap().contains("TLS"),
            "the error names TLS: {up}"
        );
        assert!(!ftp_root.path().join("incoming/partner.csv").exists());
    }

    // With --ftp-ca-file it is: explicit FTPS (the server requires TLS on both channels).
    let server = Server::start_with(Options {
        args: vec!["--ftp-ca-file".into(), ca.display().to_string()],
        ..Default::default()
    })
    .await;
    let admin = server.admin().await;
    let (export, _) = export_and_upload(&admin, port, true).await;
    let (_, up) = export_then_upload(&admin, &export).await;
    let id = up["id"].as_str().unwrap();
    assert_eq!(
        up["state"],
        "succeeded",
        "{up}\n{}",
        log_text(&admin, id).await
    );
    assert_eq!(
        up["outputs"]["FTP-URL"],
        format!("ftps://127.0.0.1:{port}/incoming/partner.csv")
    );
    let uploaded = std::fs::read(ftp_root.path().join("incoming/partner.csv")).unwrap();
    assert_eq!(uploaded, CONTENT.as_bytes());
}
