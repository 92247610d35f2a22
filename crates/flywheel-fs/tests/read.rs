//! The bounded reader: what a hostile path does to it.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use flywheel_fs::{Kind, read, read_bytes, read_stream};
use proptest::prelude::*;

/// Runs `f` on another thread and fails the test if it does not return in
/// five seconds (a blocking open would otherwise hang the suite).
fn within_5s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("the read did not finish in 5 s")
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(status.success());
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().expect("tmp");
    let fifo = dir.path().join("organization.yaml");
    mkfifo(&fifo);
    let f = fifo.clone();
    let err = within_5s(move || read(&f, Kind::Organization)).expect_err("fifo");
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("{}: ", fifo.display())), "{msg}");
    assert!(
        msg.contains("is a FIFO (named pipe), not a regular file"),
        "{msg}"
    );
    assert!(err.is_not_regular());
}

#[test]
fn a_symlink_to_dev_zero_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let link = dir.path().join("ci.yml");
    std::os::unix::fs::symlink("/dev/zero", &link).expect("symlink");
    let err = within_5s(move || read(&link, Kind::Workflow)).expect_err("device");
    assert!(
        err.to_string().contains(
            "is a character device, not a regular file; a workflow must be a regular file"
        ),
        "{err}"
    );
    let err = within_5s(|| read_bytes(Path::new("/dev/zero"), Kind::PlanJson)).expect_err("dev");
    assert!(
        err.to_string()
            .starts_with("/dev/zero: is a character device"),
        "{err}"
    );
}

#[test]
fn a_huge_sparse_file_is_refused_by_its_size_with_the_limit() {
    let dir = tempfile::tempdir().expect("tmp");
    let big = dir.path().join("MODULE.bazel");
    let f = std::fs::File::create(&big).expect("create");
    f.set_len(3 * 1024 * 1024 * 1024).expect("sparse");
    let b = big.clone();
    let err = within_5s(move || read(&b, Kind::ModuleBazel)).expect_err("big");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: is 3072.0 MiB, over the 4 MiB limit for a MODULE.bazel",
            big.display()
        )
    );
    assert!(err.is_too_large());
}

#[test]
fn a_file_just_over_the_limit_is_refused_and_at_the_limit_is_read() {
    let dir = tempfile::tempdir().expect("tmp");
    let key = dir.path().join("key.pem");
    let limit = usize::try_from(Kind::KeyFile.limit()).expect("usize");
    std::fs::write(&key, "a".repeat(limit)).expect("write");
    assert_eq!(read(&key, Kind::KeyFile).expect("at limit").len(), limit);
    std::fs::write(&key, "a".repeat(limit + 1)).expect("write");
    let err = read(&key, Kind::KeyFile).expect_err("over");
    assert!(
        err.to_string()
            .ends_with("over the 64 KiB limit for a private key file"),
        "{err}"
    );
}

#[test]
fn a_directory_and_a_missing_file_are_named() {
    let dir = tempfile::tempdir().expect("tmp");
    let err = read(dir.path(), Kind::Platform).expect_err("dir");
    assert!(err.to_string().contains("is a directory"), "{err}");
    let missing: PathBuf = dir.path().join("nope.yaml");
    let err = read(&missing, Kind::Platform).expect_err("missing");
    assert!(err.is_not_found());
    assert_eq!(err.to_string(), format!("{}: not found", missing.display()));
}

#[test]
fn utf16_is_named_with_and_without_a_bom() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("platform.yaml");
    let utf16le: Vec<u8> = "a: 1\n".encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut with_bom = vec![0xFF, 0xFE];
    with_bom.extend(&utf16le);
    std::fs::write(&p, &with_bom).expect("write");
    let err = read(&p, Kind::Platform).expect_err("utf16");
    assert!(
        err.to_string().contains(
            "is UTF-16 (little-endian, with byte-order mark) text; flywheel reads UTF-8: save the platform.yaml as UTF-8"
        ),
        "{err}"
    );
    std::fs::write(&p, &utf16le).expect("write");
    let err = read(&p, Kind::Platform).expect_err("utf16");
    assert!(
        err.to_string().contains("is UTF-16 (little-endian) text"),
        "{err}"
    );
    let be: Vec<u8> = "a: 1\n".encode_utf16().flat_map(u16::to_be_bytes).collect();
    std::fs::write(&p, &be).expect("write");
    let err = read(&p, Kind::Platform).expect_err("utf16");
    assert!(
        err.to_string().contains("is UTF-16 (big-endian) text"),
        "{err}"
    );
}

#[test]
fn invalid_utf8_is_reported_at_its_line_and_column() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("organization.yaml");
    std::fs::write(&p, b"owner:\n  slug: caf\xE9\n").expect("write");
    let err = read(&p, Kind::Organization).expect_err("latin-1");
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2:12: is not valid UTF-8 (first bad byte at offset 18); save the organization.yaml as UTF-8",
            p.display()
        )
    );
}

#[test]
fn a_stream_is_bounded_too() {
    let endless = std::io::repeat(b'x');
    let err = within_5s(move || read_stream(endless, Path::new("standard input"), Kind::KeyFile))
        .expect_err("endless");
    assert_eq!(
        err.to_string(),
        "standard input: is over the 64 KiB limit for a private key file"
    );
    let text = read_stream(&b"{}"[..], Path::new("-"), Kind::PlanJson).expect("small");
    assert_eq!(text, "{}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Any bytes: the reader never panics, returns valid UTF-8 text exactly,
    /// and an error always names the path.
    #[test]
    fn any_bytes_read_back_or_named(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("f");
        std::fs::write(&p, &bytes).expect("write");
        match read(&p, Kind::Tfvars) {
            Ok(text) => prop_assert_eq!(text.as_bytes(), &bytes[..]),
            Err(e) => prop_assert!(e.to_string().starts_with(&p.display().to_string())),
        }
    }
}
