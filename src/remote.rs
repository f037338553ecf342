//! [`RemoteMmap`]: one server-side handle, with a method for each method of
//! CPython's `mmap` object plus the streaming transfers and the
//! upload/download helpers built on them.

use std::{
    fmt,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, Stream, StreamExt, channel::mpsc, future, stream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{
    client::Transport,
    error::{Error, unary},
    io::IoState,
    op::{Op, Value},
    pb::{self, mmap_client::MmapClient, op::Op as PbOp, op_result::Result as R},
    pipeline::{OpValue, typed},
};

/// Chunk size for `download`/`upload`: large enough that per-message
/// overhead vanishes, small enough to keep memory flat on big files.
const STREAM_CHUNK: usize = 1024 * 1024;

/// `write_stream` splits larger chunks so each message stays far below the
/// 64 MiB message limit however the caller's stream is chunked.
const MAX_WRITE_CHUNK: usize = 1024 * 1024;

/// An open handle on a remote mapping: the counterpart of one CPython `mmap`
/// object.
///
/// Every method acts on the server-side cursor exactly as the Python method
/// of the same name does (`move_` stands for `move`, `get`/`set` for
/// `m[i]`, `get_slice`/`set_slice` for `m[a:b:c]`), and server errors keep
/// the Python exception class as [`Error::reason`].
///
/// `RemoteMmap` also implements tokio's `AsyncRead`, `AsyncWrite` and
/// `AsyncSeek`, buffering up to 1 MiB each way so `tokio::io::copy` costs one
/// RPC per MiB. Buffered writes are sent by `poll_flush`/`poll_shutdown` and
/// before any method call, so call [`AsyncWriteExt::flush`] (or any method)
/// before dropping a handle you wrote to through `AsyncWrite`. Read-ahead is
/// a snapshot: bytes another handle writes into the buffered range after it
/// was fetched are not seen until the next method call or seek drops it.
///
/// Because the inherent methods share names with `AsyncReadExt::read`,
/// `AsyncWriteExt::write`/`flush` and `AsyncSeekExt::seek`, method syntax
/// picks the inherent (Python-style) ones; call the trait methods by path,
/// e.g. `AsyncWriteExt::flush(&mut map)`.
pub struct RemoteMmap {
    pub(crate) stub: MmapClient<Transport>,
    pub(crate) handle: String,
    name: String,
    access: pb::Access,
    pub(crate) io: IoState,
}

impl fmt::Debug for RemoteMmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteMmap")
            .field("handle", &self.handle)
            .field("name", &self.name)
            .field("access", &self.access)
            .field("io", &self.io)
            .finish_non_exhaustive()
    }
}

impl RemoteMmap {
    pub(crate) fn new(stub: MmapClient<Transport>, response: pb::MapResponse) -> Self {
        let access = response.access();
        Self {
            stub,
            handle: response.handle,
            name: response.name,
            access,
            io: IoState::default(),
        }
    }

    /// The opaque handle identifier.
    pub fn handle(&self) -> &str {
        &self.handle
    }

    /// The registry name of the mapping, as returned by `map`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The effective access mode, as returned by `map`: never
    /// `Access::Default`, which the server reports as the `Access::Write` it
    /// behaves as.
    pub fn access(&self) -> pb::Access {
        self.access
    }

    /// Brings the server in line with what the caller has seen through the
    /// I/O traits (see `IoState`), then lends the stub for one call.
    pub(crate) async fn rpc(&mut self) -> Result<&mut MmapClient<Transport>, Error> {
        self.settle(true).await?;
        Ok(&mut self.stub)
    }

    /// `m.close()`. Closing a closed handle is not an error.
    pub async fn close(&mut self) -> Result<(), Error> {
        // Rewinding read-ahead is pointless for a handle about to close, but
        // pending writes must land; close even if they fail so the handle
        // does not leak.
        let settled = self.settle(false).await;
        let request = pb::CloseRequest {
            handle: self.handle.clone(),
        };
        let closed = unary(self.stub.close(request).await);
        settled.and(closed).map(drop)
    }

