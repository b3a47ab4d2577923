//! Compiles `proto/**/*.proto` with `protox` (pure Rust, no system `protoc`) and
//! generates the tonic client and server with `tonic-prost-build`.

use std::error::Error;
use std::path::{Path, PathBuf};

use prost::Message as _;

/// Proto files to compile, relative to the proto root.
const PROTOS: &[&str] = &["vouchsafe/v1/matching.proto", "vouchsafe/v1/review.proto", "vouchsafe/v1/centre.proto"];

/// Name of the encoded `FileDescriptorSet` written to `OUT_DIR`.
const DESCRIPTOR_FILE: &str = "vouchsafe_descriptor.bin";

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("..").join("..").join("proto");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    // Re-run when anything under the proto directory changes (cargo watches
    // directories recursively by mtime), and for each file explicitly.
    println!("cargo:rerun-if-changed={}", proto_root.display());
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={}", proto_root.join(proto).display());
    }

    let files: Vec<PathBuf> = PROTOS.iter().map(|p| proto_root.join(p)).collect();
    let fds = protox::compile(&files, [&proto_root])?;

    // Encoded descriptor set for tonic-reflection.
    std::fs::write(out_dir.join(DESCRIPTOR_FILE), fds.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .emit_rerun_if_changed(false)
        .out_dir(Path::new(&out_dir))
        .compile_fds(fds)?;
    Ok(())
}
