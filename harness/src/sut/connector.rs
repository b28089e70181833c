//! A service's own Kafka Connect connectors (`[[connector]]` in its manifest,
//! `docs/sut.md` §5): each a connector JSON file `{"name": …, "config": {…}}` the
//! service brings (e.g. Debezium's PostgreSQL connector with the Outbox Event Router),
//! optionally with a plugin folder. [`Connector::load`] reads and checks one;
//! [`Connector::render`] fills chaosbank's placeholders (`${BANK_A_HOST}`, …, see
//! [`PLACEHOLDERS`]) with the addresses the worker reaches the engines at.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// The placeholders chaosbank fills in a connector's configuration values, and what
/// each becomes. Every address is the one the Connect worker (node `connect`) reaches
/// the engine at: a forwarder on its loopback, like a process's (`docs/sut.md` §5).
pub const PLACEHOLDERS: [(&str, &str); 13] = [
    ("BANK_A_HOST", "bank A's (PostgreSQL's) host"),
    ("BANK_A_PORT", "bank A's port"),
    ("BANK_A_USER", "bank A's user"),
    ("BANK_A_PASSWORD", "bank A's password"),
    ("BANK_A_DB", "bank A's database"),
    ("BANK_B_HOST", "bank B's (MariaDB's) host"),
    ("BANK_B_PORT", "bank B's port"),
    ("BANK_B_USER", "bank B's user"),
    ("BANK_B_PASSWORD", "bank B's password"),
    ("BANK_B_DB", "bank B's database"),
    ("KAFKA_BOOTSTRAP", "the Kafka broker, host:port"),
    ("TOPIC", "the topic chaosbank created (CHAOSBANK_TOPIC)"),
    ("RUN", "the run's id (CHAOSBANK_RUN)"),
];

/// One connector a service declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connector {
    /// Its name in Kafka Connect (the JSON file's `name`).
    pub name: String,
    /// Its configuration as the file gives it, placeholders unfilled.
    pub config: Map<String, Value>,
    /// The JSON file (absolute).
    pub file: PathBuf,
    /// A plugin folder the service brings (absolute), added to the worker's
    /// `plugin.path`; `None`: the Debezium plugin of the `connect` image.
    pub plugins: Option<PathBuf>,
    /// The manifest line its `[[connector]]` starts on.
    pub line: usize,
}

/// A `[[connector]]` table as the manifest gives it.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConnector {
    pub(super) config: toml::Spanned<String>,
    #[serde(default)]
    pub(super) plugins: Option<toml::Spanned<String>>,
}

/// A `${NAME}` of upper-case letters, digits and `_` in `text` (Debezium's own, such as
/// `${routedByValue}`, and Kafka's config providers, `${file:…}`, are not of that form).
fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                if !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                {
                    out.push(name);
                }
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

