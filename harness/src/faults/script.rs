//! Scripted fault schedules: the file `chaosbank run --schedule FILE` plays instead of a
//! seeded draw, and the file `chaosbank shrink` hands back.
//!
//! A schedule file is TOML or JSON (by its extension, else by its first character):
//!
//! ```toml
//! # the relay is killed 10 s in, for 5 s; bank B is cut off 12 s in, for 3 s
//! [[steps]]
//! at = "10s"
//! hold = "5s"
//! fault = { kind = "kill", node = "relay" }
//!
//! [[steps]]
//! at = "12s"
//! hold = "3s"
//! fault = { kind = "isolate", node = "mariadb" }
//! ```
//!
//! `at` is when the fault starts after the workload starts, `hold` how long it holds
//! before it is reverted; both take `"1500ms"`, `"10s"`, `"2.5s"`, `"1m"`, a number of
//! seconds, or the `{ secs, nanos }` form `run.json` stores. Steps may overlap (each is
//! played on its own, as an overlapping seeded schedule is). `fault` is the nemesis's own
//! [`Fault`] form — the value of the history's nemesis ops — read through serde, so every
//! kind the nemesis has is accepted and an unknown one is refused naming those it knows.
//! `seed` is optional (the run's own seed drives the workload).
//!
//! The JSON form is the [`Schedule`] a `run.json` stores (`{"seed": 7, "steps": [{"at":
//! {"secs": 3, "nanos": 0}, "fault": {...}, "hold": {...}}]}`), and a whole `run.json`
//! is accepted too: its played schedule (`schedule`), else a given one
//! (`config.schedule`). So any stored run's faults can be replayed or edited.
//!
//! Errors name the file and, for syntax and type errors, the line and column.

use crate::nemesis::{Fault, HOST};
use crate::schedule::{Schedule, Step};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A schedule file that cannot be used: the file, where (when known) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptError {
    /// The file.
    pub path: PathBuf,
    /// Line and column (1-based), for syntax and type errors.
    pub at: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some((line, col)) => write!(
                f,
                "schedule file {}:{line}:{col}: {}",
                self.path.display(),
                self.message
            ),
            None => write!(f, "schedule file {}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for ScriptError {}

/// A schedule file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSchedule {
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    steps: Vec<FileStep>,
}

/// One step as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStep {
    at: FlexDuration,
    hold: FlexDuration,
    fault: Fault,
}

/// A duration as a person or `run.json` writes it.
struct FlexDuration(Duration);

impl<'de> Deserialize<'de> for FlexDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FlexDuration, D::Error> {
        d.deserialize_any(FlexVisitor)
    }
}

struct FlexVisitor;

