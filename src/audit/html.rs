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
svg text{font:11px system-ui,sans-serif;fill:#3a4150}svg text.count,svg text.tick{font-size:9.5px}
svg text.axis-title{fill:#5b6475}svg line.axis{stroke:#8a93a3;stroke-width:1}svg line.grid{stroke:#eceef2;stroke-width:1}
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

/// Tick values for an axis from 0 to at least `max`: 0 and multiples of a round step (1, 2 or 5
/// times a power of ten), about four of them. The last tick is the axis' top, so bars and ticks
/// share one scale.
fn ticks(max: f64) -> Vec<f64> {
    let max = max.max(1.0);
    let rough = max / 4.0;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * power)
        .max(1.0);
    let mut out = vec![0.0];
    while *out.last().expect("not empty") < max {
        out.push(out.len() as f64 * step);
    }
    out
}

/// A count as the axis and bar labels write it.
fn count_label(value: f64) -> String {
    format!("{}", value.round() as i64)
}

/// A horizontal value axis under horizontal bars: the axis line, the bars' baseline and a labelled
/// tick per value of `ticks`, spanning `x0..x0 + width` with the baseline from `top` to `bottom`.
fn horizontal_axis(svg: &mut String, ticks: &[f64], x0: f64, width: f64, top: f64, bottom: f64) {
    let top_tick = *ticks.last().expect("ticks");
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{x0}\" y1=\"{top}\" x2=\"{x0}\" y2=\"{bottom}\"></line>\
<line class=\"axis\" x1=\"{x0}\" y1=\"{bottom}\" x2=\"{:.1}\" y2=\"{bottom}\"></line>",
        x0 + width
    );
    for t in ticks {
        let x = x0 + t / top_tick * width;
        let _ = write!(
            svg,
            "<line class=\"axis\" x1=\"{x:.1}\" y1=\"{bottom}\" x2=\"{x:.1}\" y2=\"{:.1}\"></line>\
<text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            bottom + 4.0,
            bottom + 15.0,
            count_label(*t)
        );
    }
}

/// A vertical value axis left of `x0`: the axis line, the baseline to `x1` and a labelled tick and
/// faint grid line per value of `ticks`, from `bottom` (0) up to `top`.
fn vertical_axis(svg: &mut String, ticks: &[f64], x0: f64, x1: f64, top: f64, bottom: f64) {
    let top_tick = *ticks.last().expect("ticks");
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{x0}\" y1=\"{top}\" x2=\"{x0}\" y2=\"{bottom}\"></line>\
<line class=\"axis\" x1=\"{x0}\" y1=\"{bottom}\" x2=\"{x1}\" y2=\"{bottom}\"></line>"
    );
    for t in ticks {
        let y = bottom - t / top_tick * (bottom - top);
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{x0}\" y1=\"{y:.1}\" x2=\"{x1}\" y2=\"{y:.1}\"></line>\
<line class=\"axis\" x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{x0}\" y2=\"{y:.1}\"></line>\
<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            x0 - 4.0,
            x0 - 6.0,
            y + 4.0,
            count_label(*t)
        );
    }
}

/// Horizontal bars, one per funnel step, each with its count, over a contacts axis.
fn funnel_svg(steps: &[Metric]) -> String {
    if steps.is_empty() {
        return "<p class=\"muted\">No data.</p>".into();
    }
    let ticks = ticks(steps.iter().map(|s| s.value).fold(0.0_f64, f64::max));
    let top_tick = *ticks.last().expect("ticks");
    let (x0, width, row) = (190.0, 320.0, 28.0);
    let bottom = row * steps.len() as f64 + 6.0;
    let height = bottom + 36.0;
    let mut svg = format!(
        "<svg role=\"img\" aria-label=\"Sync funnel\" viewBox=\"0 0 560 {height}\" width=\"100%\">"
    );
    for (i, s) in steps.iter().enumerate() {
        let y = i as f64 * row + 4.0;
        let w = (s.value / top_tick) * width;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\">{}</text><rect x=\"{x0}\" y=\"{y}\" width=\"{w:.1}\" height=\"20\" fill=\"#3b6fd8\" rx=\"3\"></rect>\
<text class=\"count\" x=\"{:.1}\" y=\"{}\">{}</text>",
            y + 14.0,
            escape(&s.label),
            x0 + w + 6.0,
            y + 14.0,
            escape(&s.display())
        );
    }
    horizontal_axis(&mut svg, &ticks, x0, width, 0.0, bottom);
    let _ = write!(
        svg,
        "<text class=\"axis-title\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">contacts</text></svg>",
        x0 + width / 2.0,
        bottom + 30.0
    );
    svg
}

