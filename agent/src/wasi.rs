//! A minimal, sandboxed `wasi_snapshot_preview1`: exactly the functions Go's `wasip1` runtime
//! imports, so modules built by the standard Go toolchain run as gatherers (ABI.md, "WASI
//! subset").
//!
//! Nothing here reaches outside the sandbox. There are no preopened directories, so no file
//! system; stdout and stderr are the gatherer's log (under the same budget as `gather.log`);
//! stdin is empty; the clocks and randomness come from the host; `poll_oneoff` can only sleep,
//! and never past the deadline or a shutdown. A hand-written layer of 16 functions was chosen
//! over a WASI crate: the crates bring a virtual file system, sockets and their dependencies,
//! and none of them can be told to stop a sleep at our deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use hostapi::abi::level;
use wasmi::{Caller, Extern, Linker, ValType};

use crate::pdk::HostState;
use crate::errors::{ErrorKind, Stopped};

/// The import module name of WASI preview 1.
pub const MODULE: &str = "wasi_snapshot_preview1";

/// The WASI errno values this layer returns.
pub mod errno {
    /// Success.
    pub const SUCCESS: i32 = 0;
    /// Bad file descriptor: every fd but 0, 1 and 2 (no preopens, no files).
    pub const BADF: i32 = 8;
    /// A pointer outside guest memory.
    pub const FAULT: i32 = 21;
    /// An invalid argument (unknown clock, no subscriptions...).
    pub const INVAL: i32 = 28;
    /// I/O error (the host's random source failed).
    pub const IO: i32 = 29;
    /// Not supported on this descriptor (closing or reconfiguring stdio).
    pub const NOTSUP: i32 = 58;
}

/// Longest stdout/stderr line kept (the same as `gather.log`'s 8 KiB); the rest is dropped.
const MAX_LINE: usize = 8 * 1024;
/// Most iovecs one `fd_write`/`fd_read` may pass (POSIX's IOV_MAX).
const MAX_IOVS: u32 = 1024;
/// Most subscriptions one `poll_oneoff` may pass.
const MAX_SUBSCRIPTIONS: u32 = 1024;
/// How often a sleeping `poll_oneoff` looks at the shutdown flag.
const SLEEP_SLICE: Duration = Duration::from_millis(20);

/// `proc_exit(code)`: ends the run; the sandbox reports `code` as `gather`'s return value.
#[derive(Debug, thiserror::Error)]
#[error("the guest called proc_exit({0})")]
pub struct Exit(pub i32);

impl wasmi_core::HostError for Exit {}

/// Every WASI import this host provides, with its (params, results).
pub fn signatures() -> Vec<(&'static str, Vec<ValType>, Vec<ValType>)> {
    use ValType::{I32, I64};
    vec![
        ("args_get", vec![I32; 2], vec![I32]),
        ("args_sizes_get", vec![I32; 2], vec![I32]),
        ("environ_get", vec![I32; 2], vec![I32]),
        ("environ_sizes_get", vec![I32; 2], vec![I32]),
        ("clock_time_get", vec![I32, I64, I32], vec![I32]),
        ("random_get", vec![I32; 2], vec![I32]),
        ("fd_write", vec![I32; 4], vec![I32]),
        ("fd_read", vec![I32; 4], vec![I32]),
        ("fd_close", vec![I32], vec![I32]),
        ("fd_fdstat_get", vec![I32; 2], vec![I32]),
        ("fd_fdstat_set_flags", vec![I32; 2], vec![I32]),
        ("fd_prestat_get", vec![I32; 2], vec![I32]),
        ("fd_prestat_dir_name", vec![I32; 3], vec![I32]),
        ("poll_oneoff", vec![I32; 4], vec![I32]),
        ("sched_yield", vec![], vec![I32]),
        ("proc_exit", vec![I32], vec![]),
    ]
}

fn memory(caller: &Caller<'_, HostState>) -> Option<wasmi::Memory> {
    caller.get_export(hostapi::abi::MEMORY).and_then(Extern::into_memory)
}

/// `len` bytes at `ptr`, or `FAULT`.
fn read(caller: &Caller<'_, HostState>, ptr: i32, len: usize) -> Result<Vec<u8>, i32> {
    let memory = memory(caller).ok_or(errno::FAULT)?;
    let start = ptr as u32 as usize;
    let end = start.checked_add(len).ok_or(errno::FAULT)?;
    memory.data(caller).get(start..end).map(<[u8]>::to_vec).ok_or(errno::FAULT)
}