    /// Runs any [`Op`] on this handle through its unary call and returns
    /// its [`Value`]: the typed methods below, mmapctl's shell and the
    /// differential test all come through here.
    pub async fn apply(&mut self, op: Op) -> Result<Value, Error> {
        let request = op.into_pb(self.handle.clone());
        let stub = self.rpc().await?;
        let result = match request {
            PbOp::Read(r) => R::Read(unary(stub.read(r).await)?),
            PbOp::ReadByte(r) => R::ReadByte(unary(stub.read_byte(r).await)?),
            PbOp::ReadLine(r) => R::ReadLine(unary(stub.read_line(r).await)?),
            PbOp::Write(r) => R::Write(unary(stub.write(r).await)?),
            PbOp::WriteByte(r) => R::WriteByte(unary(stub.write_byte(r).await)?),
            PbOp::Seek(r) => R::Seek(unary(stub.seek(r).await)?),
            PbOp::Tell(r) => R::Tell(unary(stub.tell(r).await)?),
            PbOp::Size(r) => R::Size(unary(stub.size(r).await)?),
            PbOp::Len(r) => R::Len(unary(stub.len(r).await)?),
            PbOp::Find(r) => R::Find(unary(stub.find(r).await)?),
            PbOp::Rfind(r) => R::Rfind(unary(stub.r_find(r).await)?),
            PbOp::Flush(r) => R::Flush(unary(stub.flush(r).await)?),
            PbOp::Move(r) => R::Move(unary(stub.r#move(r).await)?),
            PbOp::Resize(r) => R::Resize(unary(stub.resize(r).await)?),
            PbOp::Madvise(r) => R::Madvise(unary(stub.madvise(r).await)?),
            PbOp::GetItem(r) => R::GetItem(unary(stub.get_item(r).await)?),
            PbOp::SetItem(r) => R::SetItem(unary(stub.set_item(r).await)?),
            PbOp::GetSlice(r) => R::GetSlice(unary(stub.get_slice(r).await)?),
            PbOp::SetSlice(r) => R::SetSlice(unary(stub.set_slice(r).await)?),
            PbOp::Stat(r) => R::Stat(unary(stub.stat(r).await)?),
        };
        let value = Value::from_pb(result).map_err(|status| Error::from_proto(&status))?;
        // The I/O traits track the server's cursor; these two report it.
        if let Value::Seek(position) | Value::Tell(position) = value {
            self.io.set_server_position(position);
        }
        Ok(value)
    }

    /// Runs `op` and returns its value as the type its method returns.
    async fn call<T: OpValue>(&mut self, op: Op) -> Result<T, Error> {
        let method = op.method();
        typed(&method, self.apply(op).await?)
    }

    /// Length, file size, cursor, access, name, path and offset of the handle.
    pub async fn stat(&mut self) -> Result<pb::StatResponse, Error> {
        self.call(Op::Stat).await
    }

    /// `m.read([n])`: up to `n` bytes from the cursor (`None` or negative:
    /// to the end); empty at the end.
    pub async fn read(&mut self, n: Option<i64>) -> Result<Bytes, Error> {
        self.call(Op::Read { n }).await
    }

    /// `m.read_byte()`.
    pub async fn read_byte(&mut self) -> Result<u8, Error> {
        self.call(Op::ReadByte).await
    }

    /// `m.readline()`: up to and including the next `\n`, or the rest.
    pub async fn readline(&mut self) -> Result<Bytes, Error> {
        self.call(Op::ReadLine).await
    }

    /// `m.write(data)`: writes at the cursor and returns the bytes written.
    pub async fn write(&mut self, data: &[u8]) -> Result<u64, Error> {
        let data = Bytes::copy_from_slice(data);
        self.call(Op::Write { data }).await
    }

    /// `m.write_byte(value)`; the server rejects values outside 0..=255.
    pub async fn write_byte(&mut self, value: i64) -> Result<(), Error> {
        self.call(Op::WriteByte { value }).await
    }

    /// `m.seek(pos, whence)`: returns the new cursor.
    pub async fn seek(&mut self, pos: i64, whence: pb::Whence) -> Result<u64, Error> {
        let whence = whence.into();
        self.call(Op::Seek { pos, whence }).await
    }

    /// `m.tell()`: the cursor.
    pub async fn tell(&mut self) -> Result<u64, Error> {
        self.call(Op::Tell).await
    }

    /// `m.size()`: the size of the underlying file (the length for anonymous
    /// regions).
    pub async fn size(&mut self) -> Result<u64, Error> {
        self.call(Op::Size).await
    }

    /// `len(m)`: the length of the mapping.
    #[expect(
        clippy::len_without_is_empty,
        reason = "mirrors Python's mmap, which has no is_empty; emptiness costs a call anyway"
    )]
    pub async fn len(&mut self) -> Result<u64, Error> {
        self.call(Op::Len).await
    }

    /// `m.find(sub[, start[, end]])`: the lowest index of `sub`, or -1.
    pub async fn find(
        &mut self,
        sub: &[u8],
        start: Option<i64>,
        end: Option<i64>,
    ) -> Result<i64, Error> {
        let sub = Bytes::copy_from_slice(sub);
        self.call(Op::Find { sub, start, end }).await
    }

