//! The guest allocator the host writes through (`wasm_alloc` / `wasm_free`),
//! and safe views of host-written memory.

use std::alloc::{alloc, dealloc, Layout};

const ALIGN: usize = 8;

fn layout(size: i32) -> Option<Layout> {
    if size < 0 {
        return None;
    }
    // A zero-size request still gets a real, freeable block.
    Layout::from_size_align((size as usize).max(1), ALIGN).ok()
}

/// Allocate `size` bytes for the host; 0 when that is impossible.
#[no_mangle]
pub extern "C" fn wasm_alloc(size: i32) -> i32 {
    match layout(size) {
        Some(layout) => unsafe { alloc(layout) as usize as i32 },
        None => 0,
    }
}

/// Free a block from [`wasm_alloc`] of the same `size`.
///
/// # Safety
/// `ptr` must come from `wasm_alloc(size)` and not have been freed.
#[no_mangle]
pub unsafe extern "C" fn wasm_free(ptr: i32, size: i32) {
    if ptr == 0 {
        return;
    }
    if let Some(layout) = layout(size) {
        dealloc(ptr as usize as *mut u8, layout)
    }
}

/// The bytes the host wrote at `ptr..ptr+len`; empty for a zero or negative length.
///
/// # Safety
/// The range must be guest memory that stays untouched while the slice lives.
pub(crate) unsafe fn guest_bytes<'a>(ptr: i32, len: i32) -> &'a [u8] {
    if ptr == 0 || len <= 0 {
        return &[];
    }
    std::slice::from_raw_parts(ptr as usize as *const u8, len as usize)
}

/// Read and free a host result block: a 4-byte little-endian length, then the bytes.
///
/// # Safety
/// `ptr` must be a non-zero block the host allocated with `wasm_alloc` in that shape.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) unsafe fn take_host_result(ptr: i32) -> Vec<u8> {
    let base = ptr as usize as *const u8;
    let mut len_bytes = [0u8; 4];
    std::ptr::copy_nonoverlapping(base, len_bytes.as_mut_ptr(), 4);
    let len = u32::from_le_bytes(len_bytes) as usize;
    let body = std::slice::from_raw_parts(base.add(4), len).to_vec();
    wasm_free(ptr, (len + 4) as i32);
    body
}
