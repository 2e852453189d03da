//! The host functions of the ABI (wasm import module `spacedrive`).
//!
//! On wasm32 these are real imports; a module imports only those it uses. On
//! other targets they are the mock host of [`crate::testing`], so job logic can be
//! unit-tested natively (`cargo test`, `wasmjob test DIR`).

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "spacedrive")]
extern "C" {
    pub fn spacedrive_log(level: i32, msg_ptr: *const u8, msg_len: usize);
    pub fn register_job(
        name_ptr: *const u8,
        name_len: usize,
        export_ptr: *const u8,
        export_len: usize,
        resumable: i32,
    ) -> i32;
    pub fn job_report_progress(job_id_ptr: *const u8, progress: f32, msg_ptr: *const u8, msg_len: usize);
    pub fn job_checkpoint(job_id_ptr: *const u8, state_ptr: *const u8, state_len: usize) -> i32;
    pub fn job_check_interrupt(job_id_ptr: *const u8) -> i32;
    pub fn job_add_warning(job_id_ptr: *const u8, msg_ptr: *const u8, msg_len: usize);
    pub fn job_increment_bytes(job_id_ptr: *const u8, n: u64);
    pub fn job_increment_items(job_id_ptr: *const u8, n: u64);
    pub fn spacedrive_call(
        method_ptr: *const u8,
        method_len: usize,
        library_id_ptr: *const u8,
        payload_ptr: *const u8,
        payload_len: usize,
    ) -> i32;
}

/// Call a host operation; the JSON result, or `None` when the host refused it (it logs why).
#[cfg(target_arch = "wasm32")]
pub fn host_call(method: &str, library: &[u8; 16], payload: &[u8]) -> Option<Vec<u8>> {
    let ptr = unsafe { spacedrive_call(method.as_ptr(), method.len(), library.as_ptr(), payload.as_ptr(), payload.len()) };
    if ptr == 0 {
        None
    } else {
        Some(unsafe { crate::memory::take_host_result(ptr) })
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use crate::testing::native::*;
