//! Fault windows from the nemesis's ops: a start (`kill`, `pause`, `partition`, `loss`,
//! `delay`, `clock`, Jepsen's `start`, …) paired with the end that reverts it (`restart`, `resume`,
//! `heal`, `stop`, `heal-all`). Names it does not know become instants on the timeline
//! rather than errors, so any nemesis's history can be drawn.

use serde_json::Value;

/// At most this many windows and instants are kept; the rest are only counted.
const MAX_KEPT: usize = 5_000;

/// A fault from its start to its end.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    /// The start op's `f`, e.g. `kill`.
    pub(crate) name: String,
    /// What a person reads, e.g. `kill postgres`.
    pub(crate) label: String,
    /// Time of the start op.
    pub(crate) start: u64,
    /// Time of the end op; `None` when never reverted in the history.
    pub(crate) end: Option<u64>,
    /// Index of the start op.
    pub(crate) start_index: u64,
    /// Index and `f` of the end op.
    pub(crate) end_op: Option<(u64, String)>,
    /// What the nemesis saw of the fault's effect (the start op's `value.observed`).
    pub(crate) observed: Option<String>,
}

impl Window {
    /// The end, or `last` (the history's last time) when never reverted.
    pub(crate) fn end_or(&self, last: u64) -> u64 {
        self.end.unwrap_or(last)
    }
    /// True when the window overlaps `[from, to]`.
    pub(crate) fn overlaps(&self, from: u64, to: u64, last: u64) -> bool {
        self.start <= to && self.end_or(last) >= from
    }
}

/// A nemesis op that neither starts nor ends a window (an unknown name, a fault that
/// could not be applied, an end with nothing open).
#[derive(Debug, Clone)]
pub(crate) struct Instant {
    /// What a person reads.
    pub(crate) label: String,
    /// Its time.
    pub(crate) time: u64,
    /// Its index.
    pub(crate) index: u64,
}

/// The fault windows of a history, built one nemesis op at a time.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// Windows in order of start (closed or not).
    pub(crate) windows: Vec<Window>,
    /// Other nemesis ops.
    pub(crate) instants: Vec<Instant>,
    /// Windows and instants not kept past [`MAX_KEPT`].
    pub(crate) dropped: u64,
    open: Vec<(usize, String)>,
}

/// The start names an end name reverts; `None` for a name that is not an end.
fn reverts(end: &str) -> Option<&'static [&'static str]> {
    Some(match end {
        "restart" | "recover" | "start-node" => &["kill", "crash", "stop-node"],
        "resume" | "unpause" => &["pause"],
        "heal" | "repair" | "unpartition" => &[
            "partition",
            "loss",
            "isolate",
            "cut",
            "halves",
            "delay",
            "clock",
            "cut-reply",
            "slot-loss",
            "start-partition",
        ],
        "stop" | "stop-partition" => &["start", "start-partition"],
        "heal-all" | "reset" => &[],
        _ => return None,
    })
}

fn is_start(f: &str) -> bool {
    matches!(
        f,
        "kill"
            | "crash"
            | "stop-node"
            | "pause"
            | "partition"
            | "loss"
            | "isolate"
            | "cut"
            | "halves"
            | "delay"
            | "clock"
            | "cut-reply"
            | "slot-loss"
            | "start"
            | "start-partition"
    )
}

/// A short description of a fault from its `f` and `value`.
pub(crate) fn describe(f: &str, value: &Value) -> String {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    let detail = match value {
        Value::Null => String::new(),
        Value::String(x) => x.clone(),
        Value::Object(m) => {
            if let (Some(a), Some(b)) = (m.get("a"), m.get("b")) {
                format!("{} | {}", s(a), s(b))
            } else if let Some(n) = m.get("node").or_else(|| m.get("nodes")) {
                if let Some(p) = m.get("p").and_then(Value::as_f64) {
                    format!("{} ({:.0}% packets dropped)", s(n), p * 100.0)
                } else if let Some(o) = m.get("offset_s").and_then(Value::as_i64) {
                    format!("{} ({o:+} s)", s(n))
                } else if let Some(ms) = m.get("ms").and_then(Value::as_u64) {
                    format!("{} ({ms} ms)", s(n))
                } else {
                    s(n)
                }
            } else {
                // What a `heal-all` did (`resumed`, `restarted`, `flushed`, `failed`
                // lists) or any other object: its non-empty fields in words, not JSON.
                let parts: Vec<String> = m
                    .iter()
                    .filter(|(k, _)| *k != "observed" && *k != "kind")
                    .filter(|(_, v)| {
                        !matches!(v, Value::Null) && v.as_array().is_none_or(|a| !a.is_empty())
                    })
                    .map(|(k, v)| match v {
                        Value::Array(a) if a.iter().all(Value::is_object) => {
                            format!(
                                "{k} {}",
                                a.iter().map(describe_object).collect::<Vec<_>>().join(", ")
                            )
                        }
                        Value::Object(_) => format!("{k} {}", describe_object(v)),
                        v => format!("{k} {}", s(v)),
                    })
                    .collect();
                if parts.is_empty() && f == "heal-all" {
                    "(nothing left to undo)".to_owned()
                } else {
                    parts.join("; ")
                }
            }
        }
        other => other.to_string(),
    };
    let mut label = if detail.is_empty() {
        f.to_owned()
    } else {
        format!("{f} {detail}")
    };
    if label.chars().count() > 60 {
        label = label.chars().take(57).collect::<String>() + "…";
    }
    label
}

