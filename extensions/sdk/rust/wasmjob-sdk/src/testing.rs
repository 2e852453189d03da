//! A mock host for native tests of job logic (`cargo test`, or `wasmjob test DIR`).
//!
//! ```ignore
//! use wasmjob_sdk::testing::MockHost;
//!
//! #[test]
//! fn count_pauses_and_resumes() {
//!     let mut host = MockHost::new();
//!     host.interrupt_at(3);                          // the 3rd check says "stop"
//!     let run = host.run(count, json!({"target": 100}));
//!     assert!(run.is_interrupted());
//!     let run = host.resume(count);                  // from the last checkpoint
//!     assert_eq!(run.state::<CountState>().sum, 5050);
//! }
//! ```
//!
//! The job runs through the same code as in the sandbox (state from the parameters,
//! the interrupt convention, the final checkpoint). The host is per thread, so
//! tests may run in parallel.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::context::JobContext;
use crate::encoding::StateEncoding;
use crate::error::Result;
use crate::log::LogLevel;
use crate::runtime::run_bytes;

/// What a host-call handler returns: the JSON result, or why the call failed.
pub type CallResult = std::result::Result<Value, String>;

type Handler = Box<dyn FnMut(&Value) -> CallResult>;

/// How one run ended: the ABI's three outcomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Returned 0 after checkpointing its final state.
    Completed,
    /// Returned 1 after checkpointing: it resumes from there.
    Interrupted,
    /// Returned 2 (or another code); the reason is the last error line it logged.
    Failed(String),
}

/// One run of a job under the mock host.
pub struct Run {
    /// How it ended.
    pub outcome: Outcome,
    /// The return code of the run (0, 1 or 2).
    pub code: i32,
    encoding: StateEncoding,
    last_checkpoint: Option<Vec<u8>>,
}

impl Run {
    /// True when the job completed.
    pub fn is_completed(&self) -> bool {
        self.outcome == Outcome::Completed
    }

    /// True when the job was interrupted (and resumes from its checkpoint).
    pub fn is_interrupted(&self) -> bool {
        self.outcome == Outcome::Interrupted
    }

    /// The failure reason, when the job failed.
    pub fn failure(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Failed(reason) => Some(reason),
            _ => None,
        }
    }

    /// The last saved state decoded as `S` (the result, once completed). Panics, saying
    /// why, when nothing was saved or it does not decode: it is meant for tests.
    pub fn state<S: DeserializeOwned>(&self) -> S {
        let bytes = self.last_checkpoint.as_ref().unwrap_or_else(|| panic!("no checkpoint was saved ({:?})", self.outcome));
        self.encoding.decode_any(bytes).unwrap_or_else(|e| panic!("the saved state does not decode: {}", e))
    }
}

#[derive(Default)]
struct Inner {
    interrupt_at: Option<u64>,
    checks: u64,
    reject_from: Option<usize>,
    checkpoints: Vec<Vec<u8>>,
    refused: usize,
    kv: BTreeMap<String, String>,
    config: Option<Value>,
    handlers: HashMap<String, Handler>,
    calls: Vec<(String, Value)>,
    logs: Vec<(LogLevel, String)>,
    progress: Vec<(f32, String)>,
    warnings: Vec<String>,
    items: u64,
    bytes: u64,
    last_error: Option<String>,
}

/// The host a job sees in native tests: it can interrupt at the Nth check, refuse
/// checkpoints, serve key-value and other host calls, and records what the job did.
pub struct MockHost {
    inner: Rc<RefCell<Inner>>,
    encoding: StateEncoding,
    job_id: String,
    library_id: String,
}

impl Default for MockHost {
    fn default() -> Self {
        MockHost::new()
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<RefCell<Inner>>>> = RefCell::new(None);
}

impl MockHost {
    /// A host that never interrupts, accepts every checkpoint and has an empty store.
    pub fn new() -> Self {
        MockHost {
            inner: Rc::new(RefCell::new(Inner::default())),
            encoding: StateEncoding::Json,
            job_id: "00000000-0000-4000-8000-000000000001".to_owned(),
            library_id: "00000000-0000-0000-0000-000000000000".to_owned(),
        }
    }

