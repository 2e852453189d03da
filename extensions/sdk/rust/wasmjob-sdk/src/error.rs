//! The one error type of a job, and `Result` over it.

use std::fmt;

/// Why a job function stopped early.
///
/// `?` converts any standard error into [`Error::Failed`], so job code can use
/// `?` on parsing, serde and I/O-like errors without mapping them.
pub enum Error {
    /// The host asked the job to stop ([`crate::JobContext::check`]); the
    /// generated export checkpoints the current state and returns 1.
    Interrupted,
    /// The job failed; the message is logged at error level and the export returns 2.
    Failed(String),
}

/// `Result` with [`Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failure with this message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Error::Failed(message.to_string())
    }

    /// True for [`Error::Interrupted`].
    pub fn is_interrupted(&self) -> bool {
        matches!(self, Error::Interrupted)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Interrupted => f.write_str("interrupted by the host"),
            Error::Failed(message) => f.write_str(message),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

// Like anyhow, `Error` does not implement `std::error::Error` itself, so this
// blanket conversion does not overlap with `From<Error> for Error`.
impl<E: std::error::Error> From<E> for Error {
    fn from(err: E) -> Self {
        Error::Failed(err.to_string())
    }
}

/// Return early with a failure: `bail!("row {} has {} fields", n, k)`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return ::std::result::Result::Err($crate::Error::msg(::std::format!($($arg)*)))
    };
}