/// Writes `bytes` at `ptr`, or `FAULT`.
fn write(caller: &mut Caller<'_, HostState>, ptr: i32, bytes: &[u8]) -> Result<(), i32> {
    let memory = memory(caller).ok_or(errno::FAULT)?;
    let start = ptr as u32 as usize;
    let end = start.checked_add(bytes.len()).ok_or(errno::FAULT)?;
    memory.data_mut(caller).get_mut(start..end).ok_or(errno::FAULT)?.copy_from_slice(bytes);
    Ok(())
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// The `(ptr, len)` pairs of an iovec array, or `FAULT`/`INVAL`.
fn iovecs(caller: &Caller<'_, HostState>, iovs: i32, count: i32) -> Result<Vec<(u32, u32)>, i32> {
    let count = count as u32;
    if count > MAX_IOVS {
        return Err(errno::INVAL);
    }
    let raw = read(caller, iovs, count as usize * 8)?;
    Ok(raw.chunks_exact(8).map(|c| (u32_at(c, 0), u32_at(c, 4))).collect())
}

fn with_errno(f: impl FnOnce() -> Result<(), i32>) -> i32 {
    match f() {
        Ok(()) => errno::SUCCESS,
        Err(e) => e,
    }
}

/// Appends stdout/stderr bytes to the fd's line buffer and logs every completed line.
fn push_output(state: &mut HostState, fd: i32, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        let (piece, rest, complete) = match bytes.iter().position(|&b| b == b'\n') {
            Some(i) => (&bytes[..i], &bytes[i + 1..], true),
            None => (bytes, &[][..], false),
        };
        let buf = if fd == 1 { &mut state.stdio.stdout } else { &mut state.stdio.stderr };
        // Beyond a log line's length the bytes are dropped, so a newline-free flood costs nothing.
        let room = MAX_LINE.saturating_sub(buf.len());
        buf.extend_from_slice(&piece[..piece.len().min(room)]);
        if complete {
            emit_line(state, fd);
        }
        bytes = rest;
    }
}

/// Logs the fd's buffered line: stdout at info; stderr at warn, except the Go runtime's
/// `panic: ` (a panic, as `gather.log` level 4) and `fatal error: ` (an error) lines.
fn emit_line(state: &mut HostState, fd: i32) {
    let buf = std::mem::take(if fd == 1 { &mut state.stdio.stdout } else { &mut state.stdio.stderr });
    let line = String::from_utf8_lossy(&buf);
    let line = line.trim_end_matches('\r');
    if line.trim().is_empty() {
        return;
    }
    let lvl = match fd {
        1 => level::INFO,
        _ if line.starts_with("panic: ") => level::PANIC,
        _ if line.starts_with("fatal error: ") => level::ERROR,
        _ => level::WARN,
    };
    state.log(lvl, line);
}

/// Logs what is left in the stdout/stderr line buffers (a last line without a newline).
pub fn flush(state: &mut HostState) {
    for fd in [1, 2] {
        emit_line(state, fd);
    }
}

/// Nanoseconds on a WASI clock: 0 realtime, 1 monotonic (from a process-wide origin).
fn now_ns(clock: u32) -> Option<u64> {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    match clock {
        0 => Some(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).ok()?.as_nanos() as u64),
        1 => Some(ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64),
        _ => None,
    }
}

