//! Code packages: zips built in memory, and the Go and Rust test functions
//! built from `tests/fixtures` once per test process.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// A deflated zip of the given files; `mode` applies to every entry.
pub fn zip_with_mode(files: &[(&str, &[u8])], mode: u32) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        let options = zip::write::SimpleFileOptions::default().unix_permissions(mode);
        for (name, data) in files {
            w.start_file(*name, options).expect("start file");
            w.write_all(data).expect("write entry");
        }
        w.finish().expect("finish zip");
    }
    buf.into_inner()
}

/// A deflated zip of the given files, each readable (0644).
pub fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    zip_with_mode(files, 0o644)
}

/// A small handler package; `tag` makes its bytes (and sha) unique.
pub fn handler_zip(tag: &str) -> Vec<u8> {
    let source = format!("exports.handler = async () => ({tag:?});\n");
    zip_of(&[("index.js", source.as_bytes())])
}

/// A valid zip of `total` bytes of incompressible random data, stored (not
/// deflated) in `files` entries: slow to hash, check and extract.
pub fn large_random_zip(total: usize, files: usize) -> Vec<u8> {
    // xorshift64*: incompressible enough for deflate, and fast in a debug
    // build (a cryptographic generator is not).
    let mut state: u64 = rand::random::<u64>() | 1;
    let mut fill = |buf: &mut [u8]| {
        for word in buf.chunks_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let value = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            word.copy_from_slice(&value[..word.len()]);
        }
    };
    let per_file = total / files;
    let mut buf = Cursor::new(Vec::with_capacity(total + files * 200));
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        let mut chunk = vec![0u8; per_file];
        for i in 0..files {
            fill(&mut chunk);
            w.start_file(format!("data/blob-{i:05}.bin"), opts)
                .expect("start file");
            w.write_all(&chunk).expect("write entry");
        }
        w.finish().expect("finish zip");
    }
    buf.into_inner()
}

/// A stored zip whose single entry holds `size` zero bytes.
pub fn stored_zip_of_size(size: usize) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::with_capacity(size + 200));
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(false);
        w.start_file("big.bin", opts).expect("start file");
        w.write_all(&vec![0u8; size]).expect("write entry");
        w.finish().expect("finish zip");
    }
    buf.into_inner()
}

/// A zip holding an executable `bootstrap`, stored rather than deflated
/// (deflating megabytes in a debug build is slow, and so is inflating them).
pub fn bootstrap_zip(binary: &[u8]) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .unix_permissions(0o755);
        w.start_file("bootstrap", options).expect("start file");
        w.write_all(binary).expect("write entry");
        w.finish().expect("finish zip");
    }
    buf.into_inner()
}

/// `CodeSha256` as Lambda reports it: base64 of the package's SHA-256.
pub fn sha256_base64(bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `target/fixtures/<name>`: kept between runs, so rebuilds are incremental.
fn build_dir(name: &str) -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("fixtures").join(name)
}

/// Runs a build tool to completion and returns its standard output; a
/// failure fails the test with the tool's output.
pub fn run_tool(command: &mut Command, what: &str) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The Go test function (aws-lambda-go), built with `go build`:
/// `CGO_ENABLED=0 GOOS=linux`, binary named `bootstrap`.
/// Returns the function's zip (built and zipped once per test process).
pub fn go_function_zip() -> Vec<u8> {
    static BUILT: OnceLock<Mutex<Option<Vec<u8>>>> = OnceLock::new();
    built_once(&BUILT, || {
        let out = build_dir("go-fn").join("bootstrap");
        let mut go = Command::new("go");
        go.current_dir(fixtures_dir().join("go-fn"))
            .env("CGO_ENABLED", "0")
            .env("GOOS", "linux")
            .env("GOFLAGS", "-mod=mod")
            .args(["build", "-trimpath", "-ldflags=-s -w", "-o"])
            .arg(&out)
            .arg(".");
        run_tool(&mut go, "go build");
        bootstrap_zip(&std::fs::read(&out).expect("read Go bootstrap"))
    })
}

/// The Rust test function (lambda_runtime), built by cargo in its own
/// target directory (it is not a member of this workspace).
/// Returns the function's zip (built and zipped once per test process).
pub fn rust_function_zip() -> Vec<u8> {
    static BUILT: OnceLock<Mutex<Option<Vec<u8>>>> = OnceLock::new();
    built_once(&BUILT, || {
        let target = build_dir("rust-fn");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--release", "--manifest-path"])
            .arg(fixtures_dir().join("rust-fn/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR");
        run_tool(&mut build, "cargo build of the Rust test function");
        bootstrap_zip(
            &std::fs::read(target.join("release/bootstrap")).expect("read Rust bootstrap"),
        )
    })
}

/// The package `build` makes, built by the first caller in this process
/// (the others wait for it) and handed out again to later ones.
pub fn built_once(
    cell: &'static OnceLock<Mutex<Option<Vec<u8>>>>,
    build: impl FnOnce() -> Vec<u8>,
) -> Vec<u8> {
    let mut built = cell
        .get_or_init(|| Mutex::new(None))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    built.get_or_insert_with(build).clone()
}
