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
        ];
    }
}

pub mod chat {
    pub mod v1 {
        tonic::include_proto!("parley.chat.v1");
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

/// `Debug` for the messages that carry an API key (build.rs skips prost's derive for them):
/// every field as prost would print it, except the key, which shows only whether one is set.
/// Requests are logged and printed in test failures; a key must never be.
mod redacted_debug {
    use std::fmt;

    use crate::chat::v1::{CreateApiConfigRequest, ProviderSettings, UpdateApiConfigRequest};
    use crate::llm::v1::Provider;

    struct RedactedKey<'a>(&'a str);

    impl fmt::Debug for RedactedKey<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(if self.0.is_empty() { "\"\"" } else { "[redacted]" })
        }
    }

    macro_rules! debug_without_the_key {
        ($message:ident { $($field:ident),* }) => {
            impl fmt::Debug for $message {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    // Every field by name: one added to the message does not compile until
                    // it is listed here, so none goes missing from the output.
                    let Self { $($field,)* api_key } = self;
                    f.debug_struct(stringify!($message))
                        $(.field(stringify!($field), $field))*
                        .field("api_key", &api_key.redacted())
                        .finish()
                }
            }
        };
    }

    /// The key's stand-in, for `string` and `optional string` keys alike.
    trait Redact {
        fn redacted(&self) -> impl fmt::Debug + '_;
    }

    impl Redact for String {
        fn redacted(&self) -> impl fmt::Debug + '_ {
            RedactedKey(self)
        }
    }

    impl Redact for Option<String> {
        fn redacted(&self) -> impl fmt::Debug + '_ {
            self.as_deref().map(RedactedKey)
        }
    }

    debug_without_the_key!(Provider { base_url, model });
    debug_without_the_key!(ProviderSettings { base_url, model });
    debug_without_the_key!(CreateApiConfigRequest { name, base_url, model });
    debug_without_the_key!(UpdateApiConfigRequest {
        id,
        name,
        base_url,
        model,
        update_mask
    });

    #[cfg(test)]
    #[allow(clippy::unwrap_used)]
    mod tests {
        use prost::Message;
        use prost_types::{DescriptorProto, FileDescriptorSet};

        use crate::chat::v1::{CreateApiConfigRequest, ProviderSettings, UpdateApiConfigRequest};
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

        /// A message that gains an `api_key` field must join build.rs's list (and get a
        /// redacting `Debug` here); otherwise prost's derived `Debug` would print the key.
        #[test]
        fn every_message_with_an_api_key_is_redacted() {
            let descriptors = FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).unwrap();
            let mut carrying = Vec::new();
            for file in &descriptors.file {
                let mut messages: Vec<(String, &DescriptorProto)> = file
                    .message_type
                    .iter()
                    .map(|message| (format!(".{}.{}", file.package(), message.name()), message))
                    .collect();
                while let Some((name, message)) = messages.pop() {
                    if message.field.iter().any(|field| field.name() == "api_key") {
                        carrying.push(name.clone());
                    }
                    for nested in &message.nested_type {
                        messages.push((format!("{name}.{}", nested.name()), nested));
                    }
                }
            }
            carrying.sort();
            let mut redacted: Vec<&str> = env!("PARLEY_API_KEY_MESSAGES").split(',').collect();
            redacted.sort_unstable();
            assert_eq!(carrying, redacted);
        }
    }
}

#[cfg(test)]
mod public_methods_tests {
    use prost::Message;
    use prost_types::FileDescriptorSet;

    use crate::user::v1::PUBLIC_METHODS;

    /// Renaming an RPC must not silently take it off (or leave a dead name on) the list that
    /// decides what needs no account, and the gateway's rate limits by address with it.
    #[test]
    fn every_public_method_is_a_defined_user_service_method() {
        let set = FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).unwrap_or_else(|e| panic!("{e}"));
        let user_methods: Vec<String> = set
            .file
            .iter()
            .filter(|file| file.package() == "parley.user.v1")
            .flat_map(|file| {
                file.service.iter().flat_map(|service| {
                    service
                        .method
                        .iter()
                        .map(move |method| format!("/parley.user.v1.{}/{}", service.name(), method.name()))
                })
            })
            .collect();
        assert!(
            !user_methods.is_empty(),
            "no parley.user.v1 methods in the descriptor set"
        );
        for method in PUBLIC_METHODS {
            assert!(
                user_methods.iter().any(|m| m == method),
                "PUBLIC_METHODS lists {method}, which parley.user.v1 does not define"
            );
        }
        let mut unique = PUBLIC_METHODS.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            PUBLIC_METHODS.len(),
            "PUBLIC_METHODS lists a method twice"
        );
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
