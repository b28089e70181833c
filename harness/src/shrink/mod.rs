//! `chaosbank shrink`: from a convicted run, the smallest fault schedule that still
//! convicts, what it takes to reproduce it, and which of its faults broke which
//! transfers.
//!
//! The search itself ([`search`]) knows nothing of engines: it asks a [`Runner`]. The
//! [`RealRunner`] here runs each candidate as a real `chaosbank run` with the stored
//! run's config and the candidate's schedule (`--schedule`), and calls it convicted
//! when its verdict is invalid (a violation of any kind; the kinds are reported). Which
//! of a scheme's anomalies show depends on timing the seed does not pin: the same
//! dual-write schedule gave `duplicated` once and `failed-applied`, `phantom` and
//! `wrong-total` the next time, so requiring the original's exact kinds made shrinks
//! fail on their first candidate, the original itself.

pub mod search;

pub use search::{shrink, Budget, Candidate, NotShrunk, Runner, Settings, Shrunk, Trial};

use anyhow::{bail, Context, Result};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::RunConfig;
use crate::schedule::{Schedule, Step};
use crate::store::{self, Outcome};

/// Runs candidates as real runs of a stored run's config.
pub struct RealRunner {
    /// The stored run's config (its seed drives the workload).
    pub base: RunConfig,
    /// The original's violation kinds (reported beside each candidate's; a candidate
    /// convicts with a violation of any kind).
    pub want: Vec<String>,
}

#[async_trait::async_trait]
impl Runner for RealRunner {
    async fn try_once(&mut self, c: &Candidate) -> Trial {
        let cfg = RunConfig {
            schedule: Some(c.schedule.clone()),
            time_limit: c.time_limit,
            ..self.base.clone()
        };
        let start = Instant::now();
        match crate::run::run(&cfg).await {
            Ok(report) => {
                let o = Outcome::of_report(&report);
                let convicted = o.valid == "invalid" && !o.violations().is_empty();
                Trial {
                    convicted,
                    first_violation_s: o.first_violation_s,
                    took: start.elapsed(),
                    dir: Some(report.dir().to_path_buf()),
                    line: format!(
                        "{}{}",
                        o.describe(),
                        o.first_violation_s
                            .map(|t| format!(", first violation at {t:.1} s"))
                            .unwrap_or_default()
                    ),
                }
            }
            Err(e) => Trial {
                convicted: false,
                first_violation_s: None,
                took: start.elapsed(),
                dir: None,
                line: format!(
                    "the run failed: {}",
                    format!("{e:#}").lines().next().unwrap_or_default()
                ),
            },
        }
    }
}

/// A stored conviction ready to shrink.
#[derive(Debug)]
pub struct Start {
    /// The run's folder (resolved).
    pub dir: PathBuf,
    /// Its config; its candidates' runs go to `<dir>/shrink/`.
    pub config: RunConfig,
    /// Its schedule and time limit.
    pub original: Candidate,
    /// The violation kinds it was convicted of.
    pub kinds: Vec<String>,
}

/// Reads a stored run to shrink: it must have ended invalid, with its schedule in
/// `run.json` (runs made before schedules were stored: replay one first).
pub fn start(dir: &Path) -> Result<Start> {
    let (original_dir, meta, mut config) = crate::replay::prepare(dir, None)?;
    let run_json = original_dir.join(store::RUN_JSON);
    let outcome = meta.outcome.clone().unwrap_or_default();
    if outcome.valid != "invalid" {
        bail!(
            "{}: the run was judged {}, not convicted: there is no conviction to shrink",
            run_json.display(),
            outcome.valid
        );
    }
    let schedule = meta
        .schedule
        .clone()
        .or_else(|| config.schedule.clone())
        .with_context(|| {
            format!(
                "{}: no fault schedule stored (a run made before chaosbank stored them): \
                 replay it once with `chaosbank replay` and shrink the replay",
                run_json.display()
            )
        })?;
    config.out = original_dir.join("shrink");
    Ok(Start {
        original: Candidate {
            schedule,
            time_limit: config.time_limit,
        },
        kinds: outcome.violations(),
        dir: original_dir,
        config,
    })
}

/// One remaining fault and the findings tied to it: those whose anomalous op came
/// after it started and before the next remaining fault did.
#[derive(Clone, Debug, PartialEq)]
pub struct Culprit {
    /// The fault (`None` for findings before any fault started).
    pub step: Option<Step>,
    /// `lost transfer 17 at 12.3 s`, …
    pub findings: Vec<String>,
}

