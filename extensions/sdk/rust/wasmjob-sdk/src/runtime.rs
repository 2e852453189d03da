//! What the generated exports call: registration in `plugin_init`, the run of
//! one job in `execute_<fn>`, and the panic hook that reports a panic's message.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Once;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::context::JobContext;
use crate::encoding::StateEncoding;
use crate::error::{Error, Result};
use crate::ffi;
use crate::log;
use crate::memory::guest_bytes;

/// The ABI's return codes of `execute_<fn>`.
const COMPLETED: i32 = 0;
const INTERRUPTED: i32 = 1;
const FAILED: i32 = 2;

/// One `#[job]`: its registered name, its export, and its own encoding if it set one.
pub struct JobInfo {
    /// The name passed to `register_job`.
    pub name: &'static str,
    /// The export that runs it: `execute_<fn>`.
    pub export: &'static str,
    /// Whether the job may be resumed from a checkpoint.
    pub resumable: bool,
    /// `#[job(state = ...)]`, or `None` to use the extension's.
    pub encoding: Option<StateEncoding>,
}

/// One `#[extension]`: identity, the resolved state encoding and its jobs.
pub struct ExtensionInfo {
    /// The manifest's `id`.
    pub id: &'static str,
    /// The manifest's `name`.
    pub name: &'static str,
    /// The manifest's `version`.
    pub version: &'static str,
    /// The one state encoding of the extension.
    pub encoding: StateEncoding,
    /// The jobs `plugin_init` registers.
    pub jobs: &'static [&'static JobInfo],
}

/// The extension's encoding, used by jobs that did not set their own. Set by `plugin_init`.
static EXTENSION_ENCODING: AtomicU8 = AtomicU8::new(0);

/// Resolve the one encoding of an extension at compile time, failing the build
/// when its jobs disagree or repeat a name (the manifest declares one encoding).
pub const fn extension_encoding(declared: Option<StateEncoding>, jobs: &[&JobInfo]) -> StateEncoding {
    let mut chosen = declared;
    let mut i = 0;
    while i < jobs.len() {
        if let Some(own) = jobs[i].encoding {
            match chosen {
                None => chosen = Some(own),
                Some(c) => {
                    if c.code() != own.code() {
                        panic!("the jobs of one extension must share one state encoding: set `state = ...` on #[extension] or give every #[job] the same `state`");
                    }
                }
            }
        }
        let mut j = 0;
        while j < i {
            if str_eq(jobs[i].name, jobs[j].name) {
                panic!("two jobs of this extension have the same name: give each #[job] its own `name`");
            }
            j += 1;
        }
        i += 1;
    }
    match chosen {
        Some(e) => e,
        None => StateEncoding::Json,
    }
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Install the panic hook once: a panic is logged at error level (the host
/// shows that line as the failure reason) before the module traps.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let message = if let Some(s) = payload.downcast_ref::<&str>() {
                s
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.as_str()
            } else {
                "(no message)"
            };
            // The host shows an error line right before a trap as the reason.
            let mut line = message.to_owned();
            if let Some(loc) = info.location() {
                line.push_str(&format!(" (at {}:{})", loc.file(), loc.line()));
            }
            log::error(&line);
        }));
    });
}

/// Body of the generated `plugin_init`: register every job. 0 = ok.
pub fn plugin_init(ext: &ExtensionInfo) -> i32 {
    install_panic_hook();
    EXTENSION_ENCODING.store(ext.encoding.code(), Ordering::Relaxed);
    for job in ext.jobs {
        let code = unsafe {
            ffi::register_job(
                job.name.as_ptr(),
                job.name.len(),
                job.export.as_ptr(),
                job.export.len(),
                job.resumable as i32,
            )
        };
        if code != 0 {
            log::error(&format!(
                "extension {} {}: the host refused to register job {} (code {})",
                ext.id, ext.version, job.name, code
            ));
            return 1;
        }
    }
    0
}

/// Body of the generated `plugin_cleanup`. Nothing is held between runs.
pub fn plugin_cleanup(_ext: &ExtensionInfo) -> i32 {
    0
}

/// Body of a generated `execute_<fn>`: decode, run, checkpoint, map to a return code.
pub fn run_job<S, F>(job: &'static JobInfo, ctx_ptr: i32, ctx_len: i32, state_ptr: i32, state_len: i32, f: F) -> i32
where
    S: Serialize + DeserializeOwned + Default,
    F: FnOnce(&JobContext, &mut S) -> Result<()>,
{
    install_panic_hook();
    let encoding = job
        .encoding
        .unwrap_or_else(|| StateEncoding::from_code(EXTENSION_ENCODING.load(Ordering::Relaxed)));
    let ctx = match JobContext::from_host(unsafe { guest_bytes(ctx_ptr, ctx_len) }, job.name, encoding) {
        Ok(ctx) => ctx,
        Err(e) => return fail(&e),
    };
    let mut state: S = match encoding.decode(unsafe { guest_bytes(state_ptr, state_len) }) {
        Ok(state) => state,
        Err(e) => return fail(&e),
    };
    match f(&ctx, &mut state) {
        Ok(()) => match ctx.checkpoint(&state) {
            Ok(()) => COMPLETED,
            Err(e) => fail(&Error::msg(format!("finished, but the final state was not saved: {}", e))),
        },
        Err(Error::Interrupted) => match ctx.checkpoint(&state) {
            Ok(()) => INTERRUPTED,
            Err(e) => fail(&Error::msg(format!("interrupted, and the state was not saved: {}", e))),
        },
        Err(e) => fail(&e),
    }
}

/// Log why the job failed (the host shows the last error line as the reason) and return 2.
fn fail(err: &Error) -> i32 {
    log::error(&err.to_string());
    FAILED
}
