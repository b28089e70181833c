//! The verdict as JUnit XML, the format every CI reads: one `testsuite`, one
//! `testcase` per model checked. An invalid model is a `failure` whose message gives
//! the anomaly counts and whose text the first sentences; an unknown one is an
//! `error` carrying the checker's notes. Shared by `chaosbank check --junit` and
//! `chaosbank run`.

use super::escape::escape;
use super::ReportError;
use checkers::verdict::{AnomalyKind, Validity, Verdict};
use std::fmt::Write;
use std::path::Path;

/// A testcase to write: model name, verdict, counts per anomaly, notes.
type Case = (String, Validity, Vec<(String, usize)>, Vec<String>);

/// Sentences per anomaly name in a failure's text.
const SENTENCES: usize = 3;

/// The JUnit XML of `verdict`: a `testsuite` named `suite` with one `testcase` per
/// model (class name `chaosbank.<suite>`), or one named `verdict` when no model ran.
pub fn to_xml(verdict: &Verdict, suite: &str) -> String {
    let mut cases = String::new();
    let (mut failures, mut errors) = (0, 0);
    let mut tests = 0;
    let models: Vec<Case> = if verdict.models.is_empty() {
        vec![(
            "verdict".to_owned(),
            verdict.valid,
            verdict
                .counts
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            vec!["no model applied to this history".to_owned()],
        )]
    } else {
        verdict
            .models
            .iter()
            .map(|(name, m)| {
                (
                    name.clone(),
                    m.valid,
                    m.counts.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                    m.notes.clone(),
                )
            })
            .collect()
    };
    for (name, valid, counts, notes) in models {
        tests += 1;
        let counts: Vec<(String, usize)> = counts.into_iter().filter(|(_, n)| *n > 0).collect();
        let _ = writeln!(
            cases,
            "    <testcase name=\"{}\" classname=\"chaosbank.{}\" time=\"0\">",
            escape(&name),
            escape(suite)
        );
        match valid {
            Validity::Valid => {}
            Validity::Invalid => {
                failures += 1;
                let (apart, counts): (Vec<_>, Vec<_>) = counts
                    .into_iter()
                    .partition(|(k, _)| !AnomalyKind::name_is_violation(k));
                let mut message = counts
                    .iter()
                    .map(|(k, n)| format!("{n} {k}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                for (k, n) in &apart {
                    let _ = write!(message, " (also {n} {k}, not a violation)");
                }
                let mut text = String::new();
                for (k, _) in &counts {
                    for f in verdict
                        .anomalies
                        .get(k)
                        .into_iter()
                        .flatten()
                        .take(SENTENCES)
                    {
                        let _ = writeln!(text, "{k}: {}", f.sentence);
                    }
                }
                let _ = writeln!(
                    cases,
                    "      <failure type=\"invalid\" message=\"{} model invalid: {}\">{}</failure>",
                    escape(&name),
                    escape(&message),
                    escape(&text)
                );
            }
            Validity::Unknown => {
                errors += 1;
                let _ = writeln!(
                    cases,
                    "      <error type=\"unknown\" message=\"{} model could not be judged\">{}</error>",
                    escape(&name),
                    escape(&notes.join("\n"))
                );
            }
        }
        cases.push_str("    </testcase>\n");
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">\n  \
         <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" \
         skipped=\"0\" time=\"0\">",
        escape(suite)
    );
    out.push_str(&cases);
    if !verdict.warnings.is_empty() {
        let _ = writeln!(
            out,
            "    <system-err>{}</system-err>",
            escape(&verdict.warnings.join("\n"))
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Writes [`to_xml`] of `verdict` to `path`.
pub fn write_junit(verdict: &Verdict, suite: &str, path: &Path) -> Result<(), ReportError> {
    std::fs::write(path, to_xml(verdict, suite)).map_err(|source| ReportError::Write {
        path: path.to_owned(),
        source,
    })
}

/// JUnit XML for a run that ended without a verdict: one testcase `run` with an
/// `error` carrying `message` (so CI shows the failure instead of a missing file).
pub fn error_xml(suite: &str, message: &str) -> String {
    let first = message.lines().next().unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <testsuites tests=\"1\" failures=\"0\" errors=\"1\">\n  \
         <testsuite name=\"{suite}\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" time=\"0\">\n    \
         <testcase name=\"run\" classname=\"chaosbank.{suite}\" time=\"0\">\n      \
         <error type=\"error\" message=\"{}\">{}</error>\n    \
         </testcase>\n  </testsuite>\n</testsuites>\n",
        escape(first),
        escape(message),
        suite = escape(suite)
    )
}

/// Writes [`error_xml`] to `path`.
pub fn write_junit_error(suite: &str, message: &str, path: &Path) -> Result<(), ReportError> {
    std::fs::write(path, error_xml(suite, message)).map_err(|source| ReportError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod error_tests {
    #[test]
    fn a_failed_run_is_one_escaped_error() {
        let xml = super::error_xml("run-outbox", "starting the cluster: <no engine>\nmore");
        assert!(xml.contains("errors=\"1\""), "{xml}");
        assert!(
            xml.contains("message=\"starting the cluster: &lt;no engine&gt;\""),
            "{xml}"
        );
        assert!(xml.contains("classname=\"chaosbank.run-outbox\""), "{xml}");
    }
}
