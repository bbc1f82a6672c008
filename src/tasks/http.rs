use std::collections::HashMap;
use std::sync::OnceLock;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::{
    cap_text, or_stopped, parse_bool, KindSpec, Outputs, ParamProblems, ParamSpec, TaskContext,
    TaskError, TaskKind, OUTPUT_CAP,
};

/// Calls a URL with reqwest (rustls).
pub struct Http {
    client: OnceLock<Result<reqwest::Client, String>>,
}

impl Http {
    pub fn new() -> Self {
        Self {
            client: OnceLock::new(),
        }
    }

    fn client(&self) -> Result<&reqwest::Client, TaskError> {
        self.client
            .get_or_init(|| {
                crate::install_crypto_provider();
                reqwest::Client::builder()
                    .user_agent(concat!("baton/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| TaskError::Abort(format!("cannot build the HTTP client: {e}")))
    }
}

static SPEC: KindSpec = KindSpec {
    name: "http",
    params: &[
        ParamSpec {
            name: "URL",
            required: true,
            secret: false,
            default: None,
            description: "The URL to call (http or https)",
            example: "https://example.com/hook",
        },
        ParamSpec {
            name: "Method",
            required: false,
            secret: false,
            default: Some("GET"),
            description: "HTTP method",
            example: "POST",
        },
        ParamSpec {
            name: "Headers",
            required: false,
            secret: false,
            default: Some(""),
            description: "Lines of `Name: value`",
            example: "Content-Type: application/json",
        },
        ParamSpec {
            name: "Body",
            required: false,
            secret: false,
            default: Some(""),
            description: "Request body",
            example: "{\"run\": \"@RunID@\"}",
        },
        ParamSpec {
            name: "ExpectStatus",
            required: false,
            secret: false,
            default: Some(""),
            description: "Comma list of accepted status codes (default: any 2xx)",
            example: "200,204",
        },
        ParamSpec {
            name: "SaveResponse",
            required: false,
            secret: false,
            default: Some("false"),
            description: "Store the response body in the file store (FileName output)",
            example: "true",
        },
    ],
    outputs: &["StatusCode", "ResponseBody", "FileName"],
};

fn parse_headers(text: &str) -> Result<Vec<(String, String)>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| match line.split_once(':') {
            Some((n, v)) if !n.trim().is_empty() => {
                Ok((n.trim().to_string(), v.trim().to_string()))
            }
            _ => Err(format!(
                "header line {} must look like `Name: value`",
                i + 1
            )),
        })
        .collect()
}

fn parse_expect(text: &str) -> Result<Vec<u16>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.parse::<u16>() {
            Ok(c) if (100..600).contains(&c) => Ok(c),
            _ => Err(format!(
                "ExpectStatus must be a comma list of status codes, not {s:?}"
            )),
        })
        .collect()
}

fn parse_method(m: &str) -> Result<reqwest::Method, String> {
    reqwest::Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("invalid HTTP method {m:?}"))
}

impl TaskKind for Http {
    fn spec(&self) -> &'static KindSpec {
        &SPEC
    }

    fn validate(&self, p: &HashMap<&str, &str>, problems: &mut ParamProblems<'_>) {
        if let Some(u) = p.get("URL") {
            if !(u.contains('@') || u.starts_with("http://") || u.starts_with("https://")) {
                problems.push("URL", "URL must start with http:// or https://");
            }
        }
        type Check = fn(&str) -> Result<(), String>;
        let checks: [(&str, Check); 4] = [
            ("Method", |v| parse_method(v).map(|_| ())),
            ("Headers", |v| parse_headers(v).map(|_| ())),
            ("ExpectStatus", |v| parse_expect(v).map(|_| ())),
            ("SaveResponse", |v| {
                parse_bool(v)
                    .map(|_| ())
                    .ok_or_else(|| "SaveResponse must be true or false".to_string())
            }),
        ];
        for (name, check) in checks {
            if let Some(v) = p.get(name) {
                if let Err(e) = check(v) {
                    problems.push(name, e);
                }
            }
        }
    }

    fn run<'a>(&'a self, ctx: &'a TaskContext) -> BoxFuture<'a, Result<Outputs, TaskError>> {
        async move {
            let url = ctx.required("URL")?;
            let method = parse_method(&ctx.param(&SPEC, "Method")).map_err(TaskError::Abort)?;
            let headers = parse_headers(&ctx.param(&SPEC, "Headers")).map_err(TaskError::Abort)?;
            let expect =
                parse_expect(&ctx.param(&SPEC, "ExpectStatus")).map_err(TaskError::Abort)?;
            let save = parse_bool(&ctx.param(&SPEC, "SaveResponse")).unwrap_or(false);
            let mut req = self.client()?.request(method.clone(), &url);
            for (n, v) in headers {
                req = req.header(n, v);
            }
            let body = ctx.param(&SPEC, "Body");
            if !body.is_empty() {
                req = req.body(body);
            }
            ctx.info(format!("{method} {}", redact_url(&url)));
            let resp = or_stopped(&ctx.cancel, req.send())
                .await?
                .map_err(|e| TaskError::Retry(format!("request failed: {}", e.without_url())))?;
            let status = resp.status().as_u16();
            let bytes = or_stopped(&ctx.cancel, resp.bytes()).await?.map_err(|e| {
                TaskError::Retry(format!("reading the response failed: {}", e.without_url()))
            })?;
            ctx.info(format!("status {status}, {} bytes", bytes.len()));
            let ok = if expect.is_empty() {
                (200..300).contains(&status)
            } else {
                expect.contains(&status)
            };
            if !ok {
                let msg = format!("unexpected status {status}");
                return Err(if status >= 500 || status == 429 || status == 408 {
                    TaskError::Retry(msg)
                } else {
                    TaskError::Abort(msg)
                });
            }
            let mut out = Outputs::new();
            out.insert("StatusCode".into(), status.to_string());
            out.insert(
                "ResponseBody".into(),
                cap_text(String::from_utf8_lossy(&bytes).into_owned(), OUTPUT_CAP),
            );
            if save {
                let name = format!("http-{}.out", ctx.run_id);
                ctx.store
                    .write_file(&ctx.env, &name, &bytes, Some(ctx.run_id), ctx.clock.now())
                    .map_err(|e| TaskError::Retry(format!("saving the response failed: {e}")))?;
                out.insert("FileName".into(), name);
            }
            Ok(out)
        }
        .boxed()
    }
}

/// Logs show scheme, host and path only: a query string may carry a key.
fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.path()
        ),
        Err(_) => "(invalid URL)".to_string(),
    }
}
