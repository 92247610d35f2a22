//! Parallel walk and per-file dispatch.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use ignore::{WalkBuilder, WalkState};

use crate::labels::{self, Ctx};
use crate::text;
use crate::{Report, Rules, Violation};

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
}

fn kind_of(path: &Path) -> Kind {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name == ".gitlab-ci.yml" || name == ".gitlab-ci.yaml" {
        return Kind::GitlabCi;
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
    if memchr::memchr(0, bytes).is_some() {
        return;
    }
    if !text::file_allows_all(bytes) {
        text::out_of_contract(rules, file, bytes, out);
    }
    let kind = kind_of(Path::new(file));
    if kind == Kind::Text {
        return;
    }
    let Ok(source) = std::str::from_utf8(bytes) else {
        return;
    };
    let root = match flywheel_yaml::parse(source) {
        Ok(root) => root,
        Err(e) => {
            out.push(labels::unparseable(file, &e));
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
    };
    match kind {
        Kind::Workflow => labels::workflow(&mut ctx, &root),
        Kind::GitlabCi => labels::gitlab(&mut ctx, &root),
        Kind::Text => {}
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
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for ScanError {}

/// Walks `paths` in parallel and checks every file. Paths that do not exist
/// are an error (a typo must not look like a clean tree).
pub fn scan(rules: &Rules, paths: &[PathBuf], options: &ScanOptions) -> Result<Report, ScanError> {
    let Some((first, rest)) = paths.split_first() else {
        return Ok(Report::default());
    };
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
    let mut builder = WalkBuilder::new(first);
    for p in rest {
        builder.add(p);
    }
    builder
        .hidden(false)
        .require_git(false)
        .threads(options.threads)
        .filter_entry(|e| e.file_name() != ".git");

    let files = AtomicUsize::new(0);
    let found: Mutex<Vec<Violation>> = Mutex::new(Vec::new());
    let failed: Mutex<Option<ScanError>> = Mutex::new(None);
    builder.build_parallel().run(|| {
        let mut buf = Vec::with_capacity(64 * 1024);
        let mut local = Vec::new();
        let files = &files;
        let found = &found;
        let failed = &failed;
        let skip = &skip;
        Box::new(move |entry| {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    // Unreadable directory entries are reported, not ignored.
                    if let Ok(mut f) = failed.lock() {
                        f.get_or_insert(ScanError {
                            path: PathBuf::new(),
                            message: e.to_string(),
                        });
                    }
                    return WalkState::Quit;
                }
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return WalkState::Continue;
            }
            let path = entry.path();
            if !skip.is_empty()
                && skip.iter().any(|s| s.file_name() == path.file_name())
                && path.canonicalize().is_ok_and(|c| skip.contains(&c))
            {
                return WalkState::Continue;
            }
            buf.clear();
            if let Err(e) = std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut buf)) {
                if let Ok(mut f) = failed.lock() {
                    f.get_or_insert(ScanError {
                        path: path.to_path_buf(),
                        message: e.to_string(),
                    });
                }
                return WalkState::Quit;
            }
            files.fetch_add(1, Ordering::Relaxed);
            let name = path.to_string_lossy();
            let name = name.strip_prefix("./").unwrap_or(&name);
            scan_text(rules, name, &buf, &mut local);
            if !local.is_empty()
                && let Ok(mut f) = found.lock()
            {
                f.append(&mut local);
            }
            WalkState::Continue
        })
    });
    if let Some(e) = failed.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut violations = found.into_inner().unwrap_or_default();
    violations.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.rule).cmp(&(&b.file, b.line, b.column, b.rule))
    });
    Ok(Report {
        files_scanned: files.into_inner(),
        violations,
    })
}
