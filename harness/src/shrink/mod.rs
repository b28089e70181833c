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
use serde::{Deserialize, Serialize};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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

/// Runs `inner`, and says stop once `stop` is set (a soak's first Ctrl-C): the search
/// then ends with the best schedule so far after the run under way.
pub struct Stopping<R> {
    /// The runner that runs.
    pub inner: R,
    /// Set to stop.
    pub stop: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl<R: Runner> Runner for Stopping<R> {
    async fn try_once(&mut self, c: &Candidate) -> Trial {
        self.inner.try_once(c).await
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.inner.stopped()
    }
}

/// The name of the minimal schedule's file in `RUN/shrink/`.
pub const MINIMAL_SCHEDULE: &str = "minimal-schedule.toml";

/// Where a stored run's minimal schedule goes by default: `RUN/shrink/minimal-schedule.toml`.
pub fn default_file(run_dir: &Path) -> PathBuf {
    run_dir.join("shrink").join(MINIMAL_SCHEDULE)
}

/// A shrink of a stored run from start to finish ([`shrink_stored`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    /// The search's settings.
    pub settings: Settings,
    /// Runs of the minimal schedule afterwards, for its reproduction rate (0: none);
    /// not counted against the search's budget.
    pub confirm: usize,
}

/// What shrinking a stored conviction left: the minimal schedule's file and what it took,
/// or why nothing was shrunk. `soak --shrink` records it in each convicted run's row
/// of `soak.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The minimal schedule's file (absent when nothing was shrunk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<PathBuf>,
    /// Faults in the original schedule.
    pub faults_before: usize,
    /// Faults in the minimal schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults_after: Option<usize>,
    /// The minimal schedule's workload, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_s: Option<f64>,
    /// Runs the search made (the confirmation's not included).
    pub runs: usize,
    /// Minutes it all took, the confirmation included.
    pub minutes: f64,
    /// The budget ran out, or the shrink was stopped, before the search was done:
    /// a smaller schedule may exist.
    #[serde(default)]
    pub exhausted: bool,
    /// The reproduction rate: of the confirmation runs, how many convicted, and how
    /// many ran (absent when none did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reproduced: Option<Reproduced>,
    /// A convicting run of the minimal schedule (its report shows the faults that
    /// matter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<PathBuf>,
    /// Why nothing was shrunk (or the file not written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `reproduced k of n`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reproduced {
    /// Runs that convicted.
    pub convicted: usize,
    /// Runs made.
    pub runs: usize,
}

impl std::fmt::Display for Reproduced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "reproduced {} of {}", self.convicted, self.runs)
    }
}

impl std::fmt::Display for Summary {
    /// One line: `12 → 2 faults, workload 18 s, reproduced 3 of 3 (14 runs, 21.5 min):
    /// FILE`, or `not shrunk: …` (an error's first line).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.schedule, self.faults_after) {
            (Some(file), Some(after)) => {
                write!(f, "{} → {after} faults", self.faults_before)?;
                if let Some(w) = self.workload_s {
                    write!(f, ", workload {w:.0} s")?;
                }
                if let Some(r) = self.reproduced {
                    write!(f, ", {r}")?;
                }
                write!(
                    f,
                    " ({} runs, {:.1} min{}): {}",
                    self.runs,
                    self.minutes,
                    if self.exhausted {
                        "; the budget ran out, smaller may exist"
                    } else {
                        ""
                    },
                    file.display()
                )?;
                if let Some(e) = self.error.as_deref().and_then(|e| e.lines().next()) {
                    write!(f, " ({e})")?;
                }
                Ok(())
            }
            _ => write!(
                f,
                "not shrunk: {} ({} runs, {:.1} min)",
                self.error
                    .as_deref()
                    .and_then(|e| e.lines().next())
                    .unwrap_or("no reason given"),
                self.runs,
                self.minutes
            ),
        }
    }
}

