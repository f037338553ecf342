//! The fuzzer's state: its clients, the pool of sessions and handles it
//! draws from (live, closed, foreign and made-up ones), and the recording of
//! every call into the report.

use std::{fmt, future::Future, time::Duration};

use mmapd::pb::{
    self, admin_client::AdminClient, files_client::FilesClient, mmap_client::MmapClient,
};
use tonic::{Response, Status, Streaming, client::Grpc, transport::Channel};
use tonic_health::pb::health_client::HealthClient;

use crate::{
    report::{Call, Expect, Outcome, Report},
    values::Gen,
};

/// How long one call may take before the server counts as stuck.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Live handles kept; older ones are closed.
const MAX_HANDLES: usize = 24;
/// Live sessions of our own kept; older ones are closed.
const MAX_SESSIONS: usize = 4;
/// Stream items read before a stream is dropped (a cancel).
pub const MAX_ITEMS: usize = 8;

/// A handle the fuzzer got from a successful Map.
#[derive(Debug, Clone)]
pub struct Held {
    pub id: String,
    /// The mapping's length as last seen.
    pub len: i64,
    pub session: String,
}

/// Sessions and handles to draw from.
#[derive(Debug, Default)]
pub struct Pool {
    /// Our live sessions (on the main connection).
    pub sessions: Vec<String>,
    /// A live session opened on another connection; its handles are the
    /// "foreign" ones.
    pub foreign: String,
    pub handles: Vec<Held>,
    pub closed: Vec<String>,
    pub dead_sessions: Vec<String>,
}

/// Everything one fuzz run holds.
pub struct Fuzzer {
    pub g: Gen,
    pub c: MmapClient<Channel>,
    pub admin: AdminClient<Channel>,
    pub health: HealthClient<Channel>,
    pub files: FilesClient<Channel>,
    pub raw: Grpc<Channel>,
    /// The other connection, owner of the foreign session.
    pub other: MmapClient<Channel>,
    pub pool: Pool,
    pub page: i64,
    /// `Some(limit)` when the server was seen to accept mappings over
    /// `max_mapping_length`: requests that would really allocate more than
    /// that are then not sent, so the run cannot exhaust the machine.
    pub guard: Option<u64>,
    /// Requests not sent because of the guard.
    pub guarded: usize,
    /// A writable anonymous handle outside the pool, in its own session:
    /// the good first chunk of over-limit WriteStreams.
    pub sink: String,
    pub sink_session: String,
    /// A handle most calls go to for a while, after a valid sequence made
    /// it, so that calls reach the code past the argument checks.
    pub focus: Option<(String, i64)>,
    /// Counter for unique file names.
    pub serial: usize,
    pub report: Report,
    /// Print every call before it is sent (`MMAPD_FUZZ_TRACE=1`).
    pub trace: bool,
}

/// A `Debug` rendering cut at `max` bytes (formatting stops there, so a
/// 1 MiB payload costs nothing), with long runs of one character (the
/// fuzzer's long strings) shown as `{N×'c'}`.
pub fn show(value: &dyn fmt::Debug, max: usize) -> String {
    struct Bounded(String, usize);
    impl fmt::Write for Bounded {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let mut chars = s.chars().peekable();
            while let Some(c) = chars.next() {
                let mut run = 1;
                while chars.next_if_eq(&c).is_some() {
                    run += 1;
                }
                if self.0.len() >= self.1 {
                    self.0.push('…');
                    return Err(fmt::Error);
                }
                if run > 8 {
                    self.0.push_str(&format!("{{{run}×{c:?}}}"));
                } else {
                    self.0.extend(std::iter::repeat_n(c, run));
                }
            }
            Ok(())
        }
    }
    let mut out = Bounded(String::new(), max);
    let _ = fmt::write(&mut out, format_args!("{value:?}"));
    out.0
}

/// Awaits a unary call with the call timeout.
pub async fn answer<T>(
    call: impl Future<Output = Result<Response<T>, Status>>,
) -> (Outcome, Option<T>) {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Err(_) => (Outcome::Timeout, None),
        Ok(Err(status)) => (Outcome::Err(status), None),
        Ok(Ok(reply)) => (Outcome::Ok, Some(reply.into_inner())),
    }
}

/// Awaits a server stream and reads up to [`MAX_ITEMS`] items (then drops
/// it, which cancels it); returns the items read.
pub async fn drain<T>(
    call: impl Future<Output = Result<Response<Streaming<T>>, Status>>,
) -> (Outcome, Vec<T>) {
    let read = async {
        let mut stream = call.await?.into_inner();
        let mut items = Vec::new();
        while items.len() < MAX_ITEMS {
            match stream.message().await? {
                Some(item) => items.push(item),
                None => break,
            }
        }
        Ok::<_, Status>(items)
    };
    match tokio::time::timeout(CALL_TIMEOUT, read).await {
        Err(_) => (Outcome::Timeout, Vec::new()),
        Ok(Err(status)) => (Outcome::Err(status), Vec::new()),
        Ok(Ok(items)) => (Outcome::Ok, items),
    }
}

impl Fuzzer {
    /// Describes a call about to be sent (and prints it when tracing).
    pub fn call(
        &self,
        kind: &'static str,
        method: &str,
        request: &dyn fmt::Debug,
        expect: Expect,
    ) -> Call {
        let call = Call {
            kind,
            method: method.to_owned(),
            request: show(request, 400),
            expect,
            sent: std::time::Instant::now(),
        };
        if self.trace {
            println!(
                "fuzz #{} {kind} {method} {}",
                self.report.calls, call.request
            );
        }
        call
    }

