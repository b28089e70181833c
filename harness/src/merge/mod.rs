//! Merge: the shards of one soak, run on other machines (a CI matrix, a Kubernetes
//! Indexed Job), read back from their `soak.json` files ([`SoakFile`]) into one soak:
//! the same rows, table, JUnit and exit code as the soak run whole, plus what only many
//! shards show — missing or duplicated shards and runs, timing-sensitive seeds (the same
//! system and seed judged differently in two places), conviction rates with a confidence
//! interval ([`wilson`]), and the changes since a previous merge ([`trend`]).
//!
//! The result depends on the inputs' contents only: they are de-duplicated (a shard given
//! twice counts once) and ordered by shard and content, so any input order gives the
//! same merge.

pub mod html;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::{Component, Path, PathBuf};

use crate::config::RunConfig;
use crate::conviction::Convictions;
use crate::soak::{self, Row, SoakFile, SOAK_JSON};
use crate::store::Build;

/// The file a merge records itself in (what `--baseline` reads the next night).
pub const MERGED_JSON: &str = "merged.json";

/// The layout version of `merged.json`.
pub const MERGED_FORMAT: u32 = 1;

/// How deep [`find_inputs`] looks for `soak.json` files under a folder (a downloaded
/// artifact is `artifacts/<name>/<store>/soak-…/soak.json`).
const SEARCH_DEPTH: usize = 6;

/// One `soak.json`, with where it was read.
#[derive(Clone, Debug)]
pub struct Input {
    /// The file.
    pub path: PathBuf,
    /// What it holds.
    pub file: SoakFile,
}

impl Input {
    /// Reads one `soak.json`.
    pub fn load(path: &Path) -> Result<Input> {
        Ok(Input {
            path: path.to_path_buf(),
            file: SoakFile::load(path)?,
        })
    }

    /// The store the soak wrote to, as found here: `soak.json` sits in
    /// `<out>/soak-<timestamp>/`.
    fn store_root(&self) -> PathBuf {
        self.path
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// A row's folder as found here: its path inside the soak's `out`, under the store
    /// this file was found in (a shard's store moves when a CI artifact is downloaded).
    fn locate(&self, dir: &Path) -> PathBuf {
        match dir.strip_prefix(&self.file.config.out) {
            Ok(inside) => self.store_root().join(inside),
            Err(_) => dir.to_path_buf(),
        }
    }

    /// A hash of the contents: two copies of one shard have the same.
    fn key(&self) -> String {
        let json = serde_json::to_string(&self.file).unwrap_or_default();
        hex::encode(Sha256::digest(json.as_bytes()))
    }
}

/// The `soak.json` files the arguments name: a `soak.json` itself, or every one under a
/// folder (searched a few levels deep, in name order). Fails naming an argument that
/// holds none.
pub fn find_inputs(args: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for arg in args {
        if arg.is_file() {
            found.push(arg.clone());
            continue;
        }
        if !arg.is_dir() {
            bail!("{}: no such file or folder", arg.display());
        }
        let before = found.len();
        search(arg, SEARCH_DEPTH, &mut found)
            .with_context(|| format!("looking for {SOAK_JSON} under {}", arg.display()))?;
        if found.len() == before {
            bail!(
                "{}: no {SOAK_JSON} in it (a soak writes <out>/soak-<timestamp>/{SOAK_JSON})",
                arg.display()
            );
        }
    }
    Ok(found)
}

/// Adds the `soak.json` files under `dir` to `found`, `depth` levels deep.
fn search(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) -> Result<()> {
    let file = dir.join(SOAK_JSON);
    if file.is_file() {
        found.push(file);
        return Ok(());
    }
    if depth == 0 {
        return Ok(());
    }
    let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    subdirs.sort();
    for sub in subdirs {
        search(&sub, depth - 1, found)?;
    }
    Ok(())
}

/// The same system and seed judged differently in two places (two shards, two nights):
/// a verdict that depends on timing the seed does not pin down.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Disagreement {
    /// What ran.
    pub name: String,
    /// The seed.
    pub seed: u64,
    /// Each place's verdict: `invalid (shard 2/4)`, `valid (baseline)`.
    pub verdicts: Vec<String>,
}

