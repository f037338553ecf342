//! Valid sequences that reach the deep code: Map(create) of a fresh file
//! or an anonymous region, a write and a read back whose bytes must match,
//! in-range Madvise, Resize and Move, then random calls to the new handle.

use bytes::Bytes;
use futures::StreamExt;
use mmapd::pb;

use crate::{
    report::{Call, Expect},
    state::{Fuzzer, answer, drain},
};

impl Fuzzer {
    /// A valid sequence: Map(create) of a fresh file (or an anonymous
    /// region), a write at a random offset by Write or WriteStream, and a
    /// read back by Read or ReadStream that must return the same bytes.
    pub async fn sequence(&mut self) {
        let session_id = self.own_session().await;
        let page = self.page;
        let len = self
            .g
            .pick(&[1, page - 1, page, page + 1, 3 * page + 5, 65_539, 1 << 20]);
        let anonymous = self.g.chance(0.3);
        self.serial += 1;
        let req = pb::MapRequest {
            session_id: session_id.clone(),
            path: if anonymous {
                String::new()
            } else {
                format!("s{}.bin", self.serial)
            },
            length: len,
            offset: 0,
            access: self.g.pick(&[0, 2, 3]),
            name: String::new(),
            create: !anonymous,
        };
        let call = self.call("sequence", "Mmap/Map", &req, Expect::Clean);
        let (outcome, reply) = answer(self.c.map(req)).await;
        self.record(&call, &outcome);
        let Some(reply) = reply else { return };
        self.mapped(&session_id, &reply);
        let handle = reply.handle;
        let n = self.g.below(len.min(70_000) as usize) + 1;
        let data = self.g.fill(n);
        let at = self.g.below(len as usize - n + 1) as u64;
        let streams = self.g.chance(0.5);
        let got = if streams {
            self.stream_round_trip(&handle, at, &data).await
        } else {
            self.unary_round_trip(&handle, at, &data).await
        };
        self.deep_ops(&handle, len).await;
        // Random calls to the new handle: Madvise then Resize, Move over
        // written bytes and the like only happen on a live mapping.
        self.focus = Some((handle.clone(), len));
        for _ in 0..2 + self.g.below(4) {
            let m = 5 + self.g.below(22);
            self.typed(m).await;
        }
        self.focus = None;
        let Some(got) = got else { return };
        if got != data {
            let call = Call {
                kind: "sequence",
                method: if streams {
                    "Mmap/ReadStream"
                } else {
                    "Mmap/Read"
                }
                .into(),
                request: format!("{n} bytes written at {at} of handle {handle:?} ({len} bytes)"),
                expect: Expect::Clean,
                sent: std::time::Instant::now(),
            };
            let answer = format!("{} bytes differ", got.len());
            let index = self.report.calls;
            self.report.fail(
                index,
                &call,
                "OK".into(),
                "bytes read back differ".into(),
                answer,
            );
        }
    }

