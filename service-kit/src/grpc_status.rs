//! Statuses with the structured details clients can act on.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// INVALID_ARGUMENT naming the field, with a `google.rpc.BadRequest` violation for it.
pub fn invalid_field(field: &str, description: impl Into<String>) -> Status {
    let description = description.into();
    Status::with_error_details(
        Code::InvalidArgument,
        format!("{field}: {description}"),
        ErrorDetails::with_bad_request_violation(field, description),
    )
}

/// RESOURCE_EXHAUSTED with a `google.rpc.RetryInfo` saying when to try again.
pub fn resource_exhausted(message: impl Into<String>, retry_after: Duration) -> Status {
    retry_later(Code::ResourceExhausted, message.into(), retry_after)
}

/// UNAVAILABLE with a `google.rpc.RetryInfo`: something behind us is down and said for how long.
pub fn unavailable(message: impl Into<String>, retry_after: Duration) -> Status {
    retry_later(Code::Unavailable, message.into(), retry_after)
}

/// The delay goes in the details for programs and in the message for people.
fn retry_later(code: Code, message: String, retry_after: Duration) -> Status {
    let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
    Status::with_error_details(
        code,
        format!("{message} (retry in {secs}s)"),
        ErrorDetails::with_retry_info(Some(retry_after)),
    )
}

/// The retry delay a status carries, if any.
pub fn retry_delay(status: &Status) -> Option<Duration> {
    status.get_details_retry_info().and_then(|info| info.retry_delay)
}

/// The field violations a status carries, as (field, description) pairs.
pub fn field_violations(status: &Status) -> Vec<(String, String)> {
    status
        .get_details_bad_request()
        .map(|br| {
            br.field_violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_round_trip() {
        let status = invalid_field("username", "must be 3–32 characters");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "username: must be 3–32 characters");
        assert_eq!(
            field_violations(&status),
            vec![("username".to_string(), "must be 3–32 characters".to_string())]
        );

        let status = resource_exhausted("too many codes", Duration::from_secs(42));
        assert_eq!(retry_delay(&status), Some(Duration::from_secs(42)));
        assert!(status.message().contains("42s"));
    }
}