/// Shrinks a stored conviction from start to finish with `runner` (a [`RealRunner`] of
/// `start`'s config, wrapped in [`Stopping`] by a soak): the search
/// ([`shrink`](search::shrink)), the minimal schedule written to `file` (its header says
/// how it was found and how to play it), then `plan.confirm` more runs of it for its
/// reproduction rate (the file's header updated with it; skipped once the runner says
/// stop). Reports each step to `progress`. Never fails: what went wrong is in
/// [`Summary::error`].
pub async fn shrink_stored<R: Runner>(
    runner: &mut R,
    start: &Start,
    plan: Plan,
    file: &Path,
    mut progress: impl FnMut(&str),
) -> Summary {
    let began = Instant::now();
    let mut summary = Summary {
        faults_before: start.original.schedule.steps.len(),
        ..Summary::default()
    };
    let found = match shrink(runner, &start.original, plan.settings, &mut progress).await {
        Ok(f) => f,
        Err(e) => {
            summary.runs = e.tried;
            summary.exhausted = e.exhausted;
            summary.error = Some(e.to_string());
            summary.minutes = began.elapsed().as_secs_f64() / 60.0;
            return summary;
        }
    };
    let best = &found.best;
    summary.runs = found.runs;
    summary.exhausted = found.exhausted;
    summary.faults_after = Some(best.schedule.steps.len());
    summary.workload_s = Some(best.time_limit.as_secs_f64());
    summary.evidence = found.evidence.iter().find_map(|t| t.dir.clone());
    // Why the search ended before it could try everything, if it did.
    let unfinished = if found.stopped {
        Some("stopped")
    } else if found.exhausted {
        Some("the budget ran out")
    } else {
        None
    };
    let header = |rate: Option<Reproduced>, minutes: f64| {
        format!(
            "chaosbank shrink of {}\n{} of {} faults, workload {:.0} s; found in {} runs, \
             {minutes:.1} min{}{}\nplay it: chaosbank run --system {} --seed {} --time-limit {}s \
             --schedule THIS_FILE",
            start.dir.display(),
            best.schedule.steps.len(),
            found.original_faults,
            best.time_limit.as_secs_f64(),
            found.runs,
            unfinished
                .map(|why| format!(" ({why}: smaller may exist)"))
                .unwrap_or_default(),
            rate.map(|r| format!("; {r}")).unwrap_or_default(),
            start.config.system.name(),
            start.config.seed,
            best.time_limit.as_secs().max(1),
        )
    };
    let minutes = began.elapsed().as_secs_f64() / 60.0;
    if let Err(e) = write_file(
        file,
        &crate::script::to_toml(&best.schedule, &header(None, minutes)),
    ) {
        summary.error = Some(format!("{e:#}"));
        summary.minutes = minutes;
        return summary;
    }
    summary.schedule = Some(file.to_path_buf());
    progress(&format!(
        "\nminimal schedule: {} of {} faults, workload {:.0} s ({} runs, {minutes:.1} min{}) → {}\n{}",
        best.schedule.steps.len(),
        found.original_faults,
        best.time_limit.as_secs_f64(),
        found.runs,
        unfinished.map(|why| format!("; {why}, smaller may exist")).unwrap_or_default(),
        file.display(),
        best.schedule
    ));
    if plan.confirm > 0 && !runner.stopped() {
        let n = plan.confirm;
        let mut rate = Reproduced::default();
        for i in 1..=n {
            if runner.stopped() {
                progress("confirmation stopped");
                break;
            }
            let t = runner.try_once(best).await;
            rate.runs += 1;
            rate.convicted += usize::from(t.convicted);
            progress(&format!(
                "confirm {i} of {n}: {} — {}{}",
                if t.convicted {
                    "convicted"
                } else {
                    "not convicted"
                },
                t.line,
                t.dir
                    .map(|d| format!(" — {}", d.display()))
                    .unwrap_or_default()
            ));
        }
        progress(&rate.to_string());
        summary.reproduced = Some(rate);
        let minutes = began.elapsed().as_secs_f64() / 60.0;
        if let Err(e) = write_file(
            file,
            &crate::script::to_toml(&best.schedule, &header(Some(rate), minutes)),
        ) {
            summary.error = Some(format!("{e:#}"));
        }
    }
    summary.minutes = began.elapsed().as_secs_f64() / 60.0;
    summary
}

