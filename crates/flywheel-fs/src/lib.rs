//! One bounded reader for every file flywheel reads.
//!
//! A path handed to flywheel may be a FIFO (opening it for reading blocks
//! until a writer appears), a device (`/dev/zero` never ends), a symlink to
//! either, or a sparse file of gigabytes. [`read`] reads only regular files
//! (symlinks are followed, their target must be a regular file), never blocks
//! on open (`O_NONBLOCK`), and stops at a size limit chosen per [`Kind`] of
//! file. Every error names the path, and a size error names the limit.
//!
//! Text is checked as it is read: UTF-16/UTF-32 (by byte-order mark or by the
//! NUL pattern of ASCII text in UTF-16) and invalid UTF-8 are reported with
//! the encoding found, or the line and column of the first bad byte. File
//! content is never part of an error (key files go through here too).

use std::fmt;
use std::fs::{File, Metadata};
use std::io::Read;
use std::path::{Path, PathBuf};

/// What a file is for; decides its size limit and how it is named in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `config/organization.yaml` of an overlay.
    Organization,
    /// The platform contract, `platform.yaml`.
    Platform,
    /// `MODULE.bazel` of an overlay.
    ModuleBazel,
    /// An OpenTofu `.tfvars` file.
    Tfvars,
    /// An OpenTofu backend file (`*.s3.tfbackend`, `backend.tf`).
    Backend,
    /// A GitHub Actions workflow.
    Workflow,
    /// `tofu show -json` output.
    PlanJson,
    /// A kubeconfig file.
    Kubeconfig,
    /// A private key file (PEM).
    KeyFile,
    /// Any file `contract check` scans.
    Scanned,
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

impl Kind {
    /// The largest file of this kind that is read, in bytes.
    pub const fn limit(self) -> u64 {
        match self {
            Kind::Organization | Kind::Backend => MIB,
            Kind::Platform | Kind::ModuleBazel | Kind::Tfvars | Kind::Workflow => 4 * MIB,
            Kind::Kubeconfig => 16 * MIB,
            Kind::KeyFile => 64 * KIB,
            Kind::Scanned => 64 * MIB,
            Kind::PlanJson => 512 * MIB,
        }
    }

    /// How the file is named in messages.
    pub const fn describe(self) -> &'static str {
        match self {
            Kind::Organization => "organization.yaml",
            Kind::Platform => "platform.yaml",
            Kind::ModuleBazel => "MODULE.bazel",
            Kind::Tfvars => "tfvars file",
            Kind::Backend => "backend file",
            Kind::Workflow => "workflow",
            Kind::PlanJson => "plan JSON",
            Kind::Kubeconfig => "kubeconfig",
            Kind::KeyFile => "private key file",
            Kind::Scanned => "scanned file",
        }
    }
}

