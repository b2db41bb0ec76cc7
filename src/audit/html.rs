//! `report.html`: one self-contained file (no network) with inline SVG charts and tables that sort
//! and filter. Every string that came from an API is HTML-escaped.

use super::report::{AuditReport, FindingTable, HistogramBin, Metric, OperationCount, TrendPoint};
use std::fmt::Write;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header{background:#1d2330;color:#fff;padding:18px 28px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#b9c0cc}main{padding:20px 28px;max-width:1280px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:12px;margin-bottom:20px}
.card{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card .v{font-size:22px;font-weight:600}.card .l{color:#5b6475;font-size:12px}
section{background:#fff;border-radius:8px;padding:16px 18px;margin-bottom:18px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
section h2{font-size:16px;margin:0 0 10px}.grid2{display:grid;grid-template-columns:1fr 1fr;gap:18px}
@media(max-width:900px){.grid2{grid-template-columns:1fr}}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e6e8ec}
th{cursor:pointer;background:#fafbfc;user-select:none}th.sorted-asc::after{content:" ▲"}th.sorted-desc::after{content:" ▼"}
input.filter{width:280px;padding:5px 8px;margin:0 0 8px;border:1px solid #cfd4dc;border-radius:5px}
.sev-critical{color:#b3261e;font-weight:600}.sev-warning{color:#a15c00;font-weight:600}.sev-info{color:#3b5b92}
section.warning{border-left:4px solid #a15c00}.breached{color:#b3261e;font-weight:600}.ok{color:#1e7d32}.muted{color:#5b6475}
svg text{font:11px system-ui,sans-serif;fill:#3a4150}
"#;

const SCRIPT: &str = r#"
document.querySelectorAll('table.sortable').forEach(function(table){
  var heads=table.querySelectorAll('th');
  heads.forEach(function(th,i){th.addEventListener('click',function(){
    var asc=!th.classList.contains('sorted-asc');
    heads.forEach(function(h){h.classList.remove('sorted-asc','sorted-desc');});
    th.classList.add(asc?'sorted-asc':'sorted-desc');
    var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){var x=a.cells[i].textContent,y=b.cells[i].textContent;
      var nx=parseFloat(x),ny=parseFloat(y);
      var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return asc?c:-c;});
    rows.forEach(function(r){body.appendChild(r);});
  });});
});
document.querySelectorAll('input.filter').forEach(function(input){
  input.addEventListener('input',function(){
    var table=document.getElementById(input.getAttribute('data-table'));var q=input.value.toLowerCase();
    Array.prototype.forEach.call(table.tBodies[0].rows,function(r){
      r.style.display=r.textContent.toLowerCase().indexOf(q)>=0?'':'none';});
  });
});
// Lets a headless browser check confirm the script ran to the end without an error.
document.body.setAttribute('data-ready','1');
"#;

/// Renders the whole report.
pub fn render(report: &AuditReport) -> String {
    let mut html = String::new();
    let title = format!("contactsync audit — {}", report.pipeline);
    let _ = write!(
        html,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body>",
        escape(&title)
    );
    let against = report
        .against_run
        .as_deref()
        .map(|r| format!(", compared with run {}", escape(r)))
        .unwrap_or_default();
    let _ = write!(
        html,
        "<header><h1>{}</h1><p>Run {}{against} · generated {}</p></header><main>",
        escape(&title),
        escape(&report.run_id),
        escape(&report.generated_at)
    );
    for warning in &report.warnings {
        let _ = write!(
            html,
            "<section class=\"warning\"><strong class=\"sev-warning\">Warning</strong> {}</section>",
            escape(warning)
        );
    }
    html.push_str(&cards(&report.summary));
    if !report.thresholds.is_empty() {
        html.push_str("<section><h2>Thresholds</h2><table><thead><tr><th>Check</th><th>Limit</th><th>Actual</th><th>Result</th></tr></thead><tbody>");
        for t in &report.thresholds {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
                escape(&t.name),
                t.limit,
                t.actual,
                if t.breached { "breached" } else { "ok" },
                if t.breached { "breached" } else { "ok" }
            );
        }
        html.push_str("</tbody></table></section>");
    }
    html.push_str("<div class=\"grid2\">");
    let _ = write!(
        html,
        "<section><h2>Sync funnel</h2>{}</section>",
        funnel_svg(&report.funnel)
    );
    let _ = write!(
        html,
        "<section><h2>Match scores of candidate pairs</h2>{}</section>",
        histogram_svg(&report.score_histogram)
    );
    let _ = write!(
        html,
        "<section><h2>Operations by kind and outcome</h2>{}</section>",
        operations_svg(&report.operations)
    );
    let _ = write!(
        html,
        "<section><h2>Trend across runs</h2>{}</section>",
        trend_svg(&report.trend)
    );
    html.push_str("</div>");
    for (i, table) in report.findings.iter().enumerate() {
        html.push_str(&finding_section(i, table));
    }
    let _ = write!(html, "</main><script>{SCRIPT}</script></body></html>");
    html
}

fn cards(metrics: &[Metric]) -> String {
    let mut out = String::from("<div class=\"cards\">");
    for m in metrics {
        let _ = write!(
            out,
            "<div class=\"card\"><div class=\"v\">{}</div><div class=\"l\">{}</div></div>",
            escape(&m.display()),
            escape(&m.label)
        );
    }
    out.push_str("</div>");
    out
}

/// Horizontal bars, one per funnel step.
fn funnel_svg(steps: &[Metric]) -> String {
    if steps.is_empty() {
        return "<p class=\"muted\">No data.</p>".into();
    }
    let max = steps.iter().map(|s| s.value).fold(1.0_f64, f64::max);
    let row = 28.0;
    let height = row * steps.len() as f64 + 10.0;
    let mut svg = format!(
        "<svg role=\"img\" aria-label=\"Sync funnel\" viewBox=\"0 0 560 {height}\" width=\"100%\">"
    );
    for (i, s) in steps.iter().enumerate() {
        let y = i as f64 * row + 4.0;
        let w = (s.value / max) * 330.0;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\">{}</text><rect x=\"190\" y=\"{y}\" width=\"{w:.1}\" height=\"20\" fill=\"#3b6fd8\" rx=\"3\"></rect>\
<text x=\"{:.1}\" y=\"{}\">{}</text>",
            y + 14.0,
            escape(&s.label),
            196.0 + w,
            y + 14.0,
            escape(&s.display())
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Stacked vertical bars: accepted (green) and rejected (grey) pairs per score bin.
fn histogram_svg(bins: &[HistogramBin]) -> String {
    if bins.is_empty() {
        return "<p class=\"muted\">No scored pairs in this run.</p>".into();
    }
    let max = bins
        .iter()
        .map(|b| (b.accepted + b.rejected) as f64)
        .fold(1.0_f64, f64::max);
    let width = 540.0;
    let bar = width / bins.len() as f64;
    let mut svg = String::from(
        "<svg role=\"img\" aria-label=\"Match score histogram\" viewBox=\"0 0 560 220\" width=\"100%\">",
    );
    for (i, b) in bins.iter().enumerate() {
        let x = 10.0 + i as f64 * bar;
        let total = (b.accepted + b.rejected) as f64;
        let h_total = total / max * 170.0;
        let h_acc = b.accepted as f64 / max * 170.0;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#c4cad4\"><title>{:.2}–{:.2}: {} rejected</title></rect>\
<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#2e9d5b\"><title>{:.2}–{:.2}: {} accepted</title></rect>",
            185.0 - h_total,
            (bar - 2.0).max(1.0),
            h_total - h_acc,
            b.low,
            b.high,
            b.rejected,
            185.0 - h_acc,
            (bar - 2.0).max(1.0),
            h_acc,
            b.low,
            b.high,
            b.accepted
        );
    }
    let _ = write!(
        svg,
        "<text x=\"10\" y=\"205\">0</text><text x=\"275\" y=\"205\">0.5</text><text x=\"535\" y=\"205\">1</text>\
<text x=\"360\" y=\"14\">■ accepted</text><text x=\"450\" y=\"14\" style=\"fill:#8a93a3\">■ rejected</text></svg>"
    );
    svg
}

fn status_colour(status: &str) -> &'static str {
    match status {
        "succeeded" | "applied" => "#2e9d5b",
        "failed" => "#c0392b",
        "skipped" => "#d39e00",
        "planned" => "#3b6fd8",
        _ => "#8a93a3",
    }
}

/// One row per kind, a segment per outcome.
fn operations_svg(ops: &[OperationCount]) -> String {
    if ops.is_empty() {
        return "<p class=\"muted\">No operations were planned.</p>".into();
    }
    let mut kinds: Vec<&str> = ops.iter().map(|o| o.kind.as_str()).collect();
    kinds.sort();
    kinds.dedup();
    let max = kinds
        .iter()
        .map(|k| {
            ops.iter()
                .filter(|o| o.kind == *k)
                .map(|o| o.count)
                .sum::<u64>() as f64
        })
        .fold(1.0_f64, f64::max);
    let row = 26.0;
    let height = row * kinds.len() as f64 + 30.0;
    let mut svg = format!(
        "<svg role=\"img\" aria-label=\"Operations\" viewBox=\"0 0 560 {height}\" width=\"100%\">"
    );
    for (i, kind) in kinds.iter().enumerate() {
        let y = i as f64 * row + 4.0;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\">{}</text>",
            y + 14.0,
            escape(kind)
        );
        let mut x = 150.0;
        for o in ops.iter().filter(|o| o.kind == *kind) {
            let w = o.count as f64 / max * 380.0;
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"18\" fill=\"{}\"><title>{} {}: {}</title></rect>",
                status_colour(&o.status),
                escape(kind),
                escape(&o.status),
                o.count
            );
            x += w;
        }
        let total: u64 = ops
            .iter()
            .filter(|o| o.kind == *kind)
            .map(|o| o.count)
            .sum();
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\">{total}</text>",
            x + 4.0,
            y + 14.0
        );
    }
    let legend_y = height - 8.0;
    let mut lx = 150.0;
    for status in ["planned", "succeeded", "failed", "skipped"] {
        let _ = write!(
            svg,
            "<rect x=\"{lx}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"></rect><text x=\"{}\" y=\"{legend_y}\">{status}</text>",
            legend_y - 9.0,
            status_colour(status),
            lx + 14.0
        );
        lx += 90.0;
    }
    svg.push_str("</svg>");
    svg
}

/// Lines of contacts and duplicate clusters across runs.
fn trend_svg(points: &[TrendPoint]) -> String {
    if points.len() < 2 {
        return "<p class=\"muted\">The trend appears from the second run on.</p>".into();
    }
    type Series = (&'static str, &'static str, fn(&TrendPoint) -> u64);
    let series: [Series; 4] = [
        ("contacts", "#3b6fd8", |p| p.contacts),
        ("duplicate clusters", "#d35400", |p| p.duplicate_clusters),
        ("opted out", "#8e44ad", |p| p.opted_out),
        ("failed operations", "#c0392b", |p| p.failed_operations),
    ];
    let max = points
        .iter()
        .flat_map(|p| series.iter().map(move |(_, _, f)| f(p)))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let step = 520.0 / (points.len() - 1) as f64;
    let mut svg = String::from(
        "<svg role=\"img\" aria-label=\"Trend\" viewBox=\"0 0 560 220\" width=\"100%\">",
    );
    for (si, (name, colour, f)) in series.iter().enumerate() {
        let path: Vec<String> = points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!(
                    "{:.1},{:.1}",
                    20.0 + i as f64 * step,
                    185.0 - f(p) as f64 / max * 165.0
                )
            })
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"></polyline>\
<text x=\"{}\" y=\"212\" style=\"fill:{colour}\">— {name}</text>",
            path.join(" "),
            20 + si * 130
        );
        // A dot per run with its value on hover, and the latest value written at the end.
        for (i, p) in points.iter().enumerate() {
            let (x, y) = (20.0 + i as f64 * step, 185.0 - f(p) as f64 / max * 165.0);
            let _ = write!(
                svg,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{colour}\"><title>{}: {} {name}</title></circle>",
                escape(&p.run_id),
                f(p)
            );
            if i + 1 == points.len() {
                let _ = write!(
                    svg,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" style=\"fill:{colour}\">{}</text>",
                    x - 4.0,
                    y - 5.0,
                    f(p)
                );
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

fn finding_section(index: usize, table: &FindingTable) -> String {
    let id = format!("finding-{index}");
    let mut out = format!(
        "<section><h2><span class=\"sev-{}\">{}</span> · {} <span class=\"muted\">({} rows, {}.csv)</span></h2><p class=\"muted\">{}</p>",
        escape(&table.severity),
        escape(&table.severity),
        escape(&table.title),
        table.rows.len(),
        escape(&table.id),
        escape(&table.description)
    );
    if table.rows.is_empty() {
        out.push_str("<p class=\"ok\">None.</p></section>");
        return out;
    }
    let _ = write!(
        out,
        "<input class=\"filter\" type=\"search\" placeholder=\"Filter…\" data-table=\"{id}\"><table class=\"sortable\" id=\"{id}\"><thead><tr>"
    );
    for c in &table.columns {
        let _ = write!(out, "<th>{}</th>", escape(c));
    }
    out.push_str("</tr></thead><tbody>");
    // The page stays fast: the full list is in the CSV.
    for row in table.rows.iter().take(2_000) {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape(cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    if table.rows.len() > 2_000 {
        let _ = write!(
            out,
            "<p class=\"muted\">First 2,000 of {} rows shown; all are in {}.csv.</p>",
            table.rows.len(),
            escape(&table.id)
        );
    }
    out.push_str("</section>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_text_is_escaped_everywhere() {
        let report = AuditReport {
            pipeline: "<script>alert(1)</script>".into(),
            run_id: "r\"1".into(),
            findings: vec![FindingTable {
                id: "x".into(),
                title: "t".into(),
                severity: "critical".into(),
                description: "d".into(),
                columns: vec!["name".into()],
                rows: vec![vec!["<img src=x onerror=alert(1)>".into()]],
            }],
            ..Default::default()
        };
        let html = render(&report);
        assert!(!html.contains("<script>alert"));
        assert!(!html.contains("<img src=x"));
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("r&quot;1"));
    }

    #[test]
    fn charts_are_inline_svg_and_nothing_is_fetched() {
        let report = AuditReport {
            funnel: vec![Metric::count("read", 10), Metric::count("matched", 7)],
            score_histogram: vec![HistogramBin {
                low: 0.9,
                high: 1.0,
                accepted: 3,
                rejected: 1,
            }],
            operations: vec![OperationCount {
                kind: "add_tags".into(),
                status: "succeeded".into(),
                count: 4,
            }],
            ..Default::default()
        };
        let html = render(&report);
        assert!(html.matches("<svg").count() >= 3);
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no network"
        );
    }
}