/// Writes `text` to `file`, creating its folder.
fn write_file(file: &Path, text: &str) -> Result<()> {
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(file, text).with_context(|| format!("writing {}", file.display()))
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

    /// Convicts when `n3` is killed; counts runs; every run costs 30 s; says stop after
    /// `stop_at` runs.
    struct Guilty {
        runs: usize,
        stop_at: Option<usize>,
    }

    #[async_trait::async_trait]
    impl Runner for Guilty {
        async fn try_once(&mut self, c: &Candidate) -> Trial {
            self.runs += 1;
            let convicted = c.schedule.steps.iter().any(|s| s.fault.nodes()[0] == "n3");
            Trial {
                convicted,
                first_violation_s: convicted.then_some(20.0),
                took: Duration::from_secs(30),
                dir: convicted.then(|| PathBuf::from(format!("runs/x/{}", self.runs))),
                line: String::new(),
            }
        }

        fn stopped(&self) -> bool {
            self.stop_at.is_some_and(|n| self.runs >= n)
        }
    }

    fn stored(dir: &Path, faults: usize) -> Start {
        Start {
            dir: dir.to_path_buf(),
            config: RunConfig::new(7),
            original: Candidate {
                schedule: Schedule {
                    seed: 7,
                    steps: (0..faults)
                        .map(|i| Step {
                            at: Duration::from_secs(2 * i as u64 + 1),
                            fault: Fault::Kill {
                                node: format!("n{i}"),
                            },
                            hold: Duration::from_secs(1),
                        })
                        .collect(),
                },
                time_limit: Duration::from_secs(60),
            },
            kinds: vec!["lost".into()],
        }
    }

    fn plan(runs: usize, confirm: usize) -> Plan {
        Plan {
            settings: Settings {
                tries: 1,
                budget: Budget {
                    runs: Some(runs),
                    time: None,
                },
                ..Settings::default()
            },
            confirm,
        }
    }

    #[tokio::test]
    async fn a_stored_conviction_is_shrunk_to_a_file_run_takes_and_confirmed() {
        let dir = std::env::temp_dir().join(format!("chaosbank-shrunk-{}", std::process::id()));
        let start = stored(&dir, 8);
        let file = default_file(&dir);
        let mut runner = Guilty {
            runs: 0,
            stop_at: None,
        };
        let mut lines = Vec::new();
        let sum = shrink_stored(&mut runner, &start, plan(40, 3), &file, |l| {
            lines.push(l.to_string())
        })
        .await;
        assert_eq!(sum.error, None, "{sum:#?}");
        assert_eq!(sum.schedule.as_deref(), Some(file.as_path()));
        assert_eq!((sum.faults_before, sum.faults_after), (8, Some(1)));
        assert_eq!(
            sum.reproduced,
            Some(Reproduced {
                convicted: 3,
                runs: 3
            })
        );
        assert_eq!(runner.runs, sum.runs + 3, "the confirmation is on top");
        assert!(!sum.exhausted && sum.evidence.is_some());
        // The file is what `run --schedule` plays: the guilty kill alone, and its header
        // carries the rate.
        let back = crate::script::load(&file).unwrap();
        assert_eq!(back.steps.len(), 1);
        assert_eq!(back.steps[0].fault.nodes()[0], "n3");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("reproduced 3 of 3"), "{text}");
        assert!(text.contains("--seed 7"), "{text}");
        assert!(lines.iter().any(|l| l == "reproduced 3 of 3"), "{lines:?}");
        assert!(sum.to_string().starts_with("8 → 1 faults"), "{sum}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_stop_skips_the_confirmation_and_a_failed_original_writes_nothing() {
        let dir = std::env::temp_dir().join(format!("chaosbank-stopped-{}", std::process::id()));
        let start = stored(&dir, 8);
        let file = default_file(&dir);
        // Stopped from the start: the original is not even decided.
        let stop = Arc::new(AtomicBool::new(true));
        let mut runner = Stopping {
            inner: Guilty {
                runs: 0,
                stop_at: None,
            },
            stop: stop.clone(),
        };
        let sum = shrink_stored(&mut runner, &start, plan(40, 3), &file, |_| {}).await;
        assert_eq!(runner.inner.runs, 0);
        assert!(sum.schedule.is_none() && !file.exists(), "{sum:#?}");
        assert!(sum.error.as_deref().unwrap().contains("stopped"), "{sum}");
        assert!(sum.to_string().starts_with("not shrunk: "), "{sum}");
        // The budget spent after the original: its schedule is the best, written, and
        // confirmed.
        stop.store(false, Ordering::Relaxed);
        let sum = shrink_stored(&mut runner, &start, plan(1, 2), &file, |_| {}).await;
        assert_eq!((sum.faults_after, sum.runs), (Some(8), 1), "{sum:#?}");
        assert!(sum.exhausted && file.exists());
        assert_eq!(sum.reproduced.map(|r| r.runs), Some(2));
        // Stopped during the search (a soak's first Ctrl-C): the best so far is
        // written, and not confirmed.
        let mut runner = Guilty {
            runs: 0,
            stop_at: Some(3),
        };
        let sum = shrink_stored(&mut runner, &start, plan(40, 3), &file, |_| {}).await;
        assert_eq!((runner.runs, sum.runs), (3, 3));
        assert!(sum.exhausted && sum.reproduced.is_none(), "{sum:#?}");
        // Run 2 ended the workload 5 s after the violation (kept), run 3 dropped the
        // half with the guilty kill (not convicted).
        assert_eq!(sum.workload_s, Some(25.0), "{sum:#?}");
        assert!(std::fs::read_to_string(&file).unwrap().contains("stopped"));
        // The original does not convict: nothing shrunk, the reason kept.
        let mut innocent = stored(&dir, 3);
        innocent.original.schedule.steps.clear();
        let sum = shrink_stored(
            &mut Guilty {
                runs: 0,
                stop_at: None,
            },
            &innocent,
            plan(40, 3),
            &dir.join("none.toml"),
            |_| {},
        )
        .await;
        assert!(sum.schedule.is_none() && !dir.join("none.toml").exists());
        assert!(
            sum.error
                .as_deref()
                .unwrap()
                .contains("convicted in 0 of 1"),
            "{sum:#?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

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
