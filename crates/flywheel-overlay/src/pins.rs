//! The two core pins, rewritten together and byte for byte.
//!
//! `core.pinned_commit` in `config/organization.yaml` and the `commit` of the
//! core's `git_override` in `MODULE.bazel` change in one step: only the 40
//! hex characters of each are replaced (comments, order and quoting stay),
//! each file is replaced atomically (temporary file + rename, keeping the
//! file's owner and mode), and when the second write fails the first file is
//! restored.
//!
//! Concurrent writers: [`write_both`] takes an advisory lock (`flock`) on both
//! files, checks each still holds what was read, and [`AtomicWriter`] checks
//! again right before its rename, so an edit made meanwhile is never
//! overwritten ("changed since it was read").

use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flywheel_yaml::Located;

use crate::module_bazel::CorePin;
use crate::organization::is_full_sha;

/// The byte range of a scalar's text given where the parser put it: the
/// value itself, inside quotes when it is quoted. `None` when the text there
/// is not `value`.
pub fn scalar_range(text: &str, at: &Located<String>) -> Option<Range<usize>> {
    let mut start = yaml_offset(text, at.pos)?;
    if text[start..].starts_with(['"', '\'']) {
        start += 1;
    }
    let end = start + at.value.len();
    (text.get(start..end) == Some(at.value.as_str())).then_some(start..end)
}

/// Byte offset of a YAML parser position (1-based line and character
/// column). Lines end where YAML's do: at CR LF, a lone CR or LF (a lone CR
/// is a line break to the parser, so counting only LF would land on a
/// different line, e.g. a comment holding the same SHA).
pub fn yaml_offset(text: &str, pos: flywheel_yaml::Pos) -> Option<usize> {
    if !pos.is_known() || pos.line == 0 || pos.column == 0 {
        return None;
    }
    let bytes = text.as_bytes();
    let mut start = 0;
    for _ in 1..pos.line {
        let rest = &bytes[start..];
        let i = rest.iter().position(|&b| b == b'\n' || b == b'\r')?;
        start += i + if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') {
            2
        } else {
            1
        };
    }
    let line = &text[start..];
    let line = &line[..line.find(['\n', '\r']).unwrap_or(line.len())];
    let col = pos.column as usize - 1;
    match line.char_indices().nth(col) {
        Some((i, _)) => Some(start + i),
        None if line.chars().count() == col => Some(start + line.len()),
        None => None,
    }
}

/// Both files' new text with `new` in place of each pin.
pub fn rewrite(
    organization: &str,
    pinned: &Located<String>,
    module_bazel: &str,
    pin: &CorePin,
    new: &str,
) -> Result<(String, String), String> {
    if !is_full_sha(new) {
        return Err(format!("`{new}` is not a 40-hex commit"));
    }
    let new = new.to_ascii_lowercase();
    let org_range = scalar_range(organization, pinned).ok_or_else(|| {
        format!(
            "core.pinned_commit at line {} is not written as a plain or quoted string; edit it by hand",
            pinned.pos.line
        )
    })?;
    if module_bazel.get(pin.range.clone()) != Some(pin.commit.as_str()) {
        // The text was read once, so it did not change: the literal's
        // spelling is not its value (`r"…"`, `"\x36…"`).
        let begin = pin.range.start.saturating_sub(1).min(module_bazel.len());
        let begin = (0..=begin)
            .rev()
            .find(|&i| module_bazel.is_char_boundary(i))
            .unwrap_or(0);
        let rest = &module_bazel[begin..];
        let line = rest.split(['\n', '\r', ',', ')']).next().unwrap_or("");
        let shown: String = line.chars().take(60).collect();
        return Err(format!(
            "MODULE.bazel:{}: the core pin is written as a raw or escaped string ({}); flywheel edits only a plain \"<40 hex>\" literal: write it as commit = \"{}\" and run again, or edit both pins by hand",
            pin.pos,
            flywheel_text::human(shown.trim()),
            flywheel_text::human(&pin.commit)
        ));
    }
    let splice =
        |text: &str, r: Range<usize>| format!("{}{new}{}", &text[..r.start], &text[r.end..]);
    Ok((
        splice(organization, org_range),
        splice(module_bazel, pin.range.clone()),
    ))
}

/// Where file reads and writes go; tests swap it to make a write fail.
pub trait Writer {
    /// Replaces `path` with `contents`, unless it no longer holds `expected`.
    fn write(&mut self, path: &Path, expected: &str, contents: &str) -> std::io::Result<()>;

    /// The file as it is now (to notice an edit made since it was read).
    fn current(&mut self, path: &Path) -> std::io::Result<String> {
        // The one bounded reader: regular files only, within the limit.
        let kind = if path.file_name().is_some_and(|n| n == "MODULE.bazel") {
            flywheel_fs::Kind::ModuleBazel
        } else {
            flywheel_fs::Kind::Organization
        };
        flywheel_fs::read(path, kind).map_err(|e| std::io::Error::other(e.to_string()))
    }

