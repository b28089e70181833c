//! Images, built locally (there is no registry): `chaosbank/<name>:<12-hex hash>`.
//!
//! The hash covers every file of the recipe `docker/<name>/`, the base image's id, and
//! the broker binaries copied into the build context, so a tag names exactly what went
//! into it and an unchanged recipe is never rebuilt. The base image comes from
//! `docker/base/build.sh TAG`; the others from `docker build --build-arg BASE=<base>` on
//! a temporary context: the recipe directory plus `bin/<binary>` for each binary the
//! image needs (see `docker/CONTRACT.md`). Builds are serialized by a process-wide lock
//! and a file lock, so parallel tests and a concurrent CLI never build the same image
//! twice at once.
//!
//! The Java engines (`kafka`, `rocketmq`, `connect`) carry Apache's own jars: their recipe has a
//! `pom.xml`, Maven resolves its dependencies on the host once into
//! `$CHAOSBANK_CACHE/jars/<name>-<pom hash>/` (see [`jars`]), and the build context gets
//! them as `lib/`. The pom is part of the recipe, so the tag names the jars too.
//!
//! A *variant* (see [`VARIANTS`]) is an image whose recipe folder holds only what differs
//! from another recipe's: `docker/connect-3.2/` has its own `pom.xml` (an older Debezium
//! line) and takes the rest from `docker/connect/`. Its files are the shared recipe's with
//! its own laid over them, for the hash and for the build context alike, so the shared
//! image's tag does not change when a variant is added or edited.

use crate::docker::{tail, Engine};
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The images chaosbank builds, base first.
pub const NAMES: [&str; 12] = [
    "base",
    "postgres",
    "mariadb",
    "kafka",
    "rocketmq",
    "node",
    "tansu",
    "rocketmq-rust",
    "runtime-python",
    "runtime-java",
    "connect",
    "connect-3.2",
];

/// Images whose recipe folder holds only what differs from another recipe's, as
/// `(image, the recipe it lays its files over)`.
pub const VARIANTS: [(&str, &str); 1] = [("connect-3.2", "connect")];

/// The images `chaosbank images` builds when none is named: the default engines (the
/// Rust brokers' images need `docker/build-brokers.sh` and are built only when asked).
pub const DEFAULT_NAMES: [&str; 6] = ["base", "postgres", "mariadb", "kafka", "rocketmq", "node"];

/// How [`ensure`] builds.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Rebuild even when an image with the recipe's hash exists (base included, so every
    /// image rebuilt this way gets a new base).
    pub rebuild: bool,
    /// Print each build's output on stderr, prefixed with the image name.
    pub verbose: bool,
    /// The recipes folder; `None`: [`recipes_dir`] (the checkout's `docker/`). A test
    /// points it at recipes of its own.
    pub recipes: Option<PathBuf>,
}

/// An image ready to run.
#[derive(Clone, Debug)]
pub struct Image {
    /// The recipe name (`postgres`, …).
    pub name: String,
    /// `chaosbank/<name>:<hash>`.
    pub reference: String,
    /// How long building it took, or `None` when it was cached.
    pub built_in: Option<Duration>,
    /// Its size in bytes, as the engine reports.
    pub size: i64,
}

/// The broker binaries an image needs in its build context, as
/// `(file name in bin/, path under the cache's tools/ directory)`.
pub fn binaries(name: &str) -> &'static [(&'static str, &'static str)] {
    match name {
        "tansu" => &[("tansu", "tansu-0.6.0/bin/tansu")],
        "rocketmq-rust" => &[
            (
                "rocketmq-namesrv-rust",
                "rocketmq-1.0.0/bin/rocketmq-namesrv-rust",
            ),
            (
                "rocketmq-broker-rust",
                "rocketmq-1.0.0/bin/rocketmq-broker-rust",
            ),
        ],
        _ => &[],
    }
}

