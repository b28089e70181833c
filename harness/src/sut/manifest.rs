//! The manifest of a user's service, `chaosbank.toml` (`docs/sut.md` §2): its
//! name, the broker it uses, and its processes. [`Manifest::load`] parses and checks it;
//! every problem is an error that names the file and the line.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::connector::{Connector, RawConnector};

/// The file a service folder's manifest is in.
pub const FILE_NAME: &str = "chaosbank.toml";

/// How long the ledgers must stay unchanged after the faults are healed before the
/// service counts as settled, unless the manifest's `settle` says otherwise.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(60);

/// Node names the engines use: a process may not take them.
const ENGINE_NODES: [&str; 5] = ["postgres", "mariadb", "kafka", "namesrv", "broker"];

/// Which broker chaosbank starts for the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broker {
    /// Apache Kafka (or `--kafka tansu`): `CHAOSBANK_KAFKA_BOOTSTRAP`.
    Kafka,
    /// Apache RocketMQ (or `--rocketmq rust`): `CHAOSBANK_ROCKETMQ_NAMESRV`.
    RocketMq,
}

/// A language runtime image chaosbank provides, the service's folder mounted in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// Debian's Python 3.11 with psycopg2, PyMySQL and confluent-kafka.
    Python,
    /// Debian's OpenJDK 17 JRE.
    Java,
}

impl Runtime {
    /// The chaosbank image that provides it.
    pub fn image(self) -> &'static str {
        match self {
            Runtime::Python => "runtime-python",
            Runtime::Java => "runtime-java",
        }
    }
}

/// Where a process's image comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// An image the engine has.
    Image(String),
    /// A folder with a Dockerfile, built by chaosbank.
    Build(PathBuf),
    /// A chaosbank runtime image with `dir` mounted at `/service`.
    Runtime {
        /// Which runtime.
        runtime: Runtime,
        /// The folder mounted (absolute).
        dir: PathBuf,
    },
}

/// One of the service's processes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    /// Unique; its node's name and a fault target.
    pub name: String,
    /// The port it serves the transfer API on (exactly one process has one).
    pub serve: Option<u16>,
    /// Its image.
    pub source: Source,
    /// Its command (empty: the image's own entrypoint and command).
    pub command: Vec<String>,
    /// Environment added to what chaosbank sets.
    pub env: BTreeMap<String, String>,
    /// The manifest line it starts on.
    pub line: usize,
}

/// A parsed and checked manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Shown in reports; runs are stored under it.
    pub name: String,
    /// The broker chaosbank starts.
    pub broker: Broker,
    /// In the manifest's order.
    pub processes: Vec<Process>,
    /// After healing, once no debit has been credited or parked for this long, what is
    /// still uncredited is lost (an extension: `settle = "90s"`; default
    /// [`DEFAULT_SETTLE`]). A service whose retries back off for longer says so here.
    pub settle: Duration,
    /// Kafka Connect connectors the service declares (`[[connector]]`, an extension):
    /// when there are any, bank A runs with `wal_level=logical` and chaosbank starts a
    /// Connect worker (node [`CONNECT_NODE`]) and registers them.
    pub connectors: Vec<Connector>,
    /// The manifest file.
    pub path: PathBuf,
}

/// The node name of the Kafka Connect worker a service with connectors gets (a fault
/// target; a process of such a service may not take it).
pub const CONNECT_NODE: &str = "connect";