    /// The state encoding of the extension under test (default JSON).
    pub fn encoding(&mut self, encoding: StateEncoding) -> &mut Self {
        self.encoding = encoding;
        self
    }

    /// In the next run, the `n`th `check_interrupt` (1-based) asks the job to stop,
    /// and every later one too. Cleared when that run ends.
    pub fn interrupt_at(&mut self, n: u64) -> &mut Self {
        self.inner.borrow_mut().interrupt_at = Some(n.max(1));
        self
    }

    /// Refuse every checkpoint from the `n`th (1-based, counted over the host's life) on,
    /// as a host does when the state is too large or the lease was lost.
    pub fn reject_checkpoints_from(&mut self, n: usize) -> &mut Self {
        self.inner.borrow_mut().reject_from = Some(n.max(1));
        self
    }

    /// Refuse every checkpoint from now on.
    pub fn reject_checkpoints(&mut self) -> &mut Self {
        let next = self.inner.borrow().checkpoints.len() + self.inner.borrow().refused + 1;
        self.reject_checkpoints_from(next)
    }

    /// Accept checkpoints again.
    pub fn accept_checkpoints(&mut self) -> &mut Self {
        self.inner.borrow_mut().reject_from = None;
        self
    }

    /// Put a value in the key-value store, as [`JobContext::kv_set`] would (JSON text).
    pub fn kv_insert<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> &mut Self {
        let text = serde_json::to_string(value).expect("kv_insert: value does not serialize");
        self.inner.borrow_mut().kv.insert(key.to_owned(), text);
        self
    }