/// What `chaosbank merge` makes of its inputs; stored as `merged.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Merged {
    /// The layout version ([`MERGED_FORMAT`]).
    pub format: u32,
    /// The chaosbank every shard was built from.
    pub chaosbank: Build,
    /// The shards' shared config fingerprint ([`soak::fingerprint`]).
    pub fingerprint: String,
    /// The settings every run shared.
    pub config: RunConfig,
    /// The soak's systems, in order.
    pub systems: Vec<String>,
    /// The soak's seeds, in order.
    pub seeds: Vec<u64>,
    /// How many shards the soak was split into.
    pub shards: usize,
    /// The distinct `soak.json` files read, by shard.
    pub inputs: Vec<PathBuf>,
    /// One row per run, in the soak's order, each run's folder as found here.
    pub rows: Vec<Row>,
    /// Shards no input holds.
    pub missing_shards: Vec<usize>,
    /// Shards two different inputs hold.
    pub duplicated_shards: Vec<usize>,
    /// Runs of the soak no input has a row for.
    pub missing_runs: Vec<(String, u64)>,
    /// Runs two different inputs have a row for (the first input's row is kept).
    pub duplicated_runs: Vec<(String, u64)>,
    /// Of those, the ones judged differently.
    pub timing_sensitive: Vec<Disagreement>,
}

/// Merges shards of one soak. Fails (exit 2 for the CLI) on no input, on inputs that are
/// not of one soak (chaosbank version or commit, config fingerprint, systems, seeds or
/// shard count differ, each difference named with the files), and on a row that is not
/// one of the soak's runs. Missing and duplicated shards and runs are not failures
/// here: they are in the result ([`Merged::problems`]).
pub fn merge(inputs: Vec<Input>) -> Result<Merged> {
    // One of each content, ordered by shard and content: any order, any repeats, the
    // same merge.
    let mut keyed: BTreeMap<(usize, String), Input> = BTreeMap::new();
    for input in inputs {
        let key = (input.file.shard.k, input.key());
        match keyed.get(&key) {
            Some(kept) if kept.path <= input.path => {}
            _ => {
                keyed.insert(key, input);
            }
        }
    }
    let inputs: Vec<Input> = keyed.into_values().collect();
    let Some(first) = inputs.first() else {
        bail!("no {SOAK_JSON} to merge");
    };
    agree(&inputs, "chaosbank version and commit", |f| {
        format!("{} {}", f.chaosbank.version, f.chaosbank.commit)
    })?;
    agree(&inputs, "config fingerprint", |f| f.fingerprint.clone())?;
    agree(&inputs, "systems", |f| f.systems.join(","))?;
    agree(&inputs, "seeds", |f| seed_list(&f.seeds))?;
    agree(&inputs, "shard count", |f| f.shard.n.to_string())?;

    let f = &first.file;
    let n = f.shard.n;
    let plan = soak::plan(&f.systems, &f.seeds);
    let index: BTreeMap<(&str, u64), usize> = plan
        .iter()
        .enumerate()
        .map(|(i, (name, seed))| ((name.as_str(), *seed), i))
        .collect();

    let mut by_shard: BTreeMap<usize, usize> = BTreeMap::new();
    for input in &inputs {
        *by_shard.entry(input.file.shard.k).or_default() += 1;
    }
    let missing_shards = (1..=n).filter(|k| !by_shard.contains_key(k)).collect();
    let duplicated_shards = by_shard
        .iter()
        .filter(|(_, &count)| count > 1)
        .map(|(&k, _)| k)
        .collect();

    // Each run's rows, from every input that has one.
    let mut found: Vec<Vec<(usize, Row)>> = vec![Vec::new(); plan.len()];
    for (i, input) in inputs.iter().enumerate() {
        for row in &input.file.rows {
            let Some(&at) = index.get(&(row.name.as_str(), row.seed)) else {
                bail!(
                    "{}: {} seed {} is not one of the soak's runs ({} × seeds {})",
                    input.path.display(),
                    row.name,
                    row.seed,
                    f.systems.join(","),
                    seed_list(&f.seeds)
                );
            };
            let mut row = row.clone();
            row.dir = row.dir.as_deref().map(|d| input.locate(d));
            if let Some(sum) = &mut row.shrink {
                sum.schedule = sum.schedule.as_deref().map(|d| input.locate(d));
                sum.evidence = sum.evidence.as_deref().map(|d| input.locate(d));
            }
            found[at].push((i, row));
        }
    }
    let mut merged = Merged {
        format: MERGED_FORMAT,
        chaosbank: f.chaosbank.clone(),
        fingerprint: f.fingerprint.clone(),
        config: f.config.clone(),
        systems: f.systems.clone(),
        seeds: f.seeds.clone(),
        shards: n,
        inputs: inputs.iter().map(|i| i.path.clone()).collect(),
        rows: Vec::new(),
        missing_shards,
        duplicated_shards,
        missing_runs: Vec::new(),
        duplicated_runs: Vec::new(),
        timing_sensitive: Vec::new(),
    };
    for ((name, seed), rows) in plan.into_iter().zip(found) {
        let Some((_, kept)) = rows.first() else {
            merged.missing_runs.push((name, seed));
            continue;
        };
        merged.rows.push(kept.clone());
        if rows.len() > 1 {
            let verdicts: BTreeSet<&str> =
                rows.iter().map(|(_, r)| r.outcome.valid.as_str()).collect();
            if verdicts.len() > 1 {
                merged.timing_sensitive.push(Disagreement {
                    name: name.clone(),
                    seed,
                    verdicts: rows
                        .iter()
                        .map(|(i, r)| {
                            format!("{} (shard {})", r.outcome.valid, inputs[*i].file.shard)
                        })
                        .collect(),
                });
            }
            merged.duplicated_runs.push((name, seed));
        }
    }
    Ok(merged)
}

