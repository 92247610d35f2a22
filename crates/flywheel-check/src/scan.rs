//! Parallel walk and per-file dispatch.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ignore::{WalkBuilder, WalkState};

use crate::labels::{self, Ctx};
use crate::text;
use crate::{Report, Rules, Skipped, Violation};
use flywheel_contract::Severity;

#[derive(Clone, Debug, Default)]
pub struct ScanOptions {
    /// Files never reported (the contract configuration itself names every
    /// out-of-contract value).
    pub skip: Vec<PathBuf>,
    /// Worker threads; 0 = one per core.
    pub threads: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Workflow,
    GitlabCi,
    Tfvars,
}

fn kind_of(path: &Path) -> Kind {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name == ".gitlab-ci.yml" || name == ".gitlab-ci.yaml" {
        return Kind::GitlabCi;
    }
    if name.ends_with(".tfvars") {
        return Kind::Tfvars;
    }
    let yaml = name.ends_with(".yml") || name.ends_with(".yaml");
    let mut parents = path.parent().into_iter().flat_map(|p| p.components().rev());
    let in_workflows = parents.next().is_some_and(|c| c.as_os_str() == "workflows")
        && parents.next().is_some_and(|c| c.as_os_str() == ".github");
    if yaml && in_workflows {
        Kind::Workflow
    } else {
        Kind::Text
    }
}

/// Checks one file's contents; `file` is the name reported and decides
/// whether it is a workflow or `.gitlab-ci.yml`. Binary content is skipped.
pub fn scan_text(rules: &Rules, file: &str, bytes: &[u8], out: &mut Vec<Violation>) {
    let kind = kind_of(Path::new(file));
    // A workflow (or tfvars, .gitlab-ci.yml) in another encoding must not
    // pass as "binary, skipped": its labels would go unchecked without a word.
    if kind != Kind::Text
        && let Some(problem) = flywheel_fs::utf8_problem(bytes)
    {
        let pos = match problem {
            flywheel_fs::Problem::InvalidUtf8 { line, column, .. } => flywheel_yaml::Pos {
                line: u32::try_from(line).unwrap_or(u32::MAX),
                column: u32::try_from(column).unwrap_or(u32::MAX),
            },
            _ => flywheel_yaml::Pos { line: 1, column: 1 },
        };
        let message = problem
            .encoding_message()
            .unwrap_or_else(|| "not UTF-8".into());
        let e = flywheel_yaml::SyntaxError {
            pos,
            message: format!("the file {message}; save it as UTF-8"),
        };
        let severity = if kind == Kind::GitlabCi {
            Severity::Warning
        } else {
            Severity::Error
        };
        out.push(labels::unparseable(file, &e, severity));
        return;
    }
    if memchr::memchr(0, bytes).is_some() {
        return;
    }
    if !text::file_allows_all(bytes) {
        text::out_of_contract(rules, file, bytes, out);
    }
    if kind == Kind::Text {
        return;
    }
    let Ok(source) = std::str::from_utf8(bytes) else {
        return;
    };
    if kind == Kind::Tfvars {
        labels::tfvars(rules, file, source, out);
        return;
    }
    let root = match flywheel_yaml::parse(source) {
        Ok(root) => root,
        Err(e) => {
            // An unreadable workflow hides its runs-on: an error. A
            // .gitlab-ci.yml only hides tag notes: a warning.
            let severity = if kind == Kind::Workflow {
                Severity::Error
            } else {
                Severity::Warning
            };
            out.push(labels::unparseable(file, &e, severity));
            return;
        }
    };
    let mut ctx = Ctx {
        rules,
        file,
        lines: source.lines().collect(),
        out,
        targets_shared: false,
        groups: Vec::new(),
        triggers: labels::Triggers::default(),
        attic_token_uses: Vec::new(),
    };
    match kind {
        Kind::Workflow => labels::workflow(&mut ctx, &root),
        Kind::GitlabCi => labels::gitlab(&mut ctx, &root),
        Kind::Text | Kind::Tfvars => {}
    }
}

