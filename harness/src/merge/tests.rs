use super::*;
use crate::soak::Shard;
use crate::store::Outcome;
use workloads::system::SystemKind;

const SYSTEMS: [&str; 2] = ["dual-write", "outbox"];

/// A synthetic verdict for a run: dual-write convicted in odd seeds (first violation at
/// seed seconds), seed 5 of outbox an error with no folder, the rest valid.
fn row(name: &str, seed: u64) -> Row {
    let system = SystemKind::parse(name).unwrap();
    let (valid, error) = match (name, seed) {
        ("dual-write", s) if s % 2 == 1 => ("invalid", None),
        ("outbox", 5) => ("error", Some("cluster did not start".to_string())),
        _ => ("valid", None),
    };
    Row {
        system,
        name: name.to_string(),
        seed,
        outcome: Outcome {
            valid: valid.to_string(),
            anomalies: if valid == "invalid" {
                [("lost".to_string(), seed as usize)].into_iter().collect()
            } else {
                Default::default()
            },
            first_violation: (valid == "invalid").then(|| "lost".to_string()),
            first_violation_s: (valid == "invalid").then_some(seed as f64),
            error,
            ..Outcome::default()
        },
        dir: (valid != "error").then(|| PathBuf::from(format!("runs/{name}/t-{seed}"))),
        shrink: None,
    }
}

fn names() -> Vec<String> {
    SYSTEMS.iter().map(|s| s.to_string()).collect()
}

/// The soak run whole: every run's row, in order.
fn whole(seeds: &[u64]) -> Vec<Row> {
    soak::plan(&names(), seeds)
        .iter()
        .map(|(n, s)| row(n, *s))
        .collect()
}

/// Shard `shard` of the soak, as its soak.json would be found in `runs/soak-<k>/`.
fn shard_input(seeds: &[u64], shard: Shard) -> Input {
    let mut base = RunConfig::new(0);
    base.out = PathBuf::from("runs");
    let mut file = SoakFile::new(&base, names(), seeds.to_vec(), shard);
    file.rows = file.given().iter().map(|(n, s)| row(n, *s)).collect();
    file.finish(false);
    file.started_at = 1;
    file.finished_at = Some(2);
    Input {
        path: PathBuf::from(format!("runs/soak-{}/soak.json", shard.k)),
        file,
    }
}

fn shards(seeds: &[u64], n: usize) -> Vec<Input> {
    (1..=n)
        .map(|k| shard_input(seeds, Shard { k, n }))
        .collect()
}

fn json(rows: &[Row]) -> String {
    serde_json::to_string(rows).unwrap()
}

#[test]
fn shards_parse_and_split_the_list_round_robin_balanced_and_stable() {
    assert_eq!(Shard::parse("3/8").unwrap(), Shard { k: 3, n: 8 });
    for bad in ["", "3", "0/4", "5/4", "1/0", "a/4", "1/b", "1/1000001"] {
        assert!(Shard::parse(bad).is_err(), "{bad:?} parsed");
    }
    let plan = soak::plan(&names(), &(1..=13).collect::<Vec<u64>>());
    for n in 1..=9 {
        let parts: Vec<Vec<(String, u64)>> = (1..=n).map(|k| Shard { k, n }.pick(&plan)).collect();
        // Balanced: sizes differ by at most one.
        let sizes: Vec<usize> = parts.iter().map(Vec::len).collect();
        let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(hi - lo <= 1, "{n} shards: sizes {sizes:?}");
        // A partition: every run in exactly one shard.
        let mut all: Vec<_> = parts.concat();
        all.sort();
        let mut expected = plan.clone();
        expected.sort();
        assert_eq!(all, expected, "{n} shards");
    }
    // Stable: fixed by the list alone (run i to shard i mod n + 1).
    assert_eq!(
        Shard { k: 2, n: 4 }.pick(&soak::plan(&["a"], &[1, 2, 3, 4, 5, 6, 7, 8, 9])),
        vec![("a", 2), ("a", 6)]
            .into_iter()
            .map(|(s, n)| (s, n as u64))
            .collect::<Vec<_>>()
    );
    // With two systems, each shard gets some of each.
    let two = Shard { k: 1, n: 2 }.pick(&soak::plan(&names(), &[1, 2, 3]));
    assert!(two.iter().any(|(n, _)| n == "dual-write") && two.iter().any(|(n, _)| n == "outbox"));
}

