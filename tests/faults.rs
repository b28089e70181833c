//! Faults: each has its effect and heals. Times from the fault call to its effect are
//! printed (run with `--nocapture` to see them).

use chaosbank::nemesis::HOST;
use chaosbank::schedule::{FaultKind, Schedule, ScheduleConfig};
use chaosbank::Cluster;
use chaosbank_tests::{engine, exec_ok, query_within, Sql};
use std::time::{Duration, Instant};

const SHORT: Duration = Duration::from_secs(3);
const LONG: Duration = Duration::from_secs(30);

async fn databases() -> Cluster {
    let _ = engine().await;
    Cluster::builder()
        .postgres()
        .mariadb()
        .start()
        .await
        .expect("cluster starts")
}

/// Polls `f` until it returns true; returns how long that took.
async fn until(what: &str, within: Duration, mut f: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_database_refuses_restarts_and_keeps_what_was_committed() {
    let cluster = databases().await;
    let nemesis = cluster.nemesis();
    for node in ["postgres", "mariadb"] {
        let e = cluster.endpoint(node).unwrap();
        let mut c = Sql::connect(&e, LONG).await.unwrap();
        c.exec("CREATE TABLE kept (id BIGINT PRIMARY KEY)")
            .await
            .unwrap();
        c.exec("INSERT INTO kept VALUES (7)").await.unwrap();
        drop(c);

        let called = Instant::now();
        let ev = nemesis.kill(node).await.unwrap();
        assert_eq!(ev.f, "kill");
        assert_eq!(ev.value["node"], node);
        let effect = until("refused", LONG, async || {
            query_within(&e, "SELECT 1", SHORT).await.is_err()
        })
        .await;
        eprintln!(
            "{node}: kill call → refused in {:.0?}",
            called.elapsed().max(effect)
        );

        let ev = nemesis.restart(node).await.unwrap();
        assert_eq!(ev.f, "restart");
        let ready = cluster.wait_ready(node).await.unwrap();
        eprintln!("{node}: restart → ready in {ready:.1?}");
        let n = query_within(&e, "SELECT MAX(id) FROM kept", LONG)
            .await
            .unwrap();
        assert_eq!(n, 7, "{node} lost a committed row");
    }
    cluster.down().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_node_stalls_and_resumes() {
    let cluster = databases().await;
    let nemesis = cluster.nemesis();
    let e = cluster.endpoint("postgres").unwrap();
    let mut c = Sql::connect(&e, LONG).await.unwrap();
    assert_eq!(c.scalar("SELECT 1::BIGINT").await.unwrap(), 1);

    let ev = nemesis.pause("postgres").await.unwrap();
    assert_eq!(ev.f, "pause");
    let t = Instant::now();
    let stalled = tokio::time::timeout(SHORT, c.scalar("SELECT 2::BIGINT")).await;
    assert!(stalled.is_err(), "a paused postgres answered: {stalled:?}");
    // The other node is unaffected.
    let m = cluster.endpoint("mariadb").unwrap();
    assert_eq!(query_within(&m, "SELECT 3", LONG).await.unwrap(), 3);

    let ev = nemesis.resume("postgres").await.unwrap();
    assert_eq!(ev.f, "resume");
    let resumed = Instant::now();
    let mut c = Sql::connect(&e, LONG).await.unwrap();
    assert_eq!(c.scalar("SELECT 4::BIGINT").await.unwrap(), 4);
    eprintln!(
        "pause: stall observed for {:.1?}; resume → answer in {:.0?}",
        t.elapsed(),
        resumed.elapsed()
    );
    cluster.down().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_isolated_node_times_out_and_answers_after_heal() {
    let cluster = databases().await;
    let nemesis = cluster.nemesis();
    let e = cluster.endpoint("mariadb").unwrap();
    assert_eq!(query_within(&e, "SELECT 1", LONG).await.unwrap(), 1);
    let mut open = Sql::connect(&e, LONG).await.unwrap();

    let called = Instant::now();
    let ev = nemesis.isolate("mariadb").await.unwrap();
    assert_eq!(ev.f, "partition");
    assert_eq!(ev.value["kind"], "isolate");
    let applied = called.elapsed();
    // Both a new connection and an open one stall.
    assert!(query_within(&e, "SELECT 1", SHORT).await.is_err());
    assert!(tokio::time::timeout(SHORT, open.scalar("SELECT 1"))
        .await
        .is_err());
    // Other containers cannot reach it either.
    let pg = cluster.node("postgres").unwrap().container;
    assert!(!exec_ok(
        &pg,
        "timeout 2 bash -c 'exec 3<>/dev/tcp/mariadb/3306'"
    ));

    let healed = Instant::now();
    let ev = nemesis.heal().await.unwrap();
    assert_eq!(ev.f, "heal");
    let back = until("answers after heal", LONG, async || {
        query_within(&e, "SELECT 1", SHORT).await.is_ok()
    })
    .await;
    assert!(exec_ok(
        &pg,
        "timeout 2 bash -c 'exec 3<>/dev/tcp/mariadb/3306'"
    ));
    eprintln!(
        "isolate: rules in place {applied:.0?} after the call; heal → answers in {:.0?}",
        healed.elapsed().max(back)
    );
    cluster.down().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn cut_links_and_halves_cut_only_what_they_name() {
    let cluster = databases().await;
    let nemesis = cluster.nemesis();
    let pg = cluster.node("postgres").unwrap().container;
    let my = cluster.node("mariadb").unwrap().container;
    let pg_e = cluster.endpoint("postgres").unwrap();
    let reach =
        |from: &str, to: &str| exec_ok(from, &format!("timeout 2 bash -c 'exec 3<>/dev/tcp/{to}'"));
    assert!(reach(&my, "postgres/5432"));

    // A link between two containers: they lose each other, the host keeps both.
    let ev = nemesis.cut("postgres", "mariadb").await.unwrap();
    assert_eq!(ev.value["kind"], "cut");
    assert!(!reach(&my, "postgres/5432"));
    assert!(!reach(&pg, "mariadb/3306"));
    assert_eq!(
        query_within(&pg_e, "SELECT 1::BIGINT", LONG).await.unwrap(),
        1
    );
    nemesis.heal().await.unwrap();
    assert!(reach(&my, "postgres/5432"));

    // The host's link to postgres: the harness loses it, mariadb keeps it.
    nemesis.cut("postgres", HOST).await.unwrap();
    assert!(query_within(&pg_e, "SELECT 1::BIGINT", SHORT)
        .await
        .is_err());
    assert!(reach(&my, "postgres/5432"));
    nemesis.heal().await.unwrap();
    assert_eq!(
        query_within(&pg_e, "SELECT 1::BIGINT", LONG).await.unwrap(),
        1
    );

    // Two halves: {postgres} | {mariadb, host}.
    let ev = nemesis
        .halves(&["postgres"], &["mariadb", HOST])
        .await
        .unwrap();
    assert_eq!(ev.value["kind"], "halves");
    assert!(!reach(&my, "postgres/5432"));
    assert!(query_within(&pg_e, "SELECT 1::BIGINT", SHORT)
        .await
        .is_err());
    let my_e = cluster.endpoint("mariadb").unwrap();
    assert_eq!(query_within(&my_e, "SELECT 1", LONG).await.unwrap(), 1);
    nemesis.heal().await.unwrap();
    assert!(reach(&my, "postgres/5432"));
    assert_eq!(
        query_within(&pg_e, "SELECT 1::BIGINT", LONG).await.unwrap(),
        1
    );
    cluster.down().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn packet_loss_drops_and_heals() {
    let cluster = databases().await;
    let nemesis = cluster.nemesis();
    let e = cluster.endpoint("postgres").unwrap();
    let ev = nemesis.loss("postgres", 1.0).await.unwrap();
    assert_eq!(ev.f, "loss");
    assert!(query_within(&e, "SELECT 1::BIGINT", SHORT).await.is_err());
    nemesis.heal().await.unwrap();
    assert_eq!(query_within(&e, "SELECT 1::BIGINT", LONG).await.unwrap(), 1);

    // 20 % loss: TCP retransmits, queries still complete (slower).
    nemesis.loss("postgres", 0.2).await.unwrap();
    let t = Instant::now();
    let mut ok = 0;
    for _ in 0..3 {
        ok += query_within(&e, "SELECT 1::BIGINT", LONG).await.is_ok() as u32;
    }
    eprintln!("20 % loss: {ok}/3 connect+query in {:.1?}", t.elapsed());
    assert!(ok >= 2);
    assert!(nemesis.loss("postgres", 1.5).await.is_err());
    nemesis.heal().await.unwrap();
    cluster.down().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn heal_all_undoes_every_fault_and_a_schedule_plays_in_pairs() {
    let cluster = databases().await;
    let nemesis = cluster.nemesis();
    nemesis.pause("postgres").await.unwrap();
    nemesis.kill("mariadb").await.unwrap();
    let ev = nemesis.heal_all().await.unwrap();
    assert_eq!(ev.f, "heal-all");
    assert_eq!(ev.value["resumed"], serde_json::json!(["postgres"]));
    assert_eq!(ev.value["restarted"], serde_json::json!(["mariadb"]));
    cluster.wait_ready("mariadb").await.unwrap();
    cluster.wait_ready("postgres").await.unwrap();

    let cfg = ScheduleConfig {
        seed: 11,
        duration: Duration::from_secs(8),
        interval: Duration::from_millis(600),
        hold: Duration::from_millis(800),
        faults: vec![
            FaultKind::Pause,
            FaultKind::Isolate,
            FaultKind::Cut,
            FaultKind::Loss,
            FaultKind::Halves,
        ],
        targets: vec!["postgres".into(), "mariadb".into()],
        cover: false,
        overlap: 0.0,
        clock_targets: Vec::new(),
        aim_targets: Vec::new(),
        aimed: false,
    };
    let schedule = Schedule::generate(&cfg);
    eprintln!("{schedule}");
    assert!(!schedule.steps.is_empty());
    let mut events = Vec::new();
    schedule.play(&nemesis, |ev| events.push(ev)).await.unwrap();
    assert_eq!(events.len(), schedule.steps.len() * 2 + 1, "{events:#?}");
    for (pair, step) in events.chunks(2).zip(&schedule.steps) {
        let (start, end) = step.fault.names();
        assert_eq!(pair[0].f, start);
        assert_eq!(pair[1].f, end);
        assert!(
            pair[0].error.is_none() && pair[1].error.is_none(),
            "{pair:?}"
        );
    }
    assert_eq!(events.last().unwrap().f, "heal-all");
    answer_after(&cluster, "the schedule").await;

    // Overlapping faults: every fault gets a second one on the other node while it
    // holds; both are in effect at once (two starts before either end), each observed.
    let overlapping = ScheduleConfig {
        seed: 12,
        faults: vec![FaultKind::Pause, FaultKind::Isolate],
        hold: Duration::from_millis(1500),
        overlap: 1.0,
        ..cfg
    };
    let schedule = Schedule::generate(&overlapping);
    eprintln!("{schedule}");
    let mut events = Vec::new();
    schedule.play(&nemesis, |ev| events.push(ev)).await.unwrap();
    let (mut open, mut most) = (0i32, 0i32);
    for ev in &events {
        assert!(ev.error.is_none(), "{ev:?}");
        match ev.f.as_str() {
            "pause" | "partition" => {
                assert!(ev.value["observed"].is_string(), "{ev:?}");
                open += 1;
            }
            "resume" | "heal" => open -= 1,
            _ => {}
        }
        most = most.max(open);
    }
    assert_eq!(most, 2, "no two faults held at once: {events:#?}");
    answer_after(&cluster, "the overlapping schedule").await;
    cluster.down().await.unwrap();
}

/// Both databases answer (after a schedule has been played and healed).
async fn answer_after(cluster: &Cluster, what: &str) {
    for node in ["postgres", "mariadb"] {
        let e = cluster.endpoint(node).unwrap();
        assert_eq!(
            query_within(&e, "SELECT 1", LONG).await.unwrap(),
            1,
            "{node} after {what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_brokers_stop_answering_and_come_back() {
    let _ = engine().await;
    let b = Cluster::builder().kafka().rocketmq();
    let nodes = ["kafka", "broker"];
    let cluster = b.start().await.expect("brokers start");
    let nemesis = cluster.nemesis();
    for node in nodes {
        let port = cluster.endpoint(node).unwrap().port;
        let called = Instant::now();
        nemesis.kill(node).await.unwrap();
        let answers = async || match node {
            "kafka" => chaosbank::probe::kafka::probe(port).await.is_ok(),
            _ => chaosbank::probe::rocketmq::request(port, 28).await.is_ok(),
        };
        until("stops answering", LONG, async || !answers().await).await;
        eprintln!("{node}: kill call → no answer in {:.0?}", called.elapsed());
        nemesis.restart(node).await.unwrap();
        let ready = cluster.wait_ready(node).await.unwrap();
        eprintln!("{node}: restart → ready in {ready:.1?}");
    }
    cluster.down().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn teardown_removes_a_cluster_left_paused_and_partitioned() {
    let engine = engine().await;
    let cluster = Cluster::builder().postgres().start().await.expect("starts");
    let run = cluster.run_id().to_string();
    let nemesis = cluster.nemesis();
    nemesis.isolate("postgres").await.unwrap();
    nemesis.pause("postgres").await.unwrap();
    cluster.down().await.expect("teardown of a paused node");
    chaosbank_tests::assert_gone(&engine, &run, Duration::ZERO).await;
}
