//! The request log: method, path, status and time for every request, with the text of a
//! file token in a path replaced, so a capability never lands in a log.

use std::future::Future;
use std::time::Instant;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use futures_util::FutureExt;

/// `…/file-tokens/bft_…` → `…/file-tokens/[redacted]`.
pub fn redact(path: &str) -> String {
    let mut out = Vec::new();
    let mut after_tokens = false;
    for seg in path.split('/') {
        if after_tokens && seg.starts_with(crate::domain::chain::FILE_TOKEN_PREFIX) {
            out.push("[redacted]");
        } else {
            out.push(seg);
        }
        after_tokens = seg == "file-tokens";
    }
    out.join("/")
}

pub fn log_requests<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let start = Instant::now();
    let method = req.method().clone();
    // The query string is left out: it is where callers put their own secrets by mistake.
    let path = redact(req.path());
    srv.call(req).map(move |res| {
        let status = res.as_ref().map_or(500, |r| r.status().as_u16());
        tracing::info!(target: "baton::access", "{method} {path} {status} {:.1}ms", start.elapsed().as_secs_f64() * 1000.0);
        res
    })
}

/// The caller's IP address as the sign-in throttle keys it ("unknown" without one).
pub fn peer_ip(req: &actix_web::HttpRequest) -> String {
    req.peer_addr()
        .map_or_else(|| "unknown".to_string(), |a| a.ip().to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_segments_are_redacted() {
        let t = format!("bft_{}", "a".repeat(43));
        assert_eq!(
            super::redact(&format!("/api/v1/envs/x/file-tokens/{t}")),
            "/api/v1/envs/x/file-tokens/[redacted]"
        );
        assert_eq!(
            super::redact("/api/v1/envs/x/file-tokens/0190-id"),
            "/api/v1/envs/x/file-tokens/0190-id"
        );
        assert_eq!(super::redact("/envs/x/runs"), "/envs/x/runs");
    }
}
