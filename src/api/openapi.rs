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
    // The chaining routes (design §9); they were missing from this document, so tools
    // reading it did not see them. One path per shape: the file token's GET (by its text)
    // and DELETE (by its id) share `/file-tokens/{token}`, as OpenAPI allows no two paths
    // that differ only in a parameter's name.
    (
        "post",
        "/api/v1/envs/{env}/schedules/{id}/chain-preview",
        "integration",
        "Resolve the schedule's async-TaskChain against its last run; changes nothing",
        "200",
    ),
    (
        "post",
        "/api/v1/envs/{env}/chain-preview",
        "integration",
        "Resolve the chain of an unsaved form {kind, params, value}; changes nothing",
        "200",
    ),
    (
        "get",
        "/api/v1/envs/{env}/chains",
        "integration",
        "Chains of an environment",
        "200",
    ),
    (
        "post",
        "/api/v1/envs/{env}/chains",
        "integration",
        "Create a chain",
        "201",
    ),
    (
        "get",
        "/api/v1/envs/{env}/chains/{name}",
        "integration",
        "One chain",
        "200",
    ),
    (
        "put",
        "/api/v1/envs/{env}/chains/{name}",
        "integration",
        "Replace a chain",
        "200",
    ),
    (
        "delete",
        "/api/v1/envs/{env}/chains/{name}",
        "integration",
        "Delete a chain (409 while an async-TaskChain names it)",
        "204",
    ),
    (
        "get",
        "/api/v1/envs/{env}/shared-chains",
        "integration",
        "Chains other environments offer this one",
        "200",
    ),
    (
        "post",
        "/api/v1/envs/{env}/runs/{id}/hops/{n}/refire",
        "integration",
        "Re-check and fire hop n of a run as the schedule now defines it",
        "202",
    ),
    (
        "get",
        "/api/v1/envs/{env}/runs/{id}/params/{name}/file",
        "viewer",
        "The file a token parameter of this run grants",
        "200",
    ),
    (
        "get",
        "/api/v1/envs/{env}/file-tokens",
        "integration",
        "File tokens minted from this environment's files (never their text)",
        "200",
    ),
    (
        "get",
        "/api/v1/envs/{env}/file-tokens/{token}",
        "viewer",
        "Download through a file token granted to this environment",
        "200",
    ),
    (
        "delete",
        "/api/v1/envs/{env}/file-tokens/{token}",
        "integration",
        "Revoke a file token (here {token} is the token's id)",
        "204",
    ),
    (
        "get",
        "/api/v1/envs/{env}/uploads",
        "viewer",
        "FileUpload listings",
        "200",
    ),
    (
        "get",
        "/api/v1/envs/{env}/uploads/{image_id}",
        "viewer",
        "Download an upload",
        "200",
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