/// What runs in image `name` (as `chaosbank/<name>:<hash>` or the bare recipe name), as
/// a person names it: `Apache Kafka 4.1.1` (from the recipe's `pom.xml`), `tansu 0.6.0`
/// (from the broker binary's cache path). `None` for images of other recipes (the
/// databases answer `SELECT version()` themselves) and for images from elsewhere.
pub fn engine_version(node: &str, image: &str) -> Option<String> {
    // An official image says its version in its tag.
    let (repo, tag) = split_reference(image);
    for (official, product) in [
        ("apache/kafka", "Apache Kafka"),
        ("apache/rocketmq", "Apache RocketMQ"),
    ] {
        if repo == official || repo.ends_with(&format!("/{official}")) {
            return Some(format!("{product} {tag} (official image {image})"));
        }
    }
    let name = match image.strip_prefix("chaosbank/") {
        Some(rest) => rest.split(':').next()?,
        None if NAMES.contains(&image) => image,
        None => return None,
    };
    let product = match name {
        "kafka" => Some("Apache Kafka"),
        "rocketmq" => Some("Apache RocketMQ"),
        "connect" | "connect-3.2" => Some("Kafka Connect with Debezium"),
        _ => None,
    };
    if let Some(product) = product {
        let pom = std::fs::read_to_string(recipes_dir().ok()?.join(name).join("pom.xml")).ok()?;
        return Some(format!("{product} {}", pom_version(&pom)?));
    }
    let bins = binaries(name);
    let (file, path) = bins
        .iter()
        .find(|(file, _)| bins.len() == 1 || file.contains(node))?;
    let version = path.split('/').next()?.rsplit_once('-')?.1;
    Some(format!("{file} {version}"))
}

/// The project's own `<version>` of a pom (the first one before `<dependencies>`).
fn pom_version(pom: &str) -> Option<String> {
    let head = &pom[..pom.find("<dependencies>").unwrap_or(pom.len())];
    let start = head.find("<version>")? + "<version>".len();
    let end = start + head[start..].find("</version>")?;
    Some(head[start..end].trim().to_string())
}

/// Where built broker binaries are cached: `$CHAOSBANK_CACHE`, else `~/.cache/chaosbank`.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("CHAOSBANK_CACHE").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
            PathBuf::from(home).join(".cache/chaosbank")
        }
    }
}

/// The recipes directory (`docker/`): `$CHAOSBANK_RECIPES`, else the nearest
/// `docker/base/build.sh` above the current directory, else the one this crate was built
/// from.
pub fn recipes_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CHAOSBANK_RECIPES").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let here = std::env::current_dir().map_err(Error::io("read the current directory"))?;
    for dir in here.ancestors() {
        if dir.join("docker/base/build.sh").is_file() {
            return Ok(dir.join("docker"));
        }
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker");
    if built.join("base/build.sh").is_file() {
        return Ok(built);
    }
    Err(Error::Config(
        "no image recipes found: run from the chaosbank checkout or set CHAOSBANK_RECIPES to its docker/ directory".to_string(),
    ))
}

/// Makes sure image `name` (and the base under it) exists, building what is missing.
pub async fn ensure(engine: &Engine, name: &str, opts: &BuildOptions) -> Result<Image> {
    if !NAMES.contains(&name) {
        return Err(Error::Config(format!(
            "no image named {name:?}; known: {NAMES:?}"
        )));
    }
    let _guard = BuildLock::acquire().await?;
    let recipes = match &opts.recipes {
        Some(dir) => dir.clone(),
        None => recipes_dir()?,
    };
    let base = ensure_locked(engine, &recipes, "base", None, opts).await?;
    if name == "base" {
        return Ok(base);
    }
    let base_id = image_id(engine, &base.reference).await?;
    ensure_locked(
        engine,
        &recipes,
        name,
        Some((&base.reference, &base_id)),
        opts,
    )
    .await
}

