//! The process's anonymous-memory peak while a stream runs, sampled from
//! `/proc/self/status` (RssAnon) every 2 ms by a side thread. Server and
//! client share the process, so the growth counts both: an upper bound on
//! the server's own.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::Duration,
};

/// RssAnon in bytes, or 0 where the kernel does not report it.
pub fn rss_anon() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("RssAnon:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// Samples RssAnon until [`Sampler::growth`] is called.
pub struct Sampler {
    start: u64,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling.
    pub fn start() -> Sampler {
        let start = rss_anon();
        let peak = Arc::new(AtomicU64::new(start));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak, stop) = (peak.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_anon(), Ordering::Relaxed);
                    thread::sleep(Duration::from_millis(2));
                }
            })
        };
        Sampler {
            start,
            peak,
            stop,
            thread,
        }
    }

    /// Stops sampling; the peak's growth over the start, in bytes.
    pub fn growth(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().ok();
        self.peak
            .load(Ordering::Relaxed)
            .max(rss_anon())
            .saturating_sub(self.start)
    }
}