/// A path that could not be scanned.
#[derive(Debug)]
pub struct ScanError {
    pub path: PathBuf,
    pub message: String,
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.as_os_str().is_empty() {
            // Never `: message` with nothing before the colon.
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path.display(), self.message)
        }
    }
}

impl std::error::Error for ScanError {}

/// Walks `paths` in parallel and checks every file. Paths that do not exist
/// are an error (a typo must not look like a clean tree), and so is a scan
/// that read no file at all (everything ignored must not look clean).
///
/// `.gitignore` is honoured (build output), `.ignore` files are not: a file
/// in the scanned tree must not be able to switch the check off. `.github/`
/// folders are always scanned, whatever any ignore file says.
pub fn scan(rules: &Rules, paths: &[PathBuf], options: &ScanOptions) -> Result<Report, ScanError> {
    if paths.is_empty() {
        return Err(ScanError {
            path: PathBuf::from("."),
            message: "nothing to scan: no path given".into(),
        });
    }
    for p in paths {
        if !p.exists() {
            return Err(ScanError {
                path: p.clone(),
                message: "no such file or directory".into(),
            });
        }
    }
    let skip: Vec<PathBuf> = options
        .skip
        .iter()
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    let state = Walk {
        rules,
        skip: &skip,
        files: AtomicUsize::new(0),
        found: Mutex::new(Vec::new()),
        skipped: Mutex::new(Vec::new()),
        failed: Mutex::new(None),
    };
    let github_dirs: Arc<Mutex<Vec<PathBuf>>> = Arc::default();
    // Pass 1: the trees, `.gitignore` honoured, `.github/` set aside.
    let mut builder = WalkBuilder::new(&paths[0]);
    for p in &paths[1..] {
        builder.add(p);
    }
    builder
        .hidden(false)
        .require_git(false)
        .ignore(false)
        .threads(options.threads);
    let seen_github = github_dirs.clone();
    builder.filter_entry(move |e| {
        if e.file_name() == ".git" {
            return false;
        }
        if e.depth() > 0 && e.file_name() == ".github" && e.file_type().is_some_and(|t| t.is_dir())
        {
            if let Ok(mut g) = seen_github.lock() {
                g.push(e.path().to_path_buf());
            }
            return false;
        }
        true
    });
    state.run(builder);
    // Pass 2: every `.github/` folder, whatever the ignore files say.
    let mut github: Vec<PathBuf> = github_dirs.lock().map(|g| g.clone()).unwrap_or_default();
    for p in paths {
        let g = p.join(".github");
        if p.is_dir() && g.is_dir() {
            github.push(g);
        }
    }
    github.sort();
    github.dedup();
    if let Some((first, rest)) = github.split_first() {
        let mut builder = WalkBuilder::new(first);
        for p in rest {
            builder.add(p);
        }
        builder
            .standard_filters(false)
            .threads(options.threads)
            .filter_entry(|e| e.file_name() != ".git");
        state.run(builder);
    }
    if let Some(e) = state.failed.into_inner().ok().flatten() {
        return Err(e);
    }
    let files_scanned = state.files.into_inner();
    if files_scanned == 0 {
        return Err(ScanError {
            path: paths[0].clone(),
            message: "nothing scanned: every file was ignored (.gitignore) or there are no files"
                .into(),
        });
    }
    let mut violations = state.found.into_inner().unwrap_or_default();
    violations.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.rule).cmp(&(&b.file, b.line, b.column, b.rule))
    });
    violations.dedup();
    let mut skipped = state.skipped.into_inner().unwrap_or_default();
    skipped.sort_by(|a, b| a.file.cmp(&b.file));
    skipped.dedup_by(|a, b| a.file == b.file);
    Ok(Report {
        files_scanned,
        violations,
        skipped,
    })
}

/// What the walker threads share.
struct Walk<'a> {
    rules: &'a Rules,
    skip: &'a [PathBuf],
    files: AtomicUsize,
    found: Mutex<Vec<Violation>>,
    skipped: Mutex<Vec<Skipped>>,
    failed: Mutex<Option<ScanError>>,
}

