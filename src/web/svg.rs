//! Drawings made on the server: the dashboard's runs-per-hour chart and a run's lineage
//! graph. Every text is escaped here, since the result is inserted as markup.

use std::fmt::Write;

use crate::domain::RunState;

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The colour class of a state (the stylesheet gives it a colour).
pub fn state_class(state: &str) -> &'static str {
    match state {
        "succeeded" => "s-ok",
        "failed" => "s-fail",
        "timed_out" => "s-timeout",
        "cancelled" => "s-cancel",
        "running" => "s-run",
        _ => "s-queue",
    }
}

/// Stacked bars, one per hour: (label, [(state, count)]).
pub fn hourly_chart(hours: &[(String, Vec<(RunState, u64)>)]) -> String {
    let (w, h, pad) = (720.0_f64, 180.0_f64, 24.0_f64);
    let max = hours
        .iter()
        .map(|(_, c)| c.iter().map(|(_, n)| *n).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let bar = (w - pad) / hours.len().max(1) as f64;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {w} {}" role="img" aria-label="Runs per hour by state, last 24 hours">"#,
        h + 20.0
    );
    let _ = write!(
        out,
        r#"<text x="0" y="12" class="axis">{}</text>"#,
        max as u64
    );
    for (i, (label, counts)) in hours.iter().enumerate() {
        let x = pad + i as f64 * bar;
        let mut y = h;
        for (state, n) in counts {
            let bh = (*n as f64 / max) * (h - 16.0);
            y -= bh;
            let _ = write!(
                out,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{bh:.1}" class="{}"><title>{}: {n} {}</title></rect>"#,
                (bar - 2.0).max(1.0),
                state_class(state.as_str()),
                escape(label),
                state.as_str()
            );
        }
        if i % 3 == 0 {
            let _ = write!(
                out,
                r#"<text x="{x:.1}" y="{}" class="axis">{}</text>"#,
                h + 14.0,
                escape(label)
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// One run in a lineage graph.
pub struct Node {
    pub id: String,
    pub env: String,
    pub label: String,
    pub state: String,
    pub depth: u32,
    /// Where it links; `None` when the viewer may not see that environment.
    pub href: Option<String>,
    pub parent: Option<String>,
    pub current: bool,
}

/// Column width, row height, box width and box height of the lineage graph.
const COL_W: f64 = 230.0;
const ROW_H: f64 = 64.0;
const BOX_W: f64 = 200.0;
const BOX_H: f64 = 48.0;

/// Columns by depth, one row per node in each column, edges parent → child.
pub fn lineage(nodes: &[Node]) -> String {
    let max_depth = nodes.iter().map(|n| n.depth).max().unwrap_or(0);
    let mut rows_in: Vec<usize> = vec![0; max_depth as usize + 1];
    let mut pos = Vec::with_capacity(nodes.len());
    for n in nodes {
        let d = n.depth as usize;
        pos.push((10.0 + d as f64 * COL_W, 10.0 + rows_in[d] as f64 * ROW_H));
        rows_in[d] += 1;
    }
    let width = 20.0 + (max_depth as f64 + 1.0) * COL_W;
    let height = 20.0 + rows_in.iter().copied().max().unwrap_or(1) as f64 * ROW_H;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="lineage" viewBox="0 0 {width} {height}" width="{width}" role="img" aria-label="Lineage: the runs before and after this one">"#
    );
    for (i, n) in nodes.iter().enumerate() {
        let Some(p) = n
            .parent
            .as_ref()
            .and_then(|p| nodes.iter().position(|m| &m.id == p))
        else {
            continue;
        };
        let (x1, y1) = (pos[p].0 + BOX_W, pos[p].1 + BOX_H / 2.0);
        let (x2, y2) = (pos[i].0, pos[i].1 + BOX_H / 2.0);
        let _ = write!(
            out,
            r#"<path class="edge" d="M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}"/>"#,
            x1 + 15.0,
            x2 - 15.0
        );
    }
    for (n, (x, y)) in nodes.iter().zip(pos) {
        lineage_node(&mut out, n, x, y);
    }
    out.push_str("</svg>");
    out
}

/// One run's box (a link to it, unless it is the run shown).
fn lineage_node(out: &mut String, n: &Node, x: f64, y: f64) {
    let cls = format!(
        "node {}{}",
        state_class(&n.state),
        if n.current { " current" } else { "" }
    );
    let body = format!(
        r#"<rect x="{x:.1}" y="{y:.1}" rx="6" width="{BOX_W}" height="{BOX_H}" class="{cls}"/><text x="{:.1}" y="{:.1}" class="t1">{}</text><text x="{:.1}" y="{:.1}" class="t2">{} · {}</text>"#,
        x + 10.0,
        y + 20.0,
        escape(&truncate(&n.label, 26)),
        x + 10.0,
        y + 38.0,
        escape(&n.env),
        escape(&n.state)
    );
    match &n.href {
        Some(h) => {
            let _ = write!(out, r#"<a href="{}">{body}</a>"#, escape(h));
        }
        None => out.push_str(&body),
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        let nodes = [Node {
            id: "a".into(),
            env: "e".into(),
            label: "\"><script>alert(1)</script>".into(),
            state: "succeeded".into(),
            depth: 0,
            href: Some("/x?a=1&b=2".into()),
            parent: None,
            current: true,
        }];
        let svg = lineage(&nodes);
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains("a=1&amp;b=2"));
    }
}