    /// Checks and counts an answer.
    pub fn record(&mut self, call: &Call, outcome: &Outcome) -> bool {
        let index = self.report.calls;
        if self.trace {
            println!("  -> {}", crate::report::describe(outcome));
        }
        self.report.check(index, call, outcome)
    }

    /// A handle id: live (ours or foreign), closed, or made up; and the
    /// length of its mapping as far as the fuzzer knows.
    pub fn handle(&mut self) -> (String, i64) {
        let page = self.page;
        let foreign: Vec<Held> = self
            .pool
            .handles
            .iter()
            .filter(|h| h.session == self.pool.foreign)
            .cloned()
            .collect();
        if let Some(focus) = self.focus.clone()
            && self.g.chance(0.8)
        {
            return focus;
        }
        match self.g.below(10) {
            0..=5 if !self.pool.handles.is_empty() => {
                let h = self.g.pick(&self.pool.handles);
                (h.id, h.len)
            }
            6 if !foreign.is_empty() => {
                let h = self.g.pick(&foreign);
                (h.id, h.len)
            }
            7 if !self.pool.closed.is_empty() => (self.g.pick(&self.pool.closed), page),
            8 => (format!("{:032x}", self.g.bits()), page),
            _ => (self.g.string(), page),
        }
    }

    /// A session id: ours, the foreign one, a closed one, or made up.
    pub fn session(&mut self) -> String {
        match self.g.below(10) {
            0..=5 if !self.pool.sessions.is_empty() => self.g.pick(&self.pool.sessions),
            6 => self.pool.foreign.clone(),
            7 if !self.pool.dead_sessions.is_empty() => self.g.pick(&self.pool.dead_sessions),
            _ => self.g.string(),
        }
    }

    /// One of our live sessions (opening one if none is left).
    pub async fn own_session(&mut self) -> String {
        self.tidy().await;
        self.pool.sessions.last().cloned().unwrap_or_default()
    }

    /// Notes a handle that Map returned.
    pub fn mapped(&mut self, session: &str, reply: &pb::MapResponse) {
        self.pool.handles.push(Held {
            id: reply.handle.clone(),
            len: reply.length as i64,
            session: session.to_owned(),
        });
    }

    /// Notes a handle that is closed now.
    pub fn closed(&mut self, id: &str) {
        self.pool.handles.retain(|h| h.id != id);
        self.pool.closed.push(id.to_owned());
    }

    /// Notes a session that is gone, with its handles.
    pub fn session_closed(&mut self, id: &str) {
        let gone: Vec<String> = self
            .pool
            .handles
            .iter()
            .filter(|h| h.session == id)
            .map(|h| h.id.clone())
            .collect();
        for h in gone {
            self.closed(&h);
        }
        self.pool.sessions.retain(|s| s != id);
        if self.pool.foreign == id {
            self.pool.foreign.clear();
        }
        self.pool.dead_sessions.push(id.to_owned());
    }

    /// Notes a new length after a successful Resize.
    pub fn resized(&mut self, id: &str, len: i64) {
        for h in self.pool.handles.iter_mut().filter(|h| h.id == id) {
            h.len = len;
        }
        if let Some(focus) = self.focus.as_mut().filter(|f| f.0 == id) {
            focus.1 = len;
        }
    }

    /// Keeps the pool bounded and non-empty: closes the oldest handles and
    /// sessions past the caps, and opens sessions where none is left. These
    /// calls are checked like any other.
    pub async fn tidy(&mut self) {
        while self.pool.handles.len() > MAX_HANDLES {
            let id = self.pool.handles[0].id.clone();
            let req = pb::CloseRequest { handle: id.clone() };
            let call = self.call("tidy", "Mmap/Close", &req, Expect::Clean);
            let (outcome, _) = answer(self.c.close(req)).await;
            self.record(&call, &outcome);
            self.closed(&id);
        }
        while self.pool.sessions.len() > MAX_SESSIONS {
            let id = self.pool.sessions[0].clone();
            let req = pb::CloseSessionRequest {
                session_id: id.clone(),
            };
            let call = self.call("tidy", "Mmap/CloseSession", &req, Expect::Clean);
            let (outcome, _) = answer(self.c.close_session(req)).await;
            self.record(&call, &outcome);
            self.session_closed(&id);
        }
        if self.pool.sessions.is_empty()
            && let Some(id) = self.open("tidy", false).await
        {
            self.pool.sessions.push(id);
        }
        if self.pool.foreign.is_empty()
            && let Some(id) = self.open("tidy", true).await
        {
            self.pool.foreign = id;
        }
        self.pool
            .closed
            .drain(..self.pool.closed.len().saturating_sub(64));
        self.pool
            .dead_sessions
            .drain(..self.pool.dead_sessions.len().saturating_sub(16));
    }

    /// Opens a session with the default TTL, on the other connection when
    /// `foreign`.
    async fn open(&mut self, kind: &'static str, foreign: bool) -> Option<String> {
        let req = pb::OpenSessionRequest {
            client_name: "fuzz".into(),
            ttl_seconds: 0,
        };
        let call = self.call(kind, "Mmap/OpenSession", &req, Expect::Clean);
        let client = if foreign {
            &mut self.other
        } else {
            &mut self.c
        };
        let (outcome, reply) = answer(client.open_session(req)).await;
        self.record(&call, &outcome);
        reply.map(|r| r.session_id)
    }

    /// Whether `len` bytes may be asked for: false when the server is
    /// known not to enforce `max_mapping_length` and `len` is over it.
    pub fn allowed(&mut self, len: u64) -> bool {
        match self.guard {
            Some(limit) if len > limit => {
                self.guarded += 1;
                false
            }
            _ => true,
        }
    }
}