#[test]
fn merged_shards_equal_the_whole_soak_in_any_order_and_with_a_shard_twice() {
    let seeds: Vec<u64> = (1..=7).collect();
    let rows = whole(&seeds);
    let expected_exit = u8::from(rows.iter().any(|r| !r.passed()));
    assert_eq!(expected_exit, 1);
    for n in [1, 2, 3, 5] {
        let mut inputs = shards(&seeds, n);
        let m = merge(inputs.clone()).unwrap();
        assert_eq!(json(&m.rows), json(&rows), "{n} shards");
        assert_eq!(m.table(), soak::table(&rows), "{n} shards");
        assert_eq!(m.junit(), soak::junit(&rows), "{n} shards");
        assert_eq!(m.exit_code(), expected_exit, "{n} shards");
        assert!(m.problems().is_empty(), "{:?}", m.problems());
        // Reversed, and with the first shard given twice: the same merge.
        inputs.reverse();
        inputs.push(inputs.last().unwrap().clone());
        let again = merge(inputs).unwrap();
        assert_eq!(json(&again.rows), json(&rows));
        assert_eq!(again.inputs, m.inputs);
        assert_eq!(again.exit_code(), expected_exit);
    }
    // A soak of valid runs only merges to exit 0.
    let mut clean = shards(&[2, 4], 2);
    for i in &mut clean {
        i.file.systems = vec!["dual-write".into()];
        i.file.rows = i.file.given().iter().map(|(n, s)| row(n, *s)).collect();
    }
    assert_eq!(merge(clean).unwrap().exit_code(), 0);
}

#[test]
fn missing_and_duplicated_shards_and_runs_are_named_with_exit_2() {
    let seeds: Vec<u64> = (1..=4).collect();
    let mut inputs = shards(&seeds, 3);
    inputs.remove(1);
    let m = merge(inputs.clone()).unwrap();
    assert_eq!(m.missing_shards, vec![2]);
    assert_eq!(m.exit_code(), 2);
    let p = m.problems().join("\n");
    assert!(p.contains("missing shards: 2/3"), "{p}");
    assert!(p.contains("runs not run: dual-write seed 2"), "{p}");

    // Shard 1 again from another machine (different content): duplicated, and the runs
    // judged differently there are timing-sensitive.
    let mut other = shard_input(&seeds, Shard { k: 1, n: 3 });
    other.path = PathBuf::from("elsewhere/soak-1/soak.json");
    other.file.rows[0].outcome.valid = "valid".into();
    other.file.rows[0].outcome.anomalies.clear();
    let first = other.file.rows[0].clone();
    inputs.push(other);
    let m = merge(inputs).unwrap();
    assert_eq!(m.duplicated_shards, vec![1]);
    assert!(m
        .duplicated_runs
        .contains(&(first.name.clone(), first.seed)));
    assert_eq!(m.timing_sensitive.len(), 1, "{:?}", m.timing_sensitive);
    assert_eq!(m.timing_sensitive[0].seed, first.seed);
    assert_eq!(m.exit_code(), 2);
}

#[test]
fn a_mix_of_commits_or_configs_is_refused_naming_the_files() {
    let seeds = [1, 2];
    let mut inputs = shards(&seeds, 2);
    inputs[1].file.chaosbank.commit = "0000000".into();
    let e = format!("{:#}", merge(inputs).unwrap_err());
    assert!(e.contains("version and commit differ"), "{e}");
    assert!(e.contains("runs/soak-2/soak.json"), "{e}");

    let mut inputs = shards(&seeds, 2);
    let mut cfg = inputs[1].file.config.clone();
    cfg.time_limit = std::time::Duration::from_secs(1);
    inputs[1].file.fingerprint = soak::fingerprint(&cfg);
    let e = format!("{:#}", merge(inputs).unwrap_err());
    assert!(e.contains("config fingerprint differ"), "{e}");

    let mut inputs = shards(&seeds, 2);
    inputs[0].file.seeds = vec![1, 2, 3];
    assert!(merge(inputs).is_err());
    assert!(merge(Vec::new()).is_err());
}