impl Walk<'_> {
    fn fail(&self, path: &Path, message: String) {
        if let Ok(mut f) = self.failed.lock() {
            f.get_or_insert(ScanError {
                path: path.to_path_buf(),
                message,
            });
        }
    }

    fn run(&self, builder: WalkBuilder) {
        builder.build_parallel().run(|| {
            let mut buf = Vec::with_capacity(64 * 1024);
            let mut local = Vec::new();
            Box::new(move |entry| {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        // Unreadable directory entries are reported, not ignored.
                        let e = walk_error(&e);
                        self.fail(&e.path, e.message);
                        return WalkState::Quit;
                    }
                };
                let Some(file_type) = entry.file_type() else {
                    return WalkState::Continue;
                };
                // Folders are walked and symlinks are not followed (the
                // walker's policy); anything else that is not a regular file
                // (a FIFO, a device, a socket) is passed over with a warning,
                // never opened.
                if !file_type.is_file() {
                    if !file_type.is_dir()
                        && !file_type.is_symlink()
                        && let Ok(mut s) = self.skipped.lock()
                    {
                        s.push(Skipped {
                            file: shown(entry.path()),
                            reason: "not a regular file (a FIFO, device or socket); not scanned"
                                .into(),
                        });
                    }
                    return WalkState::Continue;
                }
                let path = entry.path();
                if !self.skip.is_empty()
                    && self.skip.iter().any(|s| s.file_name() == path.file_name())
                    && path.canonicalize().is_ok_and(|c| self.skip.contains(&c))
                {
                    return WalkState::Continue;
                }
                if let Err(e) =
                    flywheel_fs::read_bytes_into(path, flywheel_fs::Kind::Scanned, &mut buf)
                {
                    // Replaced by a FIFO or device since the walk saw it, or
                    // over the size limit: passed over with a warning.
                    if e.is_not_regular() || e.is_too_large() {
                        if let Ok(mut s) = self.skipped.lock() {
                            s.push(Skipped {
                                file: shown(path),
                                reason: format!("{}; not scanned", e.reason()),
                            });
                        }
                        return WalkState::Continue;
                    }
                    self.fail(path, e.reason());
                    return WalkState::Quit;
                }
                self.files.fetch_add(1, Ordering::Relaxed);
                scan_text(self.rules, &shown(path), &buf, &mut local);
                if !local.is_empty()
                    && let Ok(mut f) = self.found.lock()
                {
                    f.append(&mut local);
                }
                WalkState::Continue
            })
        });
    }
}

/// A path as reports show it (without a leading `./`).
fn shown(path: &Path) -> String {
    let name = path.to_string_lossy();
    name.strip_prefix("./").unwrap_or(&name).to_string()
}

/// A walk error with the path it happened at (the walker wraps the I/O
/// error in layers that carry the path, the depth, or a symlink loop).
fn walk_error(e: &ignore::Error) -> ScanError {
    match e {
        ignore::Error::WithPath { path, err } => {
            let mut inner = walk_error(err);
            if inner.path.as_os_str().is_empty() {
                inner.path.clone_from(path);
            }
            inner
        }
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            walk_error(err)
        }
        ignore::Error::Loop { ancestor, child } => ScanError {
            path: child.clone(),
            message: format!("symlink loop back to {}", ancestor.display()),
        },
        ignore::Error::Io(io) => ScanError {
            path: PathBuf::new(),
            message: format!("cannot read: {io}"),
        },
        other => ScanError {
            path: PathBuf::new(),
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unreadable folder printed `cannot scan : /path` (empty path, the
    /// path buried in the message): the path now leads the message.
    #[test]
    fn a_walk_error_names_its_path() {
        let io = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let e = ignore::Error::WithDepth {
            depth: 1,
            err: Box::new(ignore::Error::WithPath {
                path: PathBuf::from("/srv/private"),
                err: Box::new(ignore::Error::Io(io)),
            }),
        };
        let shown = walk_error(&e).to_string();
        assert_eq!(shown, "/srv/private: cannot read: permission denied");
        let bare = walk_error(&ignore::Error::Io(std::io::Error::other("boom"))).to_string();
        assert!(!bare.starts_with(':'), "{bare}");
    }
}