    /// In-range Madvise of part of the mapping, Resize, Move and Flush on a
    /// fresh handle, in random order: the combinations (such as a Resize
    /// after a Madvise split the mapping) that random arguments rarely
    /// reach.
    async fn deep_ops(&mut self, handle: &str, mut len: i64) {
        const ADVICE: [i32; 12] = [0, 1, 2, 3, 4, 8, 12, 13, 14, 15, 16, 17];
        for _ in 0..1 + self.g.below(4) {
            let start = self.g.below(len as usize) as i64;
            let count = 1 + self.g.below((len - start) as usize) as i64;
            let handle = handle.to_owned();
            match self.g.below(4) {
                0 | 1 => {
                    // madvise(2) wants a page-aligned start.
                    let start = start / self.page * self.page;
                    let req = pb::MadviseRequest {
                        handle,
                        option: self.g.pick(&ADVICE),
                        start: Some(start),
                        length: Some(count),
                    };
                    let call = self.call("sequence", "Mmap/Madvise", &req, Expect::Clean);
                    let (outcome, _) = answer(self.c.madvise(req)).await;
                    self.record(&call, &outcome);
                }
                2 => {
                    let new_size = (len + self.page * self.g.pick(&[-1, 1, 2])).max(1);
                    if !self.allowed(new_size as u64) {
                        continue;
                    }
                    let req = pb::ResizeRequest {
                        handle: handle.clone(),
                        new_size,
                    };
                    let call = self.call("sequence", "Mmap/Resize", &req, Expect::Clean);
                    let (outcome, reply) = answer(self.c.resize(req)).await;
                    self.record(&call, &outcome);
                    if reply.is_some() {
                        len = new_size;
                        self.resized(&handle, len);
                    }
                }
                _ => {
                    let src = self.g.below(len as usize) as i64;
                    let req = pb::MoveRequest {
                        handle,
                        dest: start,
                        src,
                        count: count.min(len - src),
                    };
                    let call = self.call("sequence", "Mmap/Move", &req, Expect::Clean);
                    let (outcome, _) = answer(self.c.r#move(req)).await;
                    self.record(&call, &outcome);
                }
            }
        }
    }

    /// Seek, Write, Seek, Read; the bytes read.
    async fn unary_round_trip(&mut self, handle: &str, at: u64, data: &Bytes) -> Option<Vec<u8>> {
        let seek = pb::SeekRequest {
            handle: handle.into(),
            pos: at as i64,
            whence: 0,
        };
        let call = self.call("sequence", "Mmap/Seek", &seek, Expect::Clean);
        let (outcome, _) = answer(self.c.seek(seek.clone())).await;
        self.record(&call, &outcome).then_some(())?;
        let write = pb::WriteRequest {
            handle: handle.into(),
            data: data.clone(),
        };
        let call = self.call("sequence", "Mmap/Write", &write, Expect::Clean);
        let (outcome, _) = answer(self.c.write(write)).await;
        self.record(&call, &outcome).then_some(())?;
        let call = self.call("sequence", "Mmap/Seek", &seek, Expect::Clean);
        let (outcome, _) = answer(self.c.seek(seek)).await;
        self.record(&call, &outcome).then_some(())?;
        let read = pb::ReadRequest {
            handle: handle.into(),
            n: Some(data.len() as i64),
        };
        let call = self.call("sequence", "Mmap/Read", &read, Expect::Clean);
        let (outcome, reply) = answer(self.c.read(read)).await;
        self.record(&call, &outcome);
        reply.map(|r| r.data.to_vec())
    }

    /// A positional WriteStream in odd-sized chunks, then a positional
    /// ReadStream in small chunks; the bytes read.
    async fn stream_round_trip(&mut self, handle: &str, at: u64, data: &Bytes) -> Option<Vec<u8>> {
        let mut chunks = Vec::new();
        let mut rest = data.clone();
        while !rest.is_empty() {
            let n = (1 + self.g.below(20_000)).min(rest.len());
            chunks.push(pb::WriteChunk {
                handle: if chunks.is_empty() {
                    handle.into()
                } else {
                    String::new()
                },
                offset: chunks.is_empty().then_some(at),
                data: rest.split_to(n),
            });
        }
        let call = self.call("sequence", "Mmap/WriteStream", &chunks, Expect::Clean);
        let stream = futures::stream::iter(chunks).boxed();
        let (outcome, _) = answer(self.c.write_stream(stream)).await;
        self.record(&call, &outcome).then_some(())?;
        // Small enough chunks that the whole range fits in the items read.
        let chunk_size = (data.len() / (crate::state::MAX_ITEMS - 1)).max(1) as u32 + 1;
        let req = pb::ReadStreamRequest {
            handle: handle.into(),
            offset: Some(at),
            length: Some(data.len() as u64),
            chunk_size,
        };
        let call = self.call("sequence", "Mmap/ReadStream", &req, Expect::Clean);
        let (outcome, items) = drain(self.c.read_stream(req)).await;
        self.record(&call, &outcome).then_some(())?;
        Some(items.into_iter().flat_map(|c| c.data.to_vec()).collect())
    }
}
