//! The host functions of the ABI (wasm import module `spacedrive`).
//!
//! On wasm32 these are real imports; a module imports only those it uses. On
//! other targets they are stand-ins so job logic can be unit-tested natively:
//! logs go to stderr, checkpoints succeed, nothing is ever interrupted, and
//! host calls fail.

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

#[cfg(not(target_arch = "wasm32"))]
pub use native::*;

#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::missing_safety_doc)]
mod native {
    unsafe fn text<'a>(ptr: *const u8, len: usize) -> std::borrow::Cow<'a, str> {
        String::from_utf8_lossy(std::slice::from_raw_parts(ptr, len))
    }

    pub unsafe fn spacedrive_log(level: i32, msg_ptr: *const u8, msg_len: usize) {
        eprintln!("[wasmjob level {}] {}", level, text(msg_ptr, msg_len));
    }
    pub unsafe fn register_job(_: *const u8, _: usize, _: *const u8, _: usize, _: i32) -> i32 {
        0
    }
    pub unsafe fn job_report_progress(_: *const u8, progress: f32, msg_ptr: *const u8, msg_len: usize) {
        eprintln!("[wasmjob progress {:.3}] {}", progress, text(msg_ptr, msg_len));
    }
    pub unsafe fn job_checkpoint(_: *const u8, _: *const u8, _: usize) -> i32 {
        0
    }
    pub unsafe fn job_check_interrupt(_: *const u8) -> i32 {
        0
    }
    pub unsafe fn job_add_warning(_: *const u8, msg_ptr: *const u8, msg_len: usize) {
        eprintln!("[wasmjob warning] {}", text(msg_ptr, msg_len));
    }
    pub unsafe fn job_increment_bytes(_: *const u8, _: u64) {}
    pub unsafe fn job_increment_items(_: *const u8, _: u64) {}
    pub unsafe fn spacedrive_call(_: *const u8, _: usize, _: *const u8, _: *const u8, _: usize) -> i32 {
        0
    }
}
