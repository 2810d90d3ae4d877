//! `AppError`: every way an application request can fail, and the codes the contract names
//! for them. Socket handlers turn it into an ack `{success:false, error, code}` or an
//! `error` event (`super::reply`); HTTP handlers into a status with the same JSON body
//! (`actix_web::ResponseError`).

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::json;

use crate::db::messages::Refusal;
use crate::db::DbError;

/// The error codes of the contract (docs/errors.md).
#[allow(missing_docs)] // each is the code `as_str` spells
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidPayload,
    InvalidMessage,
    NotFound,
    Forbidden,
    RateLimited,
    Internal,
    TokenExpired,
    TokenInvalid,
    AuthRequired,
    AccountDisabled,
    Unauthorized,
    Conflict,
    UnknownEvent,
    Unavailable,
}

impl Code {
    /// The code as clients see it.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidPayload => "INVALID_PAYLOAD",
            Code::InvalidMessage => "INVALID_MESSAGE",
            Code::NotFound => "NOT_FOUND",
            Code::Forbidden => "FORBIDDEN",
            Code::RateLimited => "RATE_LIMITED",
            Code::Internal => "INTERNAL",
            Code::TokenExpired => "TOKEN_EXPIRED",
            Code::TokenInvalid => "TOKEN_INVALID",
            Code::AccountDisabled => "ACCOUNT_DISABLED",
            Code::AuthRequired => "AUTH_REQUIRED",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Conflict => "CONFLICT",
            Code::UnknownEvent => "UNKNOWN_EVENT",
            Code::Unavailable => "UNAVAILABLE",
        }
    }

    /// The HTTP status of a failure with this code.
    pub fn status(self) -> StatusCode {
        match self {
            Code::InvalidPayload | Code::InvalidMessage => StatusCode::BAD_REQUEST,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::Forbidden => StatusCode::FORBIDDEN,
            Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Code::TokenExpired
            | Code::TokenInvalid
            | Code::Unauthorized
            | Code::AuthRequired
            | Code::AccountDisabled => StatusCode::UNAUTHORIZED,
            Code::Conflict => StatusCode::CONFLICT,
            Code::UnknownEvent => StatusCode::NOT_FOUND,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Why a request of the application failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Refused with a code of the contract (bad input, unknown things, no permission).
    #[error("{message}")]
    #[allow(missing_docs)]
    Refused { code: Code, message: String },
    /// The server is behind: the client may retry (`RATE_LIMITED`).
    #[error("{0}")]
    Busy(&'static str),
    /// The database failed (`INTERNAL`; the details are logged, not sent).
    #[error("database: {0}")]
    Db(#[from] DbError),
    /// Something else failed inside (`INTERNAL`).
    #[error("{0}")]
    Internal(&'static str),
}

impl AppError {
    /// A refusal with `code`.
    pub fn refused(code: Code, message: impl Into<String>) -> Self {
        AppError::Refused {
            code,
            message: message.into(),
        }
    }

    /// `INVALID_PAYLOAD`: missing or wrongly typed fields.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::refused(Code::InvalidPayload, message)
    }

    /// `NOT_FOUND`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::refused(Code::NotFound, message)
    }

    /// `FORBIDDEN`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::refused(Code::Forbidden, message)
    }

    /// The code the client gets.
    pub fn code(&self) -> Code {
        match self {
            AppError::Refused { code, .. } => *code,
            AppError::Busy(_) => Code::RateLimited,
            AppError::Db(_) | AppError::Internal(_) => Code::Internal,
        }
    }

    /// What the client is told (internal details stay in the log).
    pub fn message(&self) -> String {
        match self {
            AppError::Db(_) => "internal error".to_owned(),
            other => other.to_string(),
        }
    }

    /// Logs failures that are the server's (with `what` failed).
    pub fn log_internal(&self, what: &str) {
        if let AppError::Db(e) = self {
            log::error!("{what} failed err={e}");
        } else if let AppError::Internal(why) = self {
            log::error!("{what} failed err={why}");
        }
    }
}

impl From<Refusal> for AppError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::UnknownRoom => AppError::not_found("unknown room"),
            Refusal::UnknownMessage => AppError::not_found("unknown message in this room"),
            Refusal::NotJoined => AppError::forbidden("join the room first"),
            Refusal::NotMember => AppError::forbidden("not a member of this private room"),
            Refusal::ClientIdUsed => AppError::invalid("clientMsgId already used"),
            Refusal::NoMessage => AppError::not_found("unknown or deleted message"),
            Refusal::NotAuthor => AppError::forbidden("not the author of this message"),
            Refusal::TooManyEmoji => AppError::refused(
                Code::RateLimited,
                format!(
                    "a message carries at most {} distinct emoji",
                    crate::db::edits::MAX_EMOJI
                ),
            ),
        }
    }
}

impl actix_web::ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.code().status()
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .json(json!({"success": false, "error": self.message(), "code": self.code().as_str()}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;
    use actix_web::ResponseError;

    #[test]
    fn http_answers_carry_the_code_and_hide_database_details() {
        let e = AppError::Db(DbError::Blocking);
        let r = e.error_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = r.into_body().try_into_bytes().expect("a full body");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            v,
            json!({"success": false, "error": "internal error", "code": "INTERNAL"})
        );
        assert_eq!(
            AppError::Busy("busy").status_code(),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            AppError::from(Refusal::NotMember).status_code(),
            StatusCode::FORBIDDEN
        );
    }
}
