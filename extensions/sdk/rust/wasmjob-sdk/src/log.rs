//! Log lines sent to the host (`spacedrive_log`), usable outside a job too.

use crate::ffi;

/// The ABI's log levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Level 0.
    Debug = 0,
    /// Level 1.
    Info = 1,
    /// Level 2.
    Warn = 2,
    /// Level 3; a level-3 line right before a trap is shown as the failure reason.
    Error = 3,
}

/// Send one UTF-8 line to the host at `level`.
pub fn log(level: LogLevel, msg: &str) {
    unsafe { ffi::spacedrive_log(level as i32, msg.as_ptr(), msg.len()) }
}

/// Log at debug level.
pub fn debug(msg: &str) {
    log(LogLevel::Debug, msg)
}

/// Log at info level.
pub fn info(msg: &str) {
    log(LogLevel::Info, msg)
}

/// Log at warn level.
pub fn warn(msg: &str) {
    log(LogLevel::Warn, msg)
}

/// Log at error level.
pub fn error(msg: &str) {
    log(LogLevel::Error, msg)
}

/// Log a formatted line at debug level: `debug!("read {} rows", n)`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::debug(&::std::format!($($arg)*)) };
}

/// Log a formatted line at info level: `info!("{} of {}", done, total)`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::info(&::std::format!($($arg)*)) };
}

/// Log a formatted line at warn level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::warn(&::std::format!($($arg)*)) };
}

/// Log a formatted line at error level (the last one before a failure is its reason).
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::error(&::std::format!($($arg)*)) };
}