/// Ties each violation finding of a run's history to the fault that started last
/// before its anomalous op ([`crate::conviction::tie_to_faults`], the rule the report's
/// section uses too).
pub fn faults_that_matter(schedule: &Schedule, history: &Path) -> Result<Vec<Culprit>> {
    let open = || {
        std::fs::File::open(history)
            .map(BufReader::new)
            .with_context(|| format!("opening {}", history.display()))
    };
    let verdict = checkers::check_reader(open()?, None).context("checking the history")?;
    let seen = crate::conviction::read_ops(history, &crate::conviction::named_ops(&verdict))?;
    let mut steps: Vec<&Step> = schedule.steps.iter().collect();
    steps.sort_by_key(|s| s.at);
    let starts: Vec<Duration> = steps.iter().map(|s| s.at).collect();
    let mut out: Vec<Culprit> = std::iter::once(None)
        .chain(steps.iter().map(|s| Some((*s).clone())))
        .map(|step| Culprit {
            step,
            findings: Vec::new(),
        })
        .collect();
    for tie in crate::conviction::tie_to_faults(&verdict, &starts, |i| seen.get(&i).copied()) {
        out[tie.fault.map_or(0, |i| i + 1)]
            .findings
            .push(tie.line());
    }
    if out[0].findings.is_empty() {
        out.remove(0);
    }
    Ok(out)
}

/// "The faults that matter": each remaining fault with the findings tied to it (at
/// most `max` listed each).
pub fn render_culprits(culprits: &[Culprit], max: usize) -> String {
    let mut s = String::from("the faults that matter:\n");
    if culprits.is_empty() {
        s.push_str("  none: the run convicts without any fault\n");
    }
    for c in culprits {
        match &c.step {
            Some(st) => s.push_str(&format!(
                "  at {:.1} s for {:.1} s: {} — {}\n",
                st.at.as_secs_f64(),
                st.hold.as_secs_f64(),
                st.fault,
                if c.findings.is_empty() {
                    "no finding of its own (needed with the others)".to_string()
                } else {
                    format!("{} findings", c.findings.len())
                }
            )),
            None => s.push_str(&format!(
                "  before any fault — {} findings\n",
                c.findings.len()
            )),
        }
        for f in c.findings.iter().take(max) {
            s.push_str(&format!("      {f}\n"));
        }
        if c.findings.len() > max {
            s.push_str(&format!("      … and {} more\n", c.findings.len() - max));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nemesis::Fault;

    #[test]
    fn findings_are_tied_to_the_fault_that_started_last_before_them() {
        let dir = std::env::temp_dir().join(format!("chaosbank-culprits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let history = dir.join("history.jsonl");
        // Transfer 1 acknowledged at 6 s and never credited: lost, after the kill at 5 s.
        let lines = [
            r#"{"index":0,"type":"ok","process":"setup","f":"init","value":{"balances":{"A/0":100,"B/0":100}},"time":0}"#,
            r#"{"index":1,"type":"invoke","process":0,"f":"transfer","value":{"id":1,"from":"A/0","to":"B/0","amount":10},"time":5500000000}"#,
            r#"{"index":2,"type":"ok","process":0,"f":"transfer","value":{"id":1,"from":"A/0","to":"B/0","amount":10},"time":6000000000}"#,
            r#"{"index":3,"type":"ok","process":"final","f":"drain","value":{"drained":true},"time":9000000000}"#,
            r#"{"index":4,"type":"ok","process":"final","f":"final-ledger","value":{"bank":"A","balances":{"A/0":90},"entries":[{"transfer":1,"account":"A/0","amount":-10}],"entry_count":1,"complete":true},"time":9100000000}"#,
            r#"{"index":5,"type":"ok","process":"final","f":"final-ledger","value":{"bank":"B","balances":{"B/0":100},"entries":[],"entry_count":0,"complete":true},"time":9200000000}"#,
        ];
        std::fs::write(&history, lines.join("\n")).unwrap();
        let step = |at: u64, node: &str| Step {
            at: Duration::from_secs(at),
            fault: Fault::Kill { node: node.into() },
            hold: Duration::from_secs(3),
        };
        let schedule = Schedule {
            seed: 1,
            steps: vec![step(1, "postgres"), step(5, "kafka"), step(8, "relay")],
        };
        let c = faults_that_matter(&schedule, &history).unwrap();
        assert_eq!(c.len(), 3, "{c:#?}");
        assert!(c[0].findings.is_empty(), "{c:#?}");
        // The total read off in the final ledgers (at 9.2 s) goes to the last fault.
        assert_eq!(
            c[2].findings,
            vec!["wrong-total at 9.2 s".to_string()],
            "{c:#?}"
        );
        assert_eq!(
            c[1].step.as_ref().unwrap().fault,
            Fault::Kill {
                node: "kafka".into()
            }
        );
        assert_eq!(
            c[1].findings,
            vec!["lost transfer 1 at 6.0 s".to_string()],
            "{c:#?}"
        );
        let text = render_culprits(&c, 5);
        assert!(text.contains("kill kafka — 1 findings"), "{text}");
        assert!(
            text.contains("kill postgres — no finding of its own"),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