/// A byte count as people read it (`1 MiB`, `64 KiB`, `300 bytes`).
pub fn human(bytes: u64) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// What went wrong reading a file.
#[derive(Debug)]
pub enum Problem {
    NotFound,
    /// Not a regular file: what it is (`a FIFO`, `a directory`, ...).
    NotRegular(&'static str),
    /// Over the limit; the size when the file system reported one.
    TooLarge(Option<u64>),
    Io(std::io::Error),
    /// Text in another encoding than UTF-8 (`UTF-16 (little-endian)`, ...).
    Encoding(&'static str),
    /// Not valid UTF-8 at this place (1-based line and column, byte offset).
    InvalidUtf8 {
        line: usize,
        column: usize,
        offset: usize,
    },
}

impl Problem {
    /// An encoding problem in words, without a path: `is UTF-16 (...) text,
    /// not UTF-8` or `is not valid UTF-8 (first bad byte at offset N)`.
    pub fn encoding_message(&self) -> Option<String> {
        match self {
            Problem::Encoding(enc) => Some(format!("is {enc} text, not UTF-8")),
            Problem::InvalidUtf8 { offset, .. } => Some(format!(
                "is not valid UTF-8 (first bad byte at offset {offset})"
            )),
            _ => None,
        }
    }
}

/// A file that could not be read; its `Display` names the path.
#[derive(Debug)]
pub struct ReadError {
    pub path: PathBuf,
    pub kind: Kind,
    pub problem: Problem,
}

impl ReadError {
    fn new(path: &Path, kind: Kind, problem: Problem) -> ReadError {
        ReadError {
            path: path.to_path_buf(),
            kind,
            problem,
        }
    }

    /// The file does not exist (callers often treat that as "absent").
    pub fn is_not_found(&self) -> bool {
        matches!(self.problem, Problem::NotFound)
    }

    /// The path is not a regular file (a FIFO, a device, a directory, ...).
    pub fn is_not_regular(&self) -> bool {
        matches!(self.problem, Problem::NotRegular(_))
    }

    /// The file is over its kind's size limit.
    pub fn is_too_large(&self) -> bool {
        matches!(self.problem, Problem::TooLarge(_))
    }

    /// The message without the path (for callers that print the path
    /// themselves, e.g. with `shown_path`).
    pub fn reason(&self) -> String {
        let what = self.kind.describe();
        let limit = human(self.kind.limit());
        match &self.problem {
            Problem::NotFound => "not found".to_string(),
            Problem::NotRegular(is) => {
                format!("is {is}, not a regular file; a {what} must be a regular file")
            }
            Problem::TooLarge(Some(size)) => format!(
                "is {}, over the {limit} limit for a {what}",
                human_size(*size)
            ),
            Problem::TooLarge(None) => format!("is over the {limit} limit for a {what}"),
            Problem::Io(e) => format!("cannot read: {e}"),
            Problem::Encoding(enc) => {
                format!("is {enc} text; flywheel reads UTF-8: save the {what} as UTF-8")
            }
            Problem::InvalidUtf8 { offset, .. } => format!(
                "is not valid UTF-8 (first bad byte at offset {offset}); save the {what} as UTF-8"
            ),
        }
    }
}

fn human_size(bytes: u64) -> String {
    if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else {
        format!("{bytes} bytes")
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Problem::InvalidUtf8 { line, column, .. } = self.problem {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": {}", self.reason())
    }
}

impl std::error::Error for ReadError {}

fn file_type_name(m: &Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = m.file_type();
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if m.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Checks that `path` (symlinks followed) is a regular file within `kind`'s
/// limit, without opening it. For files another library reads (kubeconfig).
pub fn check(path: &Path, kind: Kind) -> Result<Metadata, ReadError> {
    let m = std::fs::metadata(path).map_err(|e| io_error(path, kind, e))?;
    if !m.is_file() {
        return Err(ReadError::new(
            path,
            kind,
            Problem::NotRegular(file_type_name(&m)),
        ));
    }
    if m.len() > kind.limit() {
        return Err(ReadError::new(path, kind, Problem::TooLarge(Some(m.len()))));
    }
    Ok(m)
}

fn io_error(path: &Path, kind: Kind, e: std::io::Error) -> ReadError {
    if e.kind() == std::io::ErrorKind::NotFound {
        ReadError::new(path, kind, Problem::NotFound)
    } else {
        ReadError::new(path, kind, Problem::Io(e))
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // A FIFO swapped in after the check must not block the open.
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    options.open(path)
}

/// Reads the bytes of `path` into `buf` (cleared first): regular files only,
/// at most `kind.limit()` bytes.
pub fn read_bytes_into(path: &Path, kind: Kind, buf: &mut Vec<u8>) -> Result<(), ReadError> {
    buf.clear();
    // Check before opening: opening some devices has effects of its own.
    check(path, kind)?;
    let file = open(path).map_err(|e| io_error(path, kind, e))?;
    // Check what was opened (the path may have been replaced meanwhile).
    let m = file.metadata().map_err(|e| io_error(path, kind, e))?;
    if !m.is_file() {
        return Err(ReadError::new(
            path,
            kind,
            Problem::NotRegular(file_type_name(&m)),
        ));
    }
    let limit = kind.limit();
    if m.len() > limit {
        return Err(ReadError::new(path, kind, Problem::TooLarge(Some(m.len()))));
    }
    // A file growing while it is read still stops at the limit.
    let read = read_limited(file, limit, buf, usize::try_from(m.len()).unwrap_or(0));
    finish(path, kind, read)
}

fn read_limited(
    reader: impl Read,
    limit: u64,
    buf: &mut Vec<u8>,
    hint: usize,
) -> std::io::Result<bool> {
    buf.reserve(hint);
    reader.take(limit.saturating_add(1)).read_to_end(buf)?;
    Ok(buf.len() as u64 > limit)
}

fn finish(path: &Path, kind: Kind, read: std::io::Result<bool>) -> Result<(), ReadError> {
    match read {
        Ok(false) => Ok(()),
        Ok(true) => Err(ReadError::new(path, kind, Problem::TooLarge(None))),
        Err(e) => Err(io_error(path, kind, e)),
    }
}

/// Reads `path` as bytes (see [`read_bytes_into`]).
pub fn read_bytes(path: &Path, kind: Kind) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::new();
    read_bytes_into(path, kind, &mut buf)?;
    Ok(buf)
}

/// Reads `path` as UTF-8 text: regular files only, at most `kind.limit()`
/// bytes; other encodings are reported by name, bad bytes by line:column.
pub fn read(path: &Path, kind: Kind) -> Result<String, ReadError> {
    let bytes = read_bytes(path, kind)?;
    decode(bytes).map_err(|p| ReadError::new(path, kind, p))
}

/// Reads text from a stream (standard input) with `kind`'s limit; `name`
/// stands for the path in errors.
pub fn read_stream(reader: impl Read, name: &Path, kind: Kind) -> Result<String, ReadError> {
    let mut buf = Vec::new();
    finish(name, kind, read_limited(reader, kind.limit(), &mut buf, 0))?;
    decode(buf).map_err(|p| ReadError::new(name, kind, p))
}

/// The encoding of `bytes` when it is recognisably not UTF-8.
pub fn foreign_encoding(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0xFF, 0xFE, 0, 0, ..] => Some("UTF-32 (little-endian, with byte-order mark)"),
        [0, 0, 0xFE, 0xFF, ..] => Some("UTF-32 (big-endian, with byte-order mark)"),
        [0xFF, 0xFE, ..] => Some("UTF-16 (little-endian, with byte-order mark)"),
        [0xFE, 0xFF, ..] => Some("UTF-16 (big-endian, with byte-order mark)"),
        [a, 0, b, 0, ..] if *a != 0 && *b != 0 => Some("UTF-16 (little-endian)"),
        [0, a, 0, b, ..] if *a != 0 && *b != 0 => Some("UTF-16 (big-endian)"),
        _ => None,
    }
}

fn decode(bytes: Vec<u8>) -> Result<String, Problem> {
    if let Some(p) = utf8_problem(&bytes) {
        return Err(p);
    }
    String::from_utf8(bytes).map_err(|_| Problem::Encoding("not UTF-8"))
}

/// Why `bytes` is not UTF-8 text (another encoding by name, or the place of
/// the first bad byte); `None` when it is. For callers holding bytes already
/// (the scanner).
pub fn utf8_problem(bytes: &[u8]) -> Option<Problem> {
    if let Some(enc) = foreign_encoding(bytes) {
        return Some(Problem::Encoding(enc));
    }
    let e = std::str::from_utf8(bytes).err()?;
    let offset = e.valid_up_to();
    // The prefix is valid UTF-8 by construction.
    let good = std::str::from_utf8(&bytes[..offset]).unwrap_or_default();
    let line_start = good.rfind('\n').map_or(0, |i| i + 1);
    Some(Problem::InvalidUtf8 {
        line: good.matches('\n').count() + 1,
        column: good[line_start..].chars().count() + 1,
        offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human(MIB), "1 MiB");
        assert_eq!(human(64 * KIB), "64 KiB");
        assert_eq!(human(300), "300 bytes");
    }

    #[test]
    fn decode_reports_place_of_bad_byte() {
        let p = decode(b"a: 1\nb: \xC3(\n".to_vec()).expect_err("invalid");
        assert!(
            matches!(
                p,
                Problem::InvalidUtf8 {
                    line: 2,
                    column: 4,
                    offset: 8
                }
            ),
            "{p:?}"
        );
    }
}