impl<'de> Visitor<'de> for FlexVisitor {
    type Value = FlexDuration;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration: \"1500ms\", \"10s\", \"2.5s\", \"1m\", a number of seconds, or {secs, nanos}")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<FlexDuration, E> {
        Ok(FlexDuration(Duration::from_secs(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<FlexDuration, E> {
        u64::try_from(v)
            .map(|v| FlexDuration(Duration::from_secs(v)))
            .map_err(|_| E::custom(format!("a duration cannot be negative ({v})")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<FlexDuration, E> {
        Duration::try_from_secs_f64(v)
            .map(FlexDuration)
            .map_err(|_| E::custom(format!("{v} is not a duration in seconds")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<FlexDuration, E> {
        parse_duration(v).map(FlexDuration).ok_or_else(|| {
            E::custom(format!(
                "{v:?} is not a duration (\"1500ms\", \"10s\", \"2.5s\", \"1m\")"
            ))
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FlexDuration, A::Error> {
        let (mut secs, mut nanos) = (None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "secs" => secs = Some(map.next_value::<u64>()?),
                "nanos" => nanos = Some(map.next_value::<u32>()?),
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown field {other:?} of a duration (secs, nanos)"
                    )))
                }
            }
        }
        let secs = secs.ok_or_else(|| de::Error::missing_field("secs"))?;
        let nanos = nanos.unwrap_or(0);
        if nanos >= 1_000_000_000 {
            return Err(de::Error::custom(format!(
                "nanos = {nanos} is a second or more"
            )));
        }
        Ok(FlexDuration(Duration::new(secs, nanos)))
    }
}

/// Parses `1500ms`, `10s`, `2.5s`, `1m`, `10` (seconds).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let n: f64 = num.trim().parse().ok()?;
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    // Whole milliseconds, as seeded schedules are drawn.
    Some(Duration::from_millis((n * scale * 1000.0).round() as u64))
}

/// `1500ms`, `10s`: the shortest exact form, as [`to_toml`] writes durations.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos() % 1_000_000 == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

/// Reads a schedule file (TOML or JSON, or a whole `run.json`).
pub fn load(path: &Path) -> Result<Schedule, ScriptError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScriptError {
        path: path.to_path_buf(),
        at: None,
        message: format!("cannot read it: {e}"),
    })?;
    parse(&text, path)
}

/// Parses a schedule file's `text`; `path` names it in errors and chooses the format
/// (`.toml`, `.json`, else by the first character: `{` is JSON).
pub fn parse(text: &str, path: &Path) -> Result<Schedule, ScriptError> {
    let err = |at: Option<(usize, usize)>, message: String| ScriptError {
        path: path.to_path_buf(),
        at,
        message,
    };
    let json = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => true,
        Some("toml") => false,
        _ => text.trim_start().starts_with('{'),
    };
    let file: FileSchedule = if json {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| err(Some((e.line(), e.column())), strip_position(&e.to_string())))?;
        let is_run_json = value.get("steps").is_none()
            && (value.get("config").is_some() || value.get("schedule").is_some());
        if is_run_json {
            // A whole run.json: the schedule it played, else the one it was given.
            let stored = [&value["schedule"], &value["config"]["schedule"]]
                .into_iter()
                .find(|v| v.is_object())
                .cloned()
                .ok_or_else(|| {
                    err(
                        None,
                        "a run.json without a stored schedule (made before chaosbank stored \
                         schedules, or the run failed before its faults were drawn): replay it \
                         once with `chaosbank replay` and use the replay's run.json"
                            .to_string(),
                    )
                })?;
            serde_json::from_value(stored).map_err(|e| err(None, format!("its schedule: {e}")))?
        } else {
            serde_json::from_str(text)
                .map_err(|e| err(Some((e.line(), e.column())), strip_position(&e.to_string())))?
        }
    } else {
        toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| line_col(text, s.start));
            err(at, e.message().trim().to_string())
        })?
    };
    let mut steps: Vec<Step> = file
        .steps
        .into_iter()
        .map(|s| Step {
            at: s.at.0,
            fault: s.fault,
            hold: s.hold.0,
        })
        .collect();
    for (i, s) in steps.iter().enumerate() {
        check_fault(&s.fault)
            .map_err(|m| err(None, format!("step {} ({}): {m}", i + 1, s.fault)))?;
    }
    // Played in start order, as drawn schedules are (a stable sort keeps ties as written).
    steps.sort_by_key(|s| s.at);
    Ok(Schedule {
        seed: file.seed,
        steps,
    })
}

/// serde_json's message without its own "at line L column C" (the error says where).
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.chars().rev().take_while(|c| *c != '\n').count() + 1;
    (line, col)
}

/// What a fault's own values must be, whatever the run.
fn check_fault(fault: &Fault) -> Result<(), String> {
    if fault.nodes().iter().any(|n| n.trim().is_empty()) {
        return Err("a node name is empty".to_string());
    }
    match fault {
        Fault::Loss { p, .. } if !(0.0..=1.0).contains(p) => {
            Err(format!("p = {p} is not a share between 0 and 1"))
        }
        Fault::Cut { a, b } if a == b => Err(format!("cuts {a} from itself")),
        Fault::Halves { a, b } if a.is_empty() || b.is_empty() => {
            Err("one side of the partition is empty".to_string())
        }
        _ => Ok(()),
    }
}

