//! The one error type of a job, and `Result` over it.
//!
//! The variants of Spacedrive's SDK (`OperationFailed`, `InvalidInput`,
//! `NotFound`, ...) are here with the same names and messages, so ported code
//! compiles unchanged, and so does its interrupt convention:
//! `Err(Error::OperationFailed("Interrupted".into()))` after a checkpoint means
//! "interrupted" exactly like [`Error::Interrupted`].

use std::any::Any;
use std::fmt;

/// Why a job function stopped early.
///
/// `?` converts any standard error into [`Error::Failed`], so job code can use
/// `?` on parsing and I/O-like errors without mapping them; a serde error
/// (`serde_json::Error`, or rmp-serde's encode or decode error) becomes
/// [`Error::Serialization`], the variant Spacedrive's SDK uses for them. Every
/// variant has a stable [`Error::code`].
pub enum Error {
    /// The host asked the job to stop ([`crate::JobContext::check`]); the
    /// generated export checkpoints the current state and returns 1.
    Interrupted,
    /// The job failed; the message is logged at error level and the export returns 2.
    Failed(String),
    /// Spacedrive's: a value could not be encoded or decoded.
    Serialization(String),
    /// Spacedrive's: a host operation failed.
    HostCall(String),
    /// Spacedrive's: the job may not do this.
    PermissionDenied(String),
    /// Spacedrive's: the parameters or input are wrong.
    InvalidInput(String),
    /// Spacedrive's: the work failed. With the message "Interrupted" it means
    /// "interrupted", as in Spacedrive's test extension.
    OperationFailed(String),
    /// Spacedrive's: something the job needs does not exist.
    NotFound(String),
    /// Spacedrive's catch-all.
    Other(String),
    /// A failure with the author's own code, e.g. `Error::with_code("quota", "over 10 GiB")`.
    Coded {
        /// A short, stable, machine-readable name (`snake_case` by convention).
        code: String,
        /// What went wrong, for people.
        message: String,
    },
}

/// `Result` with [`Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failure with this message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Error::Failed(message.to_string())
    }

    /// A failure with a code of the author's choosing; the failure reason reads `code: message`.
    pub fn with_code(code: impl fmt::Display, message: impl fmt::Display) -> Self {
        Error::Coded { code: code.to_string(), message: message.to_string() }
    }

    /// The error's stable code: `interrupted`, `failed`, `serialization`, `host_call`,
    /// `permission_denied`, `invalid_input`, `operation_failed`, `not_found`, `other`,
    /// or the code given to [`Error::with_code`].
    pub fn code(&self) -> &str {
        match self {
            Error::Interrupted => "interrupted",
            Error::Failed(_) => "failed",
            Error::Serialization(_) => "serialization",
            Error::HostCall(_) => "host_call",
            Error::PermissionDenied(_) => "permission_denied",
            Error::InvalidInput(_) => "invalid_input",
            Error::OperationFailed(_) => "operation_failed",
            Error::NotFound(_) => "not_found",
            Error::Other(_) => "other",
            Error::Coded { code, .. } => code,
        }
    }

    /// The message without the variant's prefix (empty for [`Error::Interrupted`]).
    pub fn message(&self) -> &str {
        match self {
            Error::Interrupted => "",
            Error::Failed(m)
            | Error::Serialization(m)
            | Error::HostCall(m)
            | Error::PermissionDenied(m)
            | Error::InvalidInput(m)
            | Error::OperationFailed(m)
            | Error::NotFound(m)
            | Error::Other(m) => m,
            Error::Coded { message, .. } => message,
        }
    }

    /// True for [`Error::Interrupted`] and for Spacedrive's convention, an error
    /// whose message is "Interrupted" (any case), such as
    /// `Error::OperationFailed("Interrupted".into())`.
    pub fn is_interrupted(&self) -> bool {
        matches!(self, Error::Interrupted) || self.message().trim().eq_ignore_ascii_case("interrupted")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Interrupted => f.write_str("interrupted by the host"),
            Error::Failed(m) | Error::Other(m) => f.write_str(m),
            Error::Serialization(m) => write!(f, "Serialization error: {}", m),
            Error::HostCall(m) => write!(f, "Host call failed: {}", m),
            Error::PermissionDenied(m) => write!(f, "Permission denied: {}", m),
            Error::InvalidInput(m) => write!(f, "Invalid input: {}", m),
            Error::OperationFailed(m) => write!(f, "Operation failed: {}", m),
            Error::NotFound(m) => write!(f, "Not found: {}", m),
            Error::Coded { code, message } => write!(f, "{}: {}", code, message),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

// Like anyhow, `Error` does not implement `std::error::Error` itself, so this
// blanket conversion does not overlap with `From<Error> for Error`. A separate
// `From<serde_json::Error>` would overlap with it, so serde errors are told
// apart here by type (which is why `E` is `'static`, as anyhow asks too).
impl<E: std::error::Error + 'static> From<E> for Error {
    fn from(err: E) -> Self {
        let any: &dyn Any = &err;
        if any.is::<serde_json::Error>() || any.is::<rmp_serde::encode::Error>() || any.is::<rmp_serde::decode::Error>() {
            Error::Serialization(err.to_string())
        } else {
            Error::Failed(err.to_string())
        }
    }
}

/// Return early with a failure: `bail!("row {} has {} fields", n, k)`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return ::std::result::Result::Err($crate::Error::msg(::std::format!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn spacedrive_interrupt_convention_reads_as_interrupted() {
        assert!(Error::Interrupted.is_interrupted());
        assert!(Error::OperationFailed("Interrupted".into()).is_interrupted());
        assert!(Error::Other("interrupted ".into()).is_interrupted());
        assert!(!Error::OperationFailed("disk full".into()).is_interrupted());
        assert!(!Error::msg("Interrupted while reading").is_interrupted());
    }

    fn decode(text: &str) -> super::Result<Vec<u32>> {
        Ok(serde_json::from_str(text)?) // as ported Spacedrive code writes it
    }

    fn parse(text: &str) -> super::Result<u32> {
        Ok(text.parse::<u32>()?)
    }

    #[test]
    fn question_mark_turns_serde_errors_into_serialization_and_others_into_failed() {
        let err = decode("[1, \"two\"]").unwrap_err();
        assert!(matches!(err, Error::Serialization(_)), "{:?}", err);
        assert_eq!(err.code(), "serialization");
        assert!(err.to_string().starts_with("Serialization error: invalid type"), "{}", err);
        let packed: std::result::Result<u32, _> = rmp_serde::from_slice(&[0xc1]);
        assert!(matches!(Error::from(packed.unwrap_err()), Error::Serialization(_)));
        let json: serde_json::Error = serde_json::from_str::<u32>("x").unwrap_err();
        assert_eq!(Error::from(json).code(), "serialization");
        assert!(matches!(parse("x").unwrap_err(), Error::Failed(_)));
    }

    #[test]
    fn every_error_has_a_code_and_a_spacedrive_style_message() {
        assert_eq!(Error::NotFound("x".into()).code(), "not_found");
        assert_eq!(Error::NotFound("x".into()).to_string(), "Not found: x");
        assert_eq!(Error::InvalidInput("bad".into()).to_string(), "Invalid input: bad");
        assert_eq!(Error::with_code("quota", "over").to_string(), "quota: over");
        assert_eq!(Error::with_code("quota", "over").code(), "quota");
    }
}
