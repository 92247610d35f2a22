//! Parallel walk and per-file dispatch.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ignore::{WalkBuilder, WalkState};

use crate::labels::{self, Ctx};
use crate::text;
use crate::{Report, Rules, Violation};
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
        write!(f, "{}: {}", self.path.display(), self.message)
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
    Ok(Report {
        files_scanned,
        violations,
    })
}

/// What the walker threads share.
struct Walk<'a> {
    rules: &'a Rules,
    skip: &'a [PathBuf],
    files: AtomicUsize,
    found: Mutex<Vec<Violation>>,
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
                        let path = match &e {
                            ignore::Error::WithPath { path, .. } => path.clone(),
                            _ => PathBuf::from("."),
                        };
                        self.fail(&path, e.to_string());
                        return WalkState::Quit;
                    }
                };
                if !entry.file_type().is_some_and(|t| t.is_file()) {
                    return WalkState::Continue;
                }
                let path = entry.path();
                if !self.skip.is_empty()
                    && self.skip.iter().any(|s| s.file_name() == path.file_name())
                    && path.canonicalize().is_ok_and(|c| self.skip.contains(&c))
                {
                    return WalkState::Continue;
                }
                buf.clear();
                if let Err(e) = std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut buf))
                {
                    self.fail(path, e.to_string());
                    return WalkState::Quit;
                }
                self.files.fetch_add(1, Ordering::Relaxed);
                let name = path.to_string_lossy();
                let name = name.strip_prefix("./").unwrap_or(&name);
                scan_text(self.rules, name, &buf, &mut local);
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
