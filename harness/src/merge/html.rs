//! The merged soak's page: one self-contained HTML file (no script, no fetch) with what a
//! nightly reader looks at first — what changed since the baseline, each system's
//! conviction rate with its 95 % Wilson interval, the time-to-conviction distribution,
//! timing-sensitive seeds, and every failing run linked to its own report — then the
//! whole table as `soak` prints it.

use std::fmt::Write;
use std::path::Path;

use super::{relative, wilson, Disagreement, Merged, Trend};
use crate::report::escape;

/// z for a 95 % interval.
const Z95: f64 = 1.96;

/// The page, for a file written into folder `at` (links to the runs' reports are relative
/// to it, so the folder and the shards' stores can be moved together).
pub fn page(m: &Merged, trend: Option<&Trend>, at: &Path) -> String {
    let mut s = String::new();
    let code = m.exit_code();
    let verdict = match code {
        0 => "every run valid",
        1 => "CONVICTIONS or failed runs",
        _ => "INCOMPLETE: shards or runs missing or duplicated",
    };
    let _ = write!(
        s,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>chaosbank nightly: {}</title>\n\
         <style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:70em}}\
         table{{border-collapse:collapse}}td,th{{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}}\
         .num{{text-align:right}}.bad{{color:#b00020;font-weight:bold}}.ok{{color:#186a3b}}\
         pre{{background:#f6f6f6;padding:1em;overflow-x:auto}}</style></head><body>\n",
        escape(&m.systems.join(", "))
    );
    let _ = writeln!(
        s,
        "<h1>chaosbank nightly: <span class=\"{}\">{}</span></h1>",
        if code == 0 { "ok" } else { "bad" },
        verdict
    );
    let _ = writeln!(
        s,
        "<p>{} runs ({} × {} seeds) in {} shards; chaosbank {} (commit {}), config {}, nemesis {}, {:?} a run.</p>",
        m.rows.len(),
        escape(&m.systems.join(", ")),
        m.seeds.len(),
        m.shards,
        escape(&m.chaosbank.version),
        escape(&m.chaosbank.commit),
        escape(&m.fingerprint),
        escape(
            &m.config
                .faults
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(",")
        ),
        m.config.time_limit
    );
    let problems = m.problems();
    if !problems.is_empty() {
        s.push_str("<h2 class=\"bad\">Incomplete</h2><ul>");
        for p in &problems {
            let _ = write!(s, "<li>{}</li>", escape(p));
        }
        s.push_str("</ul>\n");
    }
    if let Some(t) = trend {
        s.push_str("<h2>Since the baseline</h2>\n");
        if t.is_empty() {
            s.push_str("<p>No change.</p>\n");
        } else {
            s.push_str("<ul>");
            for line in t.systems.iter().chain(&t.runs) {
                let _ = write!(s, "<li>{}</li>", escape(line));
            }
            s.push_str("</ul>\n");
        }
    }

    s.push_str(
        "<h2>Convictions</h2>\n<table><tr><th>system</th><th class=\"num\">judged</th>\
         <th class=\"num\">convicted</th><th class=\"num\">rate</th><th>95 % interval (Wilson)</th>\
         <th class=\"num\">median first violation</th><th>time to conviction</th></tr>\n",
    );
    let convictions = m.convictions();
    let longest = convictions
        .iter()
        .flat_map(|c| c.times_s.last().copied())
        .fold(1.0_f64, f64::max);
    for c in &convictions {
        let rate = if c.judged == 0 {
            0.0
        } else {
            c.convicted as f64 / c.judged as f64
        };
        let interval = wilson(c.convicted, c.judged, Z95)
            .map(|(lo, hi)| {
                format!(
                    "{}{:.0}–{:.0} %",
                    interval_bar(rate, lo, hi),
                    100.0 * lo,
                    100.0 * hi
                )
            })
            .unwrap_or_else(|| "-".to_string());
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.0} %</td>\
             <td>{interval}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            escape(&c.name),
            c.judged,
            c.convicted,
            100.0 * rate,
            c.median_s().map_or("-".to_string(), |t| format!("{t:.1} s")),
            strip(&c.times_s, c.median_s(), longest)
        );
    }
    s.push_str("</table>\n");
    let _ = writeln!(
        s,
        "<p>Each dot is one convicted run's first violation, 0–{longest:.0} s into the run; \
         the bar is the median.</p>"
    );

    let mut sensitive: Vec<&Disagreement> = m.timing_sensitive.iter().collect();
    if let Some(t) = trend {
        sensitive.extend(&t.timing_sensitive);
    }
    if !sensitive.is_empty() {
        s.push_str("<h2>Timing-sensitive seeds</h2>\n<p>The same system and seed judged differently in two places: the seed pins the workload and the faults, not the timing.</p><ul>");
        for d in sensitive {
            let _ = write!(
                s,
                "<li>{} seed {}: {}</li>",
                escape(&d.name),
                d.seed,
                escape(&d.verdicts.join(", "))
            );
        }
        s.push_str("</ul>\n");
    }

    let failing: Vec<_> = m.rows.iter().filter(|r| !r.passed()).collect();
    let _ = writeln!(s, "<h2>Failing runs ({})</h2>", failing.len());
    if !failing.is_empty() {
        s.push_str(
            "<table><tr><th>system</th><th class=\"num\">seed</th><th>verdict</th>\
             <th class=\"num\">first violation</th><th>anomalies or error</th><th>report</th>\
             <th>minimal schedule</th></tr>\n",
        );
        for r in failing {
            let what = match &r.outcome.error {
                Some(e) => e.lines().next().unwrap_or_default().to_string(),
                None => r
                    .outcome
                    .anomalies
                    .iter()
                    .map(|(k, n)| format!("{k} ×{n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            let link = match &r.dir {
                Some(dir) => {
                    let rel = relative(at, &dir.join("report.html"));
                    format!(
                        "<a href=\"{}\">{}</a>",
                        escape(&rel.display().to_string()),
                        escape(&dir.display().to_string())
                    )
                }
                None => "(no folder: the run failed before it had one)".to_string(),
            };
            let shrunk = minimal(r, at);
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"bad\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{link}</td><td>{shrunk}</td></tr>",
                escape(&r.name),
                r.seed,
                escape(&r.outcome.valid.to_uppercase()),
                r.outcome
                    .first_violation_s
                    .map_or("-".to_string(), |t| format!("{t:.1} s")),
                escape(&what)
            );
        }
        s.push_str("</table>\n");
    }
    let _ = writeln!(
        s,
        "<h2>Every run</h2>\n<pre>{}</pre>\n<p>Inputs: {}</p>\n</body></html>",
        escape(&m.table()),
        escape(
            &m.inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    );
    s
}

/// A failing run's minimal schedule (`soak --shrink`), linked: `12 → 2 faults,
/// reproduced 3 of 3`, why it was not shrunk, or `-`.
fn minimal(r: &crate::soak::Row, at: &Path) -> String {
    let Some(sum) = &r.shrink else {
        return "-".to_string();
    };
    match (&sum.schedule, sum.faults_after) {
        (Some(file), Some(after)) => {
            let mut what = format!("{} → {after} faults", sum.faults_before);
            if let Some(rate) = sum.reproduced {
                what.push_str(&format!(", {rate}"));
            }
            if sum.exhausted {
                what.push_str(" (budget spent)");
            }
            format!(
                "<a href=\"{}\">{}</a>",
                escape(&relative(at, file).display().to_string()),
                escape(&what)
            )
        }
        _ => format!(
            "not shrunk: {}",
            escape(
                sum.error
                    .as_deref()
                    .and_then(|e| e.lines().next())
                    .unwrap_or("no reason given")
            )
        ),
    }
}

/// A 120 px bar: the interval shaded, the rate a tick.
fn interval_bar(rate: f64, lo: f64, hi: f64) -> String {
    let w = 120.0;
    format!(
        "<svg width=\"{w}\" height=\"12\" style=\"vertical-align:middle;margin-right:6px\">\
         <rect x=\"0\" y=\"5\" width=\"{w}\" height=\"2\" fill=\"#ddd\"/>\
         <rect x=\"{:.1}\" y=\"2\" width=\"{:.1}\" height=\"8\" fill=\"#9ab\"/>\
         <rect x=\"{:.1}\" y=\"0\" width=\"2\" height=\"12\" fill=\"#222\"/></svg>",
        lo * w,
        ((hi - lo) * w).max(1.0),
        (rate * w - 1.0).clamp(0.0, w - 2.0)
    )
}

/// A 300 px strip of dots, one per time (seconds), out of `longest`, the median a bar.
fn strip(times: &[f64], median: Option<f64>, longest: f64) -> String {
    if times.is_empty() {
        return "-".to_string();
    }
    let w = 300.0;
    let x = |t: f64| 4.0 + (t / longest).clamp(0.0, 1.0) * (w - 8.0);
    let mut s = format!(
        "<svg width=\"{w}\" height=\"16\"><rect x=\"0\" y=\"7\" width=\"{w}\" height=\"1\" fill=\"#ccc\"/>"
    );
    for &t in times {
        let _ = write!(
            s,
            "<circle cx=\"{:.1}\" cy=\"8\" r=\"3\" fill=\"#b00020\" fill-opacity=\"0.5\"><title>{t:.1} s</title></circle>",
            x(t)
        );
    }
    if let Some(m) = median {
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"1\" width=\"2\" height=\"14\" fill=\"#222\"/>",
            x(m) - 1.0
        );
    }
    s.push_str("</svg>");
    s
}
