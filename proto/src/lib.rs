//! Generated gRPC types and clients/servers for every Parley service.
//!
//! Each service depends on this crate only; services never import one another.

/// The encoded `FileDescriptorSet` of every Parley proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/parley_descriptor.bin"));

pub mod user {
    pub mod v1 {
        tonic::include_proto!("parley.user.v1");

        /// The methods anyone may call without an access token (full gRPC paths): the
        /// gateway's edge auth and user-service's own auth layer both use this one list.
        /// Logout is public because its credential is the refresh token, and it must work
        /// after the short-lived access token has expired.
        pub const PUBLIC_METHODS: &[&str] = &[
            "/parley.user.v1.UserService/Register",
            "/parley.user.v1.UserService/Login",
            "/parley.user.v1.UserService/RefreshToken",
            "/parley.user.v1.UserService/Logout",
            "/parley.user.v1.UserService/SendVerificationCode",
            "/parley.user.v1.UserService/VerifyCode",
            "/parley.user.v1.UserService/ResetPassword",
            "/parley.user.v1.UserService/GetPublicKeys",
            "/parley.user.v1.UserService/GetSignupInfo",
        ];
    }
}

pub mod chat {
    pub mod v1 {
        tonic::include_proto!("parley.chat.v1");

        /// The chat methods anyone may call without an access token (full gRPC paths): a
        /// shared chat's snapshot, whose credential is the link's token. The gateway's edge
        /// auth and chat-service's auth layer both use this list.
        pub const PUBLIC_METHODS: &[&str] = &["/parley.chat.v1.SharedChatService/GetSharedChat"];
    }

    /// chat-service's internal services: called by other services with a service token,
    /// never routed by the gateway.
    pub mod internal {
        pub mod v1 {
            tonic::include_proto!("parley.chat.internal.v1");

            /// The audience of service tokens for chat-service.
            pub const SERVICE_TOKEN_AUDIENCE: &str = "parley-chat-service";
            /// The scope a service token needs to call `EraseAccountData`.
            pub const ERASE_ACCOUNT_SCOPE: &str = "chat.erase-account";
            /// Every method of this package with the scope it needs, by full gRPC path.
            pub const METHOD_SCOPES: &[(&str, &str)] = &[(
                "/parley.chat.internal.v1.AccountDataService/EraseAccountData",
                ERASE_ACCOUNT_SCOPE,
            )];
        }
    }
}

pub mod llm {
    pub mod v1 {
        tonic::include_proto!("parley.llm.v1");

        /// The sampling temperatures Parley accepts (the OpenAI API's range). chat-service
        /// checks a session's temperature and llm-service a request's by this one rule.
        pub const TEMPERATURE_RANGE: std::ops::RangeInclusive<f64> = 0.0..=2.0;

        /// `Err` with the reason (for INVALID_ARGUMENT naming the field) when `temperature`
        /// is outside [`TEMPERATURE_RANGE`] (NaN included).
        pub fn check_temperature(temperature: f64) -> Result<(), &'static str> {
            if TEMPERATURE_RANGE.contains(&temperature) {
                Ok(())
            } else {
                Err("must be between 0 and 2")
            }
        }
    }
}

/// `Debug` for the messages that carry a secret (an API key, a password, a one-time code, a
/// token; build.rs skips prost's derive for them): every field as prost would print it, except
/// the secrets, which show only whether one is set. Requests are logged and printed in test
/// failures; a secret must never be.
mod redacted_debug {
    use std::fmt;

    use crate::chat::v1::{
        CreateApiConfigRequest, CreateInviteCodeResponse as RoomInviteCodeResponse, CreateSharedConnectionRequest,
        GetSharedChatRequest, JoinByInviteCodeRequest, ProviderSettings, ShareLink, UpdateApiConfigRequest,
        UpdateSharedConnectionRequest,
    };
    use crate::llm::v1::Provider;
    use crate::user::v1::{
        ChangePasswordRequest, CreateInviteCodeResponse, DeleteAccountRequest, LoginRequest, LoginResponse,
        LogoutRequest, RefreshTokenRequest, RefreshTokenResponse, RegisterRequest, RegisterResponse,
        ResetPasswordRequest, UpdateProfileRequest, VerifyCodeRequest,
    };

