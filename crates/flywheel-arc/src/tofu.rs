//! `flywheel arc plan|apply`: the arc-runners stack through `tofu` from PATH.
//!
//! init (with the overlay's S3 backend file) → plan into a saved plan file →
//! `show -json` of that file → the destroy guard → `apply` of exactly that
//! file, only when the guard allows.
//!
//! The saved plan lives in a folder private to the run ([`PlanDir`]: a fresh
//! 0700 temporary folder, removed afterwards), so two runs in one checkout
//! never share it, and its SHA-256 ([`digest`]) is taken after `plan` and
//! compared again before `apply`: a plan file that changed after the guard
//! read it is never applied.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the stack's files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// `tofu/stacks/arc-runners` (tofu runs there, `-chdir`).
    pub stack: PathBuf,
    pub tfvars: PathBuf,
    pub backend: PathBuf,
    /// The saved plan, in the run's private folder ([`PlanDir`]).
    pub plan_file: PathBuf,
}

/// A folder private to one run (mode 0700, outside the checkout) holding its
/// saved plan; removed when dropped.
pub struct PlanDir {
    dir: tempfile::TempDir,
}

impl PlanDir {
    pub fn new() -> Result<PlanDir, String> {
        let dir = tempfile::Builder::new()
            .prefix("flywheel-arc-plan-")
            .tempdir()
            .map_err(|e| format!("cannot create a private folder for the plan file: {e}"))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("{}: cannot make it private: {e}", dir.path().display()))?;
        }
        Ok(PlanDir { dir })
    }

    /// The saved plan's path in this folder.
    pub fn plan_file(&self) -> PathBuf {
        self.dir.path().join("arc-runners.tfplan")
    }
}

/// SHA-256 of a saved plan file.
pub fn digest(path: &Path) -> Result<[u8; 32], String> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path)
        .map_err(|e| format!("{}: cannot read the plan file: {e}", path.display()))?;
    Ok(Sha256::digest(&bytes).into())
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn pick(dir: &Path, suffix: &str, prefer: Option<&str>, what: &str) -> Result<PathBuf, String> {
    match flywheel_overlay::single_file(dir, suffix, prefer) {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(format!("{}: no *{suffix} ({what})", dir.display())),
        Err(found) => Err(format!(
            "{}: several *{suffix} files; choose one ({what}):\n{}",
            dir.display(),
            flywheel_overlay::listing(&found)
        )),
    }
}

/// The stack layout of `overlay`: the tfvars (the single one, or `tfvars`),
/// and the backend file (`backend`, else `<cluster>.s3.hcl`, else the single
/// `tofu/backend/*.s3.hcl`); the plan is saved as `plan_file`.
pub fn layout(
    overlay: &Path,
    tfvars: Option<&Path>,
    backend: Option<&Path>,
    cluster: Option<&str>,
    plan_file: PathBuf,
) -> Result<Layout, String> {
    let stack = overlay.join("tofu/stacks/arc-runners");
    if !stack.is_dir() {
        return Err(format!(
            "{}: not found; is {} an implementation overlay?",
            stack.display(),
            overlay.display()
        ));
    }
    let tfvars = match tfvars {
        Some(p) if p.is_file() => p.to_path_buf(),
        Some(p) => return Err(format!("{}: --tfvars names no file", p.display())),
        None => pick(&stack, ".tfvars", None, "--tfvars")?,
    };
    let backend = match backend {
        Some(p) if p.is_file() => p.to_path_buf(),
        Some(p) => return Err(format!("{}: --backend names no file", p.display())),
        None => pick(
            &overlay.join("tofu/backend"),
            ".s3.hcl",
            cluster,
            "--backend",
        )?,
    };
    Ok(Layout {
        plan_file,
        stack: absolute(&stack),
        tfvars: absolute(&tfvars),
        backend: absolute(&backend),
    })
}

