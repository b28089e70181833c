//! The reference schemes' bank transactions on both real engines (PostgreSQL for bank A,
//! MariaDB for bank B): a refused debit leaves no rows behind, a debit writes its outbox
//! row with it, and a batch credit applies each message exactly once with dedup, even
//! when a message comes twice in one batch or again in a later one.

use std::collections::BTreeMap;

use chaosbank::Cluster;
use workloads::bank::{Applied, Bank, BankId, Credited, DebitExtra, ReadFrom, Table, Transfer};

fn transfer(id: u64, from: &str, to: &str, amount: i64) -> Transfer {
    Transfer {
        id,
        from: from.to_string(),
        to: to.to_string(),
        amount,
    }
}

async fn a_fresh_bank(cluster: &Cluster, id: BankId) -> Bank {
    let node = match id {
        BankId::A => "postgres",
        BankId::B => "mariadb",
    };
    let bank = Bank::connect(id, &cluster.endpoint(node).unwrap().url(), 4).unwrap();
    bank.create_schema().await.unwrap();
    let balances: BTreeMap<String, i64> = (0..3).map(|n| (id.account(n), 100)).collect();
    bank.seed(&balances).await.unwrap();
    bank
}

async fn check_bank(bank: &Bank) {
    let id = bank.id();
    let (me, other) = (id.account(0), id.other().account(0));
    let outbox = DebitExtra::Outbox {
        topic: "credits",
        payload: "{}",
    };

    // Refused: too little money. Nothing of it may stay.
    let refused = bank.debit(&transfer(1, &me, &other, 500), outbox).await;
    assert!(matches!(refused, Applied::Insufficient), "{refused:?}");
    assert_eq!(
        bank.unsent().await.unwrap(),
        0,
        "a refused debit left its outbox row"
    );
    assert!(bank.final_ledger().await.unwrap().entries.is_empty());

    // Accepted: the debit, its ledger row and its outbox row, together.
    let outbox = DebitExtra::Outbox {
        topic: "credits",
        payload: "{}",
    };
    let debited = bank.debit(&transfer(2, &me, &other, 30), outbox).await;
    assert!(matches!(debited, Applied::Committed), "{debited:?}");
    assert_eq!(bank.unsent().await.unwrap(), 1);
    let ledger = bank.final_ledger().await.unwrap();
    assert_eq!(ledger.balances[&me], 70);
    assert_eq!(ledger.entries.len(), 1);
    assert_eq!(ledger.entries[0].amount, -30);

    // A batch with one message twice: credited once.
    let (to1, to2) = (id.account(1), id.account(2));
    let (t10, t11) = (transfer(10, &other, &to1, 5), transfer(11, &other, &to2, 7));
    let at = |offset| ReadFrom {
        topic: "credits".to_string(),
        partition: 0,
        offset,
    };
    let (r0, r1, r2) = (at(0), at(1), at(2));
    let done = bank
        .credit_all_from(
            &[(&t10, Some(&r0)), (&t11, Some(&r1)), (&t10, Some(&r2))],
            true,
        )
        .await
        .unwrap();
    assert_eq!(
        done,
        [Credited::Applied, Credited::Applied, Credited::Duplicate]
    );
    // Again in a later batch: a duplicate; a new one beside it is applied.
    let t12 = transfer(12, &other, &to1, 1);
    let done = bank
        .credit_all_from(&[(&t10, None), (&t12, None)], true)
        .await
        .unwrap();
    assert_eq!(done, [Credited::Duplicate, Credited::Applied]);
    assert_eq!(bank.count(Table::Dedup).await.unwrap(), 3);
    let ledger = bank.final_ledger().await.unwrap();
    assert_eq!(ledger.balances[&to1], 106);
    assert_eq!(ledger.balances[&to2], 107);
    let credits: Vec<_> = ledger.entries.iter().filter(|e| e.amount > 0).collect();
    assert_eq!(credits.len(), 3, "{credits:?}");
    let first = credits.iter().find(|e| e.transfer == 10).unwrap();
    assert_eq!(
        first.read_from.as_ref(),
        Some(&r0),
        "the record it was read from"
    );

    // A credit to an account the bank lacks rolls the whole batch back.
    let (t13, t14) = (
        transfer(13, &other, &to1, 2),
        transfer(14, &other, "nobody", 2),
    );
    let err = bank
        .credit_all_from(&[(&t13, None), (&t14, None)], true)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("no account nobody"), "{err:#}");
    assert_eq!(bank.count(Table::Dedup).await.unwrap(), 3);
    assert_eq!(bank.final_ledger().await.unwrap().balances[&to1], 106);

    // Without dedup, a message credited twice is applied twice: what the checker must see.
    let t15 = transfer(15, &other, &to2, 3);
    let done = bank
        .credit_all_from(&[(&t15, None), (&t15, None)], false)
        .await
        .unwrap();
    assert_eq!(done, [Credited::Applied, Credited::Applied]);
    assert_eq!(bank.final_ledger().await.unwrap().balances[&to2], 113);
}

#[tokio::test(flavor = "multi_thread")]
async fn debits_and_batch_credits_are_exact_on_postgres_and_mariadb() {
    let _engine = chaosbank_tests::engine().await;
    let cluster = Cluster::builder()
        .postgres()
        .mariadb()
        .start()
        .await
        .expect("cluster starts");
    for id in BankId::ALL {
        let bank = a_fresh_bank(&cluster, id).await;
        check_bank(&bank).await;
        bank.close().await;
    }
    cluster.down().await.expect("teardown");
}
