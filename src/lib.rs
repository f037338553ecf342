//! The `mmapd` library: the generated gRPC stubs for the wire contract in
//! `proto/mmapd/v1/mmapd.proto` and the Rust client.
#![forbid(unsafe_code)]

/// Generated protobuf messages and tonic stubs for `mmapd.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("mmapd.v1");
}

/// The encoded `FileDescriptorSet` of the proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mmapd_descriptor.bin"));