/// `poll_oneoff`: answers fd subscriptions at once (`BADF` except stdout/stderr, which are
/// always writable) and otherwise sleeps until the earliest clock subscription, but never past
/// the deadline (the run ends `deadline`) or a shutdown (`cancelled`).
fn poll_oneoff(
    caller: &mut Caller<'_, HostState>,
    cancelled: &AtomicBool,
    subs: i32,
    events: i32,
    count: i32,
    nevents: i32,
) -> Result<i32, wasmi::Error> {
    let count = count as u32;
    if count == 0 || count > MAX_SUBSCRIPTIONS {
        return Ok(errno::INVAL);
    }
    let raw = match read(caller, subs, count as usize * 48) {
        Ok(r) => r,
        Err(e) => return Ok(e),
    };
    // (userdata, error, type) of each event to deliver; clocks wait until their time.
    let mut ready: Vec<(u64, u16, u8)> = Vec::new();
    let mut clocks: Vec<(u64, Instant)> = Vec::new();
    let now = Instant::now();
    let deadline = caller.data().deadline;
    for sub in raw.chunks_exact(48) {
        let userdata = u64_at(sub, 0);
        match sub[8] {
            0 => {
                let (clock, timeout, abstime) = (u32_at(sub, 16), u64_at(sub, 24), u16::from_le_bytes([sub[40], sub[41]]) & 1 == 1);
                let Some(current) = now_ns(clock) else {
                    ready.push((userdata, errno::INVAL as u16, 0));
                    continue;
                };
                let wait = if abstime { timeout.saturating_sub(current) } else { timeout };
                // Past the deadline is as good as forever: the sleep ends there either way.
                let wake = now.checked_add(Duration::from_nanos(wait)).filter(|w| *w <= deadline);
                clocks.push((userdata, wake.unwrap_or(deadline + SLEEP_SLICE)));
            }
            kind @ (1 | 2) => {
                let fd = u32_at(sub, 16);
                let writable = kind == 2 && (fd == 1 || fd == 2);
                ready.push((userdata, if writable { 0 } else { errno::BADF as u16 }, kind));
            }
            _ => return Ok(errno::INVAL),
        }
    }
    if ready.is_empty() {
        let wake = clocks.iter().map(|c| c.1).min().expect("at least one subscription");
        loop {
            if cancelled.load(Ordering::Relaxed) {
                return Err(wasmi::Error::host(Stopped(ErrorKind::Cancelled)));
            }
            let now = Instant::now();
            if now >= wake {
                break;
            }
            if now >= deadline {
                return Err(wasmi::Error::host(Stopped(ErrorKind::Deadline)));
            }
            std::thread::sleep((wake.min(deadline) - now).min(SLEEP_SLICE));
        }
        let now = Instant::now();
        ready.extend(clocks.iter().filter(|c| c.1 <= now).map(|c| (c.0, 0, 0)));
    }
    let mut out = vec![0u8; ready.len() * 32];
    for (event, (userdata, error, kind)) in out.chunks_exact_mut(32).zip(&ready) {
        event[0..8].copy_from_slice(&userdata.to_le_bytes());
        event[8..10].copy_from_slice(&error.to_le_bytes());
        event[10] = *kind;
    }
    Ok(with_errno(|| {
        write(caller, events, &out)?;
        write(caller, nevents, &(ready.len() as u32).to_le_bytes())
    }))
}

