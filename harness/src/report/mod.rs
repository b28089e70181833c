//! The report a person reads in a minute: a history and its [`Verdict`] rendered as one
//! self-contained `report.html` (inline CSS and SVG; nothing fetched, no script), and
//! the verdict as JUnit XML for CI ([`junit`]).
//!
//! The page shows, top to bottom: the verdict and anomaly counts (parked apart), the
//! fault windows, the faults that matter (each violation tied to the fault that started
//! last before its anomalous op, [`crate::conviction::tie_to_faults`]), a timeline of ops per client lane with the faults shaded and named,
//! throughput and latency over time, the debit→credit commit latency when the ledger
//! entries carry commit times, and each anomaly's sentence with the smallest slice of
//! history that shows it (its ops, its ledger entries, the faults that overlapped it).
//!
//! The history is read once more, streaming, after the check. Memory and page size
//! stay bounded however long the history: up to 2,500 ops are drawn one by one, past
//! that the timeline is a grid of counts per lane and time bucket (240 buckets whose
//! width doubles as the run grows), latencies go into log-scale histograms per bucket,
//! and 8 findings per anomaly are shown in detail. A history of a million ops makes a
//! page of well under a megabyte.

mod escape;
mod faults;
mod html;
pub mod junit;
mod scan;
mod series;

pub use escape::escape;

use checkers::history::{HistoryError, HistoryReader};
use checkers::verdict::Verdict;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The history file could not be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The history.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The history could not be read (it was checked before, so it changed or broke).
    #[error("cannot read the history: {0}")]
    History(#[from] HistoryError),
    /// The report could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The report file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// How a report is made.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// The page's subtitle, usually the history's path or the run's name.
    pub title: String,
    /// Findings of each anomaly shown in detail with their slice of history; the next
    /// 50 are listed by sentence only.
    pub findings_per_anomaly: usize,
    /// The debit→credit latency the run measured from the banks' own row times (which
    /// the history does not carry), shown — as the console prints it — when the
    /// history's ledger entries have no commit time.
    pub commit_latency: Option<CommitLatency>,
}

pub use html::CommitLatency;

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            title: "history".to_owned(),
            findings_per_anomaly: 8,
            commit_latency: None,
        }
    }
}

/// Renders the report of the history read from `history` and its `verdict` as one HTML
/// page. Pure: reads `history` once, streaming, and returns the page.
pub fn render_html<R: BufRead>(
    history: R,
    verdict: &Verdict,
    options: &ReportOptions,
) -> Result<String, ReportError> {
    let mut wanted = scan::Wanted {
        facts: crate::conviction::named_ops(verdict),
        ..scan::Wanted::default()
    };
    for list in verdict.anomalies.values() {
        for f in list.iter().take(options.findings_per_anomaly) {
            wanted.indexes.extend(f.ops.iter().take(30));
            if let Some(id) = &f.transfer {
                wanted.ids.insert(id.to_string());
            }
        }
    }
    let mut scan = scan::Scan::new(wanted);
    for op in HistoryReader::new(history) {
        scan.observe(&op?);
    }
    scan.finish();
    Ok(html::page(
        &options.title,
        verdict,
        &scan,
        options.findings_per_anomaly,
        options.commit_latency.as_ref(),
    ))
}

/// Writes the report of the history at `history` and its `verdict` to `out`
/// (`report.html`), titled with the history's path.
pub fn write_html(history: &Path, verdict: &Verdict, out: &Path) -> Result<(), ReportError> {
    let options = ReportOptions {
        title: history.display().to_string(),
        ..ReportOptions::default()
    };
    write_html_with(history, verdict, out, &options)
}

/// [`write_html`] with options.
pub fn write_html_with(
    history: &Path,
    verdict: &Verdict,
    out: &Path,
    options: &ReportOptions,
) -> Result<(), ReportError> {
    let file = std::fs::File::open(history).map_err(|source| ReportError::Open {
        path: history.to_owned(),
        source,
    })?;
    let page = render_html(BufReader::with_capacity(1 << 20, file), verdict, options)?;
    std::fs::write(out, page).map_err(|source| ReportError::Write {
        path: out.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests;
