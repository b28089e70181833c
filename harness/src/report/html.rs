//! The page: a [`Scan`] and a [`Verdict`] rendered as one self-contained HTML file
//! (inline CSS and SVG, no script, nothing fetched). Read top to bottom: the verdict
//! and counts, the faults, the faults that matter, the timeline, throughput and latency, commit latency, and
//! each anomaly with the slice of history that shows it.

use super::escape::escape;
use super::faults::Window;
use super::scan::{Bar, OpLine, Scan, MAX_BARS, MAX_LANES};
use super::series::{Hist, Merge, BUCKETS};
use checkers::history::OpType;
use checkers::verdict::{AnomalyKind, Finding, Validity, Verdict};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt::Write;

/// Width of every chart's view box.
const W: f64 = 1200.0;
/// Left margin (lane labels, y axis).
const L: f64 = 110.0;
/// Right margin.
const R: f64 = 16.0;
/// Whether an anomaly's name is not a violation ([`AnomalyKind::is_violation`]): shown
/// apart, as the console and JUnit show it.
fn not_violation(name: &str) -> bool {
    !AnomalyKind::name_is_violation(name)
}

/// Findings under a name the verdict holds, counting those not kept.
fn count(verdict: &Verdict, name: &str) -> usize {
    verdict.count_named(name).unwrap_or(0)
}

const OK: &str = "#2e7d32";
const FAIL: &str = "#d32f2f";
const INFO: &str = "#f59e0b";
const OPEN: &str = "#9e9e9e";

