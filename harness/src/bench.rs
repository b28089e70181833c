//! `chaosbank bench`: each system once with no faults, its throughput and debit→credit
//! latency beside its own engines' raw figures measured in the same run — `pgbench` TPS
//! on the same PostgreSQL container and the broker's raw message rate — as ratios.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::run::{self, RunConfig, RunReport};

/// One system's figures.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    /// The scheme's or the service's name.
    pub system: String,
    /// Transfers acknowledged `ok`.
    pub transfers_ok: u64,
    /// `ok` transfers per second.
    pub transfers_per_s: f64,
    /// Raw pgbench TPS on the same PostgreSQL container.
    pub pgbench_tps: Option<f64>,
    /// `transfers_per_s ÷ pgbench_tps`.
    pub ratio_pgbench: Option<f64>,
    /// The broker's raw message rate on the same broker.
    pub broker_msgs_per_s: Option<f64>,
    /// `transfers_per_s ÷ broker_msgs_per_s`.
    pub ratio_broker: Option<f64>,
    /// Debit→credit latency, median (ms; not recorded for a service).
    pub p50_ms: Option<f64>,
    /// 99th percentile (ms).
    pub p99_ms: Option<f64>,
    /// Longest (ms).
    pub max_ms: Option<f64>,
    /// Seconds from the cluster's start to every engine ready (warm images).
    pub cluster_ready_s: Option<f64>,
    /// The run's verdict (`valid`, `invalid`, `unknown`).
    pub verdict: String,
    /// The run's folder.
    pub run: String,
}

impl BenchRow {
    /// The row of a finished run.
    pub fn of(report: &RunReport) -> BenchRow {
        let f = &report.figures;
        let ratio = |d: Option<f64>| d.filter(|d| *d > 0.0).map(|d| f.throughput / d);
        BenchRow {
            system: report.name.clone(),
            transfers_ok: f.transfers_ok,
            transfers_per_s: f.throughput,
            pgbench_tps: f.pgbench_tps,
            ratio_pgbench: ratio(f.pgbench_tps),
            broker_msgs_per_s: f.broker_msgs_per_s,
            ratio_broker: ratio(f.broker_msgs_per_s),
            p50_ms: f.latency_p50_ms,
            p99_ms: f.latency_p99_ms,
            max_ms: f.latency_max_ms,
            cluster_ready_s: f.cluster_ready_s,
            verdict: report.verdict.valid.as_str().to_string(),
            run: report.dir().display().to_string(),
        }
    }
}

/// The run a bench makes of `base`: both raw measurements on, the rest as given
/// (`chaosbank bench`'s defaults take the faults, the poison and the offered-load limit
/// off).
pub fn config(base: &RunConfig) -> RunConfig {
    RunConfig {
        pgbench: true,
        broker_rate: true,
        ..base.clone()
    }
}

/// Runs each config in turn ([`config`] of it) and returns the rows.
pub async fn bench(runs: &[RunConfig]) -> Result<Vec<BenchRow>> {
    let mut rows = Vec::new();
    for base in runs {
        let report = run::run(&config(base)).await?;
        rows.push(BenchRow::of(&report));
    }
    Ok(rows)
}

impl BenchRow {
    /// The row's figures as printed, in the table's column order: transfers/s,
    /// pgbench TPS, ÷ pgbench, broker msgs/s, ÷ broker, p50, p99, max, ready s.
    fn cells(&self) -> [String; 9] {
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1} %", v * 100.0));
        [
            format!("{:.1}", self.transfers_per_s),
            num(self.pgbench_tps, 0),
            pct(self.ratio_pgbench),
            num(self.broker_msgs_per_s, 0),
            pct(self.ratio_broker),
            num(self.p50_ms, 0),
            num(self.p99_ms, 0),
            num(self.max_ms, 0),
            num(self.cluster_ready_s, 1),
        ]
    }
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.digits$}"))
}

/// The rows as a table for a person.
pub fn table(rows: &[BenchRow]) -> String {
    let mut s = format!(
        "{:<22} {:>10} {:>9} {:>8} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7}  verdict\n",
        "system",
        "transfer/s",
        "pgbench",
        "÷pgb",
        "broker/s",
        "÷broker",
        "p50 ms",
        "p99 ms",
        "max ms",
        "ready s"
    );
    for r in rows {
        let c = r.cells();
        let _ = writeln!(
            s,
            "{:<22} {:>10} {:>9} {:>8} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7}  {}",
            r.system, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], r.verdict
        );
    }
    s
}

