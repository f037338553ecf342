//! Every resource a client can ask for has a limit, and they all live here:
//! the defaults (derived from the memory cgroup, the file-descriptor limit
//! and `vm.max_map_count`, so one client cannot take the process down) and
//! the machine facts they are derived from.
#![forbid(unsafe_code)]

use std::time::Duration;

/// The server's limits. [`Limits::default`] derives them from the machine;
/// `mmapd`'s flags override each one.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest gRPC message in either direction.
    pub max_message_size: usize,
    /// ReadStream chunk when the client asks for 0.
    pub default_chunk: usize,
    /// Largest ReadStream chunk.
    pub max_chunk: usize,
    /// Total length of anonymous regions (memfds, which are RAM) and of
    /// private copies (whose written pages become RAM).
    pub max_anonymous_bytes: u64,
    /// Largest length of one mapping, at Map and at Resize.
    pub max_mapping_length: u64,
    /// Live sessions, server-wide.
    pub max_sessions: u32,
    /// Open handles per session.
    pub max_handles_per_session: u32,
    /// Live mappings, server-wide; each holds one file descriptor, so this
    /// stays below the fd limit with room left for connections.
    pub max_mappings: u32,
    /// Memory areas (VMAs) that mappings and their madvise splits may use,
    /// a share of `vm.max_map_count`; the rest is the allocator's.
    pub max_map_areas: u32,
    /// Longest mapping name in bytes.
    pub max_name_length: u32,
    /// Longest client name in bytes.
    pub max_client_name_length: u32,
    /// Longest path in bytes (Linux's PATH_MAX).
    pub max_path_length: u32,
    /// Bytes of unary requests in flight, server-wide; more waits.
    pub max_inflight_bytes: u64,
    /// Concurrent RPCs (HTTP/2 streams) per connection.
    pub max_streams_per_connection: u32,
    /// Bytes ReadStreams may hold buffered, server-wide; more waits.
    pub max_stream_buffer_bytes: u64,
    /// Open connections; more are closed as soon as accepted.
    pub max_connections: u32,
    /// A connection with no RPC for this long is closed.
    pub idle_timeout: Duration,
    /// Interval of HTTP/2 keepalive pings.
    pub keepalive_interval: Duration,
    /// How long a ping may go unanswered before the connection is dropped.
    pub keepalive_timeout: Duration,
    /// Largest page of ListSessions, ListMappings and Files.List.
    pub max_page_size: u32,
    /// Deepest folder a recursive List or Remove walks into: a walk holds
    /// a folder fd and a stack frame per level, and a client can nest
    /// folders without end (mkdir -p, then mv the top into the bottom).
    pub max_tree_depth: u32,
}

/// Facts about the machine the defaults are derived from.
#[derive(Debug, Clone, Copy)]
pub struct Machine {
    /// Memory the process may use: the cgroup limit, else physical RAM.
    pub memory: u64,
    /// The hard RLIMIT_NOFILE (the soft limit is raised to it at start).
    pub nofile: u64,
    /// `vm.max_map_count`.
    pub max_map_count: u64,
}

impl Machine {
    /// Reads the facts from `/sys`, `/proc` and getrlimit, with
    /// conservative fallbacks where they cannot be read.
    pub fn detect() -> Machine {
        Machine {
            memory: memory_limit().unwrap_or(1 << 30),
            nofile: rustix::process::getrlimit(rustix::process::Resource::Nofile)
                .maximum
                .unwrap_or(1 << 20),
            max_map_count: read_number("/proc/sys/vm/max_map_count").unwrap_or(65530),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::for_machine(Machine::detect())
    }
}

/// Descriptors kept back for the listener, logs, the blocking pool's files
/// and anything else that is not a mapping or a connection.
const FD_RESERVE: u64 = 64;

impl Limits {
    /// The defaults for a machine: with a 1 GiB cgroup, half of it for
    /// anonymous memory, an eighth each for unary requests and stream
    /// buffers, the rest for the process itself and the page cache.
    pub fn for_machine(m: Machine) -> Limits {
        let max_message_size: usize = 64 << 20;
        let max_chunk: usize = 4 << 20;
        let max_connections = (m.nofile / 4).clamp(16, 10_000);
        let max_mappings = m
            .nofile
            .saturating_sub(max_connections + FD_RESERVE)
            .clamp(16, 1 << 20);
        Limits {
            max_message_size,
            default_chunk: 256 << 10,
            max_chunk,
            max_anonymous_bytes: m.memory / 2,
            max_mapping_length: 1 << 40,
            max_sessions: 10_000,
            max_handles_per_session: 1_024,
            max_mappings: max_mappings as u32,
            max_map_areas: (m.max_map_count / 2).clamp(64, u32::MAX as u64) as u32,
            max_name_length: 1_024,
            max_client_name_length: 1_024,
            max_path_length: 4_096,
            max_inflight_bytes: (m.memory / 8).max(2 * max_message_size as u64),
            max_streams_per_connection: 128,
            max_stream_buffer_bytes: (m.memory / 8).max(4 * max_chunk as u64),
            max_connections: max_connections as u32,
            idle_timeout: Duration::from_secs(300),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            max_page_size: 1_000,
            max_tree_depth: 256,
        }
    }

