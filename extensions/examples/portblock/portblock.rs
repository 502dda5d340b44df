//! portblock: the Rust example. Drops UDP datagrams (IPv4 and IPv6) sent to
//! one destination port and passes every other packet on (NEXT); `info`
//! shows how many it dropped and passed. It shows an extension written in
//! Rust against the C ABI with no crate beyond std: the bindings are
//! verdictd.rs, and the build is one rustc command (docs/extensions.md):
//!
//!   rustc --edition 2021 --crate-type cdylib -C opt-level=2 -C panic=abort -C strip=symbols \
//!     -o portblock.so portblock.rs
//!
//! panic=abort because an unwind must never cross into the host's C frames;
//! nothing here panics (bounds are checked with get(), never by indexing).
mod verdictd;

use std::os::raw::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};

use verdictd::*;

const COUNTER_DROPPED: u32 = 0;
const COUNTER_PASSED: u32 = 1;

/// Process-wide state (load .. unload).
struct State {
    host_api: *const verdictd_host_api_t,
    port: u16, // 0: drop nothing
    dropped: AtomicU64,
    passed: AtomicU64,
}

/// Per-worker state (instantiate .. destroy): one thread only.
struct Instance {
    state: *const State,
    worker: *mut verdictd_worker_t,
}

/// The UDP destination port of an IPv4 or IPv6 packet (no IPv6 extension
/// headers), or None.
fn udp_destination_port(packet: &verdictd_packet_t) -> Option<u16> {
    let bytes = packet.bytes();
    let offset = match packet.l3 {
        4 => {
            let ihl = usize::from(*bytes.first()? & 0x0f) * 4;
            let fragment_offset = u16::from_be_bytes([*bytes.get(6)?, *bytes.get(7)?]) & 0x1fff;
            if *bytes.get(9)? != 17 || ihl < 20 || fragment_offset != 0 {
                return None;
            }
            ihl
        }
        6 => {
            if *bytes.get(6)? != 17 {
                return None;
            }
            40
        }
        _ => return None,
    };
    Some(u16::from_be_bytes([*bytes.get(offset + 2)?, *bytes.get(offset + 3)?]))
}

/// Reads "port=N" (the host already checked it against PARAMS, so N is in
/// the host's number syntax: decimal, or hex after 0x).
unsafe fn parse_port(params: *const c_char) -> u16 {
    if params.is_null() {
        return 0;
    }
    let text = std::ffi::CStr::from_ptr(params).to_str().unwrap_or("");
    let number = text.strip_prefix("port=").unwrap_or("");
    match number.strip_prefix("0x").or_else(|| number.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16).unwrap_or(0),
        None => number.parse::<u16>().unwrap_or(0),
    }
}

unsafe extern "C" fn load(
    host_api: *const verdictd_host_api_t,
    _host: *mut verdictd_host_t,
    params: *const c_char,
    out: *mut *mut c_void,
    _error: *mut c_char,
    _error_size: usize,
) -> c_int {
    let state = Box::new(State {
        host_api,
        port: parse_port(params),
        dropped: AtomicU64::new(0),
        passed: AtomicU64::new(0),
    });
    *out = Box::into_raw(state) as *mut c_void;
    0
}

unsafe extern "C" fn unload(state: *mut c_void) {
    drop(Box::from_raw(state as *mut State));
}

unsafe extern "C" fn instantiate(
    state: *mut c_void,
    worker: *mut verdictd_worker_t,
    _worker_index: u32,
    _error: *mut c_char,
    _error_size: usize,
) -> *mut c_void {
    Box::into_raw(Box::new(Instance { state: state as *const State, worker })) as *mut c_void
}

unsafe extern "C" fn destroy(instance: *mut c_void) {
    drop(Box::from_raw(instance as *mut Instance));
}

unsafe extern "C" fn reset(state: *mut c_void, _error: *mut c_char, _error_size: usize) -> c_int {
    let state = &*(state as *const State);
    state.dropped.store(0, Ordering::Relaxed);
    state.passed.store(0, Ordering::Relaxed);
    0
}

unsafe extern "C" fn info(state: *mut c_void, buffer: *mut c_char, size: usize) {
    let state = &*(state as *const State);
    // The control thread, not the packet path: formatting may allocate.
    let text = format!(
        "port {} dropped {} passed {}",
        state.port,
        state.dropped.load(Ordering::Relaxed),
        state.passed.load(Ordering::Relaxed)
    );
    write_c_text(buffer, size, &text);
}

unsafe extern "C" fn process(
    instance: *mut c_void,
    packet: *mut verdictd_packet_t,
    _verdict: *mut verdictd_verdict_t,
) -> verdictd_result_t {
    let instance = &*(instance as *const Instance);
    let state = &*instance.state;
    let count = (*state.host_api).count;
    let blocked = state.port != 0 && udp_destination_port(&*packet) == Some(state.port);
    let (counter, total, result) = if blocked {
        (COUNTER_DROPPED, &state.dropped, DROP)
    } else {
        (COUNTER_PASSED, &state.passed, NEXT)
    };
    // Relaxed adds on one shared line, as in the C template; count() is the
    // per-worker, lock-free metric.
    total.fetch_add(1, Ordering::Relaxed);
    if let Some(count) = count {
        count(instance.worker, counter, 1);
    }
    result
}

static COUNTER_NAMES: [StaticCStr; 2] = [StaticCStr(cstr(b"dropped\0")), StaticCStr(cstr(b"passed\0"))];

static PARAMS: [verdictd_param_t; 1] = [verdictd_param_t {
    name: cstr(b"port\0"),
    type_: PARAM_UINT,
    reserved0: 0,
    min: 0,
    max: 65535,
    default_value: cstr(b"0\0"),
    help: cstr(b"drop UDP datagrams to this destination port (0: none)\0"),
}];

#[no_mangle]
pub static verdictd_extension: verdictd_extension_api_t = verdictd_extension_api_t {
    api_version: EXTENSION_API_VERSION,
    api_size: std::mem::size_of::<verdictd_extension_api_t>() as u32,
    extension_version: 0x010000,
    flags: 0,
    name: cstr(b"portblock\0"),
    help: cstr(b"drops UDP datagrams to one destination port (an extension written in Rust)\0"),
    usage: cstr(b"port=N\0"),
    counter_names: &COUNTER_NAMES as *const [StaticCStr; 2] as *const StaticCStr,
    counter_count: 2,
    load: Some(load),
    unload: Some(unload),
    instantiate: Some(instantiate),
    destroy: Some(destroy),
    start: None,
    stop: None,
    reset: Some(reset),
    info: Some(info),
    process: Some(process),
    params: &PARAMS as *const [verdictd_param_t; 1] as *const verdictd_param_t,
    param_count: 1,
    reserved1: 0,
};
