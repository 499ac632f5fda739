//! Compiles every `.proto` under `parley/` with the vendored protoc, so a fresh machine needs no
//! system protoc, and writes the encoded descriptor set that reflection serves.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "parley/user/v1/user.proto",
        "parley/llm/v1/llm.proto",
        "parley/chat/v1/api_config.proto",
        "parley/chat/v1/persona.proto",
        "parley/chat/v1/session.proto",
        "parley/chat/v1/message.proto",
    ];
    for proto in &protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);

    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("parley_descriptor.bin"))
        .compile_with_config(
            config,
            &protos.map(PathBuf::from),
            &[PathBuf::from("."), protoc_bin_vendored::include_path()?],
        )?;
    Ok(())
}