    /// A value from the key-value store, decoded from JSON text.
    pub fn kv<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let text = self.inner.borrow().kv.get(key).cloned()?;
        Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("kv {:?} is not the type asked for: {}", key, e)))
    }

    /// The raw string stored under `key`.
    pub fn kv_str(&self, key: &str) -> Option<String> {
        self.inner.borrow().kv.get(key).cloned()
    }

    /// What [`JobContext::config`] returns.
    pub fn config<T: Serialize>(&mut self, config: &T) -> &mut Self {
        self.inner.borrow_mut().config = Some(serde_json::to_value(config).expect("config does not serialize"));
        self
    }

    /// Answer host calls to `method` (e.g. `"query:weather.v1"`) with `handler`:
    /// `Ok(json)` is the result, `Err(reason)` a refused call.
    pub fn on_call(&mut self, method: &str, handler: impl FnMut(&Value) -> CallResult + 'static) -> &mut Self {
        self.inner.borrow_mut().handlers.insert(method.to_owned(), Box::new(handler));
        self
    }

    /// Run `job` for the first time with `params` (a JSON value, e.g. `json!({"target": 5})`).
    pub fn run<S, F>(&mut self, job: F, params: Value) -> Run
    where
        S: Serialize + DeserializeOwned + Default,
        F: FnOnce(&JobContext, &mut S) -> Result<()>,
    {
        let bytes = self.params_bytes(&params);
        self.run_raw(false, &bytes, |enc, b| crate::runtime::params_over_default::<S>(enc, b), job)
    }

    /// Run a `#[job(params = P)]` job for the first time: `S::from(params as P)`.
    pub fn run_with_params<P, S, F>(&mut self, job: F, params: Value) -> Run
    where
        P: DeserializeOwned,
        S: Serialize + DeserializeOwned + Default + From<P>,
        F: FnOnce(&JobContext, &mut S) -> Result<()>,
    {
        let bytes = self.params_bytes(&params);
        self.run_raw(false, &bytes, |enc, b| crate::runtime::decode_params::<P>(enc, b).map(S::from), job)
    }

    /// Run `job` again from its last accepted checkpoint, as the host does after a pause.
    pub fn resume<S, F>(&mut self, job: F) -> Run
    where
        S: Serialize + DeserializeOwned + Default,
        F: FnOnce(&JobContext, &mut S) -> Result<()>,
    {
        let bytes = self.inner.borrow().checkpoints.last().cloned().unwrap_or_default();
        self.run_raw(true, &bytes, |enc, b| enc.decode(b), job)
    }

    fn params_bytes(&self, params: &Value) -> Vec<u8> {
        if params.is_null() {
            return Vec::new();
        }
        self.encoding.encode(params).expect("params do not encode")
    }

    fn run_raw<S, I, F>(&mut self, resumed: bool, bytes: &[u8], first_run: I, job: F) -> Run
    where
        S: Serialize + DeserializeOwned + Default,
        I: FnOnce(StateEncoding, &[u8]) -> Result<S>,
        F: FnOnce(&JobContext, &mut S) -> Result<()>,
    {
        let ctx = json!({"job_id": self.job_id, "library_id": self.library_id, "resumed": resumed}).to_string();
        {
            let mut inner = self.inner.borrow_mut();
            inner.checks = 0;
            inner.last_error = None;
        }
        let previous = CURRENT.with(|c| c.replace(Some(self.inner.clone())));
        let code = run_bytes("test", self.encoding, ctx.as_bytes(), bytes, first_run, job);
        CURRENT.with(|c| *c.borrow_mut() = previous);
        let mut inner = self.inner.borrow_mut();
        inner.interrupt_at = None;
        let outcome = match code {
            0 => Outcome::Completed,
            1 => Outcome::Interrupted,
            _ => Outcome::Failed(inner.last_error.clone().unwrap_or_else(|| format!("returned {} without logging why", code))),
        };
        Run { outcome, code, encoding: self.encoding, last_checkpoint: inner.checkpoints.last().cloned() }
    }

    /// How many checkpoints the host accepted.
    pub fn checkpoints(&self) -> usize {
        self.inner.borrow().checkpoints.len()
    }

    /// How many checkpoints the host refused.
    pub fn refused_checkpoints(&self) -> usize {
        self.inner.borrow().refused
    }

    /// Every log line, with its level.
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.inner.borrow().logs.clone()
    }

    /// Every progress report: fraction and message.
    pub fn progress(&self) -> Vec<(f32, String)> {
        self.inner.borrow().progress.clone()
    }

    /// Every warning.
    pub fn warnings(&self) -> Vec<String> {
        self.inner.borrow().warnings.clone()
    }

    /// The items and bytes counters.
    pub fn counters(&self) -> (u64, u64) {
        let inner = self.inner.borrow();
        (inner.items, inner.bytes)
    }

    /// Every host call made: method and payload.
    pub fn calls(&self) -> Vec<(String, Value)> {
        self.inner.borrow().calls.clone()
    }
}

fn with_current<R>(f: impl FnOnce(&mut Inner) -> R) -> Option<R> {
    let host = CURRENT.with(|c| c.borrow().clone())?;
    let mut inner = host.borrow_mut();
    Some(f(&mut inner))
}

fn builtin_call(inner: &mut Inner, method: &str, payload: &Value) -> CallResult {
    let key = || payload.get("key").and_then(Value::as_str).map(str::to_owned).ok_or("payload must be {\"key\": \"<string>\", ...}");
    match method {
        "query:kv.get.v1" => Ok(json!({"value": inner.kv.get(&key()?).cloned()})),
        "action:kv.set.v1" => {
            let value = payload.get("value").and_then(Value::as_str).ok_or("value must be a string")?;
            inner.kv.insert(key()?, value.to_owned());
            Ok(json!({"ok": true}))
        }
        "query:config.get.v1" => Ok(json!({"config": inner.config.clone()})),
        _ => Err(format!("no host operation named {} (give the mock one with MockHost::on_call)", method)),
    }
}

/// The host functions natively: the current [`MockHost`], or stderr when there is none.
#[allow(clippy::missing_safety_doc)]
pub(crate) mod native {
    use super::*;

    unsafe fn text(ptr: *const u8, len: usize) -> String {
        String::from_utf8_lossy(std::slice::from_raw_parts(ptr, len)).into_owned()
    }

    fn level_of(level: i32) -> LogLevel {
        match level {
            0 => LogLevel::Debug,
            1 => LogLevel::Info,
            2 => LogLevel::Warn,
            _ => LogLevel::Error,
        }
    }