    /// An advisory lock on `path`, held while the value lives.
    fn lock(&mut self, _path: &Path) -> std::io::Result<Option<std::fs::File>> {
        Ok(None)
    }
}

/// How long [`lock_file`] waits for another writer.
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

/// An exclusive advisory lock (`flock`) on the file `path` names (its
/// target, for a link), waiting at most `wait`. Relocks when the file was
/// replaced while waiting, so the lock is on the file the path names now.
pub fn lock_file(path: &Path, wait: Duration) -> std::io::Result<std::fs::File> {
    let path = std::fs::canonicalize(path)?;
    let deadline = Instant::now() + wait;
    loop {
        let f = std::fs::File::open(&path)?;
        loop {
            match f.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(25));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("still locked by another writer after {}s", wait.as_secs()),
                    ));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e),
            }
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let (held, now) = (f.metadata()?, std::fs::metadata(&path)?);
            if (held.dev(), held.ino()) != (now.dev(), now.ino()) {
                continue; // replaced while we waited: lock the new file
            }
        }
        return Ok(f);
    }
}

/// Temporary file in the same folder (created fresh, never through an
/// existing link), flushed to disk, given the original's owner and mode,
/// checked against `expected` right before it is renamed over the original (a
/// symlinked file is written at its target), then the folder is flushed so
/// the rename survives a crash.
pub struct AtomicWriter;

impl Writer for AtomicWriter {
    fn lock(&mut self, path: &Path) -> std::io::Result<Option<std::fs::File>> {
        lock_file(path, LOCK_WAIT).map(Some)
    }

