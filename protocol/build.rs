//! Compiles `proto/fieldsync/v1/*.proto` with protox (pure Rust, no `protoc` binary).
fn main() {
    let dir = "proto";
    let files: Vec<String> = std::fs::read_dir("proto/fieldsync/v1")
        .expect("proto dir")
        .map(|e| e.expect("entry").path().display().to_string())
        .filter(|p| p.ends_with(".proto"))
        .collect();
    println!("cargo:rerun-if-changed={dir}");
    let fds = protox::compile(&files, [dir]).expect("valid .proto files");
    prost_build::Config::new()
        .compile_fds(fds)
        .expect("generate Rust from protos");
}