/// An object in a list (a `heal-all`'s `failed` entry): its string fields, `node` first.
fn describe_object(o: &Value) -> String {
    let Some(m) = o.as_object() else {
        return o.to_string();
    };
    let node = m.get("node").and_then(Value::as_str);
    let rest: Vec<String> = m
        .iter()
        .filter(|(k, _)| *k != "node")
        .map(|(_, v)| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .collect();
    match node {
        Some(n) if rest.is_empty() => n.to_owned(),
        Some(n) => format!("{n} ({})", rest.join(", ")),
        None => rest.join(", "),
    }
}

/// The fault a start or end op names, without what the nemesis observed (only starts
/// carry it), so an end finds its start.
fn fault_key(value: &Value) -> String {
    match value {
        Value::Object(m) if m.contains_key("observed") => {
            let mut m = m.clone();
            m.remove("observed");
            Value::Object(m).to_string()
        }
        other => other.to_string(),
    }
}

impl Faults {
    /// Takes one nemesis completion (`ok` or `info`) into account.
    pub(crate) fn observe(&mut self, f: &str, value: &Value, error: bool, time: u64, index: u64) {
        let label = describe(f, value);
        if is_start(f) && !error {
            if self.windows.len() >= MAX_KEPT {
                self.dropped += 1;
                return;
            }
            self.open.push((self.windows.len(), fault_key(value)));
            self.windows.push(Window {
                name: f.to_owned(),
                label,
                start: time,
                end: None,
                start_index: index,
                end_op: None,
                observed: value
                    .get("observed")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            });
            return;
        }
        if let (Some(kinds), false) = (reverts(f), error) {
            let all = kinds.is_empty();
            let key = fault_key(value);
            let candidates: Vec<usize> = (0..self.open.len())
                .filter(|&i| all || kinds.contains(&self.windows[self.open[i].0].name.as_str()))
                .collect();
            // The window whose fault the end names, else every window of the kinds it
            // reverts (a `heal` of the whole network).
            let closing: Vec<usize> = match candidates.iter().find(|&&i| self.open[i].1 == key) {
                Some(&i) => vec![i],
                None => candidates,
            };
            if !closing.is_empty() {
                for &i in closing.iter().rev() {
                    let (w, _) = self.open.remove(i);
                    self.windows[w].end = Some(time);
                    self.windows[w].end_op = Some((index, f.to_owned()));
                }
                return;
            }
        }
        if self.instants.len() >= MAX_KEPT {
            self.dropped += 1;
            return;
        }
        let label = if error {
            format!("{label} (could not be applied)")
        } else {
            label
        };
        self.instants.push(Instant { label, time, index });
    }

    /// How many windows were never reverted.
    pub(crate) fn still_open(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pairs_by_value_and_heals_all() {
        let mut f = Faults::default();
        let k = json!({"kind": "kill", "node": "postgres"});
        let p = json!({"kind": "isolate", "node": "kafka"});
        let l = json!({"kind": "loss", "node": "mysql", "p": 0.2});
        f.observe("kill", &k, false, 10, 1);
        f.observe("partition", &p, false, 20, 2);
        f.observe("loss", &l, false, 25, 3);
        f.observe("restart", &k, false, 30, 4);
        f.observe("heal", &json!({"nodes": ["kafka", "mysql"]}), false, 40, 5);
        f.observe("frobnicate", &json!(null), false, 50, 6);
        f.observe("pause", &json!({"node": "x"}), false, 60, 7);
        assert_eq!(f.windows.len(), 4);
        assert_eq!(f.windows[0].label, "kill postgres");
        assert_eq!(f.windows[0].end, Some(30));
        assert_eq!(f.windows[1].end, Some(40));
        assert_eq!(f.windows[2].end, Some(40));
        assert_eq!(f.windows[2].label, "loss mysql (20% packets dropped)");
        assert_eq!(f.windows[3].end, None);
        assert_eq!(f.still_open(), 1);
        assert_eq!(f.instants.len(), 1);
        assert_eq!(f.instants[0].label, "frobnicate");
    }

    #[test]
    fn a_heal_all_reads_as_words_not_json() {
        let done =
            json!({"resumed": ["kafka"], "restarted": [], "flushed": ["postgres", "mariadb"]});
        assert_eq!(
            describe("heal-all", &done),
            "heal-all flushed postgres,mariadb; resumed kafka"
        );
        let nothing = json!({"resumed": [], "restarted": [], "flushed": []});
        assert_eq!(
            describe("heal-all", &nothing),
            "heal-all (nothing left to undo)"
        );
        let failed = json!({"resumed": [], "failed": [{"node": "kafka", "error": "gone"}]});
        assert_eq!(
            describe("heal-all", &failed),
            "heal-all failed kafka (gone)"
        );
        // Whatever else a nemesis writes: no braces.
        let other = describe("frob", &json!({"x": 1, "y": {"z": true}}));
        assert!(
            !other.contains('"') && other.starts_with("frob x 1"),
            "{other}"
        );
        let mut f = Faults::default();
        f.observe("heal-all", &done, false, 5, 1);
        assert!(
            !f.instants[0].label.contains('{'),
            "{}",
            f.instants[0].label
        );
    }
}