/// Adds the WASI subset to `linker`. `cancelled` is the sandbox's shutdown flag, which a
/// sleeping `poll_oneoff` watches.
pub fn add_to_linker(linker: &mut Linker<HostState>, cancelled: Arc<AtomicBool>) {
    let m = MODULE;
    let ok = "each WASI function is defined once";
    // Arguments and the environment are empty: a gatherer's input is its config (ABI §9).
    for name in ["args_sizes_get", "environ_sizes_get"] {
        linker
            .func_wrap(m, name, |mut caller: Caller<'_, HostState>, count: i32, size: i32| -> i32 {
                with_errno(|| {
                    write(&mut caller, count, &0u32.to_le_bytes())?;
                    write(&mut caller, size, &0u32.to_le_bytes())
                })
            })
            .expect(ok);
    }
    for name in ["args_get", "environ_get"] {
        linker.func_wrap(m, name, |_: Caller<'_, HostState>, _list: i32, _buf: i32| -> i32 { errno::SUCCESS }).expect(ok);
    }
    linker
        .func_wrap(m, "clock_time_get", |mut caller: Caller<'_, HostState>, clock: i32, _precision: i64, out: i32| -> i32 {
            match now_ns(clock as u32) {
                Some(ns) => with_errno(|| write(&mut caller, out, &ns.to_le_bytes())),
                None => errno::INVAL,
            }
        })
        .expect(ok);
    linker
        .func_wrap(m, "random_get", |mut caller: Caller<'_, HostState>, buf: i32, len: i32| -> i32 {
            let Some(memory) = memory(&caller) else { return errno::FAULT };
            let start = buf as u32 as usize;
            let Some(dst) = start.checked_add(len as u32 as usize).and_then(|end| memory.data_mut(&mut caller).get_mut(start..end))
            else {
                return errno::FAULT;
            };
            if getrandom::fill(dst).is_ok() { errno::SUCCESS } else { errno::IO }
        })
        .expect(ok);
    linker
        .func_wrap(m, "fd_write", |mut caller: Caller<'_, HostState>, fd: i32, iovs: i32, count: i32, written: i32| -> i32 {
            if fd != 1 && fd != 2 {
                return errno::BADF;
            }
            let iovs = match iovecs(&caller, iovs, count) {
                Ok(v) => v,
                Err(e) => return e,
            };
            let Some(memory) = memory(&caller) else { return errno::FAULT };
            // Every iovec is checked before any byte is logged, so a fault writes nothing.
            let size = memory.data_size(&caller);
            if iovs.iter().any(|&(p, l)| (p as usize).checked_add(l as usize).is_none_or(|end| end > size)) {
                return errno::FAULT;
            }
            let (data, state) = memory.data_and_store_mut(&mut caller);
            let mut total: u32 = 0;
            for (p, l) in iovs {
                push_output(state, fd, &data[p as usize..p as usize + l as usize]);
                total = total.saturating_add(l);
            }
            with_errno(|| write(&mut caller, written, &total.to_le_bytes()))
        })
        .expect(ok);
    linker
        .func_wrap(m, "fd_read", |mut caller: Caller<'_, HostState>, fd: i32, iovs: i32, count: i32, nread: i32| -> i32 {
            if fd != 0 {
                return errno::BADF;
            }
            // stdin is empty: every read is at end of file.
            with_errno(|| {
                iovecs(&caller, iovs, count)?;
                write(&mut caller, nread, &0u32.to_le_bytes())
            })
        })
        .expect(ok);
    let stdio_or_badf = |fd: i32| if (0..=2).contains(&fd) { errno::NOTSUP } else { errno::BADF };
    linker.func_wrap(m, "fd_close", move |_: Caller<'_, HostState>, fd: i32| -> i32 { stdio_or_badf(fd) }).expect(ok);
    linker
        .func_wrap(m, "fd_fdstat_set_flags", move |_: Caller<'_, HostState>, fd: i32, _flags: i32| -> i32 { stdio_or_badf(fd) })
        .expect(ok);
    linker
        .func_wrap(m, "fd_fdstat_get", |mut caller: Caller<'_, HostState>, fd: i32, buf: i32| -> i32 {
            // fdstat: filetype u8, flags u16 at 2, rights_base u64 at 8, rights_inheriting u64 at 16.
            const CHARACTER_DEVICE: u8 = 2;
            const RIGHT_FD_READ: u64 = 1 << 1;
            const RIGHT_FD_WRITE: u64 = 1 << 6;
            let rights = match fd {
                0 => RIGHT_FD_READ,
                1 | 2 => RIGHT_FD_WRITE,
                _ => return errno::BADF,
            };
            let mut stat = [0u8; 24];
            stat[0] = CHARACTER_DEVICE;
            stat[8..16].copy_from_slice(&rights.to_le_bytes());
            with_errno(|| write(&mut caller, buf, &stat))
        })
        .expect(ok);
    // No preopens: the runtime's scan for preopened directories ends at once.
    linker.func_wrap(m, "fd_prestat_get", |_: Caller<'_, HostState>, _fd: i32, _buf: i32| -> i32 { errno::BADF }).expect(ok);
    linker
        .func_wrap(m, "fd_prestat_dir_name", |_: Caller<'_, HostState>, _fd: i32, _p: i32, _l: i32| -> i32 { errno::BADF })
        .expect(ok);
    linker
        .func_wrap(
            m,
            "poll_oneoff",
            move |mut caller: Caller<'_, HostState>, subs: i32, events: i32, count: i32, nevents: i32| -> Result<i32, wasmi::Error> {
                poll_oneoff(&mut caller, &cancelled, subs, events, count, nevents)
            },
        )
        .expect(ok);
    linker.func_wrap(m, "sched_yield", |_: Caller<'_, HostState>| -> i32 { errno::SUCCESS }).expect(ok);
    linker
        .func_wrap(m, "proc_exit", |_: Caller<'_, HostState>, code: i32| -> Result<(), wasmi::Error> {
            Err(wasmi::Error::host(Exit(code)))
        })
        .expect(ok);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_clocks_are_refused() {
        assert!(now_ns(0).is_some());
        assert!(now_ns(1).is_some());
        assert!(now_ns(2).is_none());
    }
}
