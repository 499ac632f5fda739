//! Compiles every `.proto` under `parley/` with the vendored protoc, so a fresh machine needs no
//! system protoc, and writes the encoded descriptor set that reflection serves.

use std::path::PathBuf;

/// Names of string fields that hold a secret (keys, passwords, one-time codes, tokens): no
/// `Debug` output may show their value.
const SECRET_FIELDS: [&str; 11] = [
    "api_key",
    "password",
    "old_password",
    "new_password",
    "current_password",
    "code",
    "access_token",
    "refresh_token",
    "keep_refresh_token",
    "invite_code",
    "share_token",
];

/// Every message with a string field named in [`SECRET_FIELDS`]; src/lib.rs implements
/// `Debug` for each, and its tests check this list against the descriptors (they reach both
/// lists as `PARLEY_SECRET_FIELDS` and `PARLEY_SECRET_MESSAGES`).
const SECRET_MESSAGES: [&str; 23] = [
    ".parley.llm.v1.Provider",
    ".parley.chat.v1.ProviderSettings",
    ".parley.chat.v1.CreateApiConfigRequest",
    ".parley.chat.v1.UpdateApiConfigRequest",
    ".parley.chat.v1.CreateSharedConnectionRequest",
    ".parley.chat.v1.UpdateSharedConnectionRequest",
    ".parley.user.v1.RegisterRequest",
    ".parley.user.v1.RegisterResponse",
    ".parley.user.v1.LoginRequest",
    ".parley.user.v1.LoginResponse",
    ".parley.user.v1.RefreshTokenRequest",
    ".parley.user.v1.RefreshTokenResponse",
    ".parley.user.v1.LogoutRequest",
    ".parley.user.v1.UpdateProfileRequest",
    ".parley.user.v1.ChangePasswordRequest",
    ".parley.user.v1.VerifyCodeRequest",
    ".parley.user.v1.ResetPasswordRequest",
    ".parley.user.v1.DeleteAccountRequest",
    ".parley.user.v1.CreateInviteCodeResponse",
    ".parley.chat.v1.CreateInviteCodeResponse",
    ".parley.chat.v1.JoinByInviteCodeRequest",
    ".parley.chat.v1.ShareLink",
    ".parley.chat.v1.GetSharedChatRequest",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "parley/user/v1/user.proto",
        "parley/user/v1/admin.proto",
        "parley/llm/v1/llm.proto",
        "parley/chat/v1/api_config.proto",
        "parley/chat/v1/persona.proto",
        "parley/chat/v1/session.proto",
        "parley/chat/v1/message.proto",
        "parley/chat/v1/quota.proto",
        "parley/chat/v1/shared_connection.proto",
        "parley/chat/v1/usage.proto",
        "parley/chat/v1/room.proto",
        "parley/chat/v1/model.proto",
        "parley/chat/v1/chat_defaults.proto",
        "parley/chat/v1/transfer.proto",
        "parley/chat/v1/share.proto",
        "parley/chat/v1/notification.proto",
        "parley/chat/v1/folder.proto",
        "parley/chat/v1/prompt.proto",
        "parley/chat/internal/v1/account_data.proto",
    ];
    for proto in &protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    println!("cargo:rustc-env=PARLEY_SECRET_FIELDS={}", SECRET_FIELDS.join(","));
    println!("cargo:rustc-env=PARLEY_SECRET_MESSAGES={}", SECRET_MESSAGES.join(","));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);

    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("parley_descriptor.bin"))
        // Messages carrying a secret: their `Debug` (in src/lib.rs) prints `[redacted]`.
        .skip_debug(SECRET_MESSAGES)
        .compile_with_config(
            config,
            &protos.map(PathBuf::from),
            &[PathBuf::from("."), protoc_bin_vendored::include_path()?],
        )?;
    Ok(())
}
