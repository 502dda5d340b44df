//! The verdictd extension ABI (<verdictd/extension.h>, version 1.1) for Rust:
//! the C declarations transcribed by hand as #[repr(C)] types, with the
//! sizes checked at compile time against the C header's (LP64). Copy this
//! file beside an extension's own code; nothing here allocates or panics.
#![allow(non_camel_case_types, dead_code)]

use std::os::raw::{c_char, c_int, c_void};

pub const EXTENSION_API_MAJOR: u32 = 1;
pub const EXTENSION_API_MINOR: u32 = 1;
pub const EXTENSION_API_VERSION: u32 = (EXTENSION_API_MAJOR << 16) | EXTENSION_API_MINOR;

/// Opaque host handles: never dereferenced by an extension.
#[repr(C)]
pub struct verdictd_host_t {
    _private: [u8; 0],
}
#[repr(C)]
pub struct verdictd_worker_t {
    _private: [u8; 0],
}

/// verdictd_result_t: what process() (or complete()) decides.
pub type verdictd_result_t = c_int;
pub const ACCEPT: verdictd_result_t = 0;
pub const DROP: verdictd_result_t = 1;
pub const NEXT: verdictd_result_t = 2;
pub const ALTERED: verdictd_result_t = 3;
pub const REPEAT: verdictd_result_t = 4;
pub const QUEUE: verdictd_result_t = 5;
pub const PENDING: verdictd_result_t = 6;

pub const PACKET_HAS_MARK: u32 = 1 << 0;
pub const PACKET_HAS_TIMESTAMP: u32 = 1 << 1;
pub const PACKET_CHECKSUM_NOT_READY: u32 = 1 << 2;
pub const PACKET_GSO: u32 = 1 << 3;
pub const PACKET_TRUNCATED: u32 = 1 << 4;

#[repr(C)]
pub struct verdictd_packet_t {
    pub id: u32,
    pub queue: u16,
    pub hw_protocol: u16,
    pub hook: u8,
    pub family: u8,
    pub l3: u8,
    pub reserved0: u8,
    pub flags: u32,
    pub mark: u32,
    pub indev: u32,
    pub outdev: u32,
    pub indev_name: [c_char; 16],
    pub outdev_name: [c_char; 16],
    pub hw_addrlen: u8,
    pub hw_addr: [u8; 8],
    pub timestamp_ns: i64,
    pub data: *const u8,
    pub data_len: u32,
    pub original_len: u32,
    pub token: u64,
}

impl verdictd_packet_t {
    /// The captured bytes, the network header first.
    pub fn bytes(&self) -> &[u8] {
        if self.data.is_null() {
            return &[];
        }
        // The host guarantees data_len readable bytes during process().
        unsafe { std::slice::from_raw_parts(self.data, self.data_len as usize) }
    }
}

pub const VERDICT_SET_MARK: u32 = 1 << 0;
pub const VERDICT_CHECKSUMS_DONE: u32 = 1 << 1;

#[repr(C)]
pub struct verdictd_verdict_t {
    pub flags: u32,
    pub mark: u32,
    pub target_queue: u16,
    pub reserved0: u16,
}

pub const LOG_DEBUG: c_int = 0;
pub const LOG_INFO: c_int = 1;
pub const LOG_WARN: c_int = 2;
pub const LOG_ERROR: c_int = 3;

#[repr(C)]
pub struct verdictd_host_api_t {
    pub api_version: u32,
    pub api_size: u32,
    pub log: Option<unsafe extern "C" fn(*mut verdictd_host_t, c_int, *const c_char)>,
    pub edit: Option<unsafe extern "C" fn(*mut verdictd_packet_t, u32) -> *mut u8>,
    pub submit: Option<
        unsafe extern "C" fn(*mut verdictd_host_t, Option<unsafe extern "C" fn(*mut c_void)>, *mut c_void) -> c_int,
    >,
    pub complete: Option<unsafe extern "C" fn(u64, verdictd_result_t, *const verdictd_verdict_t, u32)>,
    pub count: Option<unsafe extern "C" fn(*mut verdictd_worker_t, u32, u64)>,
    pub repair_checksums: Option<unsafe extern "C" fn(*mut u8, u32, u32) -> c_int>,
    pub max_edit_len: u32,
}

