//! Compiles every `.proto` under `parley/` with the vendored protoc, so a fresh machine needs no
//! system protoc, and writes the encoded descriptor set that reflection serves.

use std::path::PathBuf;

/// Every message with an `api_key` field; src/lib.rs implements `Debug` for each, and its
/// tests check this list against the descriptors (it reaches them as `PARLEY_API_KEY_MESSAGES`).
const API_KEY_MESSAGES: [&str; 4] = [
    ".parley.llm.v1.Provider",
    ".parley.chat.v1.ProviderSettings",
    ".parley.chat.v1.CreateApiConfigRequest",
    ".parley.chat.v1.UpdateApiConfigRequest",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "parley/user/v1/user.proto",
        "parley/llm/v1/llm.proto",
        "parley/chat/v1/api_config.proto",
        "parley/chat/v1/persona.proto",
        "parley/chat/v1/session.proto",
        "parley/chat/v1/message.proto",
        "parley/chat/internal/v1/account_data.proto",
    ];
    for proto in &protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    println!("cargo:rustc-env=PARLEY_API_KEY_MESSAGES={}", API_KEY_MESSAGES.join(","));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);

    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("parley_descriptor.bin"))
        // Messages carrying an API key: their `Debug` (in src/lib.rs) prints `[redacted]`.
        .skip_debug(API_KEY_MESSAGES)
        .compile_with_config(
            config,
            &protos.map(PathBuf::from),
            &[PathBuf::from("."), protoc_bin_vendored::include_path()?],
        )?;
    Ok(())
}