const CSS: &str = r#"
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
main{max-width:1280px;margin:0 auto;padding:20px 28px 60px}
h1{font-size:20px;margin:0 0 4px;font-weight:600}
h2{font-size:17px;margin:30px 0 8px;padding-bottom:4px;border-bottom:1px solid #d0d7de}
h3{font-size:15px;margin:18px 0 6px}
.sub{color:#57606a;margin:0 0 14px}
.hero{display:flex;gap:18px;align-items:center;background:#fff;border:1px solid #d0d7de;border-radius:10px;padding:16px 20px}
.badge{font-size:26px;font-weight:800;letter-spacing:.04em;color:#fff;padding:10px 20px;border-radius:8px;white-space:nowrap}
.valid{background:#1a7f37}.invalid{background:#cf222e}.unknown{background:#bf8700}
.lead{font-size:16px}.lead p{margin:2px 0}.lead .first{font-size:14px;color:#57606a}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0 4px}
.card{background:#fff;border:1px solid #d0d7de;border-left:6px solid #cf222e;border-radius:8px;padding:8px 14px;min-width:130px;text-decoration:none;color:inherit}
.card b{display:block;font-size:24px;line-height:1.1}
.card span{color:#57606a;font-size:12.5px}
.card.parked{border-left-color:#0969da}.card.note{border-left-color:#8c959f}
.models{margin:10px 0 0;padding-left:18px}
.warn{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:6px 10px;margin:8px 0}
.panel{background:#fff;border:1px solid #d0d7de;border-radius:10px;padding:10px 12px;margin:8px 0}
svg{display:block;width:100%;height:auto}
svg text{font:11px system-ui,sans-serif;fill:#1f2328}
svg .ax{fill:#57606a}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:12.5px;color:#57606a;margin:4px 2px}
.sw{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:4px;vertical-align:-1px}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0;width:100%}
th,td{border:1px solid #d8dee4;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
td.v{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.finding{background:#fff;border:1px solid #d0d7de;border-left:5px solid #cf222e;border-radius:8px;padding:10px 14px;margin:10px 0}
.finding.parked{border-left-color:#0969da}
.sentence{font-size:15px;margin:0 0 6px}
.meta{color:#57606a;font-size:12.5px}
.t-ok{color:#1a7f37;font-weight:600}.t-fail{color:#cf222e;font-weight:600}.t-info{color:#9a6700;font-weight:600}.t-invoke{color:#57606a}
.more{color:#57606a}
.stats{display:flex;flex-wrap:wrap;gap:22px;margin:6px 2px}
.stats div b{display:block;font-size:18px}
.stats div span{color:#57606a;font-size:12px}
footer{color:#57606a;font-size:12px;margin-top:34px}
"#;

/// What a person should know about an anomaly name, from the history spec.
fn meaning(name: &str) -> &'static str {
    match name {
        "lost" => "debited but never credited, or acknowledged and applied nowhere",
        "duplicated" => "applied more than once",
        "phantom" => "credited but never debited",
        "failed-applied" => "the client was told it failed, yet it shows in a ledger",
        "unexpected" => "a ledger entry or dequeue for something never attempted",
        "amount-mismatch" => "a ledger entry whose account or amount is not the transfer's",
        "ledger-mismatch" => "a final balance differs from initial balance + ledger entries",
        "wrong-total" => "balances do not sum to the initial total",
        "negative" => "a negative balance",
        "unexpected-key" => "a read names an account init did not",
        "null-balance" => "a read returned no balance for an account",
        "parked" => "dead-lettered, waiting for manual intervention (not a violation)",
        "in-flight" => {
            "not credited yet: the system did not drain, so it may still arrive (not a violation; verdict unknown)"
        }
        "recovered" => "dequeued after an enqueue with unknown outcome (not a violation)",
        _ => "",
    }
}

/// Seconds, milliseconds or microseconds, whichever reads best.
pub(crate) fn duration(ns: u64) -> String {
    let s = ns as f64 / 1e9;
    if s >= 120.0 {
        format!("{}m {:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else if s >= 10.0 {
        format!("{s:.1} s")
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else if ns >= 1_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.0} µs", ns as f64 / 1e3)
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn kind_color(t: OpType) -> &'static str {
    match t {
        OpType::Ok => OK,
        OpType::Fail => FAIL,
        OpType::Info => INFO,
        OpType::Invoke => OPEN,
    }
}

fn fault_color(name: &str) -> &'static str {
    match name {
        "kill" | "crash" | "stop-node" => "#e5534b",
        "pause" => "#8250df",
        "partition" | "isolate" | "cut" | "halves" | "start" | "start-partition" => "#0969da",
        "loss" | "delay" => "#1b7c83",
        "clock" => "#bf8700",
        "cut-reply" => "#cf222e",
        _ => "#6e7781",
    }
}

/// Maps times to x coordinates and names them.
struct Axis {
    end: u64,
    timed: bool,
}

impl Axis {
    fn x(&self, t: u64) -> f64 {
        L + (t.min(self.end) as f64 / self.end.max(1) as f64) * (W - L - R)
    }
    fn at(&self, t: u64) -> String {
        if self.timed {
            let s = t as f64 / 1e9;
            if self.end >= 10_000_000_000 {
                format!("{s:.1} s")
            } else if self.end >= 1_000_000_000 {
                format!("{s:.3} s")
            } else if self.end >= 10_000_000 {
                format!("{:.1} ms", s * 1e3)
            } else {
                format!("{:.1} µs", s * 1e6)
            }
        } else {
            format!("op {t}")
        }
    }
    fn span(&self, from: u64, to: u64) -> String {
        if self.timed {
            format!(
                "{} → {} ({})",
                self.at(from),
                self.at(to),
                duration(to - from)
            )
        } else {
            format!("op {from} → op {to}")
        }
    }
    /// Tick positions and labels along the axis.
    fn ticks(&self) -> Vec<(u64, String)> {
        let unit = if self.timed { 1e9 } else { 1.0 };
        let span = self.end.max(1) as f64 / unit;
        let raw = span / 8.0;
        let pow = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .into_iter()
            .map(|m| m * pow)
            .find(|s| *s >= raw)
            .unwrap_or(10.0 * pow)
            .max(if self.timed { 0.0 } else { 1.0 });
        let mut out = Vec::new();
        let mut v = 0.0;
        while v <= span + 1e-9 && out.len() < 40 {
            let t = (v * unit) as u64;
            let label = if self.timed {
                if step >= 1.0 {
                    format!("{v:.0}s")
                } else if step >= 0.01 {
                    format!("{v:.2}s")
                } else {
                    format!("{:.1}ms", v * 1e3)
                }
            } else {
                format!("{v:.0}")
            };
            out.push((t, label));
            v += step;
        }
        out
    }
}

/// Debit→credit latency as a run measured it (`chaosbank run` prints the same figures).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CommitLatency {
    /// Median, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Longest, milliseconds.
    pub max_ms: Option<f64>,
    /// Cross-bank transfers with both rows in the ledgers.
    pub transfers: usize,
}

/// The whole page.
pub(crate) fn page(
    title: &str,
    verdict: &Verdict,
    scan: &Scan,
    per_anomaly: usize,
    measured: Option<&CommitLatency>,
) -> String {
    let axis = Axis {
        end: scan.final_time.unwrap_or(scan.last_time).max(1),
        timed: scan.timed,
    };
    let mut s = String::with_capacity(256 * 1024);
    let _ = writeln!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} — {}</title><style>{CSS}</style></head><body><main>",
        escape(verdict.valid.as_str().to_uppercase().as_str()),
        escape(title)
    );
    header(&mut s, title, verdict, scan, &axis);
    faults_section(&mut s, scan, &axis);
    faults_that_matter(&mut s, verdict, scan, &axis, per_anomaly);
    timeline(&mut s, verdict, scan, &axis);
    charts(&mut s, scan, &axis);
    commits(&mut s, scan, measured);
    anomalies(&mut s, verdict, scan, &axis, per_anomaly);
    let _ = writeln!(
        s,
        "<footer>Made by chaosbank from {} ops. Self-contained: no script, nothing fetched. \
         Drawing limits: up to {MAX_BARS} ops drawn one by one (past that, a grid of counts \
         per lane and time bucket), {MAX_LANES} lanes, {BUCKETS} time buckets, {per_anomaly} \
         findings per anomaly in detail. <code>chaosbank check --json</code> lists every \
         finding.</footer>\n</main></body></html>",
        thousands(scan.ops)
    );
    s
}

fn header(s: &mut String, title: &str, verdict: &Verdict, scan: &Scan, axis: &Axis) {
    let class = verdict.valid.as_str();
    let violations: Vec<(&String, usize)> = verdict
        .anomalies
        .iter()
        .filter(|(n, l)| !not_violation(n) && !l.is_empty())
        .map(|(n, _)| (n, count(verdict, n)))
        .collect();
    let total: usize = violations.iter().map(|(_, n)| n).sum();
    let models: Vec<&str> = verdict.models.keys().map(String::as_str).collect();
    let lead = match verdict.valid {
        Validity::Valid => format!(
            "No anomaly: the history satisfies the {} model{}.",
            models.join(" and "),
            if models.len() > 1 { "s" } else { "" }
        ),
        Validity::Invalid => format!(
            "{} anomal{} of {} kind{}: {}.",
            total,
            if total == 1 { "y" } else { "ies" },
            violations.len(),
            if violations.len() == 1 { "" } else { "s" },
            violations
                .iter()
                .map(|(n, c)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Validity::Unknown => "Could not be judged; see the notes below.".to_owned(),
    };
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for w in &scan.faults.windows {
        match kinds.iter_mut().find(|(k, _)| *k == w.name) {
            Some((_, n)) => *n += 1,
            None => kinds.push((w.name.clone(), 1)),
        }
    }
    let faults = if kinds.is_empty() {
        "No fault windows in the history.".to_owned()
    } else {
        format!(
            "Under {} fault window{}: {}{}.",
            scan.faults.windows.len(),
            if scan.faults.windows.len() == 1 {
                ""
            } else {
                "s"
            },
            kinds
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", "),
            match scan.faults.still_open() {
                0 => String::new(),
                n => format!(" ({n} never healed)"),
            }
        )
    };
    let first = violations
        .first()
        .and_then(|(n, _)| verdict.anomalies.get(*n)?.first())
        .map_or(String::new(), |f| {
            format!(
                "<p class=\"first\">For example: {}</p>",
                escape(&f.sentence)
            )
        });
    // Time to conviction: the earliest op a violation names, as run.json and soak say.
    let client = |i: u64| {
        scan.slice_ops
            .get(&i)
            .is_some_and(|l| l.process.parse::<u64>().is_ok())
    };
    let first = match crate::conviction::first_violation_op(verdict, client) {
        Some((op, anomaly)) => {
            let when = match scan.slice_ops.get(&op) {
                Some(l) if axis.timed => format!(" at {} into the run", duration(l.time)),
                _ => String::new(),
            };
            format!(
                "{first}<p class=\"first\" id=\"first-violation\">First violation: {}{} (op {op}).</p>",
                escape(anomaly),
                escape(&when)
            )
        }
        None => first,
    };
    let length = if axis.timed {
        format!(" over {}", duration(axis.end))
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "<h1>chaosbank report</h1><p class=\"sub\">{}</p>\
         <div class=\"hero\"><div class=\"badge {class}\" id=\"verdict\">{}</div>\
         <div class=\"lead\"><p><b>{}</b></p>{}<p>{}</p><p>{} ops{} — {} client completions, \
         {} never completed.</p></div></div>",
        escape(title),
        escape(&class.to_uppercase()),
        escape(&lead),
        first,
        escape(&faults),
        thousands(scan.ops),
        escape(&length),
        thousands(scan.completions),
        thousands(scan.open_count),
    );
    s.push_str("<div class=\"cards\">");
    for (name, n) in &violations {
        let _ = write!(
            s,
            "<a class=\"card\" href=\"#a-{0}\"><b>{1}</b>{0}<br><span>{2}</span></a>",
            escape(name),
            n,
            escape(meaning(name))
        );
    }
    for (name, n) in verdict.split_counts().1 {
        let _ = write!(
            s,
            "<a class=\"card parked\" href=\"#a-{0}\"><b>{1}</b>{0}<br><span>{2}</span></a>",
            escape(name),
            n,
            escape(meaning(name))
        );
    }
    s.push_str("</div>\n<ul class=\"models\">");
    for (name, m) in &verdict.models {
        let stats: Vec<String> = m
            .stats
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| format!("{} {}", thousands(*v), k))
            .collect();
        let _ = write!(
            s,
            "<li><b>{}</b>: {} — {}</li>",
            escape(name),
            escape(m.valid.as_str()),
            escape(&stats.join(", "))
        );
        for n in &m.notes {
            let _ = write!(s, "<li class=\"more\">note: {}</li>", escape(n));
        }
    }
    s.push_str("</ul>\n");
    for w in &verdict.warnings {
        let _ = write!(s, "<div class=\"warn\">warning: {}</div>", escape(w));
    }
}

fn faults_section(s: &mut String, scan: &Scan, axis: &Axis) {
    let f = &scan.faults;
    s.push_str("<h2>Faults</h2>");
    if f.windows.is_empty() && f.instants.is_empty() {
        s.push_str("<p>The nemesis wrote nothing: no faults.</p>\n");
        return;
    }
    s.push_str(
        "<table><tr><th>fault</th><th>from → to</th><th>ops</th><th>ended by</th>\
         <th>observed</th></tr>",
    );
    for w in f.windows.iter().take(200) {
        let end = w.end_or(axis.end);
        let _ = write!(
            s,
            "<tr><td><span class=\"sw\" style=\"background:{}\"></span>{}</td><td>{}</td>\
             <td class=\"n\">{} → {}</td><td>{}</td><td>{}</td></tr>",
            fault_color(&w.name),
            escape(&w.label),
            escape(&axis.span(w.start, end)),
            w.start_index,
            w.end_op
                .as_ref()
                .map_or("—".to_owned(), |(i, _)| i.to_string()),
            escape(
                &w.end_op
                    .as_ref()
                    .map_or("never healed in the history".to_owned(), |(_, f)| f.clone())
            ),
            escape(w.observed.as_deref().unwrap_or("—")),
        );
    }
    for i in f.instants.iter().take(100) {
        let _ = write!(
            s,
            "<tr><td><span class=\"sw\" style=\"background:#6e7781\"></span>{}</td><td>{}</td>\
             <td class=\"n\">{}</td><td>(an instant, not a window)</td></tr>",
            escape(&i.label),
            escape(&axis.at(i.time)),
            i.index
        );
    }
    s.push_str("</table>");
    let shown = f.windows.len().min(200) + f.instants.len().min(100);
    let all = f.windows.len() + f.instants.len() + f.dropped as usize;
    if all > shown {
        let _ = write!(
            s,
            "<p class=\"more\">… and {} more nemesis ops.</p>",
            all - shown
        );
    }
    s.push('\n');
}

/// Shaded fault windows over a plot area; labels in rows above it when `labels`.
/// Findings listed under each fault in "The faults that matter".
const TIED_PER_FAULT: usize = 50;

/// "The faults that matter": each applied fault (a window) that violations are tied to
/// ([`crate::conviction::tie_to_faults`]: a finding's anomalous op goes to the fault
/// that started last before it), with the findings, linked to their slice below when it
/// is shown there (the first `per` of each anomaly) and to the anomaly's list otherwise.
fn faults_that_matter(s: &mut String, verdict: &Verdict, scan: &Scan, axis: &Axis, per: usize) {
    s.push_str("<h2 id=\"faults-that-matter\">The faults that matter</h2>");
    let windows = &scan.faults.windows;
    let starts: Vec<std::time::Duration> = windows
        .iter()
        .map(|w| std::time::Duration::from_nanos(w.start))
        .collect();
    let ties =
        crate::conviction::tie_to_faults(verdict, &starts, |i| scan.op_facts.get(&i).copied());
    if ties.is_empty() {
        s.push_str("<p>No violation: no fault is tied to a finding.</p>\n");
        return;
    }
    let faulted = {
        let mut f: Vec<usize> = ties.iter().filter_map(|t| t.fault).collect();
        f.dedup();
        f.len()
    };
    let _ = write!(
        s,
        "<p class=\"more\">Each violation is tied to the fault that started last before its \
         anomalous op (a transfer's acknowledgement or failure, the read off the total): {} \
         finding{} to {faulted} of {} applied fault{}{}. A fault is the likeliest cause of \
         what it is tied to, not a proof: a fault can break what shows up after the next one \
         started. Only the findings the checker keeps are tied (the first, last, worst and a \
         sample of each kind).</p>",
        ties.len(),
        if ties.len() == 1 { "" } else { "s" },
        windows.len(),
        if windows.len() == 1 { "" } else { "s" },
        if ties.iter().any(|t| t.fault.is_none()) {
            ", the rest before any fault"
        } else {
            ""
        }
    );
    let mut i = 0;
    while i < ties.len() {
        let fault = ties[i].fault;
        let group: Vec<_> = ties[i..].iter().take_while(|t| t.fault == fault).collect();
        i += group.len();
        let n = group.len();
        let plural = if n == 1 { "" } else { "s" };
        match fault.and_then(|f| windows.get(f)) {
            Some(w) => {
                let _ = write!(
                    s,
                    "<h3><span class=\"sw\" style=\"background:{}\"></span>{} <span \
                     class=\"more\">({}) — {n} finding{plural}</span></h3>",
                    fault_color(&w.name),
                    escape(&w.label),
                    escape(&axis.span(w.start, w.end_or(axis.end)))
                );
            }
            None => {
                let _ = write!(
                    s,
                    "<h3>Before any fault <span class=\"more\">— {n} finding{plural}</span></h3>"
                );
            }
        }
        s.push_str(
            "<table><tr><th>anomaly</th><th>transfer or account</th><th>at</th>\
             <th>op</th><th>slice</th></tr>",
        );
        for t in group.iter().take(TIED_PER_FAULT) {
            let (href, place) = if t.position < per {
                (format!("#f-{}-{}", t.anomaly, t.position), "its slice")
            } else {
                (format!("#a-{}", t.anomaly), "the list")
            };
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td>\
                 <td><a href=\"{}\">{place}</a></td></tr>",
                escape(t.anomaly),
                escape(t.subject().trim()),
                escape(
                    &t.at
                        .map_or("—".to_owned(), |at| axis.at(at.as_nanos() as u64))
                ),
                t.op,
                escape(&href)
            );
        }
        s.push_str("</table>");
        if n > TIED_PER_FAULT {
            let _ = write!(
                s,
                "<p class=\"more\">… and {} more.</p>",
                n - TIED_PER_FAULT
            );
        }
    }
    s.push('\n');
}

fn shade(s: &mut String, windows: &[Window], axis: &Axis, top: f64, height: f64) {
    for w in windows {
        let x0 = axis.x(w.start);
        let x1 = axis.x(w.end_or(axis.end)).max(x0 + 1.5);
        let _ = write!(
            s,
            "<rect x=\"{x0:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{height:.1}\" \
             fill=\"{}\" fill-opacity=\"0.11\"><title>{}: {}</title></rect>",
            x1 - x0,
            fault_color(&w.name),
            escape(&w.label),
            escape(&axis.span(w.start, w.end_or(axis.end)))
        );
    }
}

/// Fault labels in up to four rows starting at `top`; returns the rows' height.
fn fault_band(s: &mut String, windows: &[Window], axis: &Axis, top: f64) -> f64 {
    const ROW: f64 = 17.0;
    let mut rows: Vec<f64> = Vec::new();
    for w in windows {
        let x0 = axis.x(w.start);
        let x1 = axis.x(w.end_or(axis.end)).max(x0 + 2.0);
        let text_w = w.label.chars().count() as f64 * 6.2 + 6.0;
        let right = x0 + text_w.max(x1 - x0);
        let row = match rows.iter().position(|end| *end < x0) {
            Some(r) => r,
            None if rows.len() < 4 => {
                rows.push(0.0);
                rows.len() - 1
            }
            None => continue,
        };
        rows[row] = right + 4.0;
        let y = top + row as f64 * ROW;
        let color = fault_color(&w.name);
        let _ = write!(
            s,
            "<g><title>{}: {}</title><rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"4\" \
             fill=\"{color}\"/><text x=\"{:.1}\" y=\"{:.1}\" style=\"fill:{color}\">{}</text></g>",
            escape(&w.label),
            escape(&axis.span(w.start, w.end_or(axis.end))),
            y + 11.0,
            x1 - x0,
            x0 + 1.0,
            y + 9.0,
            escape(&w.label)
        );
    }
    rows.len() as f64 * ROW
}

fn x_axis(s: &mut String, axis: &Axis, y: f64, top: f64) {
    let _ = write!(
        s,
        "<line x1=\"{L}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#8c959f\"/>",
        W - R
    );
    for (t, label) in axis.ticks() {
        let x = axis.x(t);
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top:.1}\" y2=\"{y:.1}\" stroke=\"#d8dee4\" \
             stroke-dasharray=\"2 3\"/><text class=\"ax\" x=\"{x:.1}\" y=\"{:.1}\" \
             text-anchor=\"middle\">{}</text>",
            y + 14.0,
            escape(&label)
        );
    }
}

fn legend(s: &mut String, extra: &str) {
    let _ = write!(
        s,
        "<div class=\"legend\"><span><i class=\"sw\" style=\"background:{OK}\"></i>ok</span>\
         <span><i class=\"sw\" style=\"background:{FAIL}\"></i>fail</span>\
         <span><i class=\"sw\" style=\"background:{INFO}\"></i>info (unknown outcome)</span>\
         <span><i class=\"sw\" style=\"background:{OPEN}\"></i>never completed</span>{extra}\
         <span>shaded: fault windows</span></div>"
    );
}

fn bar_title(b: &Bar, axis: &Axis) -> String {
    let what = match b.index {
        Some(i) => format!("ops {}–{}", b.invoke, i),
        None => format!("op {} never completed", b.invoke),
    };
    format!(
        "{} {} by process {} ({what}): {}",
        b.f,
        if b.kind == OpType::Invoke {
            "open"
        } else {
            b.kind.as_str()
        },
        b.process,
        axis.span(b.start, b.end)
    )
}

fn timeline(s: &mut String, verdict: &Verdict, scan: &Scan, axis: &Axis) {
    s.push_str("<h2>Timeline</h2>");
    let lanes = scan.lanes.count().max(1);
    let lh = (420.0 / lanes as f64).clamp(7.0, 18.0);
    let mut body = String::new();
    let band = fault_band(&mut body, &scan.faults.windows, axis, 4.0);
    let top = band + 8.0;
    let open_row = if scan.open_count > 0 {
        lh.max(10.0) + 4.0
    } else {
        0.0
    };
    let marks_row = 12.0;
    let plot_h = lanes as f64 * lh + open_row + marks_row;
    let bottom = top + plot_h;
    let mut g = String::new();
    shade(&mut g, &scan.faults.windows, axis, top, plot_h);
    for (i, (procs, n)) in scan.lanes.procs.iter().enumerate() {
        let y = top + marks_row + i as f64 * lh;
        if i % 2 == 0 {
            let _ = write!(
                g,
                "<rect x=\"{L}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{lh:.1}\" fill=\"#f6f8fa\" \
                 fill-opacity=\"0.6\"/>",
                W - L - R
            );
        }
        if lh >= 9.0 || i % 2 == 0 {
            let label = if *n > 3 {
                format!("{} processes", thousands(*n))
            } else {
                let list: Vec<String> = procs.iter().map(u64::to_string).collect();
                format!("p {}", list.join(","))
            };
            let _ = write!(
                g,
                "<text class=\"ax\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"{:.0}\">\
                 <title>lane {i}: processes {}{}</title>{}</text>",
                L - 6.0,
                y + lh * 0.5 + 3.5,
                lh.clamp(8.0, 11.0),
                escape(&procs.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
                if *n as usize > procs.len() { ", …" } else { "" },
                escape(&label)
            );
        }
    }
    if scan.lanes.overflow > 0 {
        let y = top + marks_row + MAX_LANES as f64 * lh;
        let _ = write!(
            g,
            "<text class=\"ax\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">other</text>",
            L - 6.0,
            y + lh * 0.5 + 3.5
        );
    }
    let lane_y = |lane: usize| top + marks_row + lane.min(MAX_LANES) as f64 * lh;
    match &scan.bars {
        Some(bars) => {
            for b in bars {
                let x0 = axis.x(b.start);
                let w = (axis.x(b.end) - x0).max(1.5);
                let _ = write!(
                    g,
                    "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{}\">\
                     <title>{}</title></rect>",
                    lane_y(b.lane) + 1.0,
                    (lh - 2.0).max(2.0),
                    kind_color(b.kind),
                    escape(&bar_title(b, axis))
                );
            }
        }
        None => {
            // A grid: one column per time bucket, each lane cell split top to bottom
            // in proportion to its ok, fail and info completions.
            let width = scan.series.width();
            let mut paths = [String::new(), String::new(), String::new()];
            for (col, cell) in scan.series.cells().iter().enumerate() {
                let t0 = col as u64 * width;
                if t0 > axis.end {
                    break;
                }
                let x0 = axis.x(t0);
                let x1 = axis.x(t0 + width).max(x0 + 0.8);
                for (lane, counts) in cell.lanes.iter().enumerate() {
                    let total: u32 = counts.iter().sum();
                    if total == 0 {
                        continue;
                    }
                    let mut y = lane_y(lane) + 1.0;
                    let h = (lh - 2.0).max(2.0);
                    for k in 0..3 {
                        if counts[k] == 0 {
                            continue;
                        }
                        let part = h * f64::from(counts[k]) / f64::from(total);
                        let _ = write!(
                            paths[k],
                            "M{x0:.1} {y:.1}h{:.1}v{part:.2}h{:.1}z",
                            x1 - x0,
                            x0 - x1
                        );
                        y += part;
                    }
                }
            }
            for (k, color) in [OK, FAIL, INFO].iter().enumerate() {
                if !paths[k].is_empty() {
                    let _ = write!(g, "<path d=\"{}\" fill=\"{color}\"/>", paths[k]);
                }
            }
        }
    }
    if scan.open_count > 0 {
        let y = top + marks_row + lanes as f64 * lh + 3.0;
        let _ = write!(
            g,
            "<text class=\"ax\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">never completed</text>",
            L - 6.0,
            y + 8.0
        );
        for b in &scan.open {
            let x0 = axis.x(b.start);
            let mid = y + (open_row - 6.0) / 2.0;
            let _ = write!(
                g,
                "<g><title>{}</title><line x1=\"{x0:.1}\" x2=\"{:.1}\" y1=\"{mid:.1}\" \
                 y2=\"{mid:.1}\" stroke=\"{OPEN}\" stroke-opacity=\"0.5\" stroke-dasharray=\"2 2\"/>\
                 <rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"3\" height=\"{:.1}\" fill=\"{OPEN}\"/></g>",
                escape(&bar_title(b, axis)),
                axis.x(b.end),
                open_row - 6.0,
            );
        }
    }
    // Ops the findings name: red ticks on the top row.
    let named: BTreeSet<u64> = verdict
        .anomalies
        .iter()
        .filter(|(n, _)| !not_violation(n))
        .flat_map(|(_, l)| l.iter().flat_map(|f| f.ops.iter().copied()))
        .collect();
    let _ = write!(
        g,
        "<text class=\"ax\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">anomalies</text>",
        L - 6.0,
        top + 9.0
    );
    for line in scan.slice_ops.values() {
        if named.contains(&line.index) && line.process.parse::<u64>().is_ok() {
            let x = axis.x(line.time);
            let _ = write!(
                g,
                "<path d=\"M{:.1} {:.1}l4 -7h-8z\" fill=\"{FAIL}\"><title>op {}: {} {} by {}</title></path>",
                x,
                top + 10.0,
                line.index,
                escape(&line.f),
                line.op_type,
                escape(&line.process)
            );
        }
    }
    x_axis(&mut g, axis, bottom, top);
    let h = bottom + 22.0;
    let _ = write!(
        s,
        "<div class=\"panel\"><svg viewBox=\"0 0 {W} {h:.0}\" role=\"img\" \
         aria-label=\"timeline of ops per client lane with fault windows\">{body}{g}</svg>"
    );
    let mode = if scan.bars.is_some() {
        "each bar is one op, from invoke to completion".to_owned()
    } else {
        format!(
            "{} completions, more than {MAX_BARS}: each lane shows, per time bucket of {}, \
             its share of ok, fail and info completions",
            thousands(scan.completions),
            duration(scan.series.width())
        )
    };
    let extra = format!(
        "<span><i class=\"sw\" style=\"background:{FAIL};clip-path:polygon(50% 100%,0 0,100% 0)\"></i>\
         op named by a finding</span><span>Lanes: a client process keeps its lane; one that \
         ended info hands it on. {}</span>",
        escape(&mode)
    );
    legend(s, &extra);
    s.push_str("</div>\n");
}

fn charts(s: &mut String, scan: &Scan, axis: &Axis) {
    s.push_str("<h2>Throughput and latency</h2>");
    // At most 100 columns: a person reads trends, not 240 slivers.
    let base = scan.series.width();
    let used = scan
        .series
        .cells()
        .iter()
        .enumerate()
        .take_while(|(i, _)| *i as u64 * base <= axis.end)
        .count();
    let group = used.div_ceil(100).max(1);
    let width = base * group as u64;
    let cols: Vec<(u64, [u64; 3], Hist)> = scan.series.cells()[..used]
        .chunks(group)
        .enumerate()
        .map(|(i, chunk)| {
            let mut done = [0u64; 3];
            let mut latency = Hist::default();
            for c in chunk {
                for (d, n) in done.iter_mut().zip(c.done) {
                    *d += n;
                }
                latency.merge(c.latency.clone());
            }
            (i as u64 * width, done, latency)
        })
        .collect();
    let per_s = if axis.timed { 1e9 / width as f64 } else { 1.0 };
    let unit = if axis.timed {
        "ops/s"
    } else {
        "ops per bucket"
    };
    // Throughput: stacked completions per bucket.
    let (top, h) = (10.0, 150.0);
    let max = cols
        .iter()
        .map(|(_, done, _)| done.iter().sum::<u64>() as f64 * per_s)
        .fold(0.0, f64::max)
        .max(1.0);
    let mut g = String::new();
    shade(&mut g, &scan.faults.windows, axis, top, h);
    for frac in [0.0, 0.5, 1.0] {
        let y = top + h - frac * h;
        let _ = write!(
            g,
            "<line x1=\"{L}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eaeef2\"/>\
             <text class=\"ax\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{:.*}</text>",
            W - R,
            L - 6.0,
            y + 4.0,
            if max < 10.0 { 1 } else { 0 },
            max * frac
        );
    }
    let mut paths = [String::new(), String::new(), String::new()];
    for (t, done, _) in &cols {
        let x0 = axis.x(*t);
        let x1 = axis.x(t + width).max(x0 + 0.8);
        let mut y = top + h;
        for k in 0..3 {
            let v = done[k] as f64 * per_s;
            if v <= 0.0 {
                continue;
            }
            let bh = v / max * h;
            y -= bh;
            let _ = write!(
                paths[k],
                "M{x0:.1} {y:.2}h{:.1}v{bh:.2}h{:.1}z",
                x1 - x0,
                x0 - x1
            );
        }
    }
    for (k, color) in [OK, FAIL, INFO].iter().enumerate() {
        if !paths[k].is_empty() {
            let _ = write!(g, "<path d=\"{}\" fill=\"{color}\"/>", paths[k]);
        }
    }
    x_axis(&mut g, axis, top + h, top);
    let _ = write!(
        s,
        "<div class=\"panel\"><h3>Throughput: completions, {unit} (buckets of {})</h3>\
         <svg viewBox=\"0 0 {W} {:.0}\" role=\"img\" aria-label=\"throughput\">{g}</svg>",
        if axis.timed {
            duration(width)
        } else {
            format!("{width} ops")
        },
        top + h + 22.0
    );
    legend(s, "");
    s.push_str("</div>");

    // Latency: p50, p99 and max per bucket of invoke time, log scale.
    let lat: Vec<(u64, u64, u64, u64)> = cols
        .iter()
        .filter_map(|(t, _, h)| Some((*t, h.quantile(0.5)?, h.quantile(0.99)?, h.max())))
        .collect();
    s.push_str("<div class=\"panel\"><h3>Latency: invoke → completion, by invoke time</h3>");
    if lat.is_empty() || !axis.timed {
        s.push_str("<p>Not recorded: no completed client op with times.</p></div>\n");
        return;
    }
    let lo = lat.iter().map(|l| l.1).min().unwrap_or(1).max(1_000) as f64;
    let hi = lat.iter().map(|l| l.3).max().unwrap_or(1).max(2_000) as f64;
    let (llo, lhi) = (
        lo.log10().floor(),
        hi.log10().ceil().max(lo.log10().floor() + 1.0),
    );
    let (top, h) = (10.0, 170.0);
    let y = |ns: u64| top + h - ((ns.max(1) as f64).log10() - llo) / (lhi - llo) * h;
    let mut g = String::new();
    shade(&mut g, &scan.faults.windows, axis, top, h);
    let mut d = llo;
    while d <= lhi + 1e-9 {
        let ns = 10f64.powf(d) as u64;
        let yy = y(ns);
        let _ = write!(
            g,
            "<line x1=\"{L}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#eaeef2\"/>\
             <text class=\"ax\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - R,
            L - 6.0,
            yy + 4.0,
            escape(&duration(ns))
        );
        d += 1.0;
    }
    let half = (axis.x(width) - axis.x(0)) / 2.0;
    for (i, color, name) in [
        (3usize, "#8c959f", "max"),
        (2, "#8250df", "p99"),
        (1, "#0969da", "p50"),
    ] {
        let mut path = String::new();
        for (j, l) in lat.iter().enumerate() {
            let v = match i {
                1 => l.1,
                2 => l.2,
                _ => l.3,
            };
            let _ = write!(
                path,
                "{}{:.1} {:.1}",
                if j == 0 { "M" } else { "L" },
                axis.x(l.0) + half,
                y(v)
            );
        }
        let _ = write!(
            g,
            "<path d=\"{path}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"{}\"{}>\
             <title>{name}</title></path>",
            if i == 1 { 2.0 } else { 1.3 },
            if i == 3 {
                " stroke-dasharray=\"3 2\""
            } else {
                ""
            }
        );
    }
    x_axis(&mut g, axis, top + h, top);
    let _ = writeln!(
        s,
        "<svg viewBox=\"0 0 {W} {:.0}\" role=\"img\" aria-label=\"latency\">{g}</svg>\
         <div class=\"legend\"><span><i class=\"sw\" style=\"background:#0969da\"></i>p50</span>\
         <span><i class=\"sw\" style=\"background:#8250df\"></i>p99</span>\
         <span><i class=\"sw\" style=\"background:#8c959f\"></i>max</span>\
         <span>log scale; shaded: fault windows</span></div></div>",
        top + h + 22.0
    );
}

fn commits(s: &mut String, scan: &Scan, measured: Option<&CommitLatency>) {
    let c = &scan.commits;
    s.push_str("<h2>Debit → credit commit latency</h2><div class=\"panel\">");
    if let (0, Some(m)) = (c.hist.count(), measured) {
        let ms = |v: f64| duration((v * 1e6).max(0.0) as u64);
        let _ = writeln!(
            s,
            "<div class=\"stats\"><div><b>{}</b><span>cross-bank transfers with both rows</span></div>\
             <div><b>{}</b><span>p50</span></div><div><b>{}</b><span>p99</span></div>\
             <div><b>{}</b><span>max</span></div></div>\
             <p class=\"more\">Credit row time − debit row time per transfer, as the run read \
             them from the banks' ledgers (the history's entries carry no commit time); the \
             console printed the same figures.</p></div>",
            thousands(m.transfers as u64),
            ms(m.p50_ms),
            ms(m.p99_ms),
            m.max_ms.map_or("—".to_owned(), ms),
        );
        return;
    }
    if c.hist.count() == 0 {
        let why = if c.timed == 0 {
            "the ledger entries carry no commit time (a <code>committed_at</code> or \
             <code>time</code> field, ns since the run started)"
        } else {
            "no transfer has both a debit and a credit entry with a commit time"
        };
        let _ = writeln!(s, "<p>Not recorded: {why}.</p></div>");
        return;
    }
    let h = &c.hist;
    let q = |x: f64| h.quantile(x).map_or("—".to_owned(), duration);
    let _ = write!(
        s,
        "<div class=\"stats\"><div><b>{}</b><span>transfers with both commit times</span></div>\
         <div><b>{}</b><span>p50</span></div><div><b>{}</b><span>p90</span></div>\
         <div><b>{}</b><span>p99</span></div><div><b>{}</b><span>max</span></div>\
         <div><b>{}</b><span>mean</span></div><div><b>{}</b><span>credit committed before \
         debit</span></div></div>",
        thousands(h.count()),
        q(0.5),
        q(0.9),
        q(0.99),
        duration(h.max()),
        h.mean().map_or("—".to_owned(), duration),
        thousands(c.credit_first)
    );
    let bins = h.nonempty();
    let (Some(first), Some(last)) = (bins.first(), bins.last()) else {
        s.push_str("</div>");
        return;
    };
    let (b0, b1) = (first.0, last.0);
    let n = (b1 - b0 + 1) as f64;
    let peak = bins.iter().map(|b| b.2).max().unwrap_or(1).max(1) as f64;
    let (top, ph) = (8.0, 120.0);
    let bw = ((W - L - R) / n).min(36.0);
    let mut g = String::new();
    for (i, upper, count) in &bins {
        let x = L + (i - b0) as f64 * bw;
        let bh = f64::from(*count) / peak * ph;
        let _ = write!(
            g,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#0969da\">\
             <title>≤ {}: {}</title></rect>",
            top + ph - bh,
            (bw - 1.0).max(1.0),
            escape(&duration(*upper)),
            count
        );
    }
    let step = ((n / 10.0).ceil() as usize).max(1);
    for i in (b0..=b1).step_by(step) {
        let x = L + (i - b0) as f64 * bw + bw / 2.0;
        let _ = write!(
            g,
            "<text class=\"ax\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            top + ph + 14.0,
            escape(&duration(Hist::upper(i)))
        );
    }
    let _ = writeln!(
        s,
        "<svg viewBox=\"0 0 {W} {:.0}\" role=\"img\" aria-label=\"commit latency histogram\">{g}</svg>\
         <p class=\"more\">Credit commit time − debit commit time per transfer, from the ledger \
         field{} {}; log-scale bins.</p></div>",
        top + ph + 22.0,
        if c.fields.len() == 1 { "" } else { "s" },
        escape(&c.fields.join(", "))
    );
}

fn finding_span(f: &Finding, scan: &Scan) -> Option<(u64, u64, bool)> {
    if let Some(id) = &f.transfer {
        if let Some(span) = scan.spans.get(&id.to_string()) {
            if let (Some(a), Some(b)) = (span.first, span.last) {
                return Some((a, b, span.open));
            }
        }
    }
    let times: Vec<u64> = f
        .ops
        .iter()
        .filter_map(|i| scan.slice_ops.get(i))
        .filter(|l| l.process != "final")
        .map(|l| l.time)
        .collect();
    Some((*times.iter().min()?, *times.iter().max()?, false))
}

fn op_row(s: &mut String, l: &OpLine, axis: &Axis) {
    let t = l.op_type.as_str();
    let _ = write!(
        s,
        "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"t-{t}\">{t}</td>\
         <td>{}</td><td class=\"v\">{}</td><td class=\"v\">{}</td></tr>",
        l.index,
        escape(&axis.at(l.time)),
        escape(&l.process),
        escape(&l.f),
        escape(&l.value),
        escape(l.error.as_deref().unwrap_or(""))
    );
}

fn strip(s: &mut String, scan: &Scan, axis: &Axis, from: u64, to: u64, open: bool) {
    let mut g = String::new();
    shade(&mut g, &scan.faults.windows, axis, 2.0, 22.0);
    let x0 = axis.x(from);
    let x1 = axis.x(to).max(x0 + 2.0);
    let _ = write!(
        g,
        "<rect x=\"{L}\" y=\"11\" width=\"{:.1}\" height=\"4\" fill=\"#eaeef2\"/>\
         <rect x=\"{x0:.1}\" y=\"7\" width=\"{:.1}\" height=\"12\" fill=\"{FAIL}\"{} rx=\"2\"/>\
         <text class=\"ax\" x=\"{:.1}\" y=\"17\" text-anchor=\"end\">in flight</text>",
        W - L - R,
        x1 - x0,
        if open { " fill-opacity=\"0.45\"" } else { "" },
        L - 6.0
    );
    let _ = write!(
        s,
        "<svg viewBox=\"0 0 {W} 26\" role=\"img\" aria-label=\"when it was in flight\">{g}</svg>"
    );
}

fn anomalies(s: &mut String, verdict: &Verdict, scan: &Scan, axis: &Axis, per: usize) {
    s.push_str("<h2>Anomalies</h2>");
    if verdict.anomalies.values().all(Vec::is_empty) {
        s.push_str("<p>None.</p>\n");
        return;
    }
    let mut names: Vec<&String> = verdict.anomalies.keys().collect();
    names.sort_by_key(|n| not_violation(n));
    for name in names {
        let list = &verdict.anomalies[name];
        if list.is_empty() {
            continue;
        }
        let parked = not_violation(name);
        let _ = write!(
            s,
            "<h3 id=\"a-{0}\">{0}: {1}</h3><p class=\"more\">{2}</p>",
            escape(name),
            count(verdict, name),
            escape(meaning(name))
        );
        for (i, f) in list.iter().take(per).enumerate() {
            let id = format!("f-{name}-{i}");
            finding(s, (name, f), scan, axis, parked, &id);
        }
        if list.len() > per {
            s.push_str("<ul>");
            for f in list.iter().skip(per).take(50) {
                let _ = write!(s, "<li>{}</li>", escape(&f.sentence));
            }
            s.push_str("</ul>");
            let shown = list.len().min(per + 50);
            if count(verdict, name) > shown {
                let _ = write!(
                    s,
                    "<p class=\"more\">… and {} more (the checker keeps the first, last, worst \
                     and a sample of each kind; <code>chaosbank check --json</code> shows \
                     those kept).</p>",
                    count(verdict, name) - shown
                );
            }
        }
    }
    s.push('\n');
}

/// The records of transfer `id` in the topic logs, with the WAL position each was made
/// from (CDC records), and what they say of a duplicate or a gap: copies of one WAL
/// position are one change published twice (a replay); copies of several positions,
/// the row written more than once; no record at all in a log whose records carry
/// positions, a change never published; one record credited twice, a consumer that
/// read it again.
fn topic_records(s: &mut String, id: &str, kind: &str, scan: &Scan) {
    let records = scan.transfer_records.get(id).map_or(&[][..], Vec::as_slice);
    let cdc = scan.topic_logs.values().any(|has| *has);
    if records.is_empty() {
        if cdc && matches!(kind, "lost" | "in-flight") {
            let topics: Vec<&str> = scan.topic_logs.keys().map(String::as_str).collect();
            let _ = write!(
                s,
                "<p class=\"meta\">{}</p>",
                escape(&format!(
                    "No record of this transfer in the topic logs ({}): its outbox row's change was never published — a gap in what the connector read from the WAL.",
                    topics.join(", ")
                ))
            );
        }
        return;
    }
    s.push_str("<table><tr><th>topic</th><th>offset</th><th>WAL position (LSN)</th></tr>");
    for r in records {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            escape(&r.topic),
            r.offset,
            escape(r.lsn.as_deref().unwrap_or("—"))
        );
    }
    s.push_str("</table>");
    let lsns: BTreeSet<&str> = records.iter().filter_map(|r| r.lsn.as_deref()).collect();
    let note = match (records.len(), lsns.len()) {
        (n, 1) if n > 1 => Some(format!(
            "{n} records carry one WAL position ({}): one change published {n} times — the connector replayed it (after a restart, from its last flushed offset).",
            lsns.iter().next().copied().unwrap_or_default()
        )),
        (n, m) if n > 1 && m > 1 => Some(format!(
            "{n} records from {m} WAL positions: the outbox row was written more than once, or the change was read again from a new slot."
        )),
        (1, _) if kind == "duplicated" => Some(format!(
            "One record ({} offset {}{}) was credited more than once: the consumer read it again (its offset commit was lost), the publisher did not send it twice.",
            records[0].topic,
            records[0].offset,
            records[0]
                .lsn
                .as_deref()
                .map(|l| format!(", LSN {l}"))
                .unwrap_or_default()
        )),
        _ => None,
    };
    if let Some(note) = note {
        let _ = write!(s, "<p class=\"meta\">{}</p>", escape(&note));
    }
}

fn finding(
    s: &mut String,
    (kind, f): (&str, &Finding),
    scan: &Scan,
    axis: &Axis,
    parked: bool,
    id: &str,
) {
    let _ = write!(
        s,
        "<div class=\"finding{}\" id=\"{}\"><p class=\"sentence\">{}</p>",
        if parked { " parked" } else { "" },
        escape(id),
        escape(&f.sentence)
    );
    let mut meta = Vec::new();
    if let Some(id) = &f.transfer {
        meta.push(format!("transfer {id}"));
    }
    if let Some(e) = &f.element {
        meta.push(format!("element {e}"));
    }
    if let Some(a) = &f.account {
        meta.push(format!("account {a}"));
    }
    for (k, v) in &f.details {
        let v = match v {
            Value::String(x) => x.clone(),
            other => other.to_string(),
        };
        meta.push(format!("{k} {v}"));
    }
    let span = finding_span(f, scan);
    if let Some((a, b, open)) = span {
        meta.push(format!(
            "in flight {}{}",
            axis.span(a, b),
            if open {
                " (outcome unknown: up to the end of the run)"
            } else {
                ""
            }
        ));
    }
    let _ = write!(s, "<div class=\"meta\">{}</div>", escape(&meta.join(" · ")));
    if let Some((a, b, open)) = span {
        strip(s, scan, axis, a, b, open);
    }
    let id = f.transfer.as_ref().map(Value::to_string);
    let mut indexes: BTreeSet<u64> = f.ops.iter().take(30).copied().collect();
    if let Some(ops) = id.as_ref().and_then(|i| scan.transfer_ops.get(i)) {
        indexes.extend(ops.iter().take(30));
    }
    let lines: Vec<&OpLine> = indexes
        .iter()
        .filter_map(|i| scan.slice_ops.get(i))
        .collect();
    if !lines.is_empty() {
        s.push_str(
            "<table><tr><th>op</th><th>time</th><th>process</th><th>type</th><th>f</th>\
             <th>value</th><th>error</th></tr>",
        );
        for l in lines {
            op_row(s, l, axis);
        }
        s.push_str("</table>");
    }
    let scanned = id.as_ref().and_then(|i| scan.transfer_entries.get(i));
    match scanned {
        Some(entries) if !entries.is_empty() => {
            s.push_str(
                "<table><tr><th>ledger op</th><th>bank</th><th>account</th><th>amount</th>\
                 <th>committed</th></tr>",
            );
            for e in entries {
                let _ = write!(
                    s,
                    "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{:+}</td>\
                     <td>{}</td></tr>",
                    e.op,
                    escape(&e.bank),
                    escape(&e.account),
                    e.amount,
                    escape(&e.time.map_or("not recorded".to_owned(), |t| axis.at(t)))
                );
            }
            s.push_str("</table>");
        }
        _ if !f.entries.is_empty() => {
            s.push_str(
                "<table><tr><th>ledger op</th><th>bank</th><th>account</th><th>amount</th></tr>",
            );
            for e in &f.entries {
                let _ = write!(
                    s,
                    "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{:+}</td></tr>",
                    e.op,
                    escape(&e.bank),
                    escape(&e.account),
                    e.amount
                );
            }
            s.push_str("</table>");
        }
        _ => {
            if f.transfer.is_some() {
                s.push_str("<p class=\"meta\">No ledger entry names this transfer.</p>");
            }
        }
    }
    if let Some(id) = &id {
        topic_records(s, id, kind, scan);
    }
    if let Some((a, b, _)) = span {
        let over: Vec<String> = scan
            .faults
            .windows
            .iter()
            .filter(|w| w.overlaps(a, b, axis.end))
            .take(12)
            .map(|w| format!("{} ({})", w.label, axis.span(w.start, w.end_or(axis.end))))
            .collect();
        let text = if over.is_empty() {
            "No fault window overlapped it.".to_owned()
        } else {
            format!("Faults that overlapped it: {}.", over.join("; "))
        };
        let _ = write!(s, "<p class=\"meta\">{}</p>", escape(&text));
    }
    s.push_str("</div>");
}
