//! Soak: many seeds of one or more systems back to back, one summary table. Failing
//! runs (invalid, unknown, or a run that errored) keep their whole store; passing ones
//! keep only `run.json` and `verdict.json` (their history, logs and report are
//! removed), so a long soak does not fill the disk.
//!
//! A soak can be one shard of a bigger one ([`Shard`]: a fixed round-robin split of the
//! (system, seed) list, the same on every machine), and every soak records itself in
//! `soak.json` ([`SoakFile`]: version, commit, config fingerprint, seeds, shard and every
//! row, errored runs included), which `chaosbank merge` ([`crate::merge`]) reads back.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use workloads::system::SystemKind;

use crate::conviction::Convictions;
use crate::run::{self, RunConfig};
use crate::shrink;
use crate::store::{self, Outcome};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Parses a seed list: `7`, `1,5,9`, `1..20` (inclusive), or a mix (`1..3,10`).
pub fn parse_seeds(s: &str) -> Result<Vec<u64>> {
    crate::parse::seeds(s).map_err(anyhow::Error::msg)
}

/// Parses a system list: `outbox,txmsg`.
pub fn parse_systems(s: &str) -> Result<Vec<SystemKind>> {
    let systems = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            SystemKind::parse(p)
                .with_context(|| format!("unknown system {p:?} ({})", SystemKind::names()))
        })
        .collect::<Result<Vec<_>>>()?;
    if systems.is_empty() {
        bail!("no systems given ({})", SystemKind::names());
    }
    Ok(systems)
}

/// One shard of a soak: the `k`-th (from 1) of `n`. Run `i` (from 0) of the soak's list —
/// every system with every seed, systems first ([`plan`]) — belongs to shard
/// `i mod n + 1`: a round-robin split, so shards differ by at most one run, each gets a
/// share of every system, and the split depends on the list alone (the same on every
/// machine). A CI matrix index `m` counting from 1 is shard `m/n`; an index from 0 (a
/// Kubernetes Indexed Job's `JOB_COMPLETION_INDEX`) is shard `(index + 1)/n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard, from 1.
    pub k: usize,
    /// How many shards in all.
    pub n: usize,
}

impl Shard {
    /// The most shards a soak may be split into.
    pub const MAX: usize = 100_000;

    /// The whole soak as one shard.
    pub const WHOLE: Shard = Shard { k: 1, n: 1 };

    /// Parses `K/N` (`1/4` … `4/4`).
    pub fn parse(s: &str) -> Result<Shard> {
        let (k, n) = s
            .split_once('/')
            .with_context(|| format!("not a shard: {s:?} (write K/N, e.g. 2/4)"))?;
        let k: usize = k
            .trim()
            .parse()
            .with_context(|| format!("not a shard number: {k:?} in {s:?} (write K/N, e.g. 2/4)"))?;
        let n: usize = n
            .trim()
            .parse()
            .with_context(|| format!("not a shard count: {n:?} in {s:?} (write K/N, e.g. 2/4)"))?;
        if n == 0 || n > Shard::MAX {
            bail!(
                "shard count {n} in {s:?} is out of range (1 to {})",
                Shard::MAX
            );
        }
        if k == 0 || k > n {
            bail!("shard {k} of {n} does not exist in {s:?} (K counts from 1 to N)");
        }
        Ok(Shard { k, n })
    }

    /// Whether run `i` (from 0) of the soak's list belongs to this shard.
    pub fn takes(&self, i: usize) -> bool {
        i % self.n == self.k - 1
    }