pub const EXT_MAY_PEND: u32 = 1 << 0;

pub const PARAM_FLAG: u32 = 0;
pub const PARAM_UINT: u32 = 1;
pub const PARAM_STRING: u32 = 2;

#[repr(C)]
pub struct verdictd_param_t {
    pub name: *const c_char,
    pub type_: u32,
    pub reserved0: u32,
    pub min: u64,
    pub max: u64,
    pub default_value: *const c_char,
    pub help: *const c_char,
}
// Static, read-only tables: safe to share between threads.
unsafe impl Sync for verdictd_param_t {}

/// A C string pointer in a static table (e.g. counter_names).
#[repr(transparent)]
pub struct StaticCStr(pub *const c_char);
unsafe impl Sync for StaticCStr {}

/// NUL-terminated byte string literal to a C string pointer.
pub const fn cstr(text: &'static [u8]) -> *const c_char {
    text.as_ptr() as *const c_char
}

#[repr(C)]
pub struct verdictd_extension_api_t {
    pub api_version: u32,
    pub api_size: u32,
    pub extension_version: u32,
    pub flags: u32,
    pub name: *const c_char,
    pub help: *const c_char,
    pub usage: *const c_char,
    pub counter_names: *const StaticCStr,
    pub counter_count: u32,
    pub load: Option<
        unsafe extern "C" fn(
            *const verdictd_host_api_t,
            *mut verdictd_host_t,
            *const c_char,
            *mut *mut c_void,
            *mut c_char,
            usize,
        ) -> c_int,
    >,
    pub unload: Option<unsafe extern "C" fn(*mut c_void)>,
    pub instantiate:
        Option<unsafe extern "C" fn(*mut c_void, *mut verdictd_worker_t, u32, *mut c_char, usize) -> *mut c_void>,
    pub destroy: Option<unsafe extern "C" fn(*mut c_void)>,
    pub start: Option<unsafe extern "C" fn(*mut c_void, *mut c_char, usize) -> c_int>,
    pub stop: Option<unsafe extern "C" fn(*mut c_void, *mut c_char, usize) -> c_int>,
    pub reset: Option<unsafe extern "C" fn(*mut c_void, *mut c_char, usize) -> c_int>,
    pub info: Option<unsafe extern "C" fn(*mut c_void, *mut c_char, usize)>,
    pub process: Option<
        unsafe extern "C" fn(*mut c_void, *mut verdictd_packet_t, *mut verdictd_verdict_t) -> verdictd_result_t,
    >,
    pub params: *const verdictd_param_t,
    pub param_count: u32,
    pub reserved1: u32,
}
// The one exported table is a constant.
unsafe impl Sync for verdictd_extension_api_t {}

// The C header's sizes on LP64 (gcc, x86_64 and aarch64): a field added,
// dropped or retyped here fails the build instead of misreading packets.
const _: () = assert!(std::mem::size_of::<verdictd_packet_t>() == 104);
const _: () = assert!(std::mem::size_of::<verdictd_verdict_t>() == 12);
const _: () = assert!(std::mem::size_of::<verdictd_host_api_t>() == 64);
const _: () = assert!(std::mem::size_of::<verdictd_param_t>() == 48);
const _: () = assert!(std::mem::size_of::<verdictd_extension_api_t>() == 144);

/// Writes `text` (truncated, NUL-terminated) into a C buffer of `size` bytes.
pub fn write_c_text(buffer: *mut c_char, size: usize, text: &str) {
    if buffer.is_null() || size == 0 {
        return;
    }
    let n = text.len().min(size - 1);
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr() as *const c_char, buffer, n);
        *buffer.add(n) = 0;
    }
}
