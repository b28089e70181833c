//! Images: built once from their recipes, then found by hash; concurrent requests for
//! an image that does not exist yet build it once.

use chaosbank::images::{self, BuildOptions};
use chaosbank_tests::engine;

#[tokio::test(flavor = "multi_thread")]
async fn an_image_is_built_once_then_cached() {
    let engine = engine().await;
    // A recipe no engine has an image of yet (a nonce in it), so the two concurrent
    // requests below must build it, and only one may: the lock makes the second wait and
    // then find the image. The real base is reused (its recipe, linked), so the build is
    // one Dockerfile line on a cached base: about a second.
    let recipes =
        std::env::temp_dir().join(format!("chaosbank-images-test-{}", std::process::id()));
    let node = recipes.join("node");
    std::fs::create_dir_all(&node).unwrap();
    let real = images::recipes_dir().expect("the checkout's docker/ folder");
    std::os::unix::fs::symlink(real.join("base"), recipes.join("base")).unwrap();
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    std::fs::write(
        node.join("Dockerfile"),
        format!("ARG BASE\nFROM ${{BASE}}\nLABEL chaosbank.test.nonce=\"{nonce}\"\n"),
    )
    .unwrap();
    let opts = BuildOptions {
        recipes: Some(recipes.clone()),
        ..BuildOptions::default()
    };
    let (a, b) = tokio::join!(
        images::ensure(&engine, "node", &opts),
        images::ensure(&engine, "node", &opts)
    );
    let (a, b) = (
        a.expect("build the test image"),
        b.expect("build the test image"),
    );
    let again = images::ensure(&engine, "node", &opts).await;
    // Clean up before judging, so a failed check leaves nothing behind.
    let removed = chaosbank::docker::run_command("docker", &["rmi", &a.reference]).await;
    std::fs::remove_dir_all(&recipes).unwrap();
    let again = again.expect("cached");
    removed.expect("remove the test image");

    assert_eq!(a.reference, b.reference);
    assert!(
        a.reference.starts_with("chaosbank/node:"),
        "{}",
        a.reference
    );
    assert_eq!(a.reference.len(), "chaosbank/node:".len() + 12);
    let builds = [&a, &b].iter().filter(|i| i.built_in.is_some()).count();
    assert_eq!(
        builds, 1,
        "built {builds} times by two concurrent requests: {a:?} {b:?}"
    );
    assert_eq!(again.built_in, None, "built again although cached");
    assert_eq!(again.reference, a.reference);
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
