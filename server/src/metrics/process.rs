//! The standard `process_*` metrics (the names every Prometheus client
//! library uses, so stock dashboards work), read from `/proc/self` at
//! scrape time. Off Linux, or if `/proc` is unreadable, they are left out.
#![forbid(unsafe_code)]

use prometheus_client::{collector::Collector, encoding::DescriptorEncoder};

use super::collect::{counter, gauge};

/// Reads `/proc/self` on every scrape.
#[derive(Debug)]
pub(super) struct ProcessCollector;

/// What `/proc/self/stat` and `/proc/stat` tell.
#[derive(Debug, PartialEq)]
struct Stat {
    cpu_seconds: f64,
    threads: i64,
    start_time_seconds: f64,
    virtual_bytes: u64,
    resident_bytes: u64,
}

/// Parses `/proc/self/stat`; `btime` is the boot time (Unix seconds).
fn parse_stat(stat: &str, ticks: u64, page: u64, btime: u64) -> Option<Stat> {
    // The command name may hold spaces and parentheses; the fields after
    // the last ')' start with field 3 (state).
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    let ticks = ticks.max(1) as f64;
    Some(Stat {
        cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
        threads: field(20)? as i64,
        start_time_seconds: btime as f64 + field(22)? as f64 / ticks,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)?.saturating_mul(page),
    })
}

/// The `btime` line of `/proc/stat`.
fn boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

fn read_stat() -> Option<Stat> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let btime = boot_time(&std::fs::read_to_string("/proc/stat").ok()?)?;
    parse_stat(
        &stat,
        rustix::param::clock_ticks_per_second(),
        rustix::param::page_size() as u64,
        btime,
    )
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        if let Some(s) = read_stat() {
            let e = &mut encoder;
            counter(
                e,
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                s.cpu_seconds,
            )?;
            gauge(
                e,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                s.resident_bytes,
            )?;
            gauge(
                e,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                s.virtual_bytes,
            )?;
            gauge(
                e,
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                s.start_time_seconds,
            )?;
            gauge(e, "process_threads", "Number of OS threads.", s.threads)?;
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            // The directory handle itself is one of the entries.
            let open = fds.count().saturating_sub(1);
            gauge(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors.",
                open as u64,
            )?;
        }
        let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        if let Some(max) = nofile.current {
            gauge(
                &mut encoder,
                "process_max_fds",
                "Maximum number of open file descriptors.",
                max,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_taken_after_the_command_name() {
        // Field numbers as in proc(5); the name has a space and a ')'.
        let stat = "4242 (a b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 150 0 0 20 0 7 0 1000 123456789 300 18446744073709551615";
        let s = parse_stat(stat, 100, 4096, 1_700_000_000).expect("parses");
        assert_eq!(
            s,
            Stat {
                cpu_seconds: 4.0,
                threads: 7,
                start_time_seconds: 1_700_000_010.0,
                virtual_bytes: 123_456_789,
                resident_bytes: 300 * 4096,
            }
        );
    }

    #[test]
    fn boot_time_is_the_btime_line() {
        assert_eq!(
            boot_time("cpu 1 2\nbtime 1700000000\nprocesses 9\n"),
            Some(1_700_000_000)
        );
        assert_eq!(boot_time("cpu 1 2\n"), None);
    }

    #[test]
    fn this_process_is_readable() {
        let s = read_stat().expect("/proc/self/stat");
        assert!(s.threads >= 1 && s.resident_bytes > 0 && s.virtual_bytes > 0);
    }
}