/// A manifest that cannot be used: the file, the line when known, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestError {
    /// The manifest file.
    pub path: PathBuf,
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for ManifestError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: Spanned<String>,
    broker: Spanned<String>,
    #[serde(default)]
    settle: Option<Spanned<String>>,
    #[serde(default)]
    process: Vec<Spanned<RawProcess>>,
    #[serde(default)]
    connector: Vec<Spanned<RawConnector>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProcess {
    name: Spanned<String>,
    #[serde(default)]
    serve: Option<Spanned<u16>>,
    #[serde(default)]
    image: Option<Spanned<String>>,
    #[serde(default)]
    build: Option<Spanned<String>>,
    #[serde(default)]
    runtime: Option<Spanned<String>>,
    #[serde(default)]
    dir: Option<Spanned<String>>,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

impl Manifest {
    /// Reads `path`: a manifest file, or a folder holding [`FILE_NAME`].
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let file = if path.is_dir() {
            path.join(FILE_NAME)
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&file).map_err(|e| ManifestError {
            path: file.clone(),
            line: None,
            message: if path.is_dir() {
                format!("cannot read the service's manifest ({FILE_NAME} in that folder): {e}")
            } else {
                format!("cannot read the service's manifest: {e}")
            },
        })?;
        Manifest::parse(&text, &file)
    }

    /// Parses and checks manifest `text`; relative folders are taken from `path`'s folder.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, ManifestError> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let err = |line: Option<usize>, message: String| ManifestError {
            path: path.to_path_buf(),
            line,
            message,
        };
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            err(
                e.span().map(|s| line_of(s.start)),
                e.message().trim().to_string(),
            )
        })?;
        let at = |s: std::ops::Range<usize>| Some(line_of(s.start));
        let name = raw.name.get_ref().trim().to_string();
        if name.is_empty() {
            return Err(err(at(raw.name.span()), "`name` is empty".into()));
        }
        let broker = match raw.broker.get_ref().as_str() {
            "kafka" => Broker::Kafka,
            "rocketmq" => Broker::RocketMq,
            other => {
                return Err(err(
                    at(raw.broker.span()),
                    format!("unknown broker {other:?}: chaosbank starts \"kafka\" or \"rocketmq\""),
                ))
            }
        };
        let settle = match &raw.settle {
            None => DEFAULT_SETTLE,
            Some(t) => crate::parse::duration(t.get_ref()).map_err(|e| {
                err(
                    at(t.span()),
                    format!(
                        "settle = {:?}: {e} (e.g. \"30s\", \"2m\", \"1500ms\")",
                        t.get_ref()
                    ),
                )
            })?,
        };
        if raw.process.is_empty() {
            return Err(err(
                None,
                "no [[process]]: a service has at least one process".into(),
            ));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut seen = BTreeSet::new();
        let mut processes = Vec::new();
        for p in &raw.process {
            let line = line_of(p.span().start);
            let p = p.get_ref();
            let pname = p.name.get_ref().clone();
            let pat = at(p.name.span());
            let valid = !pname.is_empty()
                && pname.len() <= 40
                && pname
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !pname.starts_with('-');
            if !valid {
                return Err(err(
                    pat,
                    format!("process name {pname:?}: use 1–40 lower-case letters, digits and '-' (it becomes a host name)"),
                ));
            }
            if ENGINE_NODES.contains(&pname.as_str()) {
                return Err(err(
                    pat,
                    format!("process name {pname:?} is an engine's node name; choose another"),
                ));
            }
            if !seen.insert(pname.clone()) {
                return Err(err(pat, format!("two processes are named {pname:?}")));
            }
            let sources = [p.image.is_some(), p.build.is_some(), p.runtime.is_some()];
            let source = match (&p.image, &p.build, &p.runtime) {
                _ if sources.iter().filter(|s| **s).count() != 1 => {
                    return Err(err(
                        Some(line),
                        format!(
                            "process {pname:?}: give exactly one of `image`, `build` or `runtime`"
                        ),
                    ))
                }
                (Some(image), _, _) => Source::Image(image.get_ref().clone()),
                (_, Some(build), _) => {
                    let dir = base.join(build.get_ref());
                    if !dir.join("Dockerfile").is_file() {
                        return Err(err(
                            at(build.span()),
                            format!("process {pname:?}: no Dockerfile in {}", dir.display()),
                        ));
                    }
                    Source::Build(dir)
                }
                (_, _, Some(runtime)) => {
                    let runtime_kind = match runtime.get_ref().as_str() {
                        "python" => Runtime::Python,
                        "java" => Runtime::Java,
                        other => {
                            return Err(err(
                                at(runtime.span()),
                                format!("process {pname:?}: unknown runtime {other:?} (\"python\" or \"java\")"),
                            ))
                        }
                    };
                    let dir = base.join(p.dir.as_ref().map_or(".", |d| d.get_ref().as_str()));
                    let dir = dir.canonicalize().map_err(|e| {
                        err(
                            p.dir.as_ref().and_then(|d| at(d.span())).or(Some(line)),
                            format!("process {pname:?}: folder {}: {e}", dir.display()),
                        )
                    })?;
                    Source::Runtime {
                        runtime: runtime_kind,
                        dir,
                    }
                }
                _ => unreachable!("exactly one source is set"),
            };
            if matches!(source, Source::Runtime { .. }) && p.command.is_empty() {
                return Err(err(
                    Some(line),
                    format!("process {pname:?}: a runtime process needs a `command`"),
                ));
            }
            processes.push(Process {
                name: pname,
                serve: p.serve.as_ref().map(|s| *s.get_ref()),
                source,
                command: p.command.clone(),
                env: p.env.clone(),
                line,
            });
        }
        let serving: Vec<&Process> = processes.iter().filter(|p| p.serve.is_some()).collect();
        match serving.as_slice() {
            [_] => {}
            [] => {
                return Err(err(
                    None,
                    "no process serves the transfer API: give exactly one `serve = PORT`".into(),
                ))
            }
            [_, second, ..] => {
                return Err(err(
                    Some(second.line),
                    format!(
                        "process {:?} also serves: exactly one process serves the transfer API",
                        second.name
                    ),
                ))
            }
        }
        let mut connectors: Vec<Connector> = Vec::new();
        for c in &raw.connector {
            let line = line_of(c.span().start);
            let raw_c = c.get_ref();
            let connector = Connector::load(raw_c, base, line).map_err(|(field, message)| {
                let span = match field {
                    "plugins" => raw_c.plugins.as_ref().map(|p| p.span()),
                    _ => Some(raw_c.config.span()),
                };
                err(span.and_then(at).or(Some(line)), message)
            })?;
            if broker != Broker::Kafka {
                return Err(err(
                    Some(line),
                    "a [[connector]] needs broker = \"kafka\" (Kafka Connect runs on Kafka)".into(),
                ));
            }
            if connectors.iter().any(|o| o.name == connector.name) {
                return Err(err(
                    at(raw_c.config.span()),
                    format!("two connectors are named {:?}", connector.name),
                ));
            }
            connectors.push(connector);
        }
        if !connectors.is_empty() {
            if let Some(p) = processes.iter().find(|p| p.name == CONNECT_NODE) {
                return Err(err(
                    Some(p.line),
                    format!(
                        "process name {CONNECT_NODE:?} is the Kafka Connect worker's node name \
                         in a service with connectors; choose another"
                    ),
                ));
            }
        }
        Ok(Manifest {
            name,
            broker,
            settle,
            processes,
            connectors,
            path: path.to_path_buf(),
        })
    }

    /// Checks that the program file each runtime process's command names in its folder
    /// is there — the jar after `-jar`, else the first `.py` script — so a jar not yet
    /// built is named before any engine starts, not found in a process that exits at
    /// once. Paths outside the folder (absolute ones) and `-c`/`-m` commands are not
    /// checked.
    pub fn check_files(&self) -> Result<(), ManifestError> {
        for p in &self.processes {
            let Source::Runtime { dir, .. } = &p.source else {
                continue;
            };
            let Some(file) = program_file(&p.command) else {
                continue;
            };
            if !dir.join(file).is_file() {
                return Err(ManifestError {
                    path: self.path.clone(),
                    line: Some(p.line),
                    message: format!(
                        "process {:?}: its command runs {file}, which is not in {} (build it first; the manifest's comments may say how)",
                        p.name,
                        dir.display()
                    ),
                });
            }
        }
        Ok(())
    }

    /// The process that serves the transfer API.
    pub fn server(&self) -> &Process {
        self.processes
            .iter()
            .find(|p| p.serve.is_some())
            .expect("a checked manifest has one serving process")
    }
}

