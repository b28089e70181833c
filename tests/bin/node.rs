//! The node binary the tests mount into node containers: the same entry point as
//! `chaosbank node` (see `workloads::node`), built with the tests so that
//! `CARGO_BIN_EXE_chaosbank-node` names it.

fn main() -> std::process::ExitCode {
    workloads::node::main()
}