/// Checks that every node a schedule's faults name is one of `known` (or the host,
/// which cuts and partitions may name), and that no fault outlasts `time_limit`.
/// The message names the step, the node and the nodes there are.
pub fn check_run(
    schedule: &Schedule,
    known: &[String],
    time_limit: Duration,
) -> Result<(), String> {
    for (i, s) in schedule.steps.iter().enumerate() {
        for node in s.fault.nodes() {
            if node != HOST && !known.iter().any(|k| k == node) {
                return Err(format!(
                    "step {} ({}): no node {node:?} in this run (its nodes: {})",
                    i + 1,
                    s.fault,
                    known.join(", ")
                ));
            }
        }
        if s.at + s.hold > time_limit {
            return Err(format!(
                "step {} ({}) ends {:.1} s into the run, after the time limit of {:.1} s \
                 (raise --time-limit)",
                i + 1,
                s.fault,
                (s.at + s.hold).as_secs_f64(),
                time_limit.as_secs_f64()
            ));
        }
    }
    Ok(())
}

/// The schedule as a TOML file [`parse`] reads back, headed by `comment` (each line
/// prefixed with `# `).
pub fn to_toml(schedule: &Schedule, comment: &str) -> String {
    let mut out = String::new();
    for line in comment.lines() {
        out.push_str(&format!("# {line}\n").replace("# \n", "#\n"));
    }
    out.push_str(&format!("seed = {}\n", schedule.seed));
    for s in &schedule.steps {
        let fault = toml::Value::try_from(&s.fault)
            .map(|v| v.to_string())
            .unwrap_or_else(|e| format!("\"unwritable fault: {e}\""));
        out.push_str(&format!(
            "\n# {}\n[[steps]]\nat = \"{}\"\nhold = \"{}\"\nfault = {}\n",
            s.fault,
            format_duration(s.at),
            format_duration(s.hold),
            fault
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str) -> PathBuf {
        PathBuf::from(name)
    }

    #[test]
    fn a_toml_file_reads_as_the_schedule_it_says() {
        let s = parse(
            r#"
            # the relay is killed 10 s in, for 5 s
            [[steps]]
            at = "12s"
            hold = 3
            fault = { kind = "isolate", node = "mariadb" }

            [[steps]]
            at = "10s"
            hold = "5s"
            fault = { kind = "kill", node = "relay" }

            [[steps]]
            at = "2.5s"
            hold = "1500ms"
            fault = { kind = "cut", a = "kafka", b = "host" }
            "#,
            &p("s.toml"),
        )
        .unwrap();
        assert_eq!(s.seed, 0);
        let at: Vec<u64> = s.steps.iter().map(|s| s.at.as_millis() as u64).collect();
        assert_eq!(at, vec![2500, 10_000, 12_000], "sorted by start");
        assert_eq!(
            s.steps[1].fault,
            Fault::Kill {
                node: "relay".into()
            }
        );
        assert_eq!(s.steps[0].hold, Duration::from_millis(1500));
        assert_eq!(s.steps[2].hold, Duration::from_secs(3));
    }

    #[test]
    fn the_form_run_json_stores_is_accepted_and_round_trips() {
        let schedule = Schedule {
            seed: 7,
            steps: vec![
                Step {
                    at: Duration::from_millis(3217),
                    fault: Fault::Loss {
                        node: "kafka".into(),
                        p: 0.3,
                    },
                    hold: Duration::from_millis(4001),
                },
                Step {
                    at: Duration::from_secs(9),
                    fault: Fault::Halves {
                        a: vec!["kafka".into(), "postgres".into()],
                        b: vec!["mariadb".into()],
                    },
                    hold: Duration::from_secs(3),
                },
            ],
        };
        // The Schedule's own serde form (what run.json holds).
        let json = serde_json::to_string_pretty(&schedule).unwrap();
        assert_eq!(parse(&json, &p("s.json")).unwrap(), schedule);
        // A whole run.json: the played schedule, else the given one.
        let run_json =
            serde_json::json!({"system": "outbox", "config": {"seed": 7}, "schedule": schedule});
        assert_eq!(
            parse(&run_json.to_string(), &p("run.json")).unwrap(),
            schedule
        );
        let given = serde_json::json!({"system": "outbox", "config": {"schedule": schedule}});
        assert_eq!(parse(&given.to_string(), &p("run.json")).unwrap(), schedule);
        // What shrink writes reads back the same.
        let toml = to_toml(&schedule, "found by shrink\n\nsecond line");
        assert!(
            toml.starts_with("# found by shrink\n#\n# second line\n"),
            "{toml}"
        );
        assert_eq!(parse(&toml, &p("min.toml")).unwrap(), schedule, "{toml}");
    }

    #[test]
    fn mistakes_name_the_file_the_place_and_the_problem() {
        let e = parse("[[steps]]\nat = \"10s\"\nhold = \"5s\"\nfault = { kind = \"explode\", node = \"relay\" }\n", &p("a.toml")).unwrap_err();
        assert_eq!(e.path, p("a.toml"));
        assert_eq!(e.at.map(|a| a.0), Some(4), "{e}");
        assert!(
            e.message.contains("explode") && e.message.contains("kill"),
            "{e}"
        );
        assert!(e.to_string().starts_with("schedule file a.toml:4:"), "{e}");

        let e = parse("[[steps]]\nat = \"ten\"\nhold = \"5s\"\nfault = { kind = \"kill\", node = \"relay\" }\n", &p("b.toml")).unwrap_err();
        assert_eq!(e.at.map(|a| a.0), Some(2), "{e}");
        assert!(e.message.contains("\"ten\" is not a duration"), "{e}");

        let e = parse(
            "[[steps]]\nat = \"1s\"\nfault = { kind = \"kill\", node = \"relay\" }\n",
            &p("c.toml"),
        )
        .unwrap_err();
        assert!(e.message.contains("hold"), "{e}");

        let e = parse(
            "{\"steps\": [\n  {\"at\": 1, \"hold\": 2, \"fault\": {\"kind\": \"kill\"}}\n]}",
            &p("d.json"),
        )
        .unwrap_err();
        assert_eq!(e.at.map(|a| a.0), Some(2), "{e}");
        assert!(e.message.contains("node"), "{e}");

        let e = parse("{\"steps\": [", &p("e.json")).unwrap_err();
        assert!(e.at.is_some(), "{e}");

        let e = parse(
            "[[steps]]\nat = 1\nhold = 2\nfault = { kind = \"loss\", node = \"kafka\", p = 3.0 }\n",
            &p("f.toml"),
        )
        .unwrap_err();
        assert!(
            e.message.contains("step 1") && e.message.contains("between 0 and 1"),
            "{e}"
        );

        let e = parse("[[steps]]\nat = 1\nhold = 2\nwhen = 3\nfault = { kind = \"kill\", node = \"kafka\" }\n", &p("g.toml")).unwrap_err();
        assert!(e.message.contains("when"), "{e}");

        let e = parse(
            "{\"system\": \"outbox\", \"config\": {\"seed\": 1}}",
            &p("run.json"),
        )
        .unwrap_err();
        assert!(e.message.contains("without a stored schedule"), "{e}");

        let e = load(Path::new("/nonexistent/chaosbank.toml")).unwrap_err();
        assert!(
            e.to_string().contains("/nonexistent/chaosbank.toml")
                && e.message.contains("cannot read"),
            "{e}"
        );
    }

    #[test]
    fn unknown_targets_and_faults_past_the_time_limit_are_refused() {
        let s = parse(
            "[[steps]]\nat = 1\nhold = 2\nfault = { kind = \"cut\", a = \"kafka\", b = \"host\" }\n\
             [[steps]]\nat = 5\nhold = 2\nfault = { kind = \"kill\", node = \"relya\" }\n",
            &p("s.toml"),
        )
        .unwrap();
        let known: Vec<String> = ["postgres", "mariadb", "kafka", "relay"]
            .map(String::from)
            .to_vec();
        let e = check_run(&s, &known, Duration::from_secs(60)).unwrap_err();
        assert!(
            e.contains("step 2") && e.contains("\"relya\"") && e.contains("relay"),
            "{e}"
        );
        let ok = Schedule {
            steps: s.steps[..1].to_vec(),
            ..s.clone()
        };
        assert_eq!(check_run(&ok, &known, Duration::from_secs(60)), Ok(()));
        let e = check_run(&ok, &known, Duration::from_secs(2)).unwrap_err();
        assert!(e.contains("time limit"), "{e}");
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("1500ms"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2.5s"), Some(Duration::from_millis(2500)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_millis(3217)), "3217ms");
    }
}
