//! What providers' status codes and error codes say about a failure: the
//! tables the `http` and `stream` modules share.

use crate::ErrorKind;

/// The error codes that mean an account is out of credit or over a spend
/// limit: waiting does not help. OpenAI's `insufficient_quota`,
/// `billing_hard_limit_reached` and `billing_not_active`, and Anthropic's
/// `enforced_spend_limit_reached`.
pub(crate) const QUOTA_CODES: &[&str] = &[
    "insufficient_quota",
    "billing_hard_limit_reached",
    "billing_not_active",
    "enforced_spend_limit_reached",
];

/// The kind of failure an HTTP status code is, without looking at headers
/// or body. The table of the `http` module's docs.
pub(crate) fn status_kind(status: u16) -> ErrorKind {
    match status {
        408 => ErrorKind::Timeout,
        409 => ErrorKind::Server,
        429 => ErrorKind::RateLimit,
        402 => ErrorKind::Quota,
        401 | 403 => ErrorKind::Auth,
        503 | 529 => ErrorKind::Overloaded,
        400..=499 => ErrorKind::Client,
        500..=599 => ErrorKind::Server,
        _ => ErrorKind::Other,
    }
}

/// The kind of failure a provider's error `code` or `type` names, when it
/// names one this crate knows: the [quota codes](QUOTA_CODES) and
/// Anthropic's `billing_error` are [`Quota`](ErrorKind::Quota);
/// `rate_limit_error` (Anthropic) and `rate_limit_exceeded` (OpenAI) are
/// [`RateLimit`](ErrorKind::RateLimit); `overloaded_error` and
/// `service_unavailable` are [`Overloaded`](ErrorKind::Overloaded);
/// `api_error`, `server_error` and `internal_error` are
/// [`Server`](ErrorKind::Server); `timeout_error` is
/// [`Timeout`](ErrorKind::Timeout); `authentication_error`,
/// `permission_error`, `invalid_api_key` and `permission_denied` are
/// [`Auth`](ErrorKind::Auth); `invalid_request_error`, `not_found_error`,
/// `request_too_large`, `context_length_exceeded` and `model_not_found` are
/// [`Client`](ErrorKind::Client). These are the `error.type` values of
/// Anthropic's error responses and events, and the `error.type` and
/// `error.code` values of OpenAI's. A code that is an HTTP error status
/// (`"502"`, as some OpenAI-compatible servers send) is classified as that
/// status.
#[cfg(feature = "stream")]
pub(crate) fn error_code_kind(code: &str) -> Option<ErrorKind> {
    if QUOTA_CODES.contains(&code) {
        return Some(ErrorKind::Quota);
    }
    let kind = match code {
        "billing_error" => ErrorKind::Quota,
        "rate_limit_error" | "rate_limit_exceeded" => ErrorKind::RateLimit,
        "overloaded_error" | "service_unavailable" => ErrorKind::Overloaded,
        "api_error" | "server_error" | "internal_error" => ErrorKind::Server,
        "timeout_error" => ErrorKind::Timeout,
        "authentication_error" | "permission_error" | "invalid_api_key" | "permission_denied" => {
            ErrorKind::Auth
        }
        "invalid_request_error"
        | "not_found_error"
        | "request_too_large"
        | "context_length_exceeded"
        | "model_not_found" => ErrorKind::Client,
        _ => match code.parse::<u16>().map(status_kind) {
            Ok(ErrorKind::Other) | Err(_) => return None,
            Ok(kind) => kind,
        },
    };
    Some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(status_kind(429), ErrorKind::RateLimit);
        assert_eq!(status_kind(529), ErrorKind::Overloaded);
        assert_eq!(status_kind(418), ErrorKind::Client);
        assert_eq!(status_kind(200), ErrorKind::Other);
        assert_eq!(status_kind(999), ErrorKind::Other);
    }

    #[cfg(feature = "stream")]
    #[test]
    fn error_codes() {
        assert_eq!(
            error_code_kind("insufficient_quota"),
            Some(ErrorKind::Quota)
        );
        assert_eq!(
            error_code_kind("overloaded_error"),
            Some(ErrorKind::Overloaded)
        );
        assert_eq!(error_code_kind("502"), Some(ErrorKind::Server));
        assert_eq!(error_code_kind("200"), None);
        assert_eq!(error_code_kind("99999"), None);
        assert_eq!(error_code_kind("requests"), None);
    }
}