/// `tofu` on PATH, or an error that says how to get it.
pub fn find_tofu(path_var: Option<OsString>) -> Result<PathBuf, String> {
    let path = path_var.unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("tofu");
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err("`tofu` is not on PATH; install OpenTofu (https://opentofu.org/docs/intro/install/) and retry".into())
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

/// One step of the sequence, as arguments after `tofu`.
pub fn steps(l: &Layout) -> [(&'static str, Vec<OsString>); 4] {
    let chdir = || OsString::from(format!("-chdir={}", l.stack.display()));
    let os = |s: &str| OsString::from(s);
    let mut backend = OsString::from("-backend-config=");
    backend.push(&l.backend);
    let mut var_file = OsString::from("-var-file=");
    var_file.push(&l.tfvars);
    let mut out = OsString::from("-out=");
    out.push(&l.plan_file);
    [
        (
            "init",
            vec![chdir(), os("init"), os("-input=false"), backend],
        ),
        (
            "plan",
            vec![chdir(), os("plan"), os("-input=false"), var_file, out],
        ),
        (
            "show",
            vec![
                chdir(),
                os("show"),
                os("-json"),
                l.plan_file.clone().into_os_string(),
            ],
        ),
        (
            "apply",
            vec![
                chdir(),
                os("apply"),
                os("-input=false"),
                l.plan_file.clone().into_os_string(),
            ],
        ),
    ]
}

/// Runs `tofu` with its output going to our stderr (the operator sees it);
/// with `capture`, stdout is returned instead.
pub fn run(tofu: &Path, args: &[OsString], capture: bool) -> Result<String, String> {
    let mut cmd = Command::new(tofu);
    cmd.args(args).stdin(Stdio::null()).stderr(Stdio::inherit());
    if capture {
        cmd.stdout(Stdio::piped());
    } else {
        // tofu's progress belongs with ours, on stderr, so stdout stays the report.
        cmd.stdout(std::io::stderr());
    }
    let step = args
        .get(1)
        .map(|a| a.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", tofu.display()))?;
    // What tofu prints is read like a plan file: bounded (512 MiB), UTF-8.
    let shown = format!("`tofu {step}` output");
    let captured = child.stdout.take().map(|stdout| {
        flywheel_fs::read_stream(stdout, Path::new(&shown), flywheel_fs::Kind::PlanJson)
    });
    if matches!(captured, Some(Err(_))) {
        let _ = child.kill();
    }
    let status = child
        .wait()
        .map_err(|e| format!("cannot run {}: {e}", tofu.display()))?;
    if !status.success() {
        return Err(format!("`tofu {step}` failed ({status})"));
    }
    match captured {
        Some(Ok(text)) => Ok(text),
        Some(Err(e)) => Err(e.to_string()),
        None => Ok(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_prefers_the_cluster_backend_and_lists_ambiguity() {
        let dir = tempfile::tempdir().expect("tmp");
        let o = dir.path();
        std::fs::create_dir_all(o.join("tofu/stacks/arc-runners")).expect("mkdir");
        std::fs::create_dir_all(o.join("tofu/backend")).expect("mkdir");
        std::fs::write(o.join("tofu/stacks/arc-runners/x.tfvars"), "").expect("w");
        std::fs::write(o.join("tofu/backend/honey.s3.hcl"), "").expect("w");
        std::fs::write(o.join("tofu/backend/honey-edge.s3.hcl"), "").expect("w");
        let plan = PlanDir::new().expect("plan dir");
        let l = layout(o, None, None, Some("honey"), plan.plan_file()).expect("layout");
        assert!(l.backend.ends_with("honey.s3.hcl"));
        let e = layout(o, None, None, None, plan.plan_file()).expect_err("two backends");
        assert!(
            e.contains("honey-edge.s3.hcl") && e.contains("--backend"),
            "{e}"
        );
        let s = steps(&l);
        assert_eq!(s[3].1.last(), Some(&l.plan_file.clone().into_os_string()));
    }

    #[test]
    fn a_missing_tofu_says_how_to_get_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let e = find_tofu(Some(dir.path().as_os_str().to_owned())).expect_err("none");
        assert!(e.contains("OpenTofu"));
    }
}
