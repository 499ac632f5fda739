//! What can stop the gateway from starting or serving.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{name} URL {url:?} is not usable: {reason}")]
    UpstreamUrl {
        name: &'static str,
        url: String,
        reason: String,
    },
    #[error("{setting} must be {expected}, not {got}")]
    Setting {
        setting: &'static str,
        expected: &'static str,
        got: String,
    },
    #[error("CORS origin {0:?} is not an origin such as https://chat.example.com")]
    CorsOrigin(String),
    #[error("the compiled protocol descriptors are unreadable: {0}")]
    Descriptors(#[from] prost::DecodeError),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}