/// The program file a runtime command runs from its folder: the argument after `-jar`,
/// else the first argument ending in `.py`; `None` for `-c`/`-m` commands and absolute
/// paths.
fn program_file(command: &[String]) -> Option<&str> {
    let file = match command.iter().position(|a| a == "-jar") {
        Some(i) => command.get(i + 1)?,
        None if command.iter().any(|a| a == "-c" || a == "-m") => return None,
        None => command
            .iter()
            .skip(1)
            .find(|a| a.ends_with(".py") && !a.starts_with('-'))?,
    };
    (!Path::new(file).is_absolute()).then_some(file.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(text, Path::new("/tmp/chaosbank.toml"))
    }

    const SMALLEST: &str = r#"
name = "tiny"
broker = "kafka"

[[process]]
name = "api"
serve = 8080
image = "my-org/transfers:1.4"
command = ["transfers"]
"#;

    #[test]
    fn a_program_file_not_in_the_folder_is_named_before_anything_starts() {
        let dir = std::env::temp_dir().join(format!("chaosbank-files-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("target")).unwrap();
        std::fs::write(dir.join("api.py"), "").unwrap();
        let manifest = |command: &str| {
            let text = format!(
                "name = \"t\"\nbroker = \"kafka\"\n\n[[process]]\nname = \"api\"\nserve = 8080\nruntime = \"python\"\ncommand = {command}\n"
            );
            Manifest::parse(&text, &dir.join("chaosbank.toml")).unwrap()
        };
        assert!(manifest(r#"["python3", "-u", "api.py"]"#)
            .check_files()
            .is_ok());
        assert!(manifest(r#"["python3", "-c", "print(1)"]"#)
            .check_files()
            .is_ok());
        assert!(manifest(r#"["/usr/bin/app.py"]"#).check_files().is_ok());
        let e = manifest(r#"["java", "-jar", "target/app.jar", "api"]"#)
            .check_files()
            .unwrap_err();
        assert_eq!(e.line, Some(4));
        assert!(
            e.to_string()
                .contains("runs target/app.jar, which is not in"),
            "{e}"
        );
        let e = manifest(r#"["python3", "-u", "relay.py"]"#)
            .check_files()
            .unwrap_err();
        assert!(e.to_string().contains("relay.py"), "{e}");
        std::fs::write(dir.join("target/app.jar"), "").unwrap();
        assert!(manifest(r#"["java", "-jar", "target/app.jar"]"#)
            .check_files()
            .is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_smallest_manifest_parses() {
        let m = parse(SMALLEST).unwrap();
        assert_eq!(m.name, "tiny");
        assert_eq!(m.broker, Broker::Kafka);
        assert_eq!(m.server().name, "api");
        assert_eq!(m.server().serve, Some(8080));
        assert_eq!(
            m.processes[0].source,
            Source::Image("my-org/transfers:1.4".into())
        );
        assert_eq!(m.processes[0].line, 5);
        assert_eq!(m.settle, DEFAULT_SETTLE);
        let m =
            parse(&SMALLEST.replace("broker = \"kafka\"", "broker = \"kafka\"\nsettle = \"2m\""))
                .unwrap();
        assert_eq!(m.settle, Duration::from_secs(120));
    }

    #[test]
    fn each_mistake_names_its_line() {
        let cases = [
            (
                SMALLEST.replace("\"kafka\"", "\"pulsar\""),
                3,
                "unknown broker \"pulsar\"",
            ),
            (
                SMALLEST.replace("serve = 8080\n", ""),
                0,
                "no process serves",
            ),
            (
                SMALLEST.replace("image = ", "runtime = \"cobol\"\n#"),
                8,
                "unknown runtime \"cobol\"",
            ),
            (
                SMALLEST.replace("name = \"api\"", "name = \"kafka\""),
                6,
                "an engine's node name",
            ),
            (
                SMALLEST.replace("name = \"api\"", "name = \"API\""),
                6,
                "lower-case",
            ),
            (
                SMALLEST.replace("serve = 8080", "serve = 8080\nbuild = \"x\""),
                5,
                "exactly one of",
            ),
            (
                SMALLEST.replace("serve = 8080", "serve = \"x\""),
                7,
                "invalid type",
            ),
            (
                SMALLEST.replace("command", "comand"),
                9,
                "unknown field `comand`",
            ),
            (
                format!("{SMALLEST}\n[[process]]\nname = \"api\"\nimage = \"x\"\n"),
                12,
                "two processes",
            ),
            (
                format!("{SMALLEST}\n[[process]]\nname = \"b\"\nserve = 1\nimage = \"x\"\n"),
                11,
                "also serves",
            ),
            (
                "name = \"x\"\nbroker = \"kafka\"\n".to_string(),
                0,
                "no [[process]]",
            ),
            (
                SMALLEST.replace(
                    "broker = \"kafka\"",
                    "broker = \"kafka\"\nsettle = \"soon\"",
                ),
                4,
                "not a duration",
            ),
            ("name = \"x\"\nbroker = kafka\n".to_string(), 2, ""),
        ];
        for (text, line, want) in cases {
            let e = parse(&text).expect_err(&text);
            assert_eq!(e.line.unwrap_or(0), line, "{e} in\n{text}");
            assert!(e.to_string().contains(want), "{e} lacks {want:?}");
            assert!(e.to_string().starts_with("/tmp/chaosbank.toml"), "{e}");
        }
    }

    /// A folder of its own under the system's temporary folder, removed on drop.
    struct Folder(PathBuf);

    impl Folder {
        fn new(tag: &str) -> Folder {
            let dir = std::env::temp_dir()
                .join(format!("chaosbank-manifest-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("connect/plugins")).unwrap();
            Folder(dir)
        }

        fn write(&self, name: &str, text: &str) {
            std::fs::write(self.0.join(name), text).unwrap();
        }

        fn parse(&self, text: &str) -> Result<Manifest, ManifestError> {
            Manifest::parse(text, &self.0.join(FILE_NAME))
        }
    }

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const OUTBOX_JSON: &str = r#"{"name": "outbox-a", "config": {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "${BANK_A_HOST}", "database.port": "${BANK_A_PORT}",
        "transforms.outbox.route.topic.replacement": "${routedByValue}",
        "tasks.max": 1}}"#;

    #[test]
    fn connectors_are_optional_and_read_from_their_files() {
        assert!(parse(SMALLEST).unwrap().connectors.is_empty());
        let f = Folder::new("ok");
        f.write("connect/outbox.json", OUTBOX_JSON);
        let text = format!(
            "{SMALLEST}\n[[connector]]\nconfig = \"connect/outbox.json\"\nplugins = \"connect/plugins\"\n"
        );
        let m = f.parse(&text).unwrap();
        assert_eq!(m.connectors.len(), 1);
        let c = &m.connectors[0];
        assert_eq!(c.name, "outbox-a");
        assert_eq!(c.line, 11);
        assert_eq!(c.config["database.hostname"], "${BANK_A_HOST}");
        assert!(c.plugins.as_ref().unwrap().ends_with("connect/plugins"));
        assert!(c.file.ends_with("connect/outbox.json"));
    }

    #[test]
    fn each_connector_mistake_names_the_manifest_line_and_the_file() {
        let f = Folder::new("bad");
        let table = "\n[[connector]]\nconfig = \"connect/c.json\"\n";
        let cases = [
            (None, table.to_string(), 12, "cannot read it"),
            (
                Some("{\"name\": \"x\",\n \"config\": {,}}"),
                table.to_string(),
                12,
                "c.json:2:",
            ),
            (
                Some("{\"config\": {\"connector.class\": \"x\"}}"),
                table.to_string(),
                12,
                "has no \"name\"",
            ),
            (Some("{\"name\": \"x\"}"), table.to_string(), 12, "no \"config\" object"),
            (
                Some("{\"name\": \"a b\", \"config\": {\"connector.class\": \"x\"}}"),
                table.to_string(),
                12,
                "name \"a b\"",
            ),
            (
                Some("{\"name\": \"x\", \"config\": {\"tasks.max\": \"1\"}}"),
                table.to_string(),
                12,
                "no \"connector.class\"",
            ),
            (
                Some("{\"name\": \"x\", \"config\": {\"connector.class\": \"x\", \"h\": \"${BANK_A_HST}\"}}"),
                table.to_string(),
                12,
                "${BANK_A_HST}, which chaosbank does not fill",
            ),
            (
                Some("{\"name\": \"x\", \"config\": {\"connector.class\": \"x\", \"h\": [1]}}"),
                table.to_string(),
                12,
                "must be a string",
            ),
            (
                Some(OUTBOX_JSON),
                format!("{table}plugins = \"nowhere\"\n"),
                13,
                "plugin folder",
            ),
            (
                Some(OUTBOX_JSON),
                format!("{table}{table}"),
                15,
                "two connectors are named \"outbox-a\"",
            ),
            (
                Some(OUTBOX_JSON),
                format!("{table}colour = 1\n"),
                13,
                "unknown field `colour`",
            ),
        ];
        for (json, extra, line, want) in cases {
            let _ = std::fs::remove_file(f.0.join("connect/c.json"));
            if let Some(json) = json {
                f.write("connect/c.json", json);
            }
            let text = format!("{SMALLEST}{extra}");
            let e = f.parse(&text).expect_err(&text);
            assert_eq!(e.line.unwrap_or(0), line, "{e} in\n{text}");
            assert!(e.to_string().contains(want), "{e} lacks {want:?}");
            assert!(e.to_string().contains(FILE_NAME), "{e}");
        }
        f.write("connect/c.json", OUTBOX_JSON);
        let rocket = format!("{SMALLEST}{table}").replace("\"kafka\"", "\"rocketmq\"");
        let e = f.parse(&rocket).unwrap_err();
        assert!(e.to_string().contains("needs broker = \"kafka\""), "{e}");
        // A process may be called `connect` unless the service has connectors.
        let named = SMALLEST.replace("name = \"api\"", "name = \"connect\"");
        assert!(f.parse(&named).is_ok());
        let e = f.parse(&format!("{named}{table}")).unwrap_err();
        assert_eq!(e.line, Some(5));
        assert!(
            e.to_string().contains("Kafka Connect worker's node name"),
            "{e}"
        );
    }

    #[test]
    fn a_folder_without_a_manifest_says_which_file_it_wanted() {
        let e = Manifest::load(Path::new("/nonexistent-service")).unwrap_err();
        assert!(
            e.to_string().contains("cannot read the service's manifest"),
            "{e}"
        );
        let dir = std::env::temp_dir();
        let e = Manifest::load(&dir).unwrap_err();
        assert!(e.to_string().contains(FILE_NAME), "{e}");
    }
}