/// Removes `chaosbank/<name>:<12 hex>` tags that are not in `keep` (older recipes).
/// An image a container still uses is left alone. Returns the tags removed.
pub async fn prune(engine: &Engine, keep: &[String]) -> Result<Vec<String>> {
    let mut filters = HashMap::new();
    filters.insert("reference".to_string(), vec!["chaosbank/*".to_string()]);
    let opts = bollard::query_parameters::ListImagesOptions {
        filters: Some(filters),
        ..Default::default()
    };
    let images = engine
        .api()
        .list_images(Some(opts))
        .await
        .map_err(Error::docker("list images"))?;
    let mut removed = Vec::new();
    for tag in images.into_iter().flat_map(|i| i.repo_tags) {
        // Only tags this module makes (12 hex digits): `chaosbank/base:dev` and other
        // hand-made tags are someone's on purpose.
        // Only images of the recipes being kept: an image of a recipe that was not built
        // this time (e.g. `tansu`) is not "older".
        let ours = tag
            .strip_prefix("chaosbank/")
            .and_then(|t| t.split_once(':'))
            .is_some_and(|(name, h)| {
                h.len() == 12
                    && h.bytes().all(|b| b.is_ascii_hexdigit())
                    && keep
                        .iter()
                        .any(|k| k.starts_with(&format!("chaosbank/{name}:")))
            });
        if keep.contains(&tag) || !ours {
            continue;
        }
        let r = engine
            .api()
            .remove_image(
                &tag,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await;
        match r {
            Ok(_) => removed.push(tag),
            Err(e) => tracing::info!("kept {tag}: {e}"),
        }
    }
    Ok(removed)
}

/// The recipe hash of image `name`: its files, the base image id, the binaries.
pub fn recipe_hash(recipe: &Path, base_id: Option<&str>, bins: &[PathBuf]) -> Result<String> {
    hash_files(&recipe_files(&[recipe])?, base_id, bins)
}

/// The files of a recipe laid out from `layers` (each later folder's files replace the
/// earlier ones' of the same relative path), as `(relative path, file)` sorted by path.
fn recipe_files(layers: &[&Path]) -> Result<Vec<(PathBuf, PathBuf)>> {
    let mut by_rel = std::collections::BTreeMap::new();
    for layer in layers {
        let mut files = Vec::new();
        walk(layer, &mut files)?;
        for f in files {
            let rel = f.strip_prefix(layer).unwrap_or(&f).to_path_buf();
            by_rel.insert(rel, f);
        }
    }
    Ok(by_rel.into_iter().collect())
}

/// The folders image `name`'s recipe is laid out from under `recipes`: its own, or for a
/// [`VARIANTS`] image the shared recipe's and then its own.
fn recipe_layers(recipes: &Path, name: &str) -> Vec<PathBuf> {
    match VARIANTS.iter().find(|(variant, _)| *variant == name) {
        Some((_, shared)) => vec![recipes.join(shared), recipes.join(name)],
        None => vec![recipes.join(name)],
    }
}

fn hash_files(
    files: &[(PathBuf, PathBuf)],
    base_id: Option<&str>,
    bins: &[PathBuf],
) -> Result<String> {
    let mut h = Sha256::new();
    for (rel, f) in files {
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(std::fs::read(f).map_err(Error::io(format!("read {}", f.display())))?);
        h.update([0]);
    }
    if let Some(id) = base_id {
        h.update(b"base:");
        h.update(id.as_bytes());
    }
    for b in bins {
        h.update(b"bin:");
        h.update(file_hash(b)?.as_bytes());
    }
    Ok(hex::encode(h.finalize())[..12].to_string())
}

async fn ensure_locked(
    engine: &Engine,
    recipes: &Path,
    name: &str,
    base: Option<(&str, &str)>,
    opts: &BuildOptions,
) -> Result<Image> {
    let recipe = recipes.join(name);
    let layers = recipe_layers(recipes, name);
    for dir in &layers {
        if !dir.is_dir() {
            return Err(Error::Config(format!(
                "no recipe for image {name}: {} is missing",
                dir.display()
            )));
        }
    }
    let layer_refs: Vec<&Path> = layers.iter().map(PathBuf::as_path).collect();
    let files = recipe_files(&layer_refs)?;
    let tools = cache_dir().join("tools");
    let mut bins = Vec::new();
    for (file, rel) in binaries(name) {
        let path = tools.join(rel);
        if !path.is_file() {
            return Err(Error::Config(format!(
                "image {name} needs {file}, not built yet at {}: run `bash docker/build-brokers.sh` (15-20 min per broker)",
                path.display()
            )));
        }
        bins.push(path);
    }
    let hash = hash_files(&files, base.map(|b| b.1), &bins)?;
    let jars_dir = if files.iter().any(|(rel, _)| rel == Path::new("pom.xml")) {
        Some(recipe_jars(&recipe, name, opts.verbose).await?)
    } else {
        None
    };
    let reference = format!("chaosbank/{name}:{hash}");
    let rebuild = opts.rebuild
        && !REBUILT
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&reference);
    if !rebuild {
        if let Ok(info) = engine.api().inspect_image(&reference).await {
            return Ok(Image {
                name: name.to_string(),
                reference,
                built_in: None,
                size: info.size.unwrap_or(0),
            });
        }
    }
    tracing::info!("building image {reference}");
    let start = Instant::now();
    if name == "base" {
        let script = recipe.join("build.sh");
        let script = script.to_string_lossy();
        stream_command(name, "bash", &[&script, &reference], opts.verbose).await?;
    } else {
        let ctx = TempDir::new(&format!("chaosbank-build-{name}"))?;
        copy_files(&files, ctx.path())?;
        std::fs::create_dir_all(ctx.path().join("bin")).map_err(Error::io("create bin/"))?;
        if let Some(jars) = &jars_dir {
            let lib = ctx.path().join("lib");
            std::fs::create_dir_all(&lib).map_err(Error::io("create lib/"))?;
            link_dir(jars, &lib)?;
        }
        for ((file, _), src) in binaries(name).iter().zip(&bins) {
            let dst = ctx.path().join("bin").join(file);
            if std::fs::hard_link(src, &dst).is_err() {
                std::fs::copy(src, &dst).map_err(Error::io(format!("copy {}", src.display())))?;
            }
        }
        let base_ref = base.map(|b| b.0).unwrap_or_default();
        let ctx_path = ctx.path().to_string_lossy().into_owned();
        let arg = format!("BASE={base_ref}");
        let label = format!("chaosbank.recipe={name}");
        let args = [
            "build",
            "--build-arg",
            &arg,
            "--label",
            &label,
            "-t",
            &reference,
            &ctx_path,
        ];
        stream_command(name, "docker", &args, opts.verbose).await?;
    }
    let took = start.elapsed();
    REBUILT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(reference.clone());
    tracing::info!("built {reference} in {took:.1?}");
    let size = engine
        .api()
        .inspect_image(&reference)
        .await
        .map_err(Error::docker(format!("inspect image {reference}")))?
        .size
        .unwrap_or(0);
    Ok(Image {
        name: name.to_string(),
        reference,
        built_in: Some(took),
        size,
    })
}

