//! The gRPC codec of every `mmapd.v1` service: prost's, with one hook on
//! the server side. A ReadStream chunk may be a zero-copy view of mapped
//! file pages, which the encoder reads when it copies the chunk into its
//! buffer; a file truncated under the mapping then faults in the middle of
//! that copy. The server installs [`set_view_guard`] so the copy runs under
//! its SIGBUS guard (see the server's `mem` module). Without a hook (the
//! client, or any other process) this is exactly `tonic_prost::ProstCodec`.
//!
//! A chunk whose memory broke is sent with its `data` emptied: the bytes
//! already copied (zeros where the file was cut) cannot be taken back out
//! of the buffer, so an empty `data` field is appended after them, and a
//! protobuf decoder keeps the last value of a singular field. The client
//! sees an empty chunk, never zeros, and the stream then ends with
//! MAPPING_BROKEN (the server watches the same mark).

use std::{any::Any, marker::PhantomData, sync::OnceLock};

use bytes::BufMut;
use prost::Message;
use tonic::{
    Status,
    codec::{BufferSettings, Codec, EncodeBuf, Encoder},
};
use tonic_prost::{ProstDecoder, ProstEncoder};

use crate::pb;

/// Runs the given encode (a copy of the bytes at the address) under the
/// guard of the memory holding that address, and says whether that memory
/// is broken once the copy is done (a fault in it, now or before, means the
/// copy may hold zeros instead of the file's bytes).
pub type ViewGuard = fn(addr: usize, encode: &mut dyn FnMut()) -> bool;

/// `ReadChunk.data`'s field number in `mmapd.proto`.
const READ_CHUNK_DATA: u32 = 2;

static VIEW_GUARD: OnceLock<ViewGuard> = OnceLock::new();

/// Installs the hook that guards the encoding of ReadStream chunks; the
/// first call wins (the hook is process-wide, like the signal handler it
/// works with).
pub fn set_view_guard(guard: ViewGuard) {
    let _ = VIEW_GUARD.set(guard);
}

/// `ProstCodec` with the view guard on `ReadChunk` encoding.
#[derive(Debug, Clone)]
pub struct MmapdCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for MmapdCodec<T, U> {
    fn default() -> Self {
        MmapdCodec(PhantomData)
    }
}

impl<T, U> Codec for MmapdCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = MmapdEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        MmapdEncoder(ProstEncoder::new(BufferSettings::default()))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(BufferSettings::default())
    }
}

/// Prost's encoder, guarded for `ReadChunk`s when a hook is installed.
#[derive(Debug, Clone)]
pub struct MmapdEncoder<T>(ProstEncoder<T>);

impl<T: Message + 'static> Encoder for MmapdEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        encode_guarded(item, buf, VIEW_GUARD.get().copied());
        Ok(())
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

/// Prost's encoding of `item`, where a `ReadChunk`'s copy runs under
/// `guard` and is emptied when its memory broke (module doc).
fn encode_guarded<T: Message + 'static>(item: T, buf: &mut impl BufMut, guard: Option<ViewGuard>) {
    let view = (&item as &dyn Any)
        .downcast_ref::<pb::ReadChunk>()
        .filter(|chunk| !chunk.data.is_empty())
        .map(|chunk| chunk.data.as_ptr() as usize);
    let (Some(addr), Some(guard)) = (view, guard) else {
        return put(&item, buf);
    };
    if guard(addr, &mut || put(&item, buf)) {
        prost::encoding::bytes::encode(READ_CHUNK_DATA, &bytes::Bytes::new(), buf);
    }
}

fn put(item: &impl Message, buf: &mut impl BufMut) {
    // tonic's buffer grows on demand, so prost's only error (no room)
    // cannot happen; tonic_prost's own encoder makes the same call.
    item.encode(buf)
        .expect("Message only errors if not enough space");
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::encode_guarded;
    use crate::pb;

    /// Memory the fake guard below reports as broken.
    static BROKEN: [u8; 64] = [7; 64];

    fn broken_here(addr: usize, encode: &mut dyn FnMut()) -> bool {
        encode();
        BROKEN.as_ptr_range().contains(&(addr as *const u8))
    }

    /// Encodes `chunk` as the server does, then decodes it as any
    /// protobuf client would.
    fn round_trip(chunk: pb::ReadChunk) -> pb::ReadChunk {
        let mut buf = bytes::BytesMut::new();
        encode_guarded(chunk, &mut buf, Some(broken_here));
        pb::ReadChunk::decode(buf.freeze()).unwrap()
    }

    #[test]
    fn a_chunk_of_broken_memory_decodes_empty_and_others_intact() {
        let got = round_trip(pb::ReadChunk {
            offset: 4096,
            data: bytes::Bytes::from_static(&BROKEN),
        });
        assert_eq!(got.offset, 4096);
        assert!(got.data.is_empty(), "zeros reached the client: {got:?}");
        let fine = bytes::Bytes::from(vec![9u8; 64]);
        let got = round_trip(pb::ReadChunk {
            offset: 8,
            data: fine.clone(),
        });
        assert_eq!((got.offset, got.data), (8, fine));
    }
}
