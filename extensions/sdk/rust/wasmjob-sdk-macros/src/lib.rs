//! `#[extension]` and `#[job]` for wasmjob-sdk. Use them through `wasmjob_sdk`.
//!
//! The generated code names only `::wasmjob_sdk::...` paths, so an extension
//! depends on `wasmjob-sdk` (and `serde` for its derives) and nothing else.

extern crate proc_macro;

mod extension;
mod job;
mod scan;

use proc_macro::TokenStream;

/// Declare the extension and list its jobs:
///
/// ```ignore
/// #[extension(id = "csvstats", name = "CSV stats", version = "0.1.0",
///             jobs = [aggregate], state = "msgpack")]
/// struct CsvStats;
/// ```
///
/// Generates `plugin_init` (registers each job with the host) and
/// `plugin_cleanup`. `id`, `name`, `version` and `jobs` are required;
/// `state = "json" | "msgpack"` sets the encoding of jobs that do not set
/// their own; `description` and `author` are accepted for the manifest's sake.
#[proc_macro_attribute]
pub fn extension(args: TokenStream, item: TokenStream) -> TokenStream {
    extension::expand(args.into(), item.into()).into()
}

/// Make a function a job:
///
/// ```ignore
/// #[job(name = "counter")]
/// fn counter(ctx: &JobContext, state: &mut CounterState) -> Result<()> { ... }
/// ```
///
/// Generates `execute_counter`. Options: `name` (defaults to the function's
/// name), `state = "json" | "msgpack"`, `resumable = true | false`.
#[proc_macro_attribute]
pub fn job(args: TokenStream, item: TokenStream) -> TokenStream {
    job::expand(args.into(), item.into()).into()
}

/// The name of the hidden constant `#[job]` puts beside `fn name`, which
/// `#[extension]` reads to register it.
pub(crate) fn info_ident(fn_name: &syn::Ident) -> syn::Ident {
    syn::Ident::new(&format!("__wasmjob_job_{}", fn_name), fn_name.span())
}