/// The jars of a Java engine's recipe (its `pom.xml`), resolved with Maven on the host
/// into `$CHAOSBANK_CACHE/jars/<name>-<pom hash>/` on first use and reused after that.
/// Returns that folder. Needs `mvn` (and Maven Central) only the first time.
pub async fn jars(name: &str) -> Result<PathBuf> {
    let recipe = recipes_dir()?.join(name);
    recipe_jars(&recipe, name, false).await
}

async fn recipe_jars(recipe: &Path, name: &str, verbose: bool) -> Result<PathBuf> {
    // A variant's own pom.xml, else the shared recipe's.
    let pom = match recipe.join("pom.xml") {
        own if own.is_file() => own,
        _ => recipe_layers(recipe.parent().unwrap_or(recipe), name)[0].join("pom.xml"),
    };
    let pom_hash = file_hash(&pom)?;
    let dir = cache_dir()
        .join("jars")
        .join(format!("{name}-{}", &pom_hash[..12]));
    if dir.join(".complete").is_file() {
        return Ok(dir);
    }
    tracing::info!(
        "resolving the jars of image {name} with Maven into {}",
        dir.display()
    );
    // `<dir>.partial` (not with_extension: `connect-3.2-<hash>` has a dot of its own).
    let tmp = dir.with_file_name(format!("{name}-{}.partial", &pom_hash[..12]));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(Error::io(format!("create {}", tmp.display())))?;
    let pom_arg = pom.to_string_lossy().into_owned();
    let out_arg = format!("-DoutputDirectory={}", tmp.display());
    let args = [
        "-B",
        "-q",
        "-f",
        &pom_arg,
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        &out_arg,
    ];
    stream_command(name, "mvn", &args, verbose)
        .await
        .map_err(|e| match e {
            Error::Command { status, stderr, .. } if status.starts_with("could not start") => {
                Error::Config(format!(
                    "image {name} needs Maven to resolve its jars ({status}): install it (Debian: apt-get install maven) or run `bash docker/setup.sh`{}",
                    if stderr.is_empty() { String::new() } else { format!("\n{stderr}") }
                ))
            }
            other => other,
        })?;
    std::fs::write(tmp.join(".complete"), pom_hash.as_bytes())
        .map_err(Error::io(format!("write {}/.complete", tmp.display())))?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(Error::io(format!("move jars to {}", dir.display())))?;
    Ok(dir)
}