/// Fails when the inputs differ in `what`, naming each value and its files.
fn agree(inputs: &[Input], what: &str, of: impl Fn(&SoakFile) -> String) -> Result<()> {
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for input in inputs {
        values
            .entry(of(&input.file))
            .or_default()
            .push(input.path.display().to_string());
    }
    if values.len() > 1 {
        let list = values
            .iter()
            .map(|(v, files)| format!("{v:?} in {}", files.join(", ")))
            .collect::<Vec<_>>()
            .join("; ");
        bail!("the inputs are not shards of one soak: their {what} differ: {list}");
    }
    Ok(())
}

/// A seed list as `soak --seeds` takes it, runs of consecutive seeds as ranges.
pub fn seed_list(seeds: &[u64]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < seeds.len() {
        let mut j = i;
        while j + 1 < seeds.len() && seeds[j + 1] == seeds[j] + 1 {
            j += 1;
        }
        parts.push(if j > i + 1 {
            format!("{}..{}", seeds[i], seeds[j])
        } else if j == i + 1 {
            format!("{},{}", seeds[i], seeds[j])
        } else {
            seeds[i].to_string()
        });
        i = j + 1;
    }
    parts.join(",")
}

impl Merged {
    /// What keeps the merge from being one whole soak: missing or duplicated shards and
    /// runs, one line each (runs listed up to 20 a line).
    pub fn problems(&self) -> Vec<String> {
        let runs = |list: &[(String, u64)]| {
            let mut s = list
                .iter()
                .take(20)
                .map(|(name, seed)| format!("{name} seed {seed}"))
                .collect::<Vec<_>>()
                .join(", ");
            if list.len() > 20 {
                let _ = write!(s, " and {} more", list.len() - 20);
            }
            s
        };
        let shards = |list: &[usize]| {
            list.iter()
                .map(|k| format!("{k}/{}", self.shards))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut p = Vec::new();
        if !self.missing_shards.is_empty() {
            p.push(format!("missing shards: {}", shards(&self.missing_shards)));
        }
        if !self.duplicated_shards.is_empty() {
            p.push(format!(
                "shards given by two different soak.json files: {}",
                shards(&self.duplicated_shards)
            ));
        }
        if !self.missing_runs.is_empty() {
            p.push(format!(
                "{} runs not run: {}",
                self.missing_runs.len(),
                runs(&self.missing_runs)
            ));
        }
        if !self.duplicated_runs.is_empty() {
            p.push(format!(
                "{} runs run twice: {}",
                self.duplicated_runs.len(),
                runs(&self.duplicated_runs)
            ));
        }
        p
    }

    /// `chaosbank merge`'s exit status: 2 when shards or runs are missing or duplicated,
    /// else as `soak`'s: 0 when every run was valid, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        if !self.problems().is_empty() {
            2
        } else if self.rows.iter().any(|r| !r.passed()) {
            1
        } else {
            0
        }
    }

    /// The summary table and each system's conviction line, as `soak` prints them.
    pub fn table(&self) -> String {
        soak::table(&self.rows)
    }

    /// The JUnit XML, as `soak --junit` writes it.
    pub fn junit(&self) -> String {
        soak::junit(&self.rows)
    }

    /// Each system's convictions.
    pub fn convictions(&self) -> Vec<Convictions> {
        soak::convictions(&self.rows)
    }

    /// Reads a `merged.json`, naming the file in every error.
    pub fn load(path: &Path) -> Result<Merged> {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let merged: Merged = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a merged.json", path.display()))?;
        if merged.format != MERGED_FORMAT {
            bail!(
                "{}: merged.json format {} (this chaosbank reads format {MERGED_FORMAT})",
                path.display(),
                merged.format
            );
        }
        Ok(merged)
    }
}

/// A previous night: a merge's folder or its `merged.json`, or else one soak's
/// `soak.json` files (found as `merge` finds its inputs) merged anew.
pub fn load_baseline(path: &Path) -> Result<Merged> {
    let merged = if path.is_dir() {
        path.join(MERGED_JSON)
    } else {
        path.to_path_buf()
    };
    if merged.file_name().is_some_and(|n| n == MERGED_JSON) && merged.is_file() {
        return Merged::load(&merged);
    }
    let inputs = find_inputs(&[path.to_path_buf()])?
        .iter()
        .map(|p| Input::load(p))
        .collect::<Result<Vec<_>>>()?;
    merge(inputs).with_context(|| format!("merging the baseline {}", path.display()))
}

