//! The OpenAPI document, written from the route table's contract (design §9).

use serde_json::{json, Value};

/// (method, path, least role, summary, success status)
const OPERATIONS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "post",
        "/api/v1/tokens",
        "none",
        "Create an API token from a username and password (shown once)",
        "201",
    ),
    (
        "get",
        "/api/v1/tokens",
        "signed in",
        "The caller's tokens (never their text)",
        "200",
    ),
    (
        "delete",
        "/api/v1/tokens/{id}",
        "signed in",
        "Revoke one of the caller's tokens",
        "204",
    ),
    (
        "put",
        "/api/v1/me/password",
        "signed in",
        "Change the caller's password",
        "204",
    ),
    (
        "get",
        "/api/v1/environments",
        "signed in",
        "Environments the caller has a role in",
        "200",
    ),
    (
        "post",
        "/api/v1/environments",
        "admin",
        "Create an environment",
        "201",
    ),
    (
        "get",
        "/api/v1/environments/{id}",
        "admin",
        "One environment",
        "200",
    ),
    (
        "put",
        "/api/v1/environments/{id}",
        "admin",
        "Replace an environment",
        "200",
    ),
    ("get", "/api/v1/users", "admin", "Users", "200"),
    ("post", "/api/v1/users", "admin", "Create a user", "201"),
    ("get", "/api/v1/users/{name}", "admin", "One user", "200"),
    (
        "put",
        "/api/v1/users/{name}",
        "admin",
        "Replace a user (without password: keeps it)",
        "200",
    ),
    (
        "delete",
        "/api/v1/users/{name}",
        "admin",
        "Delete a user",
        "204",
    ),
    (
        "get",
        "/api/v1/audit",
        "admin",
        "The audit log, newest first",
        "200",
    ),
    (
        "get",
        "/api/v1/kinds",
        "signed in",
        "Task kinds with their parameters and outputs",
        "200",
    ),
    (
        "post",
        "/api/v1/trigger-preview",
        "signed in",
        "Describe a trigger and list its next five times",
        "200",
    ),
    (
        "get",
        "/api/v1/envs/{env}/schedules",
        "viewer",
        "Schedules of an environment",
        "200",
    ),
    (
        "post",
        "/api/v1/envs/{env}/schedules",
        "operator",
        "Create a schedule",
        "201",
    ),
    (
        "get",
        "/api/v1/envs/{env}/schedules/{id}",
        "viewer",
        "One schedule",
        "200",
    ),
    (
        "put",
        "/api/v1/envs/{env}/schedules/{id}",
        "operator",
        "Replace a schedule whole",
        "200",
    ),
    (
        "delete",
        "/api/v1/envs/{env}/schedules/{id}",
        "operator",
        "Delete a schedule",
        "204",
    ),
    (
        "post",
        "/api/v1/envs/{env}/schedules/{id}/run",
        "operator",
        "Run now (Idempotency-Key honoured)",
        "202",
    ),
    (
        "get",
        "/api/v1/envs/{env}/runs",
        "viewer",
        "Run history, newest first",
        "200",
    ),
    (
        "get",
        "/api/v1/envs/{env}/runs/{id}",
        "viewer",
        "One run",
        "200",
    ),
    (
        "get",
        "/api/v1/envs/{env}/runs/{id}/log",
        "viewer",
        "A run's log",
        "200",
    ),
    (
        "post",
        "/api/v1/envs/{env}/runs/{id}/cancel",
        "operator",
        "Cancel a queued or running run",
        "202",
    ),
    (
        "post",
        "/api/v1/envs/{env}/runs/{id}/retry",
        "operator",
        "Start a finished run again",
        "202",
    ),
    (
        "get",
        "/api/v1/envs/{env}/files",
        "viewer",
        "The environment's file store",
        "200",
    ),
    (
        "get",
        "/api/v1/envs/{env}/files/{name}",
        "viewer",
        "Download a file (newest version)",
        "200",
    ),
    ("get", "/healthz", "none", "Liveness", "200"),
    ("get", "/metrics", "none", "Prometheus metrics", "200"),
    (
        "get",
        "/api/v1/openapi.json",
        "none",
        "This document",
        "200",
    ),
];

pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, role, summary, status) in OPERATIONS {
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "summary": summary,
            "description": format!("Least role: {role}."),
            "parameters": params,
            "responses": {
                *status: {"description": "success"},
                "400": {"$ref": "#/components/responses/Error"},
                "401": {"$ref": "#/components/responses/Error"},
                "403": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"},
                "409": {"$ref": "#/components/responses/Error"},
                "413": {"$ref": "#/components/responses/Error"},
                "422": {"$ref": "#/components/responses/Error"}
            }
        });
        if *role == "none" {
            op["security"] = json!([]);
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Baton", "version": env!("CARGO_PKG_VERSION")},
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"},
                    "details": {"type": "array", "items": {"type": "object", "properties": {
                        "field": {"type": "string"}, "message": {"type": "string"},
                        "line": {"type": "integer", "nullable": true}, "column": {"type": "integer", "nullable": true}}}}}}}}
            },
            "responses": {"Error": {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}
        }
    })
}