    pub unsafe fn spacedrive_log(level: i32, msg_ptr: *const u8, msg_len: usize) {
        let msg = text(msg_ptr, msg_len);
        let level = level_of(level);
        eprintln!("[{:?}] {}", level, msg);
        with_current(|h| {
            if level == LogLevel::Error {
                h.last_error = Some(msg.clone());
            }
            h.logs.push((level, msg));
        });
    }
    pub unsafe fn register_job(_: *const u8, _: usize, _: *const u8, _: usize, _: i32) -> i32 {
        0
    }
    pub unsafe fn job_report_progress(_: *const u8, progress: f32, msg_ptr: *const u8, msg_len: usize) {
        let msg = text(msg_ptr, msg_len);
        with_current(|h| h.progress.push((progress, msg)));
    }
    pub unsafe fn job_checkpoint(_: *const u8, state_ptr: *const u8, state_len: usize) -> i32 {
        let state = std::slice::from_raw_parts(state_ptr, state_len).to_vec();
        with_current(|h| {
            let number = h.checkpoints.len() + h.refused + 1;
            if h.reject_from.map_or(false, |from| number >= from) {
                h.refused += 1;
                1
            } else {
                h.checkpoints.push(state);
                0
            }
        })
        .unwrap_or(0)
    }
    pub unsafe fn job_check_interrupt(_: *const u8) -> i32 {
        with_current(|h| {
            h.checks += 1;
            h.interrupt_at.map_or(false, |n| h.checks >= n) as i32
        })
        .unwrap_or(0)
    }
    pub unsafe fn job_add_warning(_: *const u8, msg_ptr: *const u8, msg_len: usize) {
        let msg = text(msg_ptr, msg_len);
        eprintln!("[warning] {}", msg);
        with_current(|h| h.warnings.push(msg));
    }
    pub unsafe fn job_increment_bytes(_: *const u8, n: u64) {
        with_current(|h| h.bytes += n);
    }
    pub unsafe fn job_increment_items(_: *const u8, n: u64) {
        with_current(|h| h.items += n);
    }