/// What changed since a previous merge.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Trend {
    /// One line per change a nightly reader wants first: a system cleared before and
    /// convicted now (or the reverse), a conviction rate that fell or rose, a system
    /// new or gone.
    pub systems: Vec<String>,
    /// Runs judged differently than in the baseline: `dual-write seed 7: valid → invalid`.
    pub runs: Vec<String>,
    /// Of those, the ones with the same commit and config on both nights: timing
    /// decided them, not a change.
    pub timing_sensitive: Vec<Disagreement>,
}

impl Trend {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.systems.is_empty() && self.runs.is_empty()
    }
}

/// What changed from `before` to `now`.
pub fn trend(before: &Merged, now: &Merged) -> Trend {
    let mut t = Trend::default();
    let old: BTreeMap<String, Convictions> = before
        .convictions()
        .into_iter()
        .map(|c| (c.name.clone(), c))
        .collect();
    let rate = |c: &Convictions| {
        if c.judged == 0 {
            0.0
        } else {
            c.convicted as f64 / c.judged as f64
        }
    };
    let shown =
        |c: &Convictions| format!("{:.0} % ({} of {})", 100.0 * rate(c), c.convicted, c.judged);
    let current = now.convictions();
    for c in &current {
        let Some(o) = old.get(&c.name) else {
            t.systems.push(format!(
                "{}: new (not in the baseline), {}",
                c.name,
                shown(c)
            ));
            continue;
        };
        if o.convicted == 0 && c.convicted > 0 {
            t.systems.push(format!(
                "{}: CONVICTED now, {} (cleared before: {})",
                c.name,
                shown(c),
                shown(o)
            ));
        } else if o.convicted > 0 && c.convicted == 0 && c.judged > 0 {
            t.systems.push(format!(
                "{}: cleared now, {} (convicted before: {})",
                c.name,
                shown(c),
                shown(o)
            ));
        } else if rate(c) < rate(o) {
            t.systems.push(format!(
                "{}: conviction rate fell from {} to {}",
                c.name,
                shown(o),
                shown(c)
            ));
        } else if rate(c) > rate(o) {
            t.systems.push(format!(
                "{}: conviction rate rose from {} to {}",
                c.name,
                shown(o),
                shown(c)
            ));
        }
    }
    for name in old.keys() {
        if !current.iter().any(|c| &c.name == name) {
            t.systems
                .push(format!("{name}: not run now (in the baseline)"));
        }
    }
    let same_build =
        before.chaosbank.commit == now.chaosbank.commit && before.fingerprint == now.fingerprint;
    let earlier: BTreeMap<(&str, u64), &str> = before
        .rows
        .iter()
        .map(|r| ((r.name.as_str(), r.seed), r.outcome.valid.as_str()))
        .collect();
    for r in &now.rows {
        let Some(&was) = earlier.get(&(r.name.as_str(), r.seed)) else {
            continue;
        };
        if was != r.outcome.valid {
            t.runs.push(format!(
                "{} seed {}: {was} → {}",
                r.name, r.seed, r.outcome.valid
            ));
            if same_build {
                t.timing_sensitive.push(Disagreement {
                    name: r.name.clone(),
                    seed: r.seed,
                    verdicts: vec![
                        format!("{was} (baseline)"),
                        format!("{} (now)", r.outcome.valid),
                    ],
                });
            }
        }
    }
    t
}

/// The Wilson score interval of a proportion `x` of `n` at `z` standard errors (1.96
/// for 95 %): unlike `x/n ± z·se` it stays within 0–1 and is honest for 0 of 10 or 10
/// of 10. `None` when `n` is 0.
pub fn wilson(x: usize, n: usize, z: f64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let (x, n) = (x as f64, n as f64);
    let p = x / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(((center - half).max(0.0), (center + half).min(1.0)))
}

/// The path from folder `from` to `to`, both taken from the current folder when
/// relative (for links in a page written to `from`).
pub fn relative(from: &Path, to: &Path) -> PathBuf {
    // Each path's parts from the root, `.` and `..` resolved by name (the folders need
    // not exist yet).
    let parts = |p: &Path| -> Vec<std::ffi::OsString> {
        let p = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let mut parts = Vec::new();
        for c in p.components() {
            match c {
                Component::Normal(s) => parts.push(s.to_os_string()),
                Component::ParentDir => {
                    parts.pop();
                }
                Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            }
        }
        parts
    };
    let (f, t) = (parts(from), parts(to));
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