/// Hard-links (or copies) every `.jar` of `from` into `to`.
fn link_dir(from: &Path, to: &Path) -> Result<()> {
    let entries = std::fs::read_dir(from).map_err(Error::io(format!("read {}", from.display())))?;
    for e in entries {
        let e = e.map_err(Error::io(format!("read {}", from.display())))?;
        let src = e.path();
        if src.extension().is_none_or(|x| x != "jar") {
            continue;
        }
        let dst = to.join(e.file_name());
        if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).map_err(Error::io(format!("copy {}", src.display())))?;
        }
    }
    Ok(())
}

/// Pulls `reference` through the engine unless an image of that name is already here,
/// printing each layer's progress on stderr (at most one line a second, and every
/// layer's end). A pull that fails names the image and the registry.
pub async fn pull_if_missing(engine: &Engine, reference: &str) -> Result<()> {
    use futures_util::StreamExt;
    if engine.api().inspect_image(reference).await.is_ok() {
        return Ok(());
    }
    let (image, tag) = split_reference(reference);
    let registry = registry_of(image);
    eprintln!("pulling {reference} from {registry}");
    let started = Instant::now();
    let opts = bollard::query_parameters::CreateImageOptions {
        from_image: Some(image.to_string()),
        tag: Some(tag.to_string()),
        ..Default::default()
    };
    let mut stream = engine.api().create_image(Some(opts), None, None);
    let mut last_line = Instant::now() - Duration::from_secs(1);
    let mut layers: HashMap<String, (i64, i64)> = HashMap::new();
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| {
            Error::Config(format!(
                "pulling {reference} from {registry} failed: {e} (is the registry up, and \
                 does it hold that image? set CHAOSBANK_REGISTRY=host:port for another)"
            ))
        })?;
        if let Some(err) = info.error.or(info.error_detail.and_then(|d| d.message)) {
            return Err(Error::Config(format!(
                "pulling {reference} from {registry} failed: {err}"
            )));
        }
        let status = info.status.unwrap_or_default();
        if let (Some(id), Some(d)) = (&info.id, &info.progress_detail) {
            if let (Some(c), Some(t)) = (d.current, d.total) {
                layers.insert(id.clone(), (c, t));
            }
        }
        let finished = status.starts_with("Pull complete") || status.starts_with("Already exists");
        if finished || last_line.elapsed() >= Duration::from_secs(1) {
            last_line = Instant::now();
            let (c, t) = layers
                .values()
                .fold((0, 0), |(a, b), (c, t)| (a + c, b + t));
            eprintln!(
                "  {reference}: {} {status} ({} of {} MB in {} layers)",
                info.id.as_deref().unwrap_or(""),
                c / 1_000_000,
                t / 1_000_000,
                layers.len()
            );
        }
    }
    engine.api().inspect_image(reference).await.map_err(|e| {
        Error::Config(format!(
            "{reference} is not here after pulling it from {registry}: {e}"
        ))
    })?;
    eprintln!("pulled {reference} in {:.1?}", started.elapsed());
    Ok(())
}