/// A small self-contained page: the table, and each system's latency (p50, p99, max) as
/// bars on one scale.
pub fn html(rows: &[BenchRow], title: &str) -> String {
    use crate::report::escape;
    let scale = rows.iter().filter_map(|r| r.max_ms).fold(1.0_f64, f64::max);
    let mut bars = String::new();
    let mut y = 10.0;
    for r in rows {
        let _ = writeln!(
            bars,
            "<text x=\"0\" y=\"{:.0}\" font-size=\"12\">{}</text>",
            y + 12.0,
            escape(&r.system)
        );
        for (label, v, color) in [
            ("p50", r.p50_ms, "#4c9f70"),
            ("p99", r.p99_ms, "#e0a030"),
            ("max", r.max_ms, "#c0392b"),
        ] {
            y += 16.0;
            let w = v.map_or(0.0, |v| 500.0 * v / scale);
            let _ = writeln!(
                bars,
                "<rect x=\"160\" y=\"{y:.0}\" width=\"{w:.1}\" height=\"12\" fill=\"{color}\"/>\
                 <text x=\"120\" y=\"{:.0}\" font-size=\"11\">{label}</text>\
                 <text x=\"{:.0}\" y=\"{:.0}\" font-size=\"11\">{}</text>",
                y + 10.0,
                166.0 + w,
                y + 10.0,
                v.map_or("not recorded".to_string(), |v| format!("{v:.0} ms"))
            );
        }
        y += 24.0;
    }
    let mut trs = String::new();
    for r in rows {
        let cells: String = r
            .cells()
            .iter()
            .map(|c| format!("<td>{}</td>", escape(c)))
            .collect();
        let _ = writeln!(
            trs,
            "<tr><td>{}</td>{cells}<td>{}</td></tr>",
            escape(&r.system),
            escape(&r.verdict)
        );
    }
    format!(
        "<!doctype html><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font:14px system-ui,sans-serif;margin:2em}}td,th{{padding:2px 10px;text-align:right}}td:first-child{{text-align:left}}</style>\
         <h1>{t}</h1><table><tr><th>system</th><th>transfers/s</th><th>pgbench TPS</th><th>÷ pgbench</th><th>broker msgs/s</th><th>÷ broker</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th><th>ready s</th><th>verdict</th></tr>\n{trs}</table>\
         <h2>Debit → credit latency</h2><svg width=\"760\" height=\"{h:.0}\">{bars}</svg>\n",
        t = escape(title),
        h = y + 10.0,
    )
}

/// Writes `bench.json` and `bench.html` into `dir`.
pub fn write(dir: &Path, rows: &[BenchRow], title: &str) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("bench.json"), serde_json::to_vec_pretty(rows)?)?;
    std::fs::write(dir.join("bench.html"), html(rows, title))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(system: &str, tps: f64, pgb: Option<f64>) -> BenchRow {
        BenchRow {
            system: system.into(),
            transfers_ok: 100,
            transfers_per_s: tps,
            pgbench_tps: pgb,
            ratio_pgbench: pgb.map(|p| tps / p),
            broker_msgs_per_s: None,
            ratio_broker: None,
            p50_ms: Some(12.0),
            p99_ms: Some(80.0),
            max_ms: Some(200.0),
            cluster_ready_s: Some(7.5),
            verdict: "valid".into(),
            run: "runs/x".into(),
        }
    }

    #[test]
    fn the_table_and_the_page_show_every_system_and_its_ratio() {
        let rows = [row("outbox", 500.0, Some(2000.0)), row("<svc>", 50.0, None)];
        let t = table(&rows);
        assert!(t.contains("outbox") && t.contains("25.0 %"), "{t}");
        assert!(t.contains("ready s") && t.contains("7.5"), "{t}");
        let h = html(&rows, "bench");
        assert!(h.contains("&lt;svc&gt;") && !h.contains("<svc>"), "{h}");
        assert!(h.contains("25.0 %"));
        let json = serde_json::to_value(&rows).unwrap();
        for key in [
            "system",
            "transfers_per_s",
            "pgbench_tps",
            "ratio_pgbench",
            "broker_msgs_per_s",
            "p50_ms",
            "p99_ms",
        ] {
            assert!(json[0].get(key).is_some(), "no {key}");
        }
    }
}
