//! The `gateway` binary as the deployment files run it.

const BINARY: &str = env!("CARGO_BIN_EXE_gateway");

#[test]
fn reads_every_variable_the_deployment_files_set() {
    parley_testkit::deploy_env::assert_binary_reads_all(BINARY, "gateway");
}
