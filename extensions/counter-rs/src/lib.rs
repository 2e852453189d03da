//! counter-rs: Spacedrive's test extension in the wasmjob Rust SDK, side by
//! side with the C one in `extensions/counter/` (same state, same behaviour).
//!
//! Job "counter" (resumable) counts from `current` to `target`, recording
//! "item_<n>" for each step. State and parameters share one JSON shape,
//! `{"current": 0, "target": 100, "processed": []}`; on a first run the SDK lays
//! the parameters over that default, so `{"target": 25}` is enough (no
//! `#[serde(default)]` needed). It checkpoints every 10 items and when
//! interrupted; the final state is the result.
//!
//! The error handling is Spacedrive's own, unchanged: on an interrupt it
//! checkpoints and returns `Err(Error::OperationFailed("Interrupted".into()))`,
//! which the SDK (and the host) read as "interrupted", locally and on the fleet.

use wasmjob_sdk::prelude::*;

#[extension(id = "counter-rs", name = "Counter (Rust)", version = "0.1.0", jobs = [counter])]
struct Counter;

#[derive(Serialize, Deserialize)]
struct CounterState {
    current: u64,
    target: u64,
    processed: Vec<String>,
}

impl Default for CounterState {
    fn default() -> Self {
        CounterState { current: 0, target: 100, processed: Vec::new() }
    }
}

#[job(name = "counter")]
fn counter(ctx: &JobContext, state: &mut CounterState) -> Result<()> {
    ctx.info(format!("counter: starting at {} of {}", state.current, state.target));
    while state.current < state.target {
        if ctx.check_interrupt() {
            ctx.log(&format!("counter: interrupted at {} of {}, saving checkpoint", state.current, state.target));
            ctx.checkpoint(state)?;
            return Err(Error::OperationFailed("Interrupted".into()));
        }
        state.current += 1;
        state.processed.push(format!("item_{}", state.current));
        ctx.report_progress(
            state.current as f32 / state.target as f32,
            format!("Counted {}/{}", state.current, state.target),
        );
        ctx.increment_items(1);
        if state.current % 10 == 0 && ctx.checkpoint(state).is_err() {
            ctx.warn(format!("counter: checkpoint at {} was not saved", state.current));
        }
    }
    ctx.info(format!("counter: completed, {} items processed", state.processed.len()));
    Ok(()) // the SDK checkpoints the final state: it is the result
}