    /// This shard's part of a soak's list, in the list's order.
    pub fn pick<T: Clone>(&self, runs: &[T]) -> Vec<T> {
        runs.iter()
            .enumerate()
            .filter(|(i, _)| self.takes(*i))
            .map(|(_, r)| r.clone())
            .collect()
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

/// A soak's list of runs: every system with every seed, systems first (the order the
/// runs go and the table lists them).
pub fn plan<T: Clone>(systems: &[T], seeds: &[u64]) -> Vec<(T, u64)> {
    systems
        .iter()
        .flat_map(|s| seeds.iter().map(move |&seed| (s.clone(), seed)))
        .collect()
}

/// One run of a soak.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    /// The system.
    #[serde(with = "crate::config::system_serde")]
    pub system: SystemKind,
    /// What ran: the service's manifest name, else the system's.
    pub name: String,
    /// The seed.
    pub seed: u64,
    /// How it ended (`valid` is `error` when the run failed).
    pub outcome: Outcome,
    /// Its folder in the store (absent when the run failed before it had one).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// What `soak --shrink` made of it, a convicted run: its minimal schedule's file,
    /// faults before and after, its reproduction rate, or why it was not shrunk (absent
    /// without `--shrink`, for a run not convicted, and in files from before the flag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shrink: Option<shrink::Summary>,
}

impl Row {
    /// Whether the run passed (valid).
    pub fn passed(&self) -> bool {
        self.outcome.valid == "valid"
    }
}

/// Runs `base` once per system and seed, in that order; calls `each` after every run
/// (to print as it goes). Stops early when `stop` says so (checked between runs).
pub async fn soak(
    base: &RunConfig,
    systems: &[SystemKind],
    seeds: &[u64],
    each: impl FnMut(&Row),
    stop: impl Fn() -> bool,
) -> Vec<Row> {
    soak_runs(base, &plan(systems, seeds), Passing::Lighten, each, stop).await
}

/// What a soak keeps of a passing (valid) run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Passing {
    /// Only `run.json` and `verdict.json` ([`lighten`]): a long soak does not fill the disk.
    #[default]
    Lighten,
    /// The whole store: history, report, container logs (`soak --keep-passing`), to
    /// read what a cleared run went through.
    Keep,
}

impl Passing {
    /// Lightens `row`'s folder `dir` when the run passed and passing runs are lightened.
    fn tidy(self, row: &Row, dir: &Path) {
        if row.passed() && self == Passing::Lighten {
            lighten(dir);
        }
    }
}

/// Runs `base` once per (system, seed) of `runs`, in order (a shard's part of a soak's
/// list, [`Shard::pick`]), keeping of each passing run what `passing` says; calls `each`
/// after every run. Stops early when `stop` says so (checked between runs).
pub async fn soak_runs(
    base: &RunConfig,
    runs: &[(SystemKind, u64)],
    passing: Passing,
    mut each: impl FnMut(&Row),
    stop: impl Fn() -> bool,
) -> Vec<Row> {
    let mut rows = Vec::new();
    {
        for &(system, seed) in runs {
            if stop() {
                break;
            }
            let cfg = RunConfig {
                system,
                seed,
                ..base.clone()
            };
            let row = match run::run(&cfg).await {
                Ok(report) => {
                    let dir = report.dir().to_path_buf();
                    let row = Row {
                        system,
                        name: report.name.clone(),
                        seed,
                        outcome: Outcome::of_report(&report),
                        dir: Some(dir.clone()),
                        shrink: None,
                    };
                    passing.tidy(&row, &dir);
                    row
                }
                Err(e) => {
                    let name =
                        crate::sut::subject_name(&cfg).unwrap_or_else(|_| "service".to_string());
                    tracing::error!("{name} seed {seed}: {e:#}");
                    Row {
                        system,
                        name,
                        seed,
                        outcome: Outcome {
                            valid: "error".to_string(),
                            error: Some(format!("{e:#}")),
                            ..Outcome::default()
                        },
                        dir: None,
                        shrink: None,
                    }
                }
            };
            each(&row);
            rows.push(row);
        }
    }
    rows
}

/// Whether `soak --shrink` shrinks a row: a convicted run with a folder, not shrunk yet.
pub fn to_shrink(row: &Row) -> bool {
    row.outcome.valid == "invalid" && row.dir.is_some() && row.shrink.is_none()
}

