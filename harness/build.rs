//! Captures chaosbank's git commit for `run.json` as `CHAOSBANK_GIT_COMMIT`: the output
//! of `git rev-parse HEAD`, or `unknown` outside a git checkout or without git.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Rebuild when `git_path` (as `git rev-parse --git-path` names it) changes; files
/// that do not exist are not watched (cargo would rerun every time).
fn watch(git_path: &str) {
    if let Some(p) = git(&["rev-parse", "--git-path", git_path]) {
        if Path::new(&p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
}

fn main() {
    let commit = git(&["rev-parse", "HEAD"])
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=CHAOSBANK_GIT_COMMIT={commit}");
    // HEAD moves on checkout; the branch's ref (or packed-refs) on commit.
    watch("HEAD");
    watch("packed-refs");
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch(&r);
    }
    println!("cargo:rerun-if-changed=build.rs");
}