    /// The chunk size a ReadStream request gets.
    pub fn chunk_size(&self, asked: u32) -> usize {
        let chunk = match asked {
            0 => self.default_chunk,
            n => (n as usize).min(self.max_chunk),
        };
        // A chunk must fit in one message whatever the flags say, or the
        // encoder would refuse it mid-stream.
        chunk.min(self.max_reply() as usize).max(1)
    }

    /// Largest payload a unary reply may carry, leaving room for framing.
    pub fn max_reply(&self) -> u64 {
        self.max_message_size.saturating_sub(1024) as u64
    }
}

/// The memory cgroup's limit (v2, then v1), else physical RAM.
fn memory_limit() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for line in cgroup.lines() {
        // v2: "0::/path"; v1: "N:memory:/path".
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let file = match controllers {
            "" => format!("/sys/fs/cgroup{path}/memory.max"),
            c if c.split(',').any(|c| c == "memory") => {
                format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")
            }
            _ => continue,
        };
        // Inside a container the cgroup path is often not mounted as seen
        // from the host; the namespace root then holds the limit.
        let root = match controllers {
            "" => "/sys/fs/cgroup/memory.max",
            _ => "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        };
        if let Some(limit) = read_number(&file).or_else(|| read_number(root))
            // v1 reports "no limit" as a huge page-aligned number.
            && limit < (1 << 60)
        {
            return Some(limit.min(physical_memory().unwrap_or(u64::MAX)));
        }
    }
    physical_memory()
}

fn physical_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A file holding one number ("max" and unreadable files are `None`).
fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Raises the soft RLIMIT_NOFILE to the hard limit, so the fd budget the
/// limits were derived from is really there. Returns the new soft limit.
pub fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let current = getrlimit(Resource::Nofile);
    if current.current != current.maximum {
        let raised = Rlimit {
            current: current.maximum,
            maximum: current.maximum,
        };
        if let Err(err) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(%err, "could not raise the open-file limit");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_for_a_one_gib_container_leave_headroom() {
        let l = Limits::for_machine(Machine {
            memory: 1 << 30,
            nofile: 1024,
            max_map_count: 65530,
        });
        assert_eq!(l.max_anonymous_bytes, 512 << 20);
        assert_eq!(l.max_inflight_bytes, 128 << 20);
        assert_eq!(l.max_stream_buffer_bytes, 128 << 20);
        // Mappings and connections together stay under the fd limit.
        assert_eq!(l.max_connections, 256);
        assert!(u64::from(l.max_mappings + l.max_connections) + FD_RESERVE <= 1024);
        assert_eq!(l.max_map_areas, 32765);
    }

    #[test]
    fn chunks_fit_in_a_message_whatever_the_flags_say() {
        let mut l = Limits::for_machine(Machine::detect());
        assert_eq!(l.chunk_size(0), l.default_chunk);
        assert_eq!(l.chunk_size(u32::MAX), l.max_chunk);
        l.max_chunk = 64 << 20;
        l.max_message_size = 1 << 20;
        assert_eq!(l.chunk_size(u32::MAX) as u64, l.max_reply());
    }

    #[test]
    fn a_machine_is_detected() {
        let m = Machine::detect();
        assert!(m.memory > 0 && m.nofile > 0 && m.max_map_count > 0);
    }
}