/// Stacked vertical bars: accepted (green) and rejected (grey) pairs per score bin, each bar with
/// its total, over a match-probability axis and a pairs axis.
fn histogram_svg(bins: &[HistogramBin]) -> String {
    if bins.is_empty() {
        return "<p class=\"muted\">No scored pairs in this run.</p>".into();
    }
    let ticks = ticks(
        bins.iter()
            .map(|b| (b.accepted + b.rejected) as f64)
            .fold(0.0_f64, f64::max),
    );
    let top_tick = *ticks.last().expect("ticks");
    let (x0, x1, top, bottom) = (48.0, 550.0, 28.0, 190.0);
    let plot = bottom - top;
    let bar = (x1 - x0 - 2.0) / bins.len() as f64;
    let mut svg = String::from(
        "<svg role=\"img\" aria-label=\"Match score histogram\" viewBox=\"0 0 560 240\" width=\"100%\">",
    );
    vertical_axis(&mut svg, &ticks, x0, x1, top, bottom);
    for (i, b) in bins.iter().enumerate() {
        let x = x0 + 2.0 + i as f64 * bar;
        let total = b.accepted + b.rejected;
        let h_total = total as f64 / top_tick * plot;
        let h_acc = b.accepted as f64 / top_tick * plot;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#c4cad4\"><title>{:.2}–{:.2}: {} rejected</title></rect>\
<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#2e9d5b\"><title>{:.2}–{:.2}: {} accepted</title></rect>",
            bottom - h_total,
            (bar - 2.0).max(1.0),
            h_total - h_acc,
            b.low,
            b.high,
            b.rejected,
            bottom - h_acc,
            (bar - 2.0).max(1.0),
            h_acc,
            b.low,
            b.high,
            b.accepted
        );
        if total > 0 {
            let _ = write!(
                svg,
                "<text class=\"count\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{total}</text>",
                x + (bar - 2.0).max(1.0) / 2.0,
                bottom - h_total - 3.0
            );
        }
    }
    // The bins' edges on the probability axis, at most about eight labels.
    let every = bins.len().div_ceil(8);
    for (i, b) in bins.iter().enumerate() {
        let last = i + 1 == bins.len();
        let edges: &[(f64, f64)] = if last {
            &[(b.low, 0.0), (b.high, 1.0)]
        } else {
            &[(b.low, 0.0)]
        };
        for (edge, offset) in edges {
            if i % every != 0 && *offset == 0.0 {
                continue;
            }
            let x = x0 + 2.0 + (i as f64 + offset) * bar;
            let _ = write!(
                svg,
                "<line class=\"axis\" x1=\"{x:.1}\" y1=\"{bottom}\" x2=\"{x:.1}\" y2=\"{:.1}\"></line>\
<text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                bottom + 4.0,
                bottom + 15.0,
                format_probability(*edge)
            );
        }
    }
    let _ = write!(
        svg,
        "<text class=\"axis-title\" x=\"{:.1}\" y=\"222\" text-anchor=\"middle\">match probability</text>\
<text class=\"axis-title\" x=\"{x0}\" y=\"14\" text-anchor=\"middle\">pairs</text>\
<text x=\"360\" y=\"14\">■ accepted</text><text x=\"450\" y=\"14\" style=\"fill:#8a93a3\">■ rejected</text></svg>",
        (x0 + x1) / 2.0
    );
    svg
}