/// Shrinks every convicted run of `rows` ([`to_shrink`]) in turn, as `chaosbank shrink`
/// does, each within `plan`'s budget: its minimal schedule goes to
/// `RUN/shrink/minimal-schedule.toml` and what came of it to the row's
/// [`Row::shrink`]. Calls `each` with the row's place after every shrink (to record and
/// print as it goes) and `progress` with the search's lines. Once `stop` is set (Ctrl-C)
/// the shrink under way ends after its current run with the best schedule so far, and
/// no other starts. Candidates' runs that end valid are lightened as the soak's passing
/// runs are. Returns how many were shrunk.
pub async fn shrink_convicted(
    rows: &mut [Row],
    plan: shrink::Plan,
    stop: Arc<AtomicBool>,
    mut each: impl FnMut(usize, &Row),
    mut progress: impl FnMut(&str),
) -> usize {
    let mut done = 0;
    for (i, row) in rows.iter_mut().enumerate() {
        if !to_shrink(row) {
            continue;
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let Some(dir) = row.dir.clone() else {
            continue;
        };
        let summary = match shrink::start(&dir) {
            Err(e) => shrink::Summary {
                error: Some(format!("{e:#}")),
                ..shrink::Summary::default()
            },
            Ok(start) => {
                let mut runner = shrink::Stopping {
                    inner: Lightening(shrink::RealRunner {
                        base: start.config.clone(),
                        want: start.kinds.clone(),
                    }),
                    stop: stop.clone(),
                };
                let file = shrink::default_file(&dir);
                let mut sum =
                    shrink::shrink_stored(&mut runner, &start, plan, &file, &mut progress).await;
                // The evidence as a path inside the row's folder, as the row names it
                // (the shrink resolved the folder), so merge can relocate it.
                sum.evidence = sum.evidence.map(|e| match e.strip_prefix(&start.dir) {
                    Ok(inside) => dir.join(inside),
                    Err(_) => e,
                });
                sum
            }
        };
        row.shrink = Some(summary);
        done += 1;
        each(i, row);
    }
    done
}

/// Runs candidates as the inner runner does, and lightens each run that ended valid
/// ([`lighten`], as the soak's own passing runs are): a long soak's shrinks would
/// otherwise keep every acquitted candidate's history, logs and report.
struct Lightening<R>(R);

#[async_trait::async_trait]
impl<R: shrink::Runner> shrink::Runner for Lightening<R> {
    async fn try_once(&mut self, c: &shrink::Candidate) -> shrink::Trial {
        let t = self.0.try_once(c).await;
        if let Some(dir) = t.dir.as_deref().filter(|_| !t.convicted) {
            lighten_if_valid(dir);
        }
        t
    }

    fn stopped(&self) -> bool {
        self.0.stopped()
    }
}

/// [`lighten`]s a stored run whose `run.json` says it ended valid; leaves anything else.
fn lighten_if_valid(dir: &Path) {
    let valid = store::load(dir)
        .ok()
        .and_then(|m| m.outcome)
        .is_some_and(|o| o.valid == "valid");
    if valid {
        lighten(dir);
    }
}

/// The layout version of `soak.json` ([`SoakFile::format`]).
pub const SOAK_FORMAT: u32 = 1;

/// The file a soak records itself in, in `<out>/soak-<timestamp>/`.
pub const SOAK_JSON: &str = "soak.json";

/// What `soak.json` holds: enough to merge shards run on other machines into one soak
/// and to tell whether they belong together. Written when the soak starts and again
/// after every run, so a killed soak still says what it did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SoakFile {
    /// The layout version ([`SOAK_FORMAT`]).
    pub format: u32,
    /// chaosbank's version and commit.
    pub chaosbank: store::Build,
    /// A hash of the runs' settings ([`fingerprint`]): shards of one soak share it.
    pub fingerprint: String,
    /// The settings every run shares (its system and seed are each row's).
    pub config: RunConfig,
    /// What the whole soak runs, in order: the systems' names, or the service's.
    pub systems: Vec<String>,
    /// The whole soak's seeds, in order (not only this shard's).
    pub seeds: Vec<u64>,
    /// Which part of the soak this file is (`1/1` for a whole soak).
    pub shard: Shard,
    /// How many runs this shard was given.
    pub runs: usize,
    /// When the soak started, seconds since the Unix epoch.
    pub started_at: u64,
    /// When it ended (absent while it runs, or when it was killed).
    #[serde(default)]
    pub finished_at: Option<u64>,
    /// Whether it was stopped before it ran every run it was given (Ctrl-C).
    #[serde(default)]
    pub stopped: bool,
    /// Every run so far, in order, errored ones included.
    pub rows: Vec<Row>,
}

