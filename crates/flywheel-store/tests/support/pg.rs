//! A real PostgreSQL 15 for the store tests: `initdb` and `pg_ctl` on a
//! temporary directory and a free loopback port, stopped on drop. Run as
//! root (CI is), the server runs as the `postgres` user, as initdb requires.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    as_postgres: bool,
}

fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FLYWHEEL_PG_BIN") {
        return PathBuf::from(d);
    }
    for d in [
        "/usr/lib/postgresql/15/bin",
        "/usr/lib/postgresql/16/bin",
        "/usr/lib/postgresql/17/bin",
    ] {
        if Path::new(d).join("initdb").exists() {
            return PathBuf::from(d);
        }
    }
    panic!(
        "PostgreSQL server binaries not found (looked in /usr/lib/postgresql/*/bin; set FLYWHEEL_PG_BIN): \
         .ci/run installs postgresql-15"
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PgServer {
    pub fn start() -> PgServer {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("flywheel-pg-")
            .tempdir()
            .expect("tempdir");
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(ok.success(), "chown to postgres failed");
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let s = PgServer {
            bin,
            dir,
            port,
            as_postgres,
        };
        let data = s.dir.path().join("data");
        s.run(
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "flywheel",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            s.dir.path().display()
        );
        s.run(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-o",
                &opts,
                "-l",
                &s.dir.path().join("log").to_string_lossy(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        s
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let out = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        }
        .unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
        assert!(
            out.status.success(),
            "{tool} failed: {}\n{}\nlog: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }

    /// A fresh database on this server, as a URL.
    pub fn database(&self, name: &str) -> String {
        self.run(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "flywheel",
                name,
            ],
        );
        format!("postgres://flywheel@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let exe = self.bin.join("pg_ctl");
        let args = ["-D", &data.to_string_lossy(), "-m", "immediate", "stop"].map(str::to_string);
        let _ = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(&args)
                .output()
        } else {
            Command::new(&exe).args(&args).output()
        };
    }
}