/// `name:tag` (or `name@digest`) → (name, tag), `latest` when there is none. A `:` in
/// the registry's `host:port` is not a tag.
fn split_reference(reference: &str) -> (&str, &str) {
    if let Some((name, digest)) = reference.split_once('@') {
        return (name, digest);
    }
    match reference.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (reference, "latest"),
    }
}

/// The registry an image name is pulled from: its first part when that looks like a
/// host (`127.0.0.1:5000/postgres`), else Docker Hub.
fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains(':') || first.contains('.') || first == "localhost" => {
            first
        }
        _ => "Docker Hub",
    }
}

/// Images already rebuilt by this process under `--rebuild` (so the base is rebuilt once).
static REBUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());

async fn image_id(engine: &Engine, reference: &str) -> Result<String> {
    engine
        .api()
        .inspect_image(reference)
        .await
        .map_err(Error::docker(format!("inspect image {reference}")))?
        .id
        .ok_or_else(|| Error::Config(format!("image {reference} has no id")))
}

/// Builds a user's folder with a Dockerfile (a service process's `build`) as
/// `chaosbank-sut/<name>:<hash of the folder>`, reusing an image of the same hash.
pub async fn build_folder(
    engine: &Engine,
    name: &str,
    dir: &Path,
    verbose: bool,
) -> Result<String> {
    let hash = recipe_hash(dir, None, &[])?;
    let reference = format!("chaosbank-sut/{name}:{hash}");
    if engine.api().inspect_image(&reference).await.is_ok() {
        return Ok(reference);
    }
    tracing::info!("building {reference} from {}", dir.display());
    let ctx = dir.to_string_lossy().into_owned();
    let label = format!("chaosbank.recipe=sut-{name}");
    stream_command(
        name,
        "docker",
        &["build", "--label", &label, "-t", &reference, &ctx],
        verbose,
    )
    .await?;
    Ok(reference)
}

/// Runs a build command, echoing its output when `verbose`, keeping the tail for errors.
async fn stream_command(name: &str, program: &str, args: &[&str], verbose: bool) -> Result<()> {
    let command = format!("{program} {}", args.join(" "));
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::Command {
            command: command.clone(),
            status: format!("could not start: {e}"),
            stderr: String::new(),
        })?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send(line);
            }
        });
    }
    drop(tx);
    let mut output = String::new();
    while let Some(line) = rx.recv().await {
        if verbose {
            eprintln!("[{name}] {line}");
        }
        tracing::debug!("[{name}] {line}");
        output.push_str(&line);
        output.push('\n');
    }
    let status = child
        .wait()
        .await
        .map_err(Error::io(format!("wait for {command}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Command {
            command,
            status: status.to_string(),
            stderr: tail(&output, 30),
        })
    }
}

/// Serializes builds: a tokio mutex within the process, `flock` on
/// `<cache>/images.lock` across processes.
struct BuildLock {
    _local: tokio::sync::MutexGuard<'static, ()>,
    _file: std::fs::File,
}