    fn write(&mut self, path: &Path, expected: &str, contents: &str) -> std::io::Result<()> {
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.flywheel-{}.tmp", std::process::id()));
        let result = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            f.write_all(contents.as_bytes())?;
            f.sync_all()?;
            let meta = std::fs::metadata(&path)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                let mine = f.metadata()?;
                if (mine.uid(), mine.gid()) != (meta.uid(), meta.gid()) {
                    std::os::unix::fs::fchown(&f, Some(meta.uid()), Some(meta.gid())).map_err(
                        |e| {
                            std::io::Error::new(
                                e.kind(),
                                format!(
                                    "cannot keep the file's owner {}:{} ({e})",
                                    meta.uid(),
                                    meta.gid()
                                ),
                            )
                        },
                    )?;
                }
            }
            std::fs::set_permissions(&tmp, meta.permissions())?;
            if std::fs::read(&path)? != expected.as_bytes() {
                return Err(std::io::Error::other("changed since it was read"));
            }
            std::fs::rename(&tmp, &path)?;
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

/// One file of a two-file change.
pub struct Change {
    pub path: PathBuf,
    pub old: String,
    pub new: String,
}

/// Writes both or neither, holding an advisory lock on both files. On
/// failure the message says what is on disk.
pub fn write_both(w: &mut impl Writer, first: &Change, second: &Change) -> Result<(), String> {
    let mut _locks = Vec::new();
    for c in [first, second] {
        match w.lock(&c.path) {
            Ok(l) => _locks.push(l),
            Err(e) => {
                return Err(format!(
                    "{}: cannot lock ({e}); nothing changed",
                    c.path.display()
                ));
            }
        }
    }
    for c in [first, second] {
        match w.current(&c.path) {
            Ok(now) if now == c.old => {}
            Ok(_) => {
                return Err(format!(
                    "{} changed since it was read; nothing changed, run again",
                    c.path.display()
                ));
            }
            Err(e) => {
                return Err(format!(
                    "{}: cannot read ({e}); nothing changed",
                    c.path.display()
                ));
            }
        }
    }
    w.write(&first.path, &first.old, &first.new).map_err(|e| {
        format!(
            "{}: cannot write ({e}); nothing changed",
            first.path.display()
        )
    })?;
    if let Err(e) = w.write(&second.path, &second.old, &second.new) {
        return Err(match w.write(&first.path, &first.new, &first.old) {
            Ok(()) => format!(
                "{}: cannot write ({e}); {} was restored, nothing changed",
                second.path.display(),
                first.path.display()
            ),
            Err(e2) => format!(
                "{}: cannot write ({e}); restoring {} also failed ({e2}): it holds the NEW pin, {} the OLD one; fix by hand",
                second.path.display(),
                first.path.display(),
                second.path.display()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_yaml::Pos;

    const OLD: &str = "637b7167c400a842cdc7af0709b2251c0542a48a";
    const NEW: &str = "defff7fb7d1f3457c5270ce2e57ac6077e797b1c";

    fn located(text: &str, needle: &str) -> Located<String> {
        let off = text.find(needle).expect("needle");
        Located::new(OLD.to_string(), Pos::from_offset(text, off))
    }

    #[test]
    fn plain_and_quoted_scalars_are_found() {
        for text in [
            format!("core:\n  pinned_commit: {OLD} # selected\n"),
            format!("core:\n  pinned_commit: \"{OLD}\"\n"),
            format!("core: {{pinned_commit: '{OLD}'}}\n"),
            format!("# é\ncore:\n  pinned_commit:   {OLD}\n"),
        ] {
            let quote = if text.contains(&format!("\"{OLD}")) {
                "\""
            } else if text.contains(&format!("'{OLD}")) {
                "'"
            } else {
                ""
            };
            let at = located(&text, &format!("{quote}{OLD}"));
            let r = scalar_range(&text, &at).expect("range");
            assert_eq!(&text[r], OLD, "{text}");
        }
    }

    #[test]
    fn rewrite_changes_only_the_pins() {
        let org = format!("core:\n  # the selected core\n  pinned_commit: \"{OLD}\"  # keep\n");
        let module = format!(
            "git_override(\n    module_name = \"attic-iac\",\n    commit = \"{OLD}\",  # pin\n)\n"
        );
        let start = module.find(OLD).expect("pin");
        let pin = CorePin {
            commit: OLD.into(),
            pos: Pos::from_offset(&module, start),
            range: start..start + 40,
            remote: None,
        };
        let (o, m) = rewrite(
            &org,
            &located(&org, &format!("\"{OLD}")),
            &module,
            &pin,
            NEW,
        )
        .expect("rewrite");
        assert_eq!(o, org.replace(OLD, NEW));
        assert_eq!(m, module.replace(OLD, NEW));
        assert!(
            rewrite(
                &org,
                &located(&org, &format!("\"{OLD}")),
                &module,
                &pin,
                "main"
            )
            .is_err()
        );
    }

    struct FailOn(usize, usize, Vec<(PathBuf, String)>);

    impl Writer for FailOn {
        fn current(&mut self, path: &Path) -> std::io::Result<String> {
            Ok(if path.ends_with("org.yaml") {
                "old-a"
            } else {
                "old-b"
            }
            .to_string())
        }

        fn write(&mut self, path: &Path, _: &str, contents: &str) -> std::io::Result<()> {
            self.1 += 1;
            if self.1 == self.0 {
                return Err(std::io::Error::other("disk full"));
            }
            self.2.push((path.to_path_buf(), contents.to_string()));
            Ok(())
        }
    }

    #[test]
    fn a_failed_second_write_restores_the_first() {
        let a = Change {
            path: "org.yaml".into(),
            old: "old-a".into(),
            new: "new-a".into(),
        };
        let b = Change {
            path: "MODULE.bazel".into(),
            old: "old-b".into(),
            new: "new-b".into(),
        };
        let mut w = FailOn(2, 0, Vec::new());
        let e = write_both(&mut w, &a, &b).expect_err("second fails");
        assert!(e.contains("org.yaml was restored"), "{e}");
        assert_eq!(w.2.last().map(|(_, c)| c.as_str()), Some("old-a"));
        let mut w = FailOn(1, 0, Vec::new());
        assert!(
            write_both(&mut w, &a, &b)
                .expect_err("first fails")
                .contains("nothing changed")
        );
        assert!(w.2.is_empty());
    }

    #[test]
    fn atomic_writes_replace_the_file_and_leave_no_temporary() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("MODULE.bazel");
        std::fs::write(&p, "old").expect("write");
        AtomicWriter.write(&p, "old", "new").expect("atomic");
        let e = AtomicWriter
            .write(&p, "old", "newer")
            .expect_err("changed since read");
        assert!(e.to_string().contains("changed since it was read"), "{e}");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "new");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
        #[cfg(unix)]
        {
            let link = dir.path().join("link.bazel");
            std::os::unix::fs::symlink(&p, &link).expect("symlink");
            AtomicWriter
                .write(&link, "new", "through the link")
                .expect("atomic");
            assert_eq!(
                std::fs::read_to_string(&p).expect("read"),
                "through the link",
                "the target is written"
            );
            assert!(
                std::fs::symlink_metadata(&link)
                    .expect("meta")
                    .file_type()
                    .is_symlink(),
                "the link stays a link"
            );
        }
    }

    #[test]
    fn a_lone_cr_is_a_line_break() {
        let text = format!("core:\r  pinned_commit: {OLD}\n  # was pinned:  {OLD}\n");
        let at = Located::new(
            OLD.to_string(),
            Pos {
                line: 2,
                column: 18,
            },
        );
        let r = scalar_range(&text, &at).expect("range");
        assert_eq!(
            r.start,
            text.find(OLD).expect("pin"),
            "the pin, not the comment"
        );
        let crlf = format!("a: 1\r\ncore:\r\n  pinned_commit: {OLD}\r\n");
        let at = Located::new(
            OLD.to_string(),
            Pos {
                line: 3,
                column: 18,
            },
        );
        assert_eq!(scalar_range(&crlf, &at).map(|r| &crlf[r]), Some(OLD));
    }

    proptest::proptest! {
        #[test]
        fn scalar_range_never_panics(text in "(?s).{0,200}", line in 0u32..8, column in 0u32..40) {
            let at = Located::new(OLD.to_string(), Pos { line, column });
            if let Some(r) = scalar_range(&text, &at) {
                proptest::prop_assert_eq!(&text[r], OLD);
            }
        }
    }
}
