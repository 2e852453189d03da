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

/// Body of a generated `execute_<fn>` for `fn(ctx, state: &mut S)`: on a first run the
/// parameters' fields are laid over `S::default()`, so they may give any subset of the state.
pub fn run_job<S, F>(job: &'static JobInfo, ctx_ptr: i32, ctx_len: i32, state_ptr: i32, state_len: i32, f: F) -> i32
where
    S: Serialize + DeserializeOwned + Default,
    F: FnOnce(&JobContext, &mut S) -> Result<()>,
{
    install_panic_hook();
    let (ctx, state) = unsafe { (guest_bytes(ctx_ptr, ctx_len), guest_bytes(state_ptr, state_len)) };
    run_bytes(job.name, job_encoding(job), ctx, state, params_over_default::<S>, f)
}

/// Body of a generated `execute_<fn>` for `#[job(params = P)]`: a first run decodes the
/// parameters as `P` (its own serde rules, so required fields are required) and starts
/// from `S::from(params)`; a resume decodes the checkpoint as `S`.
pub fn run_job_with_params<S, P, F>(
    job: &'static JobInfo,
    ctx_ptr: i32,
    ctx_len: i32,
    state_ptr: i32,
    state_len: i32,
    f: F,
) -> i32
where
    S: Serialize + DeserializeOwned + Default + From<P>,
    P: DeserializeOwned,
    F: FnOnce(&JobContext, &mut S) -> Result<()>,
{
    install_panic_hook();
    let (ctx, state) = unsafe { (guest_bytes(ctx_ptr, ctx_len), guest_bytes(state_ptr, state_len)) };
    run_bytes(job.name, job_encoding(job), ctx, state, |enc, bytes| decode_params::<P>(enc, bytes).map(S::from), f)
}

fn job_encoding(job: &JobInfo) -> StateEncoding {
    job.encoding
        .unwrap_or_else(|| StateEncoding::from_code(EXTENSION_ENCODING.load(Ordering::Relaxed)))
}

/// The run of one job from the context and state bytes, shared by the exports and the
/// native test harness: build the state, run `f`, checkpoint, map to a return code.
pub(crate) fn run_bytes<S, I, F>(
    name: &'static str,
    encoding: StateEncoding,
    ctx: &[u8],
    bytes: &[u8],
    first_run: I,
    f: F,
) -> i32
where
    S: Serialize + DeserializeOwned + Default,
    I: FnOnce(StateEncoding, &[u8]) -> Result<S>,
    F: FnOnce(&JobContext, &mut S) -> Result<()>,
{
    let ctx = match JobContext::from_host(ctx, name, encoding) {
        Ok(ctx) => ctx,
        Err(e) => return fail(&e),
    };
    let initial = match ctx.resumed_flag() {
        Some(true) => encoding.decode(bytes),
        Some(false) => first_run(encoding, bytes),
        // A host that does not say (Spacedrive's): a checkpoint decodes as the state.
        None => encoding.decode(bytes).or_else(|e| first_run(encoding, bytes).map_err(|_| e)),
    };
    let mut state: S = match initial {
        Ok(state) => state,
        Err(e) => return fail(&e),
    };
    match f(&ctx, &mut state) {
        Ok(()) => match ctx.checkpoint(&state) {
            Ok(()) => COMPLETED,
            Err(e) => fail(&Error::msg(format!("finished, but the final state was not saved: {}", e))),
        },
        // Spacedrive's convention (`OperationFailed("Interrupted")`) counts only when the host asked.
        Err(e) if e.is_interrupted() && (matches!(e, Error::Interrupted) || ctx.check_interrupt()) => {
            match ctx.checkpoint(&state) {
                Ok(()) => INTERRUPTED,
                Err(e) => fail(&Error::msg(format!("interrupted, and the state was not saved: {}", e))),
            }
        }
        Err(e) => fail(&e),
    }
}

/// A first run's state: the parameters' fields laid over `S::default()`'s (when both are
/// maps), so a ported state struct needs no `#[serde(default)]`.
pub(crate) fn params_over_default<S: Serialize + DeserializeOwned + Default>(enc: StateEncoding, bytes: &[u8]) -> Result<S> {
    if bytes.is_empty() {
        return Ok(S::default());
    }
    let params: serde_json::Value = enc.decode_any(bytes)?;
    let base = serde_json::to_value(S::default()).map_err(|e| Error::Serialization(e.to_string()))?;
    match (base, params) {
        (serde_json::Value::Object(mut fields), serde_json::Value::Object(given)) => {
            fields.extend(given);
            serde_json::from_value(serde_json::Value::Object(fields))
                .map_err(|e| Error::InvalidInput(format!("the parameters do not fit the job's state: {}", e)))
        }
        _ => enc.decode(bytes),
    }
}

/// A first run's typed parameters; empty bytes decode as an empty map.
pub(crate) fn decode_params<P: DeserializeOwned>(enc: StateEncoding, bytes: &[u8]) -> Result<P> {
    let decoded = if bytes.is_empty() { enc.decode_any(&enc.empty_map()) } else { enc.decode_any(bytes) };
    decoded.map_err(|e| Error::InvalidInput(format!("parameters: {}", e.message())))
}

/// Log why the job failed (the host shows the last error line as the reason) and return 2.
fn fail(err: &Error) -> i32 {
    log::error(&err.to_string());
    FAILED
}