    /// `m.rfind(sub[, start[, end]])`: the highest index of `sub`, or -1.
    pub async fn rfind(
        &mut self,
        sub: &[u8],
        start: Option<i64>,
        end: Option<i64>,
    ) -> Result<i64, Error> {
        let sub = Bytes::copy_from_slice(sub);
        self.call(Op::RFind { sub, start, end }).await
    }

    /// `m.flush([offset[, size]])`: msync; once it returns the range is
    /// durable. Also sends any writes buffered by `AsyncWrite` first.
    pub async fn flush(&mut self, offset: Option<i64>, size: Option<i64>) -> Result<(), Error> {
        self.call(Op::Flush { offset, size }).await
    }

    /// `m.move(dest, src, count)`: memmove within the mapping.
    pub async fn move_(&mut self, dest: i64, src: i64, count: i64) -> Result<(), Error> {
        self.call(Op::Move { dest, src, count }).await
    }

    /// `m.resize(newsize)`: resizes the mapping (and its file); returns the
    /// new length.
    pub async fn resize(&mut self, new_size: i64) -> Result<u64, Error> {
        self.call(Op::Resize { new_size }).await
    }

    /// `m.madvise(option[, start[, length]])`.
    pub async fn madvise(
        &mut self,
        option: pb::Advice,
        start: Option<i64>,
        length: Option<i64>,
    ) -> Result<(), Error> {
        let option = option.into();
        self.call(Op::Madvise {
            option,
            start,
            length,
        })
        .await
    }

    /// `m[index]`; negative indices count from the end.
    pub async fn get(&mut self, index: i64) -> Result<u8, Error> {
        self.call(Op::GetItem { index }).await
    }

    /// `m[index] = value`; the server rejects values outside 0..=255.
    pub async fn set(&mut self, index: i64, value: i64) -> Result<(), Error> {
        self.call(Op::SetItem { index, value }).await
    }

    /// `m[start:stop:step]`; `None` is Python's `None`.
    pub async fn get_slice(
        &mut self,
        start: Option<i64>,
        stop: Option<i64>,
        step: Option<i64>,
    ) -> Result<Bytes, Error> {
        self.call(Op::GetSlice { start, stop, step }).await
    }

    /// `m[start:stop:step] = data`; `data` must be exactly as long as the
    /// slice.
    pub async fn set_slice(
        &mut self,
        start: Option<i64>,
        stop: Option<i64>,
        step: Option<i64>,
        data: &[u8],
    ) -> Result<(), Error> {
        let data = Bytes::copy_from_slice(data);
        self.call(Op::SetSlice {
            start,
            stop,
            step,
            data,
        })
        .await
    }

    /// Streams `length` bytes (`None`: to the end of the mapping) in chunks
    /// of `chunk_size` (0: the server default). With an `offset` the read is
    /// positional; without, it starts at the cursor and advances it.
    pub async fn read_stream(
        &mut self,
        offset: Option<u64>,
        length: Option<u64>,
        chunk_size: u32,
    ) -> Result<ReadChunks, Error> {
        let request = pb::ReadStreamRequest {
            handle: self.handle.clone(),
            offset,
            length,
            chunk_size,
        };
        let inner = unary(self.rpc().await?.read_stream(request).await)?;
        Ok(ReadChunks { inner })
    }

    /// Writes every chunk of `data` in one streaming call and returns the
    /// bytes written. With an `offset` the write is positional; without, it
    /// starts at the cursor and advances it.
    pub async fn write_stream(
        &mut self,
        offset: Option<u64>,
        data: impl Stream<Item = Bytes> + Send + 'static,
    ) -> Result<u64, Error> {
        let requests = write_chunks(self.handle.clone(), offset, data);
        Ok(unary(self.rpc().await?.write_stream(requests).await)?.written)
    }