impl Connector {
    /// Reads the connector file `raw.config` names (relative to `base`, the manifest's
    /// folder) and checks it. An error is `(field, message)`: which of the table's
    /// fields it concerns (`"config"` or `"plugins"`) and what is wrong.
    pub(super) fn load(
        raw: &RawConnector,
        base: &Path,
        line: usize,
    ) -> Result<Connector, (&'static str, String)> {
        let file = base.join(raw.config.get_ref());
        let shown = file.display().to_string();
        let text = std::fs::read_to_string(&file).map_err(|e| {
            (
                "config",
                format!("connector file {shown}: cannot read it: {e}"),
            )
        })?;
        let json: Value = serde_json::from_str(&text).map_err(|e| {
            (
                "config",
                format!(
                    "connector file {shown}:{}:{}: not valid JSON: {e}",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        let name = match json.get("name") {
            Some(Value::String(n)) if !n.trim().is_empty() => n.clone(),
            Some(other) if !other.is_null() => {
                return Err((
                    "config",
                    format!("connector file {shown}: \"name\" must be a non-empty string"),
                ))
            }
            _ => {
                return Err((
                    "config",
                    format!(
                        "connector file {shown} has no \"name\" (a Kafka Connect connector is \
                         {{\"name\": …, \"config\": {{…}}}})"
                    ),
                ))
            }
        };
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err((
                "config",
                format!(
                    "connector file {shown}: name {name:?}: use letters, digits, '-', '_' and \
                     '.' (it is part of the REST API's paths)"
                ),
            ));
        }
        let Some(Value::Object(config)) = json.get("config") else {
            return Err((
                "config",
                format!("connector file {shown} (connector {name:?}) has no \"config\" object"),
            ));
        };
        if !config.contains_key("connector.class") {
            return Err((
                "config",
                format!("connector file {shown} (connector {name:?}): its config has no \"connector.class\""),
            ));
        }
        for (key, value) in config {
            let text = match value {
                Value::String(s) => s,
                Value::Number(_) | Value::Bool(_) => continue,
                _ => {
                    return Err((
                        "config",
                        format!(
                            "connector file {shown} (connector {name:?}): {key:?} must be a \
                             string (or a number or boolean), not {value}"
                        ),
                    ))
                }
            };
            if let Some(unknown) = placeholders(text)
                .into_iter()
                .find(|p| !PLACEHOLDERS.iter().any(|(k, _)| k == p))
            {
                return Err((
                    "config",
                    format!(
                        "connector file {shown} (connector {name:?}): {key:?} uses ${{{unknown}}}, \
                         which chaosbank does not fill (it fills {})",
                        PLACEHOLDERS
                            .iter()
                            .map(|(k, _)| format!("${{{k}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        let plugins = match &raw.plugins {
            None => None,
            Some(p) => {
                let dir = base.join(p.get_ref());
                let dir = dir.canonicalize().map_err(|e| {
                    (
                        "plugins",
                        format!("connector {name:?}: plugin folder {}: {e}", dir.display()),
                    )
                })?;
                if !dir.is_dir() {
                    return Err((
                        "plugins",
                        format!(
                            "connector {name:?}: plugins {} is not a folder",
                            dir.display()
                        ),
                    ));
                }
                Some(dir)
            }
        };
        Ok(Connector {
            name,
            config: config.clone(),
            file: file.canonicalize().unwrap_or(file),
            plugins,
            line,
        })
    }

    /// The configuration with every placeholder filled from `values` (name → value,
    /// see [`values`]), numbers and booleans as strings (Kafka Connect's configuration
    /// is strings).
    pub fn render(&self, values: &BTreeMap<&'static str, String>) -> Value {
        let config = self
            .config
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => {
                        let mut s = s.clone();
                        for (name, value) in values {
                            s = s.replace(&format!("${{{name}}}"), value);
                        }
                        s
                    }
                    other => other.to_string(),
                };
                (k.clone(), Value::String(text))
            })
            .collect::<Map<_, _>>();
        Value::Object(config)
    }
}

/// A database URL's parts: `scheme://user:password@host:port/db`.
fn url_parts(url: &str) -> Option<[String; 5]> {
    let (_, rest) = url.split_once("://")?;
    let (auth, location) = rest.rsplit_once('@')?;
    let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
    let (hostport, db) = location.split_once('/')?;
    let (host, port) = hostport.rsplit_once(':')?;
    let db = db.split('?').next().unwrap_or(db);
    Some([host, port, user, password, db].map(String::from))
}

/// The value of each of [`PLACEHOLDERS`] for a worker that reaches bank A at `bank_a`,
/// bank B at `bank_b` (database URLs) and Kafka at `bootstrap`; `topic` and `run` as
/// the service's processes get them. A URL that cannot be split is an error naming it.
pub fn values(
    bank_a: &str,
    bank_b: &str,
    bootstrap: &str,
    topic: &str,
    run: &str,
) -> anyhow::Result<BTreeMap<&'static str, String>> {
    let mut out = BTreeMap::new();
    for (bank, url) in [("A", bank_a), ("B", bank_b)] {
        let parts = url_parts(url).ok_or_else(|| {
            anyhow::anyhow!("bank {bank}'s URL {url:?} is not scheme://user:password@host:port/db")
        })?;
        let names: [&'static str; 5] = if bank == "A" {
            [
                "BANK_A_HOST",
                "BANK_A_PORT",
                "BANK_A_USER",
                "BANK_A_PASSWORD",
                "BANK_A_DB",
            ]
        } else {
            [
                "BANK_B_HOST",
                "BANK_B_PORT",
                "BANK_B_USER",
                "BANK_B_PASSWORD",
                "BANK_B_DB",
            ]
        };
        out.extend(names.into_iter().zip(parts));
    }
    out.insert("KAFKA_BOOTSTRAP", bootstrap.to_string());
    out.insert("TOPIC", topic.to_string());
    out.insert("RUN", run.to_string());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_upper_case_placeholders_are_chaosbanks() {
        assert_eq!(
            placeholders("${BANK_A_HOST}:${routedByValue}-${file:/x:k}${TOPIC}${"),
            ["BANK_A_HOST", "TOPIC"]
        );
        assert!(placeholders("plain").is_empty());
    }

    #[test]
    fn every_placeholder_is_filled_from_the_workers_addresses() {
        let v = values(
            "postgres://chaosbank:s3cret@127.0.0.1:15432/chaosbank",
            "mysql://chaosbank:pw@127.0.0.1:13306/bank?x=1",
            "127.0.0.1:39092",
            "transfers",
            "abcd1234",
        )
        .unwrap();
        assert_eq!(v.len(), PLACEHOLDERS.len());
        for (k, _) in PLACEHOLDERS {
            assert!(v.contains_key(k), "{k} has no value");
        }
        assert_eq!(v["BANK_A_HOST"], "127.0.0.1");
        assert_eq!(v["BANK_A_PORT"], "15432");
        assert_eq!(v["BANK_A_PASSWORD"], "s3cret");
        assert_eq!(v["BANK_B_DB"], "bank");
        let c = Connector {
            name: "c".into(),
            config: serde_json::from_str(
                r#"{"database.hostname": "${BANK_A_HOST}", "database.port": "${BANK_A_PORT}",
                    "tasks.max": 1, "x.y": true,
                    "route": "${routedByValue}", "dsn": "${BANK_A_USER}@${BANK_A_HOST}/${TOPIC}"}"#,
            )
            .unwrap(),
            file: PathBuf::from("/x.json"),
            plugins: None,
            line: 1,
        };
        let r = c.render(&v);
        assert_eq!(r["database.hostname"], "127.0.0.1");
        assert_eq!(r["database.port"], "15432");
        assert_eq!(r["tasks.max"], "1");
        assert_eq!(r["x.y"], "true");
        assert_eq!(r["route"], "${routedByValue}");
        assert_eq!(r["dsn"], "chaosbank@127.0.0.1/transfers");
        assert!(values("nonsense", "mysql://u:p@h:1/d", "k", "t", "r").is_err());
    }
}
