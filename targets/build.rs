//! Generates the server of `proto/contract.proto`, the contract's gRPC
//! service, which the tokio target serves (`src/grpc.rs`). Needs `protoc`
//! (Debian: `protobuf-compiler`), or `PROTOC` naming one.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/contract.proto");
    tonic_prost_build::configure()
        .build_client(false)
        .compile_protos(&["proto/contract.proto"], &["proto"])?;
    Ok(())
}
