//! Well-formed requests with random field values, one per RPC: the typed
//! half of the fuzzer. Successful answers feed the pool (new handles and
//! sessions, closes, resizes) so later calls reach deeper code.

use futures::StreamExt;
use mmapd::pb;
use tonic_health::pb::HealthCheckRequest;

use crate::{
    report::Expect,
    state::{Fuzzer, answer, drain},
    values::slice_count,
};

/// Sends one typed request, recording it; evaluates to the reply if any.
macro_rules! send {
    ($fz:ident, $method:literal, $client:ident . $rpc:ident ($req:expr)) => {{
        let req = $req;
        let call = $fz.call("typed", $method, &req, Expect::Clean);
        let (outcome, reply) = answer($fz.$client.$rpc(req)).await;
        $fz.record(&call, &outcome);
        reply
    }};
}

pub(crate) use send;

/// Sends a request that only names a handle.
macro_rules! by_handle {
    ($fz:ident, $method:literal, $rpc:ident, $ty:ident) => {{
        let (handle, _) = $fz.handle();
        send!($fz, $method, c.$rpc(pb::$ty { handle }));
    }};
}

impl Fuzzer {
    /// One random well-formed call to RPC number `m` (as in
    /// [`crate::raw::METHODS`]).
    pub async fn typed(&mut self, m: usize) {
        match m {
            0 => {
                let req = pb::OpenSessionRequest {
                    client_name: self.g.string(),
                    ttl_seconds: self.g.u32(),
                };
                let keep = req.ttl_seconds == 0 || req.ttl_seconds >= 600;
                if let Some(r) = send!(self, "Mmap/OpenSession", c.open_session(req))
                    && keep
                {
                    self.pool.sessions.push(r.session_id);
                }
            }
            1 => {
                let session_id = self.session();
                send!(
                    self,
                    "Mmap/KeepAlive",
                    c.keep_alive(pb::KeepAliveRequest { session_id })
                );
            }
            2 => {
                // Closing live sessions too often would keep the pool empty.
                let session_id = if self.g.chance(0.3) {
                    self.session()
                } else {
                    self.g.string()
                };
                let req = pb::CloseSessionRequest {
                    session_id: session_id.clone(),
                };
                if send!(self, "Mmap/CloseSession", c.close_session(req)).is_some() {
                    self.session_closed(&session_id);
                }
            }
            3 => self.map().await,
            4 => {
                let (handle, _) = self.handle();
                let req = pb::CloseRequest {
                    handle: handle.clone(),
                };
                if send!(self, "Mmap/Close", c.close(req)).is_some() {
                    self.closed(&handle);
                }
            }
            5 => by_handle!(self, "Mmap/Stat", stat, StatRequest),
            6 => {
                let (handle, len) = self.handle();
                let n = self.g.opt_int(len);
                send!(self, "Mmap/Read", c.read(pb::ReadRequest { handle, n }));
            }
            7 => by_handle!(self, "Mmap/ReadByte", read_byte, ReadByteRequest),
            8 => by_handle!(self, "Mmap/ReadLine", read_line, ReadLineRequest),
            9 => {
                let (handle, _) = self.handle();
                let data = self.g.bytes();
                send!(
                    self,
                    "Mmap/Write",
                    c.write(pb::WriteRequest { handle, data })
                );
            }
            10 => {
                let (handle, len) = self.handle();
                let value = match self.g.below(3) {
                    0 => self.g.pick(&[0, 255, 256, -1, 127, 128]),
                    _ => self.g.int(len),
                };
                let req = pb::WriteByteRequest { handle, value };
                send!(self, "Mmap/WriteByte", c.write_byte(req));
            }
            11 => {
                let (handle, len) = self.handle();
                let req = pb::SeekRequest {
                    handle,
                    pos: self.g.int(len),
                    whence: self.g.whence(),
                };
                send!(self, "Mmap/Seek", c.seek(req));
            }
            12 => by_handle!(self, "Mmap/Tell", tell, TellRequest),
            13 => by_handle!(self, "Mmap/Size", size, SizeRequest),
            14 => by_handle!(self, "Mmap/Len", len, LenRequest),
            15 | 16 => {
                let (handle, len) = self.handle();
                let sub = match self.g.below(3) {
                    0 => bytes::Bytes::new(),
                    1 => {
                        let n = 1 + self.g.below(3);
                        self.g.fill(n)
                    }
                    _ => self.g.bytes(),
                };
                let req = pb::FindRequest {
                    handle,
                    sub,
                    start: self.g.opt_int(len),
                    end: self.g.opt_int(len),
                };
                if m == 15 {
                    send!(self, "Mmap/Find", c.find(req));
                } else {
                    send!(self, "Mmap/RFind", c.r_find(req));
                }
            }
            17 => {
                let (handle, len) = self.handle();
                let req = pb::FlushRequest {
                    handle,
                    offset: self.g.opt_int(len),
                    size: self.g.opt_int(len),
                };
                send!(self, "Mmap/Flush", c.flush(req));
            }
            18 => {
                let (handle, len) = self.handle();
                let req = pb::MoveRequest {
                    handle,
                    dest: self.g.int(len),
                    src: self.g.int(len),
                    count: self.g.int(len),
                };
                send!(self, "Mmap/Move", c.r#move(req));
            }
            19 => {
                let (handle, len) = self.handle();
                let new_size = self.g.int(len);
                if !self.allowed(new_size.max(0) as u64) {
                    return;
                }
                let req = pb::ResizeRequest {
                    handle: handle.clone(),
                    new_size,
                };
                if send!(self, "Mmap/Resize", c.resize(req)).is_some() {
                    self.resized(&handle, new_size);
                }
            }
            20 => {
                let (handle, len) = self.handle();
                let req = pb::MadviseRequest {
                    handle,
                    option: self.g.advice(),
                    start: self.g.opt_int(len),
                    length: self.g.opt_int(len),
                };
                send!(self, "Mmap/Madvise", c.madvise(req));
            }
            21 => {
                let (handle, len) = self.handle();
                let index = self.g.int(len);
                send!(
                    self,
                    "Mmap/GetItem",
                    c.get_item(pb::GetItemRequest { handle, index })
                );
            }
            22 => {
                let (handle, len) = self.handle();
                let req = pb::SetItemRequest {
                    handle,
                    index: self.g.int(len),
                    value: self.g.int(len),
                };
                send!(self, "Mmap/SetItem", c.set_item(req));
            }
            23 => {
                let (handle, len) = self.handle();
                let req = pb::GetSliceRequest {
                    handle,
                    start: self.g.opt_int(len),
                    stop: self.g.opt_int(len),
                    step: self.g.opt_int(len),
                };
                send!(self, "Mmap/GetSlice", c.get_slice(req));
            }
            24 => {
                let (handle, len) = self.handle();
                let (start, stop, step) = (
                    self.g.opt_int(len),
                    self.g.opt_int(len),
                    self.g.opt_int(len),
                );
                // Half the time exactly as long as the slice, so the write
                // really happens.
                let data = match slice_count(start, stop, step, len) {
                    Some(n) if n <= 70_000 && self.g.chance(0.5) => self.g.fill(n as usize),
                    _ => self.g.bytes(),
                };
                let req = pb::SetSliceRequest {
                    handle,
                    start,
                    stop,
                    step,
                    data,
                };
                send!(self, "Mmap/SetSlice", c.set_slice(req));
            }
            25 => {
                let (handle, len) = self.handle();
                let req = pb::ReadStreamRequest {
                    handle,
                    offset: self.g.opt_uint(len),
                    length: self.g.opt_uint(len),
                    chunk_size: self.g.u32(),
                };
                let call = self.call("typed", "Mmap/ReadStream", &req, Expect::Clean);
                let (outcome, _) = drain(self.c.read_stream(req)).await;
                self.record(&call, &outcome);
            }
            26 => self.write_stream().await,
            27 => {
                send!(
                    self,
                    "Admin/GetServerInfo",
                    admin.get_server_info(pb::GetServerInfoRequest {})
                );
            }
            28 | 29 => {
                let page_size = self.g.u32();
                let page_token = self.g.string();
                if m == 28 {
                    let req = pb::ListSessionsRequest {
                        page_size,
                        page_token,
                    };
                    send!(self, "Admin/ListSessions", admin.list_sessions(req));
                } else {
                    let req = pb::ListMappingsRequest {
                        page_size,
                        page_token,
                    };
                    send!(self, "Admin/ListMappings", admin.list_mappings(req));
                }
            }
            31..=36 => self.files_call(m - 31).await,
            _ => {
                let service = match self.g.below(3) {
                    0 => String::new(),
                    1 => self.g.pick(&["mmapd.v1.Mmap", "mmapd.v1.Admin"]).to_owned(),
                    _ => self.g.string(),
                };
                send!(
                    self,
                    "Health/Check",
                    health.check(HealthCheckRequest { service })
                );
            }
        }
    }

    /// Map with random arguments, mostly over the prepared files.
    async fn map(&mut self) {
        let session_id = self.session();
        let (path, create) = match self.g.below(10) {
            0..=3 => (
                self.g
                    .pick(&["f0.bin", "f1.bin", "f2.bin", "f3.bin"])
                    .to_owned(),
                false,
            ),
            4 => (format!("n{}.bin", self.g.below(8)), true),
            5 => (String::new(), false),
            _ => (self.g.string(), self.g.chance(0.3)),
        };
        let name = match self.g.below(4) {
            0 | 1 => String::new(),
            2 => self
                .g
                .pick(&["f0.bin", "f1.bin", "f2.bin", "n1.bin"])
                .to_owned(),
            _ => self.g.string(),
        };
        let length = self.g.int(3 * self.page);
        let offset = match self.g.below(3) {
            0 => 0,
            1 => self.page * self.g.below(3) as i64,
            _ => self.g.int(self.page),
        };
        // What would really be allocated: an anonymous region (also when
        // named: a missing name with a length makes one) or a created file
        // of `offset + length` (and a whole-file map of it later).
        let anonymous = path.is_empty();
        let claimed = match (anonymous, create) {
            (true, _) => length.max(0) as u64,
            (false, true) => (offset.max(0) as u64).saturating_add(length.max(0) as u64),
            (false, false) => 0,
        };
        if !self.allowed(claimed) {
            return;
        }
        let req = pb::MapRequest {
            session_id: session_id.clone(),
            path,
            length,
            offset,
            access: self.g.access(),
            name,
            create,
        };
        if let Some(reply) = send!(self, "Mmap/Map", c.map(req)) {
            self.mapped(&session_id, &reply);
        }
    }

    /// WriteStream with a missing or bad first chunk, handles and offsets in
    /// later chunks (which the server ignores), and offsets past the end.
    async fn write_stream(&mut self) {
        let (handle, len) = self.handle();
        let mut chunks = Vec::new();
        if !self.g.chance(0.1) {
            let n = self.g.below(5);
            for i in 0..=n {
                let (other, _) = self.handle();
                chunks.push(pb::WriteChunk {
                    handle: match (i, self.g.below(3)) {
                        (0, _) => handle.clone(),
                        (_, 0) => other,
                        _ => String::new(),
                    },
                    offset: match (i, self.g.below(2)) {
                        (0, _) | (_, 0) => self.g.opt_uint(len),
                        _ => None,
                    },
                    data: self.g.bytes(),
                });
            }
        }
        let call = self.call("typed", "Mmap/WriteStream", &chunks, Expect::Clean);
        let stream = futures::stream::iter(chunks).boxed();
        let (outcome, _) = answer(self.c.write_stream(stream)).await;
        self.record(&call, &outcome);
    }
}
