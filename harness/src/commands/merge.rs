//! `chaosbank merge`: the shards of one soak (each a `soak.json`, from CI runners or
//! pods) into one table, one JUnit file, one HTML page and one verdict.
//!
//! Exit status: as `soak`'s — 0 when every run was valid, 1 when any was invalid,
//! unknown or failed — and 2 when the inputs are not one whole soak (a mix of commits or
//! configs, shards or runs missing or duplicated, a file that cannot be read).

use chaosbank::merge::{self, html, Input, Merged};
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags of `chaosbank merge`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  chaosbank merge shards/                          # every soak.json under shards/
  chaosbank merge a/store b/store --out merged --baseline last-night/merged

Each input is a soak.json or a folder holding some (searched a few levels deep: a CI
artifact folder as downloaded). Prints the table as soak does (also <out>/summary.txt).
Writes <out>/merged.json (the next night's --baseline),
<out>/junit.xml (or --junit) and <out>/index.html (conviction rate per system with its
95 % Wilson interval, time-to-conviction dots, timing-sensitive seeds, each failing run
linked to its own report). Exit status: 0 all valid, 1 any invalid, unknown or failed,
2 inputs not one whole soak (mixed commits or configs, missing or duplicated shards or
runs, unreadable files).")]
pub struct MergeArgs {
    /// Shards' soak.json files, or folders holding them.
    #[arg(required = true, value_name = "DIR")]
    pub inputs: Vec<PathBuf>,
    /// Where the merged files go.
    #[arg(long, default_value = "merged")]
    pub out: PathBuf,
    /// Also write the JUnit XML here (default: <out>/junit.xml).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// A previous merge (its folder or merged.json, or a soak's folder): mark what
    /// changed since.
    #[arg(long, value_name = "PREVIOUS")]
    pub baseline: Option<PathBuf>,
}

/// Runs `chaosbank merge`.
pub fn run(args: MergeArgs) -> ExitCode {
    match merge_and_write(&args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("chaosbank merge: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Reads, merges, prints and writes; the exit status, or an error (exit 2).
fn merge_and_write(args: &MergeArgs) -> anyhow::Result<u8> {
    use anyhow::Context;
    let inputs = merge::find_inputs(&args.inputs)?
        .iter()
        .map(|p| Input::load(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let read = inputs.len();
    let m: Merged = merge::merge(inputs)?;
    let baseline = args
        .baseline
        .as_deref()
        .map(merge::load_baseline)
        .transpose()
        .context("reading the baseline")?;
    let trend = baseline.as_ref().map(|b| merge::trend(b, &m));

    let mut text = format!(
        "merge: {} soak.json read, {} distinct, {} of {} shards; chaosbank {} ({}), config {}\n",
        read,
        m.inputs.len(),
        m.shards - m.missing_shards.len(),
        m.shards,
        m.chaosbank.version,
        m.chaosbank.commit,
        m.fingerprint
    );
    text.push_str(&m.table());
    let sensitive: Vec<_> = m
        .timing_sensitive
        .iter()
        .chain(trend.iter().flat_map(|t| &t.timing_sensitive))
        .collect();
    if !sensitive.is_empty() {
        text.push_str("timing-sensitive seeds (judged differently in two places):\n");
        for d in sensitive {
            text.push_str(&format!(
                "  {} seed {}: {}\n",
                d.name,
                d.seed,
                d.verdicts.join(", ")
            ));
        }
    }
    if let Some(t) = &trend {
        if t.is_empty() {
            text.push_str("since the baseline: no change\n");
        } else {
            text.push_str("since the baseline:\n");
            for line in t.systems.iter().chain(&t.runs) {
                text.push_str(&format!("  {line}\n"));
            }
        }
    }
    for p in m.problems() {
        text.push_str(&format!("INCOMPLETE: {p}\n"));
    }
    print!("{text}");

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let write = |path: PathBuf, text: String| {
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    write(
        args.out.join(merge::MERGED_JSON),
        serde_json::to_string_pretty(&m)?,
    )?;
    write(args.out.join("summary.txt"), text)?;
    let junit = args
        .junit
        .clone()
        .unwrap_or_else(|| args.out.join("junit.xml"));
    write(junit.clone(), m.junit())?;
    let page = args.out.join("index.html");
    write(page.clone(), html::page(&m, trend.as_ref(), &args.out))?;
    println!(
        "merged: {}, {}, {}",
        args.out.join(merge::MERGED_JSON).display(),
        junit.display(),
        page.display()
    );
    Ok(m.exit_code())
}