#[test]
fn the_fingerprint_ignores_seed_system_and_where_runs_are_stored_only() {
    let a = RunConfig::new(1);
    let mut b = RunConfig::new(2);
    b.system = SystemKind::TxMsg;
    b.out = "elsewhere".into();
    assert_eq!(soak::fingerprint(&a), soak::fingerprint(&b));
    b.concurrency += 1;
    assert_ne!(soak::fingerprint(&a), soak::fingerprint(&b));
}

#[test]
fn soak_json_round_trips_and_rows_move_with_their_store() {
    let dir = std::env::temp_dir().join(format!("chaosbank-merge-{}", std::process::id()));
    let soak_dir = dir.join("artifact/shard-2/soak-x");
    std::fs::create_dir_all(&soak_dir).unwrap();
    let input = shard_input(&[1, 2, 3, 4, 5], Shard { k: 2, n: 2 });
    input.file.write(&soak_dir.join(SOAK_JSON)).unwrap();
    let found = find_inputs(&[dir.join("artifact")]).unwrap();
    assert_eq!(found, vec![soak_dir.join(SOAK_JSON)]);
    let back = Input::load(&found[0]).unwrap();
    assert_eq!(json(&back.file.rows), json(&input.file.rows));
    // A run that failed before it had a folder is a row of the file too.
    assert!(back
        .file
        .rows
        .iter()
        .any(|r| r.dir.is_none() && r.outcome.valid == "error" && r.outcome.error.is_some()));
    assert!(back.file.complete());
    let m = merge(vec![back]).unwrap();
    let d = m.rows[0].dir.clone().unwrap();
    assert!(
        d.starts_with(dir.join("artifact/shard-2")),
        "{} is not under the downloaded store",
        d.display()
    );
    assert!(find_inputs(&[dir.join("nothing-here")]).is_err());
    std::fs::write(dir.join("bad.json"), "{").unwrap();
    let e = format!("{:#}", Input::load(&dir.join("bad.json")).unwrap_err());
    assert!(e.contains("bad.json is not a soak.json"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn wilson_intervals() {
    assert_eq!(wilson(0, 0, 1.96), None);
    let (lo, hi) = wilson(10, 10, 1.96).unwrap();
    assert!((lo - 0.7225).abs() < 1e-3 && hi == 1.0, "{lo} {hi}");
    let (lo, hi) = wilson(0, 10, 1.96).unwrap();
    assert!(lo == 0.0 && (hi - 0.2775).abs() < 1e-3, "{lo} {hi}");
    let (lo, hi) = wilson(16, 19, 1.96).unwrap();
    assert!(
        (lo - 0.6243).abs() < 1e-3 && (hi - 0.9448).abs() < 1e-3,
        "{lo} {hi}"
    );
}

#[test]
fn the_trend_names_new_convictions_falling_rates_and_flipped_seeds() {
    let seeds: Vec<u64> = (1..=4).collect();
    let before = merge(shards(&seeds, 2)).unwrap();
    let mut now_inputs = shards(&seeds, 2);
    for i in &mut now_inputs {
        for r in &mut i.file.rows {
            // outbox seed 2 convicted now; dual-write seed 3 cleared now.
            if (r.name.as_str(), r.seed) == ("outbox", 2) {
                r.outcome.valid = "invalid".into();
            }
            if (r.name.as_str(), r.seed) == ("dual-write", 3) {
                r.outcome.valid = "valid".into();
            }
        }
    }
    let now = merge(now_inputs).unwrap();
    let t = trend(&before, &now);
    let systems = t.systems.join("\n");
    assert!(
        systems.contains("outbox: CONVICTED now, 25 % (1 of 4)"),
        "{systems}"
    );
    assert!(
        systems.contains("dual-write: conviction rate fell from 50 % (2 of 4) to 25 % (1 of 4)"),
        "{systems}"
    );
    assert!(
        t.runs
            .contains(&"outbox seed 2: valid → invalid".to_string()),
        "{:?}",
        t.runs
    );
    assert_eq!(t.timing_sensitive.len(), 2);
    assert!(trend(&now, &now).is_empty());
}

#[test]
fn the_page_links_failing_runs_to_their_reports() {
    let seeds: Vec<u64> = (1..=5).collect();
    let m = merge(shards(&seeds, 2)).unwrap();
    let page = html::page(&m, None, Path::new("merged"));
    assert!(
        page.contains("<a href=\"../runs/dual-write/t-1/report.html\">"),
        "{page}"
    );
    assert!(page.contains("the run failed before it had one"), "{page}");
    // dual-write: 3 of 5 convicted, 95 % interval 23–88 %.
    assert!(page.contains("23–88 %"), "{page}");
    assert_eq!(
        relative(Path::new("a/b"), Path::new("a/c/d")),
        PathBuf::from("../c/d")
    );
}

#[test]
fn seed_lists_print_as_soak_takes_them() {
    assert_eq!(seed_list(&[1, 2, 3, 4, 9, 11, 12]), "1..4,9,11,12");
    assert_eq!(seed_list(&[]), "");
}

#[test]
fn a_minimal_schedule_is_carried_through_relocated_and_linked() {
    let seeds: Vec<u64> = (1..=3).collect();
    let mut inputs = shards(&seeds, 1);
    // The shard's store downloaded to artifacts/: its rows' paths move with it.
    inputs[0].path = PathBuf::from("artifacts/s1/runs/soak-1/soak.json");
    for r in &mut inputs[0].file.rows {
        if r.outcome.valid == "invalid" {
            let dir = r.dir.clone().unwrap();
            r.shrink = Some(crate::shrink::Summary {
                schedule: Some(crate::shrink::default_file(&dir)),
                faults_before: 12,
                faults_after: Some(r.seed as usize),
                reproduced: Some(crate::shrink::Reproduced {
                    convicted: 2,
                    runs: 3,
                }),
                evidence: Some(dir.join("shrink/dual-write/t-9")),
                ..Default::default()
            });
        }
    }
    // Seed 3's shrink failed: its reason is shown instead.
    inputs[0].file.rows[2].shrink.as_mut().unwrap().schedule = None;
    inputs[0].file.rows[2].shrink.as_mut().unwrap().faults_after = None;
    inputs[0].file.rows[2].shrink.as_mut().unwrap().error =
        Some("the original schedule convicted in 0 of 2 tries\nmore".into());
    let m = merge(inputs).unwrap();
    let sum = m.rows[0].shrink.as_ref().expect("carried through");
    assert_eq!(
        sum.schedule.as_deref(),
        Some(Path::new(
            "artifacts/s1/runs/dual-write/t-1/shrink/minimal-schedule.toml"
        ))
    );
    assert_eq!(
        sum.evidence.as_deref(),
        Some(Path::new(
            "artifacts/s1/runs/dual-write/t-1/shrink/dual-write/t-9"
        ))
    );
    let t = m.table();
    assert!(
        t.contains("shrunk: 12 → 1 faults, reproduced 2 of 3"),
        "{t}"
    );
    assert!(
        t.contains("dual-write: convicted in 2 of 3 seeds (67 %)"),
        "{t}"
    );
    assert!(
        t.contains("; shrunk 1 of 2 (faults 12 → 1; reproduced 2 of 3)"),
        "{t}"
    );
    let page = html::page(&m, None, Path::new("merged"));
    assert!(
        page.contains(
            "<a href=\"../artifacts/s1/runs/dual-write/t-1/shrink/minimal-schedule.toml\">\
             12 → 1 faults, reproduced 2 of 3</a>"
        ),
        "{page}"
    );
    assert!(
        page.contains("not shrunk: the original schedule convicted in 0 of 2 tries</td>"),
        "{page}"
    );
}