    /// A host call against the current mock: its handler, else the built-in operations.
    pub fn host_call(method: &str, _library: &[u8; 16], payload: &[u8]) -> Option<Vec<u8>> {
        let host = CURRENT.with(|c| c.borrow().clone())?;
        let payload: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
        let handler = {
            let mut inner = host.borrow_mut();
            inner.calls.push((method.to_owned(), payload.clone()));
            inner.handlers.remove(method)
        };
        // The handler runs with the host unborrowed, so it may inspect the mock itself.
        let result = match handler {
            Some(mut handler) => {
                let result = handler(&payload);
                host.borrow_mut().handlers.insert(method.to_owned(), handler);
                result
            }
            None => builtin_call(&mut host.borrow_mut(), method, &payload),
        };
        match result {
            Ok(value) => Some(value.to_string().into_bytes()),
            Err(reason) => {
                let line = format!("host call {} failed: {}", method, reason);
                eprintln!("[Error] {}", line);
                let mut inner = host.borrow_mut();
                inner.last_error = Some(line.clone());
                inner.logs.push((LogLevel::Error, line));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
    struct Count {
        target: u64,
        current: u64,
    }

    fn count(ctx: &JobContext, st: &mut Count) -> Result<()> {
        while st.current < st.target {
            ctx.check()?;
            st.current += 1;
            if st.current % 3 == 0 {
                ctx.checkpoint(st)?;
            }
        }
        Ok(())
    }

    /// Spacedrive's test extension's way: checkpoint, then fail with "Interrupted".
    fn spacedrive_count(ctx: &JobContext, st: &mut Count) -> Result<()> {
        while st.current < st.target {
            if ctx.check_interrupt() {
                ctx.checkpoint(st)?;
                return Err(Error::OperationFailed("Interrupted".into()));
            }
            st.current += 1;
        }
        Ok(())
    }

    #[test]
    fn interrupt_at_n_pauses_and_resume_finishes() {
        let mut host = MockHost::new();
        host.interrupt_at(5);
        let run = host.run(count, json!({"target": 10}));
        assert!(run.is_interrupted(), "{:?}", run.outcome);
        assert_eq!(run.state::<Count>(), Count { target: 10, current: 4 });
        let run = host.resume(count);
        assert!(run.is_completed());
        assert_eq!(run.state::<Count>(), Count { target: 10, current: 10 });
    }

    #[test]
    fn spacedrive_interrupt_convention_is_an_interrupt_only_when_asked() {
        let mut host = MockHost::new();
        host.interrupt_at(2);
        let run = host.run(spacedrive_count, json!({"target": 5}));
        assert!(run.is_interrupted(), "{:?}", run.outcome);
        assert!(host.resume(spacedrive_count).is_completed());

        let mut unasked = MockHost::new();
        let run = unasked.run(|_: &JobContext, _: &mut Count| Err(Error::OperationFailed("Interrupted".into())), json!({}));
        assert_eq!(run.failure(), Some("Operation failed: Interrupted"));
    }

    #[test]
    fn refused_checkpoints_fail_the_job_with_the_reason() {
        let mut host = MockHost::new();
        host.reject_checkpoints_from(2);
        let run = host.run(count, json!({"target": 10}));
        assert!(run.failure().unwrap().contains("did not save a checkpoint"), "{:?}", run.outcome);
        assert_eq!((host.checkpoints(), host.refused_checkpoints()), (1, 1));
    }

    #[test]
    fn kv_config_and_host_calls_are_served_and_recorded() {
        #[derive(Serialize, Deserialize, Default)]
        struct Probe {
            seen: Option<u64>,
            weather: String,
            threshold: u64,
        }
        #[derive(Deserialize, Default)]
        struct Config {
            threshold: u64,
        }
        fn probe(ctx: &JobContext, st: &mut Probe) -> Result<()> {
            st.seen = ctx.kv_get::<u64>("runs")?;
            ctx.kv_set("runs", &(st.seen.unwrap_or(0) + 1))?;
            st.weather = ctx.call::<_, String>("query:weather.v1", &json!({"city": "Oslo"}))?;
            st.threshold = ctx.config::<Config>()?.threshold;
            crate::info!("probe: {} {}", st.weather, st.threshold);
            Ok(())
        }
        let mut host = MockHost::new();
        host.kv_insert("runs", &41u64)
            .config(&json!({"threshold": 7}))
            .on_call("query:weather.v1", |payload| Ok(json!(format!("sunny in {}", payload["city"].as_str().unwrap()))));
        let run = host.run(probe, Value::Null);
        assert!(run.is_completed(), "{:?}", run.outcome);
        let st: Probe = run.state();
        assert_eq!((st.seen, st.weather.as_str(), st.threshold), (Some(41), "sunny in Oslo", 7));
        assert_eq!(host.kv::<u64>("runs"), Some(42));
        assert!(host.logs().iter().any(|(level, line)| *level == LogLevel::Info && line == "probe: sunny in Oslo 7"));
        assert_eq!(host.calls().len(), 4);

        let mut refusing = MockHost::new();
        refusing.on_call("query:weather.v1", |_| Err("no network".into()));
        let run = refusing.run(probe, Value::Null);
        assert!(run.failure().unwrap().contains("query:weather.v1"), "{:?}", run.outcome);
    }

    #[test]
    fn typed_params_build_the_first_state_and_are_required() {
        #[derive(Deserialize)]
        struct Params {
            target: u64,
        }
        impl From<Params> for Count {
            fn from(p: Params) -> Self {
                Count { target: p.target, current: 0 }
            }
        }
        let mut host = MockHost::new();
        let run = host.run_with_params::<Params, _, _>(count, json!({"target": 4}));
        assert_eq!(run.state::<Count>(), Count { target: 4, current: 4 });
        let run = host.run_with_params::<Params, _, _>(count, json!({"current": 1}));
        assert!(run.failure().unwrap().starts_with("Invalid input: parameters:"), "{:?}", run.outcome);
    }
}