    struct Redacted<'a>(&'a str);

    impl fmt::Debug for Redacted<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(if self.0.is_empty() { "\"\"" } else { "[redacted]" })
        }
    }

    macro_rules! debug_without_secrets {
        ($message:ident { $($field:ident),* } secret { $($secret:ident),+ }) => {
            impl fmt::Debug for $message {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    // Every field by name: one added to the message does not compile until
                    // it is listed here, so none goes missing from the output.
                    let Self { $($field,)* $($secret,)+ } = self;
                    f.debug_struct(stringify!($message))
                        $(.field(stringify!($field), $field))*
                        $(.field(stringify!($secret), &$secret.redacted()))+
                        .finish()
                }
            }
        };
    }

    /// The secret's stand-in, for `string` and `optional string` fields alike.
    trait Redact {
        fn redacted(&self) -> impl fmt::Debug + '_;
    }

    impl Redact for String {
        fn redacted(&self) -> impl fmt::Debug + '_ {
            Redacted(self)
        }
    }

    impl Redact for Option<String> {
        fn redacted(&self) -> impl fmt::Debug + '_ {
            self.as_deref().map(Redacted)
        }
    }

    debug_without_secrets!(Provider { base_url, model } secret { api_key });
    debug_without_secrets!(ProviderSettings { base_url, model } secret { api_key });
    debug_without_secrets!(CreateApiConfigRequest { name, base_url, model } secret { api_key });
    debug_without_secrets!(UpdateApiConfigRequest {
        id,
        name,
        base_url,
        model,
        update_mask
    } secret { api_key });
    debug_without_secrets!(CreateSharedConnectionRequest {
        name,
        base_url,
        models,
        currency,
        daily_token_limit,
        monthly_token_limit,
        everyone
    } secret { api_key });
    debug_without_secrets!(UpdateSharedConnectionRequest {
        id,
        name,
        base_url,
        models,
        currency,
        daily_token_limit,
        monthly_token_limit,
        everyone,
        update_mask
    } secret { api_key });

    debug_without_secrets!(RegisterRequest {
        username,
        email,
        display_name,
        refresh_token_delivery,
        accepted_terms
    } secret { password, invite_code });
    debug_without_secrets!(RegisterResponse { user, access_expires_in } secret { access_token, refresh_token });
    debug_without_secrets!(LoginRequest { login, refresh_token_delivery } secret { password });
    debug_without_secrets!(LoginResponse { user, access_expires_in } secret { access_token, refresh_token });
    debug_without_secrets!(RefreshTokenRequest {} secret { refresh_token });
    debug_without_secrets!(RefreshTokenResponse { user, access_expires_in } secret { access_token, refresh_token });
    debug_without_secrets!(LogoutRequest {} secret { refresh_token });
    debug_without_secrets!(UpdateProfileRequest {
        display_name,
        email,
        avatar_url,
        update_mask
    } secret { current_password });
    debug_without_secrets!(ChangePasswordRequest {} secret { old_password, new_password, keep_refresh_token });
    debug_without_secrets!(VerifyCodeRequest { login, purpose } secret { code });
    debug_without_secrets!(ResetPasswordRequest { login } secret { code, new_password });
    debug_without_secrets!(DeleteAccountRequest {} secret { password });
    debug_without_secrets!(CreateInviteCodeResponse { invite } secret { code });
    debug_without_secrets!(RoomInviteCodeResponse { expires_at, max_uses } secret { code });
    debug_without_secrets!(JoinByInviteCodeRequest {} secret { code });
    debug_without_secrets!(ShareLink {
        id,
        session_id,
        title,
        message_count,
        created_at
    } secret { share_token });
    debug_without_secrets!(GetSharedChatRequest {} secret { share_token });

    #[cfg(test)]
    #[allow(clippy::unwrap_used)]
    mod tests {
        use prost::Message;
        use prost_types::field_descriptor_proto::Type;
        use prost_types::{DescriptorProto, FileDescriptorSet};

        use crate::chat::v1::{
            CreateApiConfigRequest, CreateSharedConnectionRequest, ProviderSettings, UpdateApiConfigRequest,
            UpdateSharedConnectionRequest,
        };
        use crate::llm::v1::{CheckProviderRequest, ListModelsRequest, Provider, StreamChatRequest};

        const KEY: &str = "sk-live-do-not-print-3f9a";

        #[test]
        fn no_debug_output_contains_the_key() {
            let provider = Provider {
                base_url: "https://api.openai.com/v1".to_string(),
                api_key: KEY.to_string(),
                model: "gpt-4o".to_string(),
            };
            let printed = [
                format!("{provider:?}"),
                format!("{provider:#?}"),
                format!(
                    "{:?}",
                    StreamChatRequest {
                        provider: Some(provider.clone()),
                        ..Default::default()
                    }
                ),
                format!(
                    "{:?}",
                    ListModelsRequest {
                        provider: Some(provider.clone())
                    }
                ),
                format!(
                    "{:?}",
                    CheckProviderRequest {
                        provider: Some(provider.clone())
                    }
                ),
                format!(
                    "{:?}",
                    ProviderSettings {
                        base_url: "u".to_string(),
                        api_key: KEY.to_string(),
                        model: "m".to_string(),
                    }
                ),
                format!(
                    "{:?}",
                    CreateApiConfigRequest {
                        api_key: KEY.to_string(),
                        ..Default::default()
                    }
                ),
                format!(
                    "{:?}",
                    UpdateApiConfigRequest {
                        api_key: Some(KEY.to_string()),
                        ..Default::default()
                    }
                ),
                format!(
                    "{:?}",
                    CreateSharedConnectionRequest {
                        api_key: KEY.to_string(),
                        ..Default::default()
                    }
                ),
                format!(
                    "{:?}",
                    UpdateSharedConnectionRequest {
                        api_key: Some(KEY.to_string()),
                        ..Default::default()
                    }
                ),
            ];
            for text in &printed {
                assert!(!text.contains(KEY) && !text.contains("3f9a"), "{text}");
                assert!(text.contains("[redacted]"), "{text}");
            }
            assert!(printed[0].contains("api_key: [redacted]"), "{}", printed[0]);
            assert!(printed[7].contains("api_key: Some([redacted])"), "{}", printed[7]);
            // The rest still prints, so Debug stays useful.
            assert!(printed[2].contains("gpt-4o") && printed[2].contains("https://api.openai.com/v1"));
            // An absent key shows as absent.
            let keyless = format!("{:?}", Provider::default());
            assert!(keyless.contains(r#"api_key: """#), "{keyless}");
            let unchanged = format!("{:?}", UpdateApiConfigRequest::default());
            assert!(unchanged.contains("api_key: None"), "{unchanged}");
        }

        const SECRET: &str = "hunter2-do-not-print-77c1";

        /// Every user message with a secret, each secret set: none appears in its output.
        #[test]
        fn no_debug_output_contains_a_password_code_or_token() {
            use crate::user::v1::*;
            let secret = || SECRET.to_string();
            let printed = [
                format!(
                    "{:?}",
                    RegisterRequest {
                        username: "alice".into(),
                        password: secret(),
                        ..Default::default()
                    }
                ),
                format!(
                    "{:?}",
                    RegisterResponse {
                        access_token: secret(),
                        refresh_token: secret(),
                        ..Default::default()
                    }
                ),
                format!(
                    "{:#?}",
                    LoginRequest {
                        login: "alice".into(),
                        password: secret(),
                        ..Default::default()
                    }
                ),
                format!(
                    "{:?}",
                    LoginResponse {
                        access_token: secret(),
                        refresh_token: secret(),
                        ..Default::default()
                    }
                ),
                format!(
                    "{:?}",
                    RefreshTokenRequest {
                        refresh_token: secret()
                    }
                ),
                format!(
                    "{:?}",
                    RefreshTokenResponse {
                        access_token: secret(),
                        refresh_token: secret(),
                        ..Default::default()
                    }
                ),
                format!(
                    "{:?}",
                    LogoutRequest {
                        refresh_token: secret()
                    }
                ),
                format!(
                    "{:?}",
                    UpdateProfileRequest {
                        email: Some("a@example.com".into()),
                        current_password: Some(secret()),
                        ..Default::default()
                    }
                ),
                format!(
                    "{:?}",
                    ChangePasswordRequest {
                        old_password: secret(),
                        new_password: secret(),
                        keep_refresh_token: Some(secret()),
                    }
                ),
                format!(
                    "{:?}",
                    VerifyCodeRequest {
                        login: "alice".into(),
                        code: secret(),
                        purpose: 1,
                    }
                ),
                format!(
                    "{:?}",
                    ResetPasswordRequest {
                        login: "alice".into(),
                        code: secret(),
                        new_password: secret(),
                    }
                ),
                format!("{:?}", DeleteAccountRequest { password: secret() }),
                format!(
                    "{:?}",
                    RegisterRequest {
                        invite_code: secret(),
                        ..Default::default()
                    }
                ),
                format!(
                    "{:?}",
                    CreateInviteCodeResponse {
                        code: secret(),
                        ..Default::default()
                    }
                ),
            ];
            for text in &printed {
                assert!(!text.contains(SECRET) && !text.contains("77c1"), "{text}");
                assert!(text.contains("[redacted]"), "{text}");
            }
            // The rest still prints; an absent secret shows as absent.
            assert!(printed[0].contains("alice"), "{}", printed[0]);
            assert!(printed[7].contains("a@example.com") && printed[7].contains("current_password: Some([redacted])"));
            let unset = format!("{:?}", UpdateProfileRequest::default());
            assert!(unset.contains("current_password: None"), "{unset}");
            let empty = format!("{:?}", LoginRequest::default());
            assert!(empty.contains(r#"password: """#), "{empty}");
        }

        /// A message that gains a secret field (a string named in build.rs's SECRET_FIELDS)
        /// must join build.rs's list (and get a redacting `Debug` here); otherwise prost's
        /// derived `Debug` would print the secret.
        #[test]
        fn every_message_with_a_secret_is_redacted() {
            let secret_fields: Vec<&str> = env!("PARLEY_SECRET_FIELDS").split(',').collect();
            let descriptors = FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).unwrap();
            let mut carrying = Vec::new();
            for file in &descriptors.file {
                let mut messages: Vec<(String, &DescriptorProto)> = file
                    .message_type
                    .iter()
                    .map(|message| (format!(".{}.{}", file.package(), message.name()), message))
                    .collect();
                while let Some((name, message)) = messages.pop() {
                    if message
                        .field
                        .iter()
                        .any(|field| field.r#type() == Type::String && secret_fields.contains(&field.name()))
                    {
                        carrying.push(name.clone());
                    }
                    for nested in &message.nested_type {
                        messages.push((format!("{name}.{}", nested.name()), nested));
                    }
                }
            }
            carrying.sort();
            let mut redacted: Vec<&str> = env!("PARLEY_SECRET_MESSAGES").split(',').collect();
            redacted.sort_unstable();
            assert_eq!(carrying, redacted);
        }
    }
}

#[cfg(test)]
mod public_methods_tests {
    use prost::Message;
    use prost_types::FileDescriptorSet;

    /// Every method of `package`, as full paths.
    fn methods_of(package: &str) -> Vec<String> {
        let set = FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).unwrap_or_else(|e| panic!("{e}"));
        set.file
            .iter()
            .filter(|file| file.package() == package)
            .flat_map(|file| {
                file.service.iter().flat_map(|service| {
                    service
                        .method
                        .iter()
                        .map(move |method| format!("/{package}.{}/{}", service.name(), method.name()))
                })
            })
            .collect()
    }

    /// Renaming an RPC must not silently take it off (or leave a dead name on) the list that
    /// decides what needs no account, and the gateway's rate limits by address with it.
    #[test]
    fn every_public_method_is_a_defined_method_of_its_package() {
        for (package, public) in [
            ("parley.user.v1", crate::user::v1::PUBLIC_METHODS),
            ("parley.chat.v1", crate::chat::v1::PUBLIC_METHODS),
        ] {
            let defined = methods_of(package);
            assert!(!defined.is_empty(), "no {package} methods in the descriptor set");
            for method in public {
                assert!(
                    defined.iter().any(|m| m == method),
                    "PUBLIC_METHODS lists {method}, which {package} does not define"
                );
            }
            let mut unique = public.to_vec();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(
                unique.len(),
                public.len(),
                "{package}'s PUBLIC_METHODS lists a method twice"
            );
        }
    }
}

/// Conversions between `google.protobuf.Timestamp` and Unix milliseconds, the form every
/// Parley database stores times in.
pub mod timestamp {
    use prost_types::Timestamp;

    pub fn from_unix_millis(millis: i64) -> Timestamp {
        Timestamp {
            seconds: millis.div_euclid(1000),
            nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
        }
    }

    pub fn to_unix_millis(ts: &Timestamp) -> i64 {
        ts.seconds * 1000 + i64::from(ts.nanos) / 1_000_000
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn round_trips_including_before_the_epoch() {
            for millis in [0, 1, 999, 1_700_000_000_123, -1, -1001] {
                assert_eq!(to_unix_millis(&from_unix_millis(millis)), millis);
            }
            assert_eq!(from_unix_millis(-1).seconds, -1);
            assert_eq!(from_unix_millis(-1).nanos, 999_000_000);
        }
    }
}
