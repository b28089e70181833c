//! `chaosbank images`: builds the images that are missing and lists them.
use anyhow::Context;
use chaosbank::docker::Engine;
use chaosbank::images::{self, BuildOptions, Image};
use std::process::ExitCode;

/// Flags of `chaosbank images`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  chaosbank images              # build what is missing, list all\n  \
    chaosbank images --rebuild    # rebuild everything, base first\n  \
    chaosbank images postgres     # just the base and postgres"
)]
pub struct ImagesArgs {
    /// Rebuild every image even when a cached one matches its recipe.
    #[arg(long, default_value_t = false)]
    pub rebuild: bool,
    /// Hide the builds' own output (progress lines and timings are still shown). On a
    /// terminal the output is replaced by a spinner per image unless `--verbose`.
    #[arg(long, short, default_value_t = false)]
    pub quiet: bool,
    /// Show the builds' own output even on a terminal (instead of a spinner).
    #[arg(long, short, default_value_t = false, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Afterwards, remove chaosbank images of older recipes (those no container uses;
    /// only with every image selected, so no current tag is mistaken for an old one).
    #[arg(long, default_value_t = false)]
    pub prune: bool,
    /// Images to build (default: base, postgres, mariadb, kafka, rocketmq, node; the Rust
    /// brokers' `tansu` and `rocketmq-rust` only when named).
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(images::NAMES))]
    pub names: Vec<String>,
}

/// Runs `chaosbank images`.
pub fn run(args: ImagesArgs) -> ExitCode {
    super::block_on(async move { build_and_list(args).await })
}

async fn build_and_list(args: ImagesArgs) -> anyhow::Result<ExitCode> {
    let engine = Engine::connect().await?;
    let names: Vec<String> = if args.names.is_empty() {
        images::DEFAULT_NAMES
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        args.names.clone()
    };
    // On a terminal a spinner per image stands for the builds' output.
    let spin = chaosbank::progress::enabled() && !args.verbose;
    let opts = BuildOptions {
        rebuild: args.rebuild,
        verbose: !args.quiet && !spin,
        ..BuildOptions::default()
    };
    let mut rows: Vec<(String, anyhow::Result<Image>)> = Vec::new();
    for name in &names {
        let bar = if spin {
            chaosbank::progress::spinner(format!("image {name}: checking, building if missing"))
        } else {
            eprintln!("== {name}");
            indicatif::ProgressBar::hidden()
        };
        let r = images::ensure(&engine, name, &opts)
            .await
            .with_context(|| format!("image {name}"));
        bar.finish_and_clear();
        rows.push((name.clone(), r));
    }
    println!("{:<10} {:<32} {:>9}  status", "IMAGE", "REFERENCE", "SIZE");
    let mut failed = false;
    for (name, r) in &rows {
        match r {
            Ok(img) => println!(
                "{:<10} {:<32} {:>6} MB  {}",
                name,
                img.reference,
                img.size / 1_000_000,
                match img.built_in {
                    Some(t) => format!("built in {:.1} s", t.as_secs_f64()),
                    None => "cached".to_string(),
                }
            ),
            Err(e) => {
                failed = true;
                println!("{name:<10} {:<32} {:>9}  FAILED: {e:#}", "-", "-");
            }
        }
    }
    if args.prune {
        if !args.names.is_empty() || failed {
            eprintln!("not pruning: --prune needs every image built (no names, no failures)");
        } else {
            let keep: Vec<String> = rows
                .iter()
                .filter_map(|(_, r)| r.as_ref().ok().map(|i| i.reference.clone()))
                .collect();
            for tag in images::prune(&engine, &keep).await? {
                println!("removed old image {tag}");
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
