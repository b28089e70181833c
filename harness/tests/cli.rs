//! The `chaosbank` binary's answers to bad input, without a Docker engine: clear
//! messages naming the file, exit status 2, and help with examples.

use std::process::{Command, Output};

fn chaosbank(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chaosbank"))
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("the chaosbank binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("chaosbank-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn replay_refuses_bad_run_folders_with_exit_2() {
    let o = chaosbank(&["replay", "/nonexistent/run"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/nonexistent/run: no such run folder"),
        "{}",
        stderr(&o)
    );

    let dir = scratch("malformed");
    std::fs::write(dir.join("run.json"), "{\"system\": \"outbox\", \"seed\": ").unwrap();
    let o = chaosbank(&["replay", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let expected = format!("{}: malformed run.json", dir.join("run.json").display());
    assert!(stderr(&o).contains(&expected), "{}", stderr(&o));

    std::fs::remove_file(dir.join("run.json")).unwrap();
    let o = chaosbank(&["replay", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("run.json"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_flags_exit_2_and_say_why() {
    let o = chaosbank(&["soak", "--seeds", "9..2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("empty seed range"), "{}", stderr(&o));
    let o = chaosbank(&["soak", "--systems", "sagas"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown system \"sagas\""),
        "{}",
        stderr(&o)
    );
    let o = chaosbank(&["run", "--nemesis", "flood"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown nemesis \"flood\""),
        "{}",
        stderr(&o)
    );
    // Numbers that once panicked or started a cluster for ages: refused, naming the flag.
    for (flag, value) in [
        ("--fault-rate", "1e-300"),
        ("--rate", "1e-300"),
        ("--time-limit", "99999999999999999m"),
        ("--concurrency", "0"),
    ] {
        let o = chaosbank(&["run", flag, value]);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {}", stderr(&o));
        assert!(stderr(&o).contains(flag), "{flag}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{flag}: {}", stderr(&o));
    }
    let o = chaosbank(&["soak", "--seeds", "1..60000,70000..130000"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("at most 100000"), "{}", stderr(&o));
    // A misspelt target is refused before anything starts (no cluster, no run folder).
    let out = scratch("targets");
    let o = chaosbank(&[
        "run",
        "--targets",
        "postgress",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unknown target \"postgress\" in --targets: chaosbank knows postgres,"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        0,
        "a run folder was made"
    );
    let _ = std::fs::remove_dir_all(&out);
    for cmd in ["run", "bench"] {
        let o = chaosbank(&[cmd, "--accounts", "0"]);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        assert!(stderr(&o).contains("--accounts"), "{cmd}: {}", stderr(&o));
    }
}

#[test]
fn every_command_has_help_with_an_example() {
    for cmd in ["run", "replay", "soak", "check", "images"] {
        let o = chaosbank(&[cmd, "--help"]);
        assert!(o.status.success(), "{cmd} --help failed");
        let help = String::from_utf8_lossy(&o.stdout);
        assert!(
            help.contains("Examples:") && help.contains(&format!("chaosbank {cmd}")),
            "{cmd} --help has no example:\n{help}"
        );
    }
    let o = chaosbank(&["--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    for cmd in ["replay", "soak"] {
        assert!(help.contains(cmd), "--help does not list {cmd}:\n{help}");
    }
}

#[test]
fn check_names_the_first_violation_and_its_time() {
    let dir = scratch("first-violation");
    let history = dir.join("history.jsonl");
    // t1 is acknowledged at 2.5 s yet in no ledger: lost, first violation at its ack.
    let lines = [
        r#"{"index":0,"time":0,"process":"setup","type":"ok","f":"init","value":{"A/0":100,"B/0":100}}"#,
        r#"{"index":1,"time":1000000000,"process":0,"type":"invoke","f":"transfer","value":{"id":"t1","from":"A/0","to":"B/0","amount":5}}"#,
        r#"{"index":2,"time":2500000000,"process":0,"type":"ok","f":"transfer","value":{"id":"t1","from":"A/0","to":"B/0","amount":5}}"#,
        r#"{"index":3,"time":9000000000,"process":"final","type":"ok","f":"final-ledger","value":{"bank":"A","balances":{"A/0":100},"entries":[]}}"#,
        r#"{"index":4,"time":9000000000,"process":"final","type":"ok","f":"final-ledger","value":{"bank":"B","balances":{"B/0":100},"entries":[]}}"#,
    ];
    std::fs::write(&history, lines.join("\n") + "\n").unwrap();
    let o = chaosbank(&["check", history.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}{}", stderr(&o));
    assert!(
        out.contains("first violation: lost at 2.5 s into the run (op 2)"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
