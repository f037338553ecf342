//! The `mmapd` library: the generated gRPC stubs for the wire contract in
//! `proto/mmapd/v1/mmapd.proto` and the Rust client.
//!
//! A [`Client`] opens [`Session`]s (leases the server expires unless renewed;
//! the session renews itself in the background), and a session maps files or
//! anonymous regions into [`RemoteMmap`] handles whose methods mirror
//! CPython's `mmap` object. Handles also implement tokio's `AsyncRead`,
//! `AsyncWrite` and `AsyncSeek`. [`Client::connect_with`] takes
//! [`ConnectOptions`]: TLS (an `https://` endpoint always means TLS), a
//! client certificate for mTLS, and a bearer token sent with every call.
//! Many small calls can share one round trip: [`RemoteMmap::batch`] builds a
//! [`Batch`] whose [`Slot`]s hand back typed results, and
//! [`RemoteMmap::pipeline`] keeps a `Pipeline` stream open for many batches.
//! The files beneath the data root are managed without a session:
//! [`Client::list`], [`Client::stat_path`], [`Client::make_dir`],
//! [`Client::remove`], [`Client::rename`] and [`Client::truncate`].
//!
//! ```no_run
//! use mmapd::{Client, MapOptions, Whence};
//!
//! # async fn demo() -> Result<(), mmapd::Error> {
//! let client = Client::connect("http://127.0.0.1:50051").await?;
//! let session = client.open_session("example", None).await?;
//! let mut map = session.map(MapOptions::file("data.bin").length(4096).create(true)).await?;
//! map.write(b"hello").await?;
//! map.seek(0, Whence::Set).await?;
//! assert_eq!(&map.read(Some(5)).await?[..], b"hello");
//! map.flush(None, None).await?;
//! map.close().await?;
//! session.close().await?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod client;
pub mod codec;
mod error;
mod files;
mod io;
pub mod op;
mod pipeline;
mod remote;

pub use client::{
    BearerToken, Client, ConnectOptions, MAX_MESSAGE_SIZE, MapOptions, Session, Transport,
};
pub use error::{Error, code_name};
pub use files::ListPages;
pub use op::{Op, Value};
pub use pb::{Access, Advice, FileEntry, FileKind, Whence};
pub use pipeline::{Batch, OpValue, Pipeline, Results, Slot};
pub use remote::{ReadChunks, RemoteMmap};

/// Generated protobuf messages and tonic stubs for `mmapd.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("mmapd.v1");
}

/// The encoded `FileDescriptorSet` of the proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/mmapd_descriptor.bin"));
