//! Posted forms: read with the body limit, checked for the session's CSRF token and a
//! same-site origin before anything is done.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};
use futures_util::StreamExt;
use subtle::ConstantTimeEq;

use super::error::WebError;
use super::layout::SignedIn;
use crate::service::ServiceError;

/// A form's fields in order (repeated names kept), with the first value of each name
/// indexed: a form of many rows is read in time proportional to its size.
pub struct PostForm {
    pairs: Vec<(String, String)>,
    first: HashMap<String, usize>,
    same_site: bool,
}

impl FromRequest for PostForm {
    type Error = WebError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, WebError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let same_site = same_site(req);
        let mut payload = payload.take();
        Box::pin(async move {
            let mut buf = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk
                    .map_err(|e| WebError::Service(ServiceError::bad_request(e.to_string())))?;
                if buf.len() + chunk.len() > crate::api::BODY_LIMIT {
                    return Err(WebError::Service(ServiceError::PayloadTooLarge));
                }
                buf.extend_from_slice(&chunk);
            }
            let pairs =
                serde_urlencoded::from_bytes::<Vec<(String, String)>>(&buf).map_err(|e| {
                    WebError::Service(ServiceError::bad_request(format!(
                        "the form could not be read: {e}"
                    )))
                })?;
            Ok(PostForm::new(pairs, same_site))
        })
    }
}

/// Whether `sent` is the session's CSRF token, compared in constant time.
pub fn csrf_matches(sent: &str, me: &SignedIn) -> bool {
    !sent.is_empty() && bool::from(sent.as_bytes().ct_eq(me.session.csrf.as_bytes()))
}

/// Refuses a request another site made: `Sec-Fetch-Site: cross-site`, or an `Origin` whose
/// host is not ours.
fn same_site(req: &HttpRequest) -> bool {
    let h = req.headers();
    if h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
        return false;
    }
    match h.get("origin").and_then(|v| v.to_str().ok()) {
        None | Some("null") => true,
        Some(origin) => {
            let host = h.get("host").and_then(|v| v.to_str().ok()).unwrap_or("");
            origin.split("://").nth(1).is_some_and(|o| o == host)
        }
    }
}

impl PostForm {
    fn new(pairs: Vec<(String, String)>, same_site: bool) -> Self {
        let mut first = HashMap::with_capacity(pairs.len());
        for (i, (k, _)) in pairs.iter().enumerate() {
            first.entry(k.clone()).or_insert(i);
        }
        PostForm {
            pairs,
            first,
            same_site,
        }
    }

    /// The CSRF check every POST makes first.
    pub fn verify(&self, me: &SignedIn) -> Result<(), WebError> {
        let sent = self.get("csrf").unwrap_or("");
        if self.same_site && csrf_matches(sent, me) {
            Ok(())
        } else {
            Err(WebError::Csrf)
        }
    }

    /// For the login form, which has no session yet: only the same-site check.
    pub fn same_site(&self) -> Result<(), WebError> {
        if self.same_site {
            Ok(())
        } else {
            Err(WebError::Csrf)
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        let i = *self.first.get(name)?;
        self.pairs.get(i).map(|(_, v)| v.as_str())
    }

    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").to_string()
    }

    pub fn trimmed(&self, name: &str) -> String {
        self.get(name).unwrap_or("").trim().to_string()
    }

    pub fn checked(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v == "on" || v == "true" || v == "1")
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.pairs
            .iter()
            .any(|(k, v)| k.starts_with(prefix) && !v.is_empty())
    }
}