impl SoakFile {
    /// A soak about to start: `base` with each of `systems` (names as rows carry them)
    /// and `seeds`, this `shard` of it.
    pub fn new(base: &RunConfig, systems: Vec<String>, seeds: Vec<u64>, shard: Shard) -> Self {
        let runs = shard.pick(&plan(&systems, &seeds)).len();
        SoakFile {
            format: SOAK_FORMAT,
            chaosbank: store::Build::default(),
            fingerprint: fingerprint(base),
            config: base.clone(),
            systems,
            seeds,
            shard,
            runs,
            started_at: now(),
            finished_at: None,
            stopped: false,
            rows: Vec::new(),
        }
    }

    /// The (system, seed) pairs this shard was given, in order.
    pub fn given(&self) -> Vec<(String, u64)> {
        self.shard.pick(&plan(&self.systems, &self.seeds))
    }

    /// Whether every run it was given has a row (whatever its verdict).
    pub fn complete(&self) -> bool {
        let ran: std::collections::HashSet<(&str, u64)> = self
            .rows
            .iter()
            .map(|r| (r.name.as_str(), r.seed))
            .collect();
        self.given()
            .iter()
            .all(|(name, seed)| ran.contains(&(name.as_str(), *seed)))
    }

    /// Marks it finished now (`stopped` when it did not run everything).
    pub fn finish(&mut self, stopped: bool) {
        self.finished_at = Some(now());
        self.stopped = stopped;
    }

    /// Writes it to `path` (to a temporary file first, then renamed, so a reader never
    /// sees half a file).
    pub fn write(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(self).context("encoding soak.json")?;
        std::fs::write(&tmp, json).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
    }

    /// Reads a `soak.json`, naming the file in every error.
    pub fn load(path: &Path) -> Result<SoakFile> {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let file: SoakFile = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a soak.json", path.display()))?;
        if file.format != SOAK_FORMAT {
            bail!(
                "{}: soak.json format {} (this chaosbank reads format {SOAK_FORMAT})",
                path.display(),
                file.format
            );
        }
        if file.shard.k == 0 || file.shard.k > file.shard.n {
            bail!("{}: shard {} does not exist", path.display(), file.shard);
        }
        Ok(file)
    }
}

/// A short hash of the settings a soak's runs share: the whole [`RunConfig`] but what
/// differs between its runs (system, seed) or between machines without changing the
/// runs (`out`, `node_binary`). Shards of one soak have the same one.
pub fn fingerprint(cfg: &RunConfig) -> String {
    let mut value = serde_json::to_value(cfg).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        for field in ["system", "seed", "out", "node_binary"] {
            map.remove(field);
        }
    }
    let digest = Sha256::digest(value.to_string().as_bytes());
    hex::encode(&digest[..8])
}

/// Seconds since the Unix epoch.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Removes a passing run's bulky files: history, report and container logs (keeps
/// `run.json` and `verdict.json`).
pub fn lighten(dir: &Path) {
    for file in ["history.jsonl", "report.html"] {
        let _ = std::fs::remove_file(dir.join(file));
    }
    let _ = std::fs::remove_dir_all(dir.join(store::LOGS));
}

/// What took effect, by kind, and how many overlapped: `isolate×3 kill×2 (1 overlapping)`;
/// `-` when nothing did.
fn fault_kinds(o: &store::Outcome) -> String {
    let mut s = o
        .fault_kinds
        .iter()
        .map(|(k, n)| format!("{k}×{n}"))
        .collect::<Vec<_>>()
        .join(" ");
    if o.faults_overlapping > 0 {
        s.push_str(&format!(" ({} overlapping)", o.faults_overlapping));
    }
    if s.is_empty() {
        s.push('-');
    }
    s
}

/// Each system's convictions over its seeds, in the order the systems ran.
pub fn convictions(rows: &[Row]) -> Vec<Convictions> {
    let mut names: Vec<&str> = Vec::new();
    for r in rows {
        if !names.contains(&r.name.as_str()) {
            names.push(&r.name);
        }
    }
    names
        .into_iter()
        .map(|name| {
            Convictions::of(
                name,
                rows.iter()
                    .filter(|r| r.name == name)
                    .map(|r| (r.outcome.valid.as_str(), r.outcome.first_violation_s)),
            )
        })
        .collect()
}

