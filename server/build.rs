//! The web client's build (`web-client/dist`) is embedded in the binary. Make sure the folder
//! exists so the server compiles before the client has been built; the server then answers
//! its pages with a message saying how to build it.

fn main() {
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web-client/dist");
    if !dist.exists() {
        std::fs::create_dir_all(&dist).expect("create web-client/dist");
    }
    println!("cargo:rerun-if-changed=../web-client/dist");
}
