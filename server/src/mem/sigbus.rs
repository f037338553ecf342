//! The SIGBUS guard of [`super`], after systemd's `sigbus.c`: a thread marks
//! the region it is about to access; a fault inside that region marks it
//! broken and maps a zero page over the faulting page so the access can
//! finish; any other SIGBUS is a real bug and still kills the process.
//! Part of `mem`, the one module allowed `unsafe`.
#![allow(unsafe_code)]

use std::{
    cell::Cell,
    io, ptr,
    sync::{
        Once, OnceLock,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, compiler_fence},
    },
};

/// Faults the handler caught, for `/metrics`. SIGBUS handling is
/// process-wide, so this count is too (all servers of a process share it);
/// a lock-free atomic add is async-signal-safe.
static FAULTS_CAUGHT: AtomicU64 = AtomicU64::new(0);

/// Faults caught in guarded accesses since the process started.
pub(crate) fn faults_caught() -> u64 {
    FAULTS_CAUGHT.load(Ordering::Relaxed)
}

/// The page size, read by the handler (which may not call out for it).
static PAGE: AtomicUsize = AtomicUsize::new(4096);

/// The region a thread is accessing, for the SIGBUS handler.
#[derive(Clone, Copy)]
pub(super) struct Guard {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) broken: *const AtomicBool,
}

impl Guard {
    const NONE: Guard = Guard {
        start: 0,
        end: 0,
        broken: ptr::null(),
    };
}

thread_local! {
    // Const-initialised and without Drop, so reading it in a signal
    // handler is a plain TLS load: no lazy init, no allocation.
    static GUARD: Cell<Guard> = const { Cell::new(Guard::NONE) };
}

/// Clears the thread's guard on scope exit, even on unwinding.
struct GuardScope;

impl Drop for GuardScope {
    fn drop(&mut self) {
        compiler_fence(Ordering::SeqCst);
        GUARD.with(|g| g.set(Guard::NONE));
    }
}

/// Runs `access` with `guard` set for this thread, so a SIGBUS inside the
/// guarded range marks it broken instead of killing the process. The
/// fences keep the compiler from moving the mapped-memory accesses outside
/// the window where the handler knows about them.
pub(super) fn with_guard<R>(guard: Guard, access: impl FnOnce() -> R) -> R {
    GUARD.with(|g| g.set(guard));
    let _reset = GuardScope;
    compiler_fence(Ordering::SeqCst);
    access()
}

/// The SIGBUS disposition before ours, restored for faults that are not
/// ours so they crash as they would have.
static PREVIOUS_SIGBUS: OnceLock<libc::sigaction> = OnceLock::new();

extern "C" fn on_sigbus(_signal: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // Only atomics, a TLS load and raw syscalls below: async-signal-safe.
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers, and
    // si_addr is the faulting address for SIGBUS.
    let addr = unsafe { (*info).si_addr() } as usize;
    let guard = GUARD.with(Cell::get);
    if !guard.broken.is_null() && (guard.start..guard.end).contains(&addr) {
        FAULTS_CAUGHT.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the guard is set only inside `with_guard`, whose callers
        // hold the flag's owner (`&Region`, or the view area's `Arc`) for
        // the whole call, so the flag it points to is alive. The errno location is this
        // thread's; saving it keeps the interrupted code's errno intact.
        unsafe {
            (*guard.broken).store(true, Ordering::SeqCst);
            let errno = *libc::__errno_location();
            let zero_map = |at: usize, len: usize| {
                libc::mmap(
                    at as *mut libc::c_void,
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            // Only the faulting page: other views of the same area may
            // still be copying pages that are fine (below a truncation),
            // and must keep reading their bytes, not zeros. Each further
            // missing page faults here in turn (sequential zero pages
            // merge into one kernel area). Should that split need an area
            // the kernel no longer has, the whole range is replaced
            // instead, which needs none.
            let page = PAGE.load(Ordering::Relaxed);
            let mut zeros = zero_map(addr & !(page - 1), page);
            if zeros == libc::MAP_FAILED {
                zeros = zero_map(guard.start, guard.end - guard.start);
            }
            *libc::__errno_location() = errno;
            if zeros != libc::MAP_FAILED {
                // Returning re-runs the access, now on the zero pages.
                return;
            }
        }
    }
    // Not a guarded access (or no zero page could be mapped): a real bug.
    // Put the old disposition back; the access re-faults and crashes.
    let default = default_sigaction();
    let previous = PREVIOUS_SIGBUS.get().unwrap_or(&default);
    // SAFETY: sigaction is async-signal-safe; `previous` is a valid struct.
    unsafe { libc::sigaction(libc::SIGBUS, previous, ptr::null_mut()) };
}

fn default_sigaction() -> libc::sigaction {
    // SAFETY: all-zero is a valid sigaction: SIG_DFL, empty mask, no flags.
    unsafe { std::mem::zeroed() }
}

/// Process-wide setup, once: the SIGBUS guard, SIGXFSZ ignored (a file-size
/// limit then fails the write with EFBIG instead of killing the server),
/// and a fixed malloc mmap threshold (glibc's dynamic one would move large
/// freed stream buffers onto the heap, where they are never returned).
pub(crate) fn setup_process() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        PAGE.store(rustix::param::page_size(), Ordering::Relaxed);
        let mut previous = default_sigaction();
        let mut action = default_sigaction();
        let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = on_sigbus;
        action.sa_sigaction = handler as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // SAFETY: plain sigaction/signal calls with valid structs; the
        // handler only does async-signal-safe work.
        unsafe {
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(libc::SIGBUS, ptr::null(), &mut previous) == 0 {
                let _ = PREVIOUS_SIGBUS.set(previous);
            }
            if libc::sigaction(libc::SIGBUS, &action, ptr::null_mut()) != 0 {
                tracing::warn!(err = %io::Error::last_os_error(), "cannot install the SIGBUS guard");
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only tunes glibc's allocator; called before the
        // server allocates much, and glibc makes it thread-safe.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 20);
        }
    });
}
