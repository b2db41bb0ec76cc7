//! Unit tests of `html`.

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

/// The text of each `<text class="CLASS">` in `svg`.
fn texts(svg: &str, class: &str) -> Vec<String> {
    let marker = format!("<text class=\"{class}\"");
    svg.match_indices(&marker)
        .map(|(i, _)| {
            let rest = &svg[i..];
            let open = rest.find('>').expect("tag end") + 1;
            let close = rest.find("</text>").expect("closed");
            rest[open..close].to_string()
        })
        .collect()
}

#[test]
fn charts_have_axes_tick_labels_and_counts() {
    let report = AuditReport {
        funnel: vec![Metric::count("read", 10), Metric::count("matched", 7)],
        score_histogram: vec![
            HistogramBin {
                low: 0.8,
                high: 0.9,
                accepted: 0,
                rejected: 6,
            },
            HistogramBin {
                low: 0.9,
                high: 1.0,
                accepted: 3,
                rejected: 1,
            },
        ],
        operations: vec![
            OperationCount {
                kind: "add_tags".into(),
                status: "succeeded".into(),
                count: 4,
            },
            OperationCount {
                kind: "add_tags".into(),
                status: "failed".into(),
                count: 2,
            },
        ],
        trend: vec![
            TrendPoint {
                run_id: "20261204T121500Z-0001".into(),
                contacts: 100,
                ..Default::default()
            },
            TrendPoint {
                run_id: "20261205T121500Z-0002".into(),
                contacts: 120,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let html = render(&report);
    let svgs: Vec<&str> = html
        .split("<svg")
        .skip(1)
        .map(|s| &s[..s.find("</svg>").expect("closed svg")])
        .collect();
    assert_eq!(svgs.len(), 4, "funnel, histogram, operations, trend");
    for svg in &svgs {
        assert!(
            svg.matches("class=\"axis\"").count() >= 2,
            "axis lines: {svg}"
        );
    }
    let (funnel, histogram, operations, trend) = (svgs[0], svgs[1], svgs[2], svgs[3]);
    assert_eq!(texts(funnel, "tick"), ["0", "5", "10"]);
    assert_eq!(texts(funnel, "count"), ["10", "7"]);
    assert_eq!(
        texts(histogram, "tick"),
        ["0", "2", "4", "6", "0.8", "0.9", "1"]
    );
    assert_eq!(texts(histogram, "count"), ["6", "4"]);
    assert!(histogram.contains(">match probability</text>"));
    assert_eq!(texts(operations, "tick"), ["0", "2", "4", "6"]);
    assert_eq!(texts(operations, "count"), ["6"]);
    assert_eq!(
        texts(trend, "tick"),
        ["0", "50", "100", "150", "12-04 12:15", "12-05 12:15"]
    );
    // Each point of each series carries its value: contacts 100 and 120, the rest 0.
    let counts = texts(trend, "count");
    assert_eq!(counts.len(), 8);
    assert!(counts.contains(&"100".to_string()) && counts.contains(&"120".to_string()));
}

#[test]
fn ticks_are_round_and_reach_the_maximum() {
    assert_eq!(ticks(0.0), [0.0, 1.0]);
    assert_eq!(ticks(7.0), [0.0, 2.0, 4.0, 6.0, 8.0]);
    assert_eq!(ticks(120.0), [0.0, 50.0, 100.0, 150.0]);
    assert_eq!(ticks(1000.0), [0.0, 500.0, 1000.0]);
}
