//! Compiles `proto/` into the `mmapd::pb` stubs without a system `protoc`:
//! `protox` parses the protos in pure Rust, `tonic-prost-build` generates code
//! from the resulting descriptor set, and the same set is written to OUT_DIR so
//! the server can offer gRPC reflection. `proto/google/rpc/status.proto` and
//! `error_details.proto` are vendored (Apache-2.0, from googleapis) so the
//! set is self-contained.

use std::{env, fs, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/mmapd/v1/mmapd.proto";
    // Explicit rerun lines keep cargo from re-running the script on every
    // unrelated file change (its default when none are printed).
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=build.rs");

    let fds = protox::compile([proto], ["proto"])?;
    // Reflection also serves the ErrorInfo every error carries (no message
    // of ours names it, so it is not an import), so that grpcurl and other
    // reflection clients decode it without the proto file.
    let details = "google/rpc/error_details.proto";
    let reflected = protox::compile([proto, details], ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("mmapd_descriptor.bin"), reflected.encode_to_vec())?;

    tonic_prost_build::configure()
        // `bytes` fields as `bytes::Bytes`, so payloads can be passed along
        // without copying (and later served zero-copy).
        .bytes(".")
        // The per-op error of Pipeline is tonic-types' `Status` (the same
        // prost version), so it converts to and from `tonic::Status` details.
        .extern_path(".google.rpc.Status", "::tonic_types::Status")
        // Prost's codec with a hook the server uses to guard zero-copy
        // ReadStream chunks while they are encoded (src/codec.rs).
        .codec_path("crate::codec::MmapdCodec")
        .emit_rerun_if_changed(false)
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
