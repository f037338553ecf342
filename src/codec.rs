//! The gRPC codec of every `mmapd.v1` service: prost's, with one hook on
//! the server side. A ReadStream chunk may be a zero-copy view of mapped
//! file pages, which the encoder reads when it copies the chunk into its
//! buffer; a file truncated under the mapping then faults in the middle of
//! that copy. The server installs [`set_view_guard`] so the copy runs under
//! its SIGBUS guard (see the server's `mem` module). Without a hook (the
//! client, or any other process) this is exactly `tonic_prost::ProstCodec`.

use std::{any::Any, marker::PhantomData, sync::OnceLock};

use prost::Message;
use tonic::{
    Status,
    codec::{BufferSettings, Codec, EncodeBuf, Encoder},
};
use tonic_prost::{ProstDecoder, ProstEncoder};

use crate::pb;

/// Runs the given encode (a copy of the bytes at the address) under the
/// guard of the memory holding that address.
pub type ViewGuard = fn(addr: usize, encode: &mut dyn FnMut());

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
        let view = (&item as &dyn Any)
            .downcast_ref::<pb::ReadChunk>()
            .filter(|chunk| !chunk.data.is_empty())
            .map(|chunk| chunk.data.as_ptr() as usize);
        match (view, VIEW_GUARD.get()) {
            (Some(addr), Some(guard)) => {
                let mut item = Some(item);
                let mut result = Ok(());
                guard(addr, &mut || {
                    if let Some(item) = item.take() {
                        result = self.0.encode(item, buf);
                    }
                });
                result
            }
            _ => self.0.encode(item, buf),
        }
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