    /// Streams the mapping (from `offset`, or the cursor, for `length` bytes
    /// or to the end) into `writer`, one chunk in memory at a time, and
    /// flushes `writer`. Returns the bytes copied.
    pub async fn download<W>(
        &mut self,
        offset: Option<u64>,
        length: Option<u64>,
        writer: &mut W,
    ) -> Result<u64, Error>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        let mut chunks = self
            .read_stream(offset, length, STREAM_CHUNK as u32)
            .await?;
        let mut copied = 0;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            writer.write_all(&chunk).await?;
            copied += chunk.len() as u64;
        }
        writer.flush().await?;
        Ok(copied)
    }

    /// Streams everything `reader` yields into the mapping (at `offset`, or
    /// the cursor), holding at most a few chunks in memory. Returns the bytes
    /// written. If `reader` fails, what was already sent stays written and the
    /// reader's error is returned.
    pub async fn upload<R>(&mut self, offset: Option<u64>, reader: &mut R) -> Result<u64, Error>
    where
        R: AsyncRead + Unpin + ?Sized,
    {
        // The request stream must be 'static, so the borrowed reader is
        // pumped into a bounded channel alongside the call instead.
        let (mut tx, rx) = mpsc::channel::<Bytes>(1);
        let pump = async move {
            loop {
                let mut chunk = BytesMut::with_capacity(STREAM_CHUNK);
                while chunk.len() < STREAM_CHUNK {
                    if reader.read_buf(&mut chunk).await? == 0 {
                        break;
                    }
                }
                // A closed channel means the call already ended; its result
                // says why.
                if chunk.is_empty() || tx.send(chunk.freeze()).await.is_err() {
                    return Ok::<_, std::io::Error>(());
                }
            }
        };
        let (written, pumped) = futures::join!(self.write_stream(offset, rx), pump);
        pumped?;
        written
    }
}

/// The chunks of a [`RemoteMmap::read_stream`], in order.
#[derive(Debug)]
pub struct ReadChunks {
    inner: tonic::Streaming<pb::ReadChunk>,
}

impl Stream for ReadChunks {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner)
            .poll_next(cx)
            .map(|item| item.map(|chunk| chunk.map(|chunk| chunk.data).map_err(Error::from)))
    }
}

/// The request stream of `WriteStream`: the handle and offset ride on the
/// first message only (a header-only one if `data` is empty, so the server
/// still learns the handle), and no message carries more than
/// `MAX_WRITE_CHUNK` bytes.
fn write_chunks(
    handle: String,
    offset: Option<u64>,
    data: impl Stream<Item = Bytes> + Send + 'static,
) -> impl Stream<Item = pb::WriteChunk> + Send + 'static {
    let mut header = Some((handle, offset));
    data.flat_map(|bytes| stream::iter(split(bytes, MAX_WRITE_CHUNK)))
        .map(Some)
        .chain(stream::once(future::ready(None)))
        .filter_map(move |data| {
            let chunk = match (header.take(), data) {
                (Some((handle, offset)), data) => Some(pb::WriteChunk {
                    handle,
                    offset,
                    data: data.unwrap_or_default(),
                }),
                (None, Some(data)) => Some(pb::WriteChunk {
                    data,
                    ..Default::default()
                }),
                (None, None) => None,
            };
            future::ready(chunk)
        })
}

/// Splits without copying; yields nothing for an empty input.
fn split(mut bytes: Bytes, max: usize) -> impl Iterator<Item = Bytes> {
    std::iter::from_fn(move || (!bytes.is_empty()).then(|| bytes.split_to(bytes.len().min(max))))
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;

    use super::*;

    fn chunks(offset: Option<u64>, data: Vec<Bytes>) -> Vec<pb::WriteChunk> {
        block_on(write_chunks("h".to_owned(), offset, stream::iter(data)).collect())
    }

    #[test]
    fn header_rides_on_the_first_chunk_only() {
        let out = chunks(
            Some(7),
            vec![Bytes::from_static(b"ab"), Bytes::from_static(b"cd")],
        );
        assert_eq!(out.len(), 2);
        assert_eq!(
            (out[0].handle.as_str(), out[0].offset, &out[0].data[..]),
            ("h", Some(7), &b"ab"[..])
        );
        assert_eq!(
            (out[1].handle.as_str(), out[1].offset, &out[1].data[..]),
            ("", None, &b"cd"[..])
        );
    }

    #[test]
    fn empty_input_still_names_the_handle() {
        let out = chunks(None, vec![]);
        assert_eq!(
            out,
            vec![pb::WriteChunk {
                handle: "h".to_owned(),
                offset: None,
                data: Bytes::new()
            }]
        );
    }

    #[test]
    fn big_chunks_are_split() {
        let big = Bytes::from(vec![1u8; MAX_WRITE_CHUNK * 2 + 5]);
        let out = chunks(None, vec![Bytes::new(), big]);
        let sizes: Vec<usize> = out.iter().map(|c| c.data.len()).collect();
        assert_eq!(sizes, vec![MAX_WRITE_CHUNK, MAX_WRITE_CHUNK, 5]);
        assert_eq!(out[0].handle, "h");
    }
}