/// The summary table: one line per run (`1ST VIOL` is the time into the run of the
/// first op a violation names), then each system's convictions.
pub fn table(rows: &[Row]) -> String {
    // The first column fits the longest name (a service's can be long).
    let w = rows
        .iter()
        .map(|r| r.name.chars().count())
        .fold(11, usize::max);
    let mut s = format!(
        "{:<w$} {:>6}  {:<8} {:>6} {:>5} {:>5} {:>7} {:>10} {:>9}  {:<28} {}\n",
        "SYSTEM",
        "SEED",
        "VERDICT",
        "OK",
        "FAIL",
        "INFO",
        "FAULTS",
        "XFER/S",
        "1ST VIOL",
        "FAULT KINDS",
        "ANOMALIES / RUN"
    );
    for r in rows {
        let f = &r.outcome.figures;
        let anomalies = match &r.outcome.error {
            Some(e) => e.lines().next().unwrap_or_default().to_string(),
            None if r.outcome.anomalies.is_empty() => "-".to_string(),
            None => r
                .outcome
                .anomalies
                .iter()
                .map(|(k, n)| format!("{k} ×{n}"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let _ = writeln!(
            s,
            "{:<w$} {:>6}  {:<8} {:>6} {:>5} {:>5} {:>7} {:>10.1} {:>9}  {:<28} {}{}",
            r.name,
            r.seed,
            r.outcome.valid.to_uppercase(),
            f.transfers_ok,
            f.transfers_fail,
            f.transfers_info,
            r.outcome.faults,
            f.throughput,
            r.outcome
                .first_violation_s
                .map_or("-".to_string(), |t| format!("{t:.1} s")),
            fault_kinds(&r.outcome),
            anomalies,
            r.dir
                .as_ref()
                .filter(|_| !r.passed())
                .map(|d| format!(" — {}", d.display()))
                .unwrap_or_default()
        );
        if let Some(sum) = &r.shrink {
            let _ = writeln!(s, "{:<w$} {:>6}  shrunk: {sum}", "", "");
        }
    }
    let failed = rows.iter().filter(|r| !r.passed()).count();
    let _ = writeln!(
        s,
        "{} runs, {} passed, {failed} failed",
        rows.len(),
        rows.len() - failed
    );
    for c in convictions(rows) {
        let _ = writeln!(s, "{c}{}", shrunk(rows, &c.name));
    }
    s
}

/// What `soak --shrink` made of a system's convictions, for its line in the table:
/// `; shrunk 2 of 3 (faults 12 → 2, 9 → 1; reproduced 5 of 6)`, or nothing when none was tried.
fn shrunk(rows: &[Row], name: &str) -> String {
    let tried: Vec<&shrink::Summary> = rows
        .iter()
        .filter(|r| r.name == name)
        .filter_map(|r| r.shrink.as_ref())
        .collect();
    if tried.is_empty() {
        return String::new();
    }
    let convicted = rows
        .iter()
        .filter(|r| r.name == name && r.outcome.valid == "invalid")
        .count();
    let made: Vec<String> = tried
        .iter()
        .filter_map(|t| t.faults_after.map(|a| format!("{} → {a}", t.faults_before)))
        .collect();
    let mut out = format!("; shrunk {} of {convicted}", made.len());
    if !made.is_empty() {
        let shown = made.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
        let more = if made.len() > 8 { ", …" } else { "" };
        out.push_str(&format!(" (faults {shown}{more}"));
        let (k, n) = tried
            .iter()
            .filter(|t| t.faults_after.is_some())
            .filter_map(|t| t.reproduced)
            .fold((0, 0), |(k, n), r| (k + r.convicted, n + r.runs));
        if n > 0 {
            out.push_str(&format!("; reproduced {k} of {n}"));
        }
        out.push(')');
    }
    out
}

/// The soak as JUnit XML: one testcase per run (`<system> seed <seed>`), a `failure`
/// for an invalid verdict (its folder, and its minimal schedule after `--shrink`), an
/// `error` for an unknown one or a run that failed.
pub fn junit(rows: &[Row]) -> String {
    use crate::report::escape;
    let (mut failures, mut errors) = (0, 0);
    let mut cases = String::new();
    for r in rows {
        let name = format!("{} seed {}", r.name, r.seed);
        let _ = writeln!(
            cases,
            "    <testcase name=\"{}\" classname=\"chaosbank.soak.{}\" time=\"0\">",
            escape(&name),
            escape(&r.name)
        );
        let anomalies = r
            .outcome
            .anomalies
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ");
        let place = r
            .dir
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        match r.outcome.valid.as_str() {
            "valid" => {}
            "invalid" => {
                failures += 1;
                let _ = writeln!(
                    cases,
                    "      <failure type=\"invalid\" message=\"{}\">{}</failure>",
                    escape(&anomalies),
                    escape(&match &r.shrink {
                        Some(sum) => format!("{place}\nshrunk: {sum}"),
                        None => place.clone(),
                    })
                );
            }
            other => {
                errors += 1;
                let message =
                    r.outcome.error.clone().unwrap_or_else(|| {
                        format!("the verdict is {other} (nothing could be judged)")
                    });
                let _ = writeln!(
                    cases,
                    "      <error type=\"{}\" message=\"{}\">{}</error>",
                    escape(other),
                    escape(message.lines().next().unwrap_or_default()),
                    escape(format!("{message}\n{place}").trim_end())
                );
            }
        }
        cases.push_str("    </testcase>\n");
    }
    let n = rows.len();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <testsuites tests=\"{n}\" failures=\"{failures}\" errors=\"{errors}\">\n  \
         <testsuite name=\"chaosbank-soak\" tests=\"{n}\" failures=\"{failures}\" \
         errors=\"{errors}\" skipped=\"0\" time=\"0\">\n{cases}  </testsuite>\n</testsuites>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_lists() {
        assert_eq!(parse_seeds("7").unwrap(), vec![7]);
        assert_eq!(parse_seeds("1,5,9").unwrap(), vec![1, 5, 9]);
        assert_eq!(parse_seeds("1..4").unwrap(), vec![1, 2, 3, 4]);
        assert_eq!(parse_seeds("1..=2, 10").unwrap(), vec![1, 2, 10]);
        for bad in ["", "x", "3..1", "1..y", "-1", "0..1000000"] {
            assert!(parse_seeds(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn system_lists() {
        assert_eq!(
            parse_systems("outbox,txmsg").unwrap(),
            vec![SystemKind::Outbox, SystemKind::TxMsg]
        );
        assert!(parse_systems("outbox,sagas").is_err());
        assert!(parse_systems("").is_err());
    }

    #[test]
    fn passing_runs_are_lightened_and_the_table_names_failures() {
        let dir = std::env::temp_dir().join(format!("chaosbank-soak-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(store::LOGS)).unwrap();
        for f in ["history.jsonl", "report.html", "run.json", "verdict.json"] {
            std::fs::write(dir.join(f), "{}").unwrap();
        }
        std::fs::write(dir.join(store::LOGS).join("postgres.log"), "x").unwrap();
        let row = |valid: &str| Row {
            system: SystemKind::Outbox,
            name: "outbox".into(),
            seed: 1,
            outcome: Outcome {
                valid: valid.into(),
                ..Outcome::default()
            },
            dir: Some(dir.clone()),
            shrink: None,
        };
        let whole = |d: &Path| {
            ["history.jsonl", "report.html", "run.json", "verdict.json"]
                .iter()
                .all(|f| d.join(f).is_file())
                && d.join(store::LOGS).join("postgres.log").is_file()
        };
        // A failing run keeps everything; `--keep-passing` keeps a passing one whole.
        Passing::Lighten.tidy(&row("invalid"), &dir);
        Passing::Lighten.tidy(&row("unknown"), &dir);
        Passing::Keep.tidy(&row("valid"), &dir);
        assert!(whole(&dir));
        Passing::Lighten.tidy(&row("valid"), &dir);
        assert!(dir.join("run.json").is_file() && dir.join("verdict.json").is_file());
        assert!(!dir.join("history.jsonl").exists() && !dir.join("report.html").exists());
        assert!(!dir.join(store::LOGS).exists());
        let _ = std::fs::remove_dir_all(&dir);

        let pass = Row {
            system: SystemKind::Outbox,
            name: "outbox".into(),
            seed: 1,
            outcome: Outcome {
                valid: "valid".into(),
                ..Outcome::default()
            },
            dir: Some("runs/outbox/a-1".into()),
            shrink: None,
        };
        let fail = Row {
            system: SystemKind::DualWrite,
            name: "dual-write".into(),
            seed: 2,
            outcome: Outcome {
                valid: "invalid".into(),
                anomalies: [("phantom".to_string(), 2)].into_iter().collect(),
                faults: 3,
                fault_kinds: [("clock".to_string(), 1), ("kill".to_string(), 2)]
                    .into_iter()
                    .collect(),
                faults_overlapping: 1,
                first_violation: Some("phantom".into()),
                first_violation_s: Some(12.34),
                ..Outcome::default()
            },
            dir: Some("runs/dual-write/b-2".into()),
            shrink: None,
        };
        let xml = junit(&[pass.clone(), fail.clone()]);
        assert!(
            xml.contains("tests=\"2\" failures=\"1\" errors=\"0\""),
            "{xml}"
        );
        assert!(xml.contains("message=\"2 phantom\""), "{xml}");
        let t = table(&[pass, fail]);
        assert!(t.contains("phantom ×2 — runs/dual-write/b-2"), "{t}");
        assert!(!t.contains("runs/outbox/a-1"), "{t}");
        assert!(t.contains("2 runs, 1 passed, 1 failed"), "{t}");
        // What took effect, by kind, and the overlaps: the clock fault and overlapping
        // faults are visible in the table.
        assert!(t.contains("clock×1 kill×2 (1 overlapping)"), "{t}");
        // Time to conviction, per run and per system.
        assert!(t.contains(" 12.3 s "), "{t}");
        assert!(
            t.contains(
                "dual-write: convicted in 1 of 1 seeds (100 %); first violation after 12.3 s"
            ),
            "{t}"
        );
        assert!(t.contains("outbox: convicted in 0 of 1 seeds (0 %)"), "{t}");
    }

    #[test]
    fn a_long_service_name_keeps_the_columns_aligned() {
        let row = |name: &str, seed| Row {
            system: SystemKind::Outbox,
            name: name.into(),
            seed,
            outcome: Outcome {
                valid: "valid".into(),
                ..Outcome::default()
            },
            dir: None,
            shrink: None,
        };
        let t = table(&[row("java-txmsg-broken", 8), row("outbox", 10)]);
        let lines: Vec<&str> = t.lines().take(3).collect();
        // The SEED column ends at the same place on the header and on every row.
        let end = |l: &str, what: &str| l.find(what).map(|i| i + what.len());
        let seed_end = end(lines[0], "SEED");
        assert!(seed_end.is_some(), "{t}");
        assert_eq!(end(lines[1], " 8 "), seed_end.map(|e| e + 1), "{t}");
        assert_eq!(end(lines[2], "10 "), seed_end.map(|e| e + 1), "{t}");
    }

    #[test]
    fn acquitted_candidates_are_lightened_only_when_valid() {
        let root = std::env::temp_dir().join(format!("chaosbank-light-{}", std::process::id()));
        for valid in ["valid", "invalid", "unknown"] {
            let dir = root.join(valid);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("history.jsonl"), "{}").unwrap();
            let meta = store::RunMeta {
                outcome: Some(Outcome {
                    valid: valid.into(),
                    ..Outcome::default()
                }),
                system: "dual-write".into(),
                ..store::RunMeta::default()
            };
            store::save(&dir, &meta).unwrap();
            lighten_if_valid(&dir);
            assert_eq!(
                dir.join("history.jsonl").exists(),
                valid != "valid",
                "{valid}"
            );
            assert!(dir.join(store::RUN_JSON).exists());
        }
        // No run.json (a run that failed early): left as it is.
        let bare = root.join("bare");
        std::fs::create_dir_all(&bare).unwrap();
        std::fs::write(bare.join("history.jsonl"), "{}").unwrap();
        lighten_if_valid(&bare);
        assert!(bare.join("history.jsonl").exists());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn soak_json_round_trips_and_an_old_row_without_shrink_loads() {
        let dir = std::env::temp_dir().join(format!("chaosbank-soakjson-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(SOAK_JSON);
        let mut file = SoakFile::new(
            &RunConfig::new(0),
            vec!["dual-write".into()],
            vec![1, 2],
            Shard::WHOLE,
        );
        let row = |seed: u64, shrink: Option<shrink::Summary>| Row {
            system: SystemKind::DualWrite,
            name: "dual-write".into(),
            seed,
            outcome: Outcome {
                valid: "invalid".into(),
                ..Outcome::default()
            },
            dir: Some(format!("runs/dual-write/t-{seed}").into()),
            shrink,
        };
        let sum = shrink::Summary {
            schedule: Some("runs/dual-write/t-1/shrink/minimal-schedule.toml".into()),
            faults_before: 11,
            faults_after: Some(2),
            workload_s: Some(19.0),
            runs: 14,
            minutes: 20.5,
            exhausted: true,
            reproduced: Some(shrink::Reproduced {
                convicted: 3,
                runs: 3,
            }),
            evidence: Some("runs/dual-write/t-1/shrink/dual-write/x-1".into()),
            error: None,
        };
        file.rows = vec![row(1, Some(sum.clone())), row(2, None)];
        file.write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        // A row not shrunk says nothing of it.
        assert_eq!(text.matches("\"shrink\"").count(), 1, "{text}");
        let back = SoakFile::load(&path).unwrap();
        assert_eq!(back.rows[0].shrink.as_ref(), Some(&sum));
        assert_eq!(back.rows[1].shrink, None);
        // A soak.json written before the field: its rows load, unshrunk, and would be
        // shrunk.
        let mut old: serde_json::Value = serde_json::from_str(&text).unwrap();
        for r in old["rows"].as_array_mut().unwrap() {
            r.as_object_mut().unwrap().remove("shrink");
        }
        std::fs::write(&path, old.to_string()).unwrap();
        let back = SoakFile::load(&path).unwrap();
        assert!(back.rows.iter().all(|r| r.shrink.is_none() && to_shrink(r)));
        // A summary of a failed shrink with only the required fields loads too.
        let failed: shrink::Summary = serde_json::from_str(
            r#"{"faults_before":0,"runs":0,"minutes":0.0,"error":"no schedule stored"}"#,
        )
        .unwrap();
        assert_eq!(failed.schedule, None);
        assert!(failed
            .to_string()
            .starts_with("not shrunk: no schedule stored"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_table_names_each_minimal_schedule() {
        let mut rows: Vec<Row> = (1..=3)
            .map(|seed| Row {
                system: SystemKind::DualWrite,
                name: "dual-write".into(),
                seed,
                outcome: Outcome {
                    valid: if seed == 3 { "valid" } else { "invalid" }.into(),
                    ..Outcome::default()
                },
                dir: Some(format!("runs/dual-write/t-{seed}").into()),
                shrink: None,
            })
            .collect();
        assert_eq!(rows.iter().filter(|r| to_shrink(r)).count(), 2);
        rows[0].shrink = Some(shrink::Summary {
            schedule: Some("runs/dual-write/t-1/shrink/minimal-schedule.toml".into()),
            faults_before: 9,
            faults_after: Some(1),
            workload_s: Some(12.0),
            runs: 10,
            minutes: 15.0,
            reproduced: Some(shrink::Reproduced {
                convicted: 2,
                runs: 3,
            }),
            ..shrink::Summary::default()
        });
        rows[1].shrink = Some(shrink::Summary {
            faults_before: 7,
            runs: 2,
            minutes: 3.0,
            error: Some("the original schedule convicted in 0 of 2 tries".into()),
            ..shrink::Summary::default()
        });
        let xml = junit(&rows);
        assert!(
            xml.contains("runs/dual-write/t-1\nshrunk: 9 → 1 faults"),
            "{xml}"
        );
        let t = table(&rows);
        assert!(
            t.contains(
                "shrunk: 9 → 1 faults, workload 12 s, reproduced 2 of 3 (10 runs, 15.0 min): \
                 runs/dual-write/t-1/shrink/minimal-schedule.toml"
            ),
            "{t}"
        );
        assert!(
            t.contains("shrunk: not shrunk: the original schedule convicted in 0 of 2 tries"),
            "{t}"
        );
        assert!(
            t.contains(
                "dual-write: convicted in 2 of 3 seeds (67 %); shrunk 1 of 2 (faults 9 → 1; \
                 reproduced 2 of 3)"
            ),
            "{t}"
        );
        assert!(rows.iter().all(|r| !to_shrink(r)));
    }
}
