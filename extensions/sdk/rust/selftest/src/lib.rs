//! The Rust SDK's own test module: one job per path through the generated
//! export (panic, error, host calls, metrics), driven by the runtime's tests.
//! Not an example to copy; see `extensions/counter-rs` and `extensions/csvstats`.

use wasmjob_sdk::prelude::*;
use wasmjob_sdk::serde_json::Value;

#[extension(
    id = "sdk-selftest",
    name = "Rust SDK self-test",
    version = "0.1.0",
    jobs = [panics, fails, kv, call, report, config]
)]
struct SelfTest;

#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct Probe {
    message: String,
    key: String,
    value: String,
    method: String,
    payload: Value,
    n: u64,
    got: Option<String>,
    raw: Option<String>,
    count: Option<u64>,
    missing: Option<String>,
    result: Option<Value>,
}

/// Panics with `message` after reporting some progress.
#[job]
fn panics(ctx: &JobContext, state: &mut Probe) -> Result<()> {
    ctx.report_progress(0.5, "about to panic");
    panic!("{}", state.message);
}

/// Fails with `message`.
#[job]
fn fails(_ctx: &JobContext, state: &mut Probe) -> Result<()> {
    Err(Error::msg(&state.message))
}

/// Stores `value` under `key` (as JSON text), reads it back typed into `got` and raw into
/// `raw`, stores and reads the number `n` typed into `count`, and reads a key never set into `missing`.
#[job]
fn kv(ctx: &JobContext, state: &mut Probe) -> Result<()> {
    ctx.kv_set(&state.key, &state.value)?;
    state.got = ctx.kv_get(&state.key)?;
    state.raw = ctx.kv_get_str(&state.key)?;
    ctx.kv_set(&format!("{}:n", state.key), &state.n)?;
    state.count = ctx.kv_get::<u64>(&format!("{}:n", state.key))?;
    state.missing = ctx.kv_get(&format!("{}:never-set", state.key))?;
    Ok(())
}

/// The extension's configuration, into `result`.
#[job]
fn config(ctx: &JobContext, state: &mut Probe) -> Result<()> {
    state.result = Some(ctx.config::<Value>()?);
    Ok(())
}

/// Calls `method` with `payload`; the decoded answer goes to `result`.
#[job]
fn call(ctx: &JobContext, state: &mut Probe) -> Result<()> {
    state.result = Some(ctx.call::<Value, Value>(&state.method, &state.payload)?);
    Ok(())
}

/// Exercises every reporting host function once.
#[job]
fn report(ctx: &JobContext, state: &mut Probe) -> Result<()> {
    for level in [LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error] {
        ctx.log_at(level, format!("{:?}: {}", level, state.message));
    }
    ctx.add_warning(&state.message);
    ctx.increment_items(state.n);
    ctx.increment_bytes(state.n * 1000);
    ctx.report_progress(0.25, &state.message);
    state.result = Some(Value::String(format!("{} {}", ctx.job_id(), ctx.library_id())));
    Ok(())
}