static LOCAL_BUILD_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl BuildLock {
    async fn acquire() -> Result<BuildLock> {
        let local = LOCAL_BUILD_LOCK.lock().await;
        let dir = cache_dir();
        std::fs::create_dir_all(&dir).map_err(Error::io(format!("create {}", dir.display())))?;
        let path = dir.join("images.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io(format!("open {}", path.display())))?;
        let mut said = false;
        loop {
            use std::os::fd::AsRawFd;
            // SAFETY: flock on a file descriptor we own; no memory is involved.
            let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if r == 0 {
                break;
            }
            if !said {
                tracing::info!(
                    "waiting for another process building images ({})",
                    path.display()
                );
                said = true;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // The lock is released when the file is closed (drop), even if we are killed.
        Ok(BuildLock {
            _local: local,
            _file: file,
        })
    }
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> Result<TempDir> {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(Error::io(format!("create {}", path.display())))?;
        Ok(TempDir(path))
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(Error::io(format!("read {}", dir.display())))?;
    for e in entries {
        let e = e.map_err(Error::io(format!("read {}", dir.display())))?;
        let path = e.path();
        let ft = e
            .file_type()
            .map_err(Error::io(format!("stat {}", path.display())))?;
        if ft.is_dir() {
            walk(&path, out)?;
        } else if ft.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

fn copy_files(files: &[(PathBuf, PathBuf)], to: &Path) -> Result<()> {
    for (rel, f) in files {
        let dst = to.join(rel);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)
                .map_err(Error::io(format!("create {}", parent.display())))?;
        }
        std::fs::copy(f, &dst).map_err(Error::io(format!("copy {}", f.display())))?;
    }
    Ok(())
}

/// SHA-256 of a file, memoized per (path, size, mtime) for this process: broker
/// binaries are large and hashed at every cluster start.
fn file_hash(path: &Path) -> Result<String> {
    type Key = (PathBuf, u64, SystemTime);
    static MEMO: Mutex<Option<HashMap<Key, String>>> = Mutex::new(None);
    let meta = std::fs::metadata(path).map_err(Error::io(format!("stat {}", path.display())))?;
    let key = (
        path.to_path_buf(),
        meta.len(),
        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
    );
    if let Some(h) = MEMO
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .get(&key)
    {
        return Ok(h.clone());
    }
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(path).map_err(Error::io(format!("open {}", path.display())))?;
    std::io::copy(&mut f, &mut h).map_err(Error::io(format!("read {}", path.display())))?;
    let hex = hex::encode(h.finalize());
    MEMO.lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(key, hex.clone());
    Ok(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variant_lays_its_own_files_over_the_shared_recipe() {
        let recipes =
            std::env::temp_dir().join(format!("chaosbank-variant-{}", std::process::id()));
        let (shared, own) = (recipes.join("connect"), recipes.join("connect-3.2"));
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(shared.join("Dockerfile"), "FROM x\n").unwrap();
        std::fs::write(shared.join("pom.xml"), "<new/>").unwrap();
        std::fs::write(own.join("pom.xml"), "<old/>").unwrap();
        let layers = recipe_layers(&recipes, "connect-3.2");
        let refs: Vec<&Path> = layers.iter().map(PathBuf::as_path).collect();
        let files = recipe_files(&refs).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|(rel, f)| (rel.clone(), f.clone()))
            .collect();
        assert_eq!(
            names,
            vec![
                (PathBuf::from("Dockerfile"), shared.join("Dockerfile")),
                (PathBuf::from("pom.xml"), own.join("pom.xml")),
            ]
        );
        // The shared image's hash is its folder's alone; the variant's differs.
        let plain = recipe_hash(&shared, Some("b"), &[]).unwrap();
        let laid = recipe_files(&[shared.as_path()]).unwrap();
        assert_eq!(hash_files(&laid, Some("b"), &[]).unwrap(), plain);
        assert_ne!(hash_files(&files, Some("b"), &[]).unwrap(), plain);
        let _ = std::fs::remove_dir_all(&recipes);
    }

    #[test]
    fn references_split_into_name_tag_and_registry() {
        assert_eq!(split_reference("postgres:15"), ("postgres", "15"));
        assert_eq!(
            split_reference("127.0.0.1:5000/apache/kafka:4.1.1"),
            ("127.0.0.1:5000/apache/kafka", "4.1.1")
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/postgres"),
            ("127.0.0.1:5000/postgres", "latest")
        );
        assert_eq!(registry_of("127.0.0.1:5000/postgres"), "127.0.0.1:5000");
        assert_eq!(registry_of("apache/kafka"), "Docker Hub");
        assert_eq!(registry_of("postgres"), "Docker Hub");
        assert_eq!(
            engine_version("kafka", "127.0.0.1:5000/apache/kafka:4.1.1").as_deref(),
            Some("Apache Kafka 4.1.1 (official image 127.0.0.1:5000/apache/kafka:4.1.1)")
        );
    }
}
