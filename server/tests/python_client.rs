//! Runs the Python client's pytest suite (`client-python/tests`) against this
//! build's `mmapd`, so `cargo test --workspace` stays the one test command.
//!
//! The suite needs grpcio, pytest and grpcio-tools, which a fresh machine
//! lacks: they go into a throwaway virtual environment under `target/`,
//! named by a hash of what it installs, so it is built once per change of
//! the requirements and reused otherwise. Only `python3` (with `venv` and
//! `pip`) and the package registry are needed.

use std::{
    collections::hash_map::DefaultHasher,
    hash::{Hash, Hasher},
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| {
            if t.is_absolute() {
                t
            } else {
                workspace().join(t)
            }
        })
        .unwrap_or_else(|| workspace().join("target"))
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?}: {e} (the Python client tests need python3)")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The venv for these requirements, created on first use. It is built under
/// a temporary name and renamed, so a half-built one is never reused.
fn venv(client: &Path) -> PathBuf {
    let mut hasher = DefaultHasher::new();
    for file in ["pyproject.toml", "requirements-test.txt"] {
        std::fs::read(client.join(file)).unwrap().hash(&mut hasher);
    }
    let python = Command::new("python3").arg("--version").output();
    if let Ok(out) = python {
        out.stdout.hash(&mut hasher);
    }
    let dir = target_dir().join(format!("python-venv-{:016x}", hasher.finish()));
    if dir.join("ready").exists() {
        return dir;
    }
    let building = target_dir().join(format!(
        "python-venv-building-{}-{:016x}",
        std::process::id(),
        hasher.finish()
    ));
    let _ = std::fs::remove_dir_all(&building);
    run(Command::new("python3").args(["-m", "venv"]).arg(&building));
    let pip = |args: &[&str]| {
        run(Command::new(building.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(args)
            .current_dir(client))
    };
    pip(&["-r", "requirements-test.txt"]);
    // The package's own dependencies, from PyPI as a user would get them.
    pip(&["."]);
    std::fs::write(building.join("ready"), b"").unwrap();
    if std::fs::rename(&building, &dir).is_err() {
        // Another test run finished the same venv first; use that one.
        let _ = std::fs::remove_dir_all(&building);
    }
    dir
}

#[test]
fn python_client_pytest_suite_passes() {
    let client = workspace().join("client-python");
    let venv = venv(&client);
    let python = venv.join("bin/python");
    // Install this checkout's package over whatever the venv holds.
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-build-isolation",
            "--force-reinstall",
            ".",
        ])
        .current_dir(&client));
    let out = Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"])
        .current_dir(&client)
        .env("MMAPD_BIN", env!("CARGO_BIN_EXE_mmapd"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("MMAPD_ENDPOINT")
        .env_remove("MMAPD_LOCAL_ROOT")
        .output()
        .expect("run pytest");
    assert!(
        out.status.success(),
        "pytest failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
