//! Nightly at scale, end to end through the `chaosbank` binary on a real Docker engine:
//! two shards of `soak --systems dual-write --seeds 1..4` (four 8 s runs, one cluster at
//! a time) each exit 0 whatever their verdicts, and `chaosbank merge` of the
//! two gives exactly the rows, table, JUnit and exit status that the unsharded soak gives
//! for the same runs' verdicts — in either order, and with a shard given twice.
//! About 2.5 minutes (debug build).

use chaosbank::soak::{self, Row, SoakFile};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SYSTEMS: &str = "dual-write";
const SEEDS: &str = "1..4";

fn chaosbank(args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_chaosbank"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the chaosbank binary runs");
    eprintln!(
        "$ chaosbank {}\n-> {:?}\n{}{}",
        args.join(" "),
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// A scratch folder removed when the test ends, passed or not.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The one soak.json a shard's store holds.
fn soak_file(store: &Path) -> SoakFile {
    let found = chaosbank::merge::find_inputs(&[store.to_path_buf()]).expect("soak.json found");
    assert_eq!(found.len(), 1, "one soak.json in {}", store.display());
    SoakFile::load(&found[0]).expect("soak.json loads")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[test]
fn two_shards_merged_equal_the_unsharded_soak() {
    let scratch =
        Scratch(std::env::temp_dir().join(format!("chaosbank-nightly-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&scratch.0);
    std::fs::create_dir_all(&scratch.0).expect("a scratch folder");
    let store = |k: u32| scratch.0.join(format!("shard-{k}"));

    for k in 1..=2 {
        let shard = format!("{k}/2");
        let o = chaosbank(&[
            "soak",
            "--systems",
            SYSTEMS,
            "--seeds",
            SEEDS,
            "--time-limit",
            "8s",
            "--drain-timeout",
            "60s",
            "--shard",
            &shard,
            "--out",
            s(&store(k)),
        ]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "shard {shard} ran every run it was given to a verdict: exit 0 whatever the verdicts"
        );
    }
    let files: Vec<SoakFile> = (1..=2).map(|k| soak_file(&store(k))).collect();
    for (k, f) in files.iter().enumerate() {
        assert!(f.complete(), "shard {} ran every run it was given", k + 1);
        assert_eq!(f.rows.len(), 2, "each shard got two of the four runs");
        assert!(
            f.rows.iter().all(|r| r.outcome.error.is_none()),
            "no run errored"
        );
    }

    // The unsharded soak's rows for the same verdicts: the plan's order, every run once.
    let plan = soak::plan(&files[0].systems, &files[0].seeds);
    assert_eq!(plan.len(), 4);
    let all: Vec<&Row> = files.iter().flat_map(|f| &f.rows).collect();
    let whole: Vec<Row> = plan
        .iter()
        .map(|(name, seed)| {
            (*all
                .iter()
                .find(|r| &r.name == name && r.seed == *seed)
                .unwrap_or_else(|| panic!("{name} seed {seed} ran in a shard")))
            .clone()
        })
        .collect();
    let exit = u8::from(whole.iter().any(|r| !r.passed()));

    let merged = scratch.0.join("merged");
    let o = chaosbank(&["merge", s(&store(1)), s(&store(2)), "--out", s(&merged)]);
    assert_eq!(
        o.status.code(),
        Some(i32::from(exit)),
        "merge exits as the unsharded soak would"
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains(&soak::table(&whole)),
        "merge prints the unsharded soak's table:\n{}",
        soak::table(&whole)
    );
    let junit = std::fs::read_to_string(merged.join("junit.xml")).expect("junit.xml");
    assert_eq!(junit, soak::junit(&whole), "the unsharded soak's JUnit");
    let m = chaosbank::merge::Merged::load(&merged.join(chaosbank::merge::MERGED_JSON))
        .expect("merged.json");
    assert_eq!(
        serde_json::to_string(&m.rows).unwrap(),
        serde_json::to_string(&whole).unwrap(),
        "the unsharded soak's rows, in its order"
    );
    let page = std::fs::read_to_string(merged.join("index.html")).expect("index.html");
    for r in whole.iter().filter(|r| !r.passed()) {
        let dir = r.dir.as_ref().expect("a failing run keeps its folder");
        assert!(
            page.contains(&dir.file_name().unwrap().to_string_lossy().to_string()),
            "the page links the failing run {}",
            dir.display()
        );
    }

    // Reversed, with the second shard given twice: the same merge.
    let again = scratch.0.join("again");
    let o = chaosbank(&[
        "merge",
        s(&store(2)),
        s(&store(1)),
        s(&store(2)),
        "--out",
        s(&again),
    ]);
    assert_eq!(o.status.code(), Some(i32::from(exit)));
    let m2 = chaosbank::merge::Merged::load(&again.join(chaosbank::merge::MERGED_JSON))
        .expect("merged.json");
    assert_eq!(
        serde_json::to_string(&m2.rows).unwrap(),
        serde_json::to_string(&whole).unwrap()
    );

    // One shard alone is not the whole soak: named, exit 2.
    let o = chaosbank(&["merge", s(&store(1)), "--out", s(&scratch.0.join("half"))]);
    assert_eq!(o.status.code(), Some(2), "a missing shard is exit 2");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("missing shards: 2/2"),
        "the missing shard is named"
    );
}
