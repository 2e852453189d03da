//! Write wasmjob extension jobs in Rust.
//!
//! An extension is a `cdylib` compiled to `wasm32-unknown-unknown` that speaks
//! the Spacedrive extension ABI. This crate hides that ABI behind two
//! attributes and one context type:
//!
//! ```ignore
//! use wasmjob_sdk::prelude::*;
//!
//! #[extension(id = "counter-rs", name = "Counter", version = "0.1.0", jobs = [counter])]
//! struct Counter;
//!
//! #[derive(Serialize, Deserialize, Default)]
//! #[serde(default)]
//! struct CounterState { current: u32, target: u32 }
//!
//! #[job(name = "counter")]
//! fn counter(ctx: &JobContext, state: &mut CounterState) -> Result<()> {
//!     while state.current < state.target {
//!         ctx.check()?;            // paused? the macro checkpoints `state` and stops
//!         state.current += 1;
//!         ctx.report_progress(state.current as f32 / state.target as f32, "counting");
//!     }
//!     Ok(())                       // the final state is checkpointed: it is the result
//! }
//! ```
//!
//! Native tests of job logic use [`testing::MockHost`] (`cargo test`, or
//! `wasmjob test DIR`, which sets cargo up offline).
//!
//! `#[extension]` generates `plugin_init` (which registers the jobs) and
//! `plugin_cleanup`; `#[job]` generates the `execute_<fn>` export that decodes
//! the state, runs the function and maps its outcome to the ABI's return codes
//! (0 completed, 1 interrupted, 2 failed). `wasm_alloc` and `wasm_free` are
//! exported once, by this crate.

#![warn(missing_docs)]

mod context;
mod encoding;
mod error;
mod ffi;
pub mod log;
mod memory;
mod runtime;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use context::JobContext;
pub use encoding::StateEncoding;
pub use error::{Error, Result};
pub use log::LogLevel;
pub use wasmjob_sdk_macros::{extension, job};
/// The Spacedrive SDK's name for [`job`], so ported code keeps compiling.
pub use wasmjob_sdk_macros::job as spacedrive_job;

/// Serde, re-exported so an extension needs no direct dependency on it.
pub use serde;
/// serde_json, re-exported for extensions that build JSON values by hand.
pub use serde_json;

/// Everything a job file needs: `use wasmjob_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::{bail, debug, error, info, warn};
    pub use crate::{extension, job, spacedrive_job};
    pub use crate::{Error, JobContext, LogLevel, Result, StateEncoding};
    pub use serde::{Deserialize, Serialize};
}

/// Support for the code the macros generate. Not a public API: it may change
/// in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::runtime::{
        extension_encoding, plugin_cleanup, plugin_init, run_job, run_job_with_params, ExtensionInfo, JobInfo,
    };
}
