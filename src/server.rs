//! `baton serve`: the engine's loops, the HTTP server, and a shutdown on SIGTERM or SIGINT
//! that stops intake, lets running runs finish within the grace, and exits with all
//! committed.

use std::io::Write;
use std::sync::Arc;

use actix_web::{web, App, HttpServer};

use crate::cli::ServeArgs;
use crate::domain::SystemClock;
use crate::service::{open_baton, Config};

pub async fn serve(cfg: Config, args: ServeArgs, demo: bool) -> Result<(), String> {
    let baton = open_baton(&cfg, Arc::new(SystemClock))
        .await
        .map_err(|e| e.to_string())?;
    let service = baton.service.clone();
    if baton.orphans > 0 {
        tracing::warn!(
            "recovered {} runs interrupted by the last stop",
            baton.orphans
        );
    }
    tokio::spawn(service.engine.clone().dispatch());
    tokio::spawn(service.scheduler.clone().run());
    let demo_users = if demo {
        let pw = baton
            .first_start
            .as_ref()
            .map(|f| f.admin_password.clone())
            .unwrap_or_default();
        crate::demo::seed(&service, &pw)
            .await
            .map_err(|e| format!("seeding the demo failed: {e}"))?
    } else {
        Vec::new()
    };

    let state = web::Data::new(service.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap_fn(crate::web::security_headers)
            .wrap_fn(crate::access_log::log_requests)
            .configure(crate::api::routes)
            .configure(crate::web::routes)
    })
    .disable_signals()
    .shutdown_timeout(args.shutdown_grace.as_secs().max(1))
    .bind(args.listen)
    .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = server.addrs().first().copied().ok_or("no address bound")?;
    let server = server.run();
    let handle = server.handle();
    announce(&baton, &demo_users, addr);
    let server_task = tokio::spawn(server);
    wait_for_signal().await;
    tracing::info!(
        "stopping: no new work; waiting up to {:?} for running runs",
        args.shutdown_grace
    );
    let stop_http = handle.stop(true);
    service.engine.shutdown(args.shutdown_grace).await;
    stop_http.await;
    let _ = server_task.await;
    tracing::info!("stopped");
    Ok(())
}

/// What a person starting Baton needs, on stdout (not the log): the first admin password,
/// the demo's users, and where to point a browser.
fn announce(
    baton: &crate::service::Baton,
    demo_users: &[crate::demo::DemoUser],
    addr: std::net::SocketAddr,
) {
    let mut out = std::io::stdout().lock();
    if let Some(first) = &baton.first_start {
        let _ = writeln!(out, "admin password: {}", first.admin_password);
    }
    for u in demo_users {
        let _ = writeln!(out, "{} {} {}", u.name, u.password, u.role);
    }
    let _ = writeln!(out, "listening on http://{addr}");
    let _ = out.flush();
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for signals; stop with kill -9");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
