//! A posted form read back into what the page shows.

use super::super::form::PostForm;
use super::state::{FormState, HopParamRow, HopRow, ParamRow};

/// Reads the posted form back into what the page shows.
pub(super) fn form_from_post(form: &PostForm, env: &str) -> FormState {
    FormState {
        name: form.text("name"),
        description: form.text("description"),
        kind: form.text("kind"),
        enabled: form.checked("enabled"),
        trigger_type: form.get("trigger_type").unwrap_or("manual").to_string(),
        cron_expr: form.trimmed("cron_expr"),
        cron_zone: form.trimmed("cron_zone"),
        interval_seconds: form.trimmed("interval_seconds"),
        once_at: form.trimmed("once_at"),
        params: posted_params(form),
        timeout_seconds: form.trimmed("timeout_seconds"),
        max_attempts: form.trimmed("max_attempts"),
        backoff_seconds: form.trimmed("backoff_seconds"),
        overlap: form.get("overlap").unwrap_or("allow").to_string(),
        catch_up: form.get("catch_up").unwrap_or("skip").to_string(),
        allow_loops: form.checked("allow_loops"),
        hops: posted_hops(form, env),
        chain_json: form.text("chain_json"),
    }
}

/// The parameter rows `p0_…`, `p1_…`, up to the first index not posted.
fn posted_params(form: &PostForm) -> Vec<ParamRow> {
    (0..)
        .take_while(|i| form.get(&format!("p{i}_name")).is_some())
        .map(|i| ParamRow {
            index: i,
            name: form.trimmed(&format!("p{i}_name")),
            value: form.text(&format!("p{i}_value")),
            encrypt: form.checked(&format!("p{i}_encrypt")),
            locked: form.checked(&format!("p{i}_locked")),
            sealed: form.checked(&format!("p{i}_sealed")),
            carry: form.text(&format!("p{i}_carry")),
            error: String::new(),
        })
        .collect()
}

/// The Run another task rows `h0_…`, `h1_…`, up to the first index not posted; a hop with no
/// environment chosen stays in this one.
fn posted_hops(form: &PostForm, env: &str) -> Vec<HopRow> {
    (0..)
        .take_while(|j| form.get(&format!("h{j}_chain")).is_some())
        .map(|j| HopRow {
            index: j,
            env: form
                .get(&format!("h{j}_env"))
                .filter(|e| !e.is_empty())
                .unwrap_or(env)
                .to_string(),
            chain: form.trimmed(&format!("h{j}_chain")),
            when: form
                .get(&format!("h{j}_when"))
                .unwrap_or("success")
                .to_string(),
            params: posted_hop_params(form, j),
        })
        .collect()
}

/// Hop `j`'s parameter rows `hJ_p0_…`, `hJ_p1_…`, up to the first index not posted.
fn posted_hop_params(form: &PostForm, j: usize) -> Vec<HopParamRow> {
    (0..)
        .take_while(|k| form.get(&format!("h{j}_p{k}_name")).is_some())
        .map(|k| HopParamRow {
            index: k,
            name: form.trimmed(&format!("h{j}_p{k}_name")),
            value: form.text(&format!("h{j}_p{k}_value")),
            encrypt: form.checked(&format!("h{j}_p{k}_encrypt")),
            sealed: form.checked(&format!("h{j}_p{k}_sealed")),
            carry: form.text(&format!("h{j}_p{k}_carry")),
        })
        .collect()
}
