//! Images: built once from their recipes, then found by hash; concurrent requests for
//! the same image build it once.

use chaosbank_tests::engine;
use harness::images::{self, BuildOptions};
use std::time::Instant;

#[tokio::test(flavor = "multi_thread")]
async fn an_image_is_built_once_then_cached() {
    let engine = engine().await;
    let opts = BuildOptions::default();
    // Two concurrent requests: the lock makes the second wait and then find the image.
    let (a, b) = tokio::join!(
        images::ensure(&engine, "postgres", &opts),
        images::ensure(&engine, "postgres", &opts)
    );
    let (a, b) = (a.expect("build postgres"), b.expect("build postgres"));
    assert_eq!(a.reference, b.reference);
    assert!(
        a.built_in.is_none() || b.built_in.is_none(),
        "built twice: {a:?} {b:?}"
    );
    assert!(a.reference.starts_with("chaosbank/postgres:"));
    assert_eq!(a.reference.len(), "chaosbank/postgres:".len() + 12);

    let start = Instant::now();
    let again = images::ensure(&engine, "postgres", &opts)
        .await
        .expect("cached");
    assert_eq!(again.built_in, None);
    assert_eq!(again.reference, a.reference);
    eprintln!("cached lookup took {:.2?}", start.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hash_follows_the_recipe() {
    let dir = std::env::temp_dir().join(format!("chaosbank-recipe-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\n").unwrap();
    let h1 = images::recipe_hash(&dir, Some("sha256:1"), &[]).unwrap();
    assert_eq!(
        h1,
        images::recipe_hash(&dir, Some("sha256:1"), &[]).unwrap()
    );
    assert_ne!(
        h1,
        images::recipe_hash(&dir, Some("sha256:2"), &[]).unwrap(),
        "base id counts"
    );
    std::fs::write(dir.join("entrypoint.sh"), "#!/bin/sh\n").unwrap();
    assert_ne!(
        h1,
        images::recipe_hash(&dir, Some("sha256:1"), &[]).unwrap(),
        "files count"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_image_is_a_clear_error() {
    let engine = engine().await;
    let e = images::ensure(&engine, "oracle", &BuildOptions::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no image named"), "{e}");
}
