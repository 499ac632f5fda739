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
}

pub mod llm {
    pub mod v1 {
        tonic::include_proto!("parley.llm.v1");
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