/// A bin edge: `0.95`, `1`.
fn format_probability(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
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

/// One row per kind, a segment per outcome, the kind's total at the end, over an operations axis.
fn operations_svg(ops: &[OperationCount]) -> String {
    if ops.is_empty() {
        return "<p class=\"muted\">No operations were planned.</p>".into();
    }
    let mut kinds: Vec<&str> = ops.iter().map(|o| o.kind.as_str()).collect();
    kinds.sort();
    kinds.dedup();
    let total_of =
        |kind: &str| -> u64 { ops.iter().filter(|o| o.kind == kind).map(|o| o.count).sum() };
    let ticks = ticks(
        kinds
            .iter()
            .map(|k| total_of(k) as f64)
            .fold(0.0_f64, f64::max),
    );
    let top_tick = *ticks.last().expect("ticks");
    let (x0, width, row) = (150.0, 360.0, 26.0);
    let bottom = row * kinds.len() as f64 + 6.0;
    let height = bottom + 52.0;
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
        let mut x = x0;
        for o in ops.iter().filter(|o| o.kind == *kind) {
            let w = o.count as f64 / top_tick * width;
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
        let _ = write!(
            svg,
            "<text class=\"count\" x=\"{:.1}\" y=\"{}\">{}</text>",
            x + 4.0,
            y + 14.0,
            total_of(kind)
        );
    }
    horizontal_axis(&mut svg, &ticks, x0, width, 0.0, bottom);
    let _ = write!(
        svg,
        "<text class=\"axis-title\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">operations</text>",
        x0 + width / 2.0,
        bottom + 30.0
    );
    let legend_y = height - 6.0;
    let mut lx = x0;
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

/// A run id's time (`20261206T121500Z-3f2a` → `12-06 12:15`), else the id.
fn run_label(run_id: &str) -> String {
    chrono::NaiveDateTime::parse_from_str(run_id.get(..16).unwrap_or(run_id), "%Y%m%dT%H%M%SZ")
        .map(|t| t.format("%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| run_id.to_string())
}

/// Runs up to which every point of the trend carries its value as a label; past that only the
/// latest does (the rest on hover), so the labels stay readable.
const LABELLED_TREND_POINTS: usize = 12;

/// Lines of contacts, duplicate clusters, opt-outs and failed operations across runs, over a runs
/// axis and a count axis.
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
    let ticks = ticks(
        points
            .iter()
            .flat_map(|p| series.iter().map(move |(_, _, f)| f(p)))
            .max()
            .unwrap_or(0) as f64,
    );
    let top_tick = *ticks.last().expect("ticks");
    let (x0, x1, top, bottom) = (48.0, 540.0, 20.0, 180.0);
    let step = (x1 - x0 - 20.0) / (points.len() - 1) as f64;
    let x_of = |i: usize| x0 + 10.0 + i as f64 * step;
    let y_of = |v: u64| bottom - v as f64 / top_tick * (bottom - top);
    let mut svg = String::from(
        "<svg role=\"img\" aria-label=\"Trend\" viewBox=\"0 0 560 245\" width=\"100%\">",
    );
    vertical_axis(&mut svg, &ticks, x0, x1, top, bottom);
    // The runs on the x axis, at most about six labels.
    let every = points.len().div_ceil(6);
    for (i, p) in points.iter().enumerate() {
        if i % every == 0 || i + 1 == points.len() {
            let _ = write!(
                svg,
                "<line class=\"axis\" x1=\"{x:.1}\" y1=\"{bottom}\" x2=\"{x:.1}\" y2=\"{:.1}\"></line>\
<text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                bottom + 4.0,
                bottom + 15.0,
                escape(&run_label(&p.run_id)),
                x = x_of(i)
            );
        }
    }
    let _ = write!(
        svg,
        "<text class=\"axis-title\" x=\"{:.1}\" y=\"212\" text-anchor=\"middle\">run (UTC)</text>",
        (x0 + x1) / 2.0
    );
    for (si, (name, colour, f)) in series.iter().enumerate() {
        let path: Vec<String> = points
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{:.1},{:.1}", x_of(i), y_of(f(p))))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"></polyline>\
<text x=\"{}\" y=\"238\" style=\"fill:{colour}\">— {name}</text>",
            path.join(" "),
            20 + si * 130
        );
        // A dot per run with its value on hover and, while they fit, written beside it.
        for (i, p) in points.iter().enumerate() {
            let (x, y) = (x_of(i), y_of(f(p)));
            let _ = write!(
                svg,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{colour}\"><title>{}: {} {name}</title></circle>",
                escape(&p.run_id),
                f(p)
            );
            if points.len() <= LABELLED_TREND_POINTS || i + 1 == points.len() {
                let _ = write!(
                    svg,
                    "<text class=\"count\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" style=\"fill:{colour}\">{}</text>",
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
mod tests;
