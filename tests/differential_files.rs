//! Differential test of the Files service against Python's `os`: random
//! sequences of mkdir, remove, rename, truncate, stat and list run through
//! real gRPC on the server's root and through `tests/oracle/files_oracle.py`
//! on a twin folder. Every result, every error (exception class, errno and
//! message, from the one ErrorInfo) and the whole tree after each call must
//! agree. A second test holds Map's errors to `open` + `mmap.mmap` for
//! paths spelled every way a client might.

mod support;

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
};

use mmapd::pb::{self, Access, FileKind, files_client::FilesClient};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use serde_json::{Value, json};
use support::TestServer;
use tonic::{Status, transport::Channel};

/// Calls per seed; each is one RPC and one line to Python.
const CALLS: usize = 400;
/// Seeds run by default; `MMAPD_FILES_SEEDS=N` runs seeds 1..=N instead
/// (a longer hunt for differences, outside CI).
const SEEDS: u64 = 4;

/// Path segments: two folder-ish names and a file-ish one, so a path often
/// runs through a file (ENOTDIR) or names a folder where a file is wanted.
const SEGMENTS: [&str; 3] = ["a", "b", "f.txt"];

/// The running `files_oracle.py`.
struct Oracle {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Oracle {
    fn start(root: &Path) -> Oracle {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle/files_oracle.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the oracle");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut oracle = Oracle {
            child,
            stdin,
            stdout,
        };
        let hello = oracle.line();
        assert!(hello["python"].is_string(), "{hello}");
        oracle
    }

    fn line(&mut self) -> Value {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("oracle answers");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("oracle said {line:?}: {e}"))
    }

    fn call(&mut self, req: &Value) -> Value {
        writeln!(self.stdin, "{req}").expect("oracle listens");
        self.line()
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A random path of one to three segments, now and then with a trailing
/// `/` (which `os` treats as "must be a folder").
fn path(rng: &mut StdRng) -> String {
    let depth = rng.random_range(1..=3);
    let mut p: Vec<&str> = (0..depth).map(|_| *SEGMENTS.choose(rng).unwrap()).collect();
    match rng.random_range(0..24) {
        0 | 1 => p.push(""),
        2 => p.push("."),
        3 if rng.random_bool(0.3) => p.extend([".", ""]),
        3 => p.insert(0, "."),
        _ => {}
    }
    let mut p = p.join("/");
    if rng.random_ratio(1, 24) {
        p = p.replacen('/', "//", 1);
    }
    p
}

/// A symlink made beside the calls (the service makes none): a name, and
/// a target beside it (a folder, a file, a loop, or nothing). No `..`: a
/// rename may move the link up, and a link out of the root is PATH_ESCAPE,
/// which e2e_files covers.
fn link(rng: &mut StdRng) -> Value {
    let depth = rng.random_range(1..=2);
    let at: Vec<&str> = (0..depth).map(|_| *SEGMENTS.choose(rng).unwrap()).collect();
    let target = ["a", "b/f.txt", "f.txt", "gone"].choose(rng).unwrap();
    json!({"op": "symlink", "path": at.join("/"), "to": target})
}

fn request(rng: &mut StdRng) -> Value {
    if rng.random_ratio(1, 20) {
        return link(rng);
    }
    match rng.random_range(0..100) {
        0..20 => json!({"op": "mkdir", "path": path(rng), "parents": rng.random_bool(0.5)}),
        20..32 => json!({"op": "remove", "path": path(rng), "recursive": rng.random_bool(0.4)}),
        32..47 => json!({
            "op": "rename", "path": path(rng), "to": path(rng), "replace": rng.random_bool(0.5)
        }),
        47..67 => json!({
            "op": "truncate", "path": path(rng),
            "size": *[0u64, 3, 100].choose(rng).unwrap(), "create": rng.random_bool(0.6)
        }),
        67..85 => json!({"op": "stat", "path": path(rng)}),
        _ => {
            let p = if rng.random_ratio(1, 4) {
                String::new()
            } else {
                path(rng)
            };
            json!({"op": "list", "path": p})
        }
    }
}

/// The server's answer in the oracle's shape.
async fn call(f: &mut FilesClient<Channel>, req: &Value) -> Value {
    let s = |key: &str| req[key].as_str().unwrap_or_default().to_owned();
    let b = |key: &str| req[key].as_bool().unwrap();
    let path = s("path");
    let result: Result<Value, Status> = match req["op"].as_str().unwrap() {
        "mkdir" => f
            .make_dir(pb::MakeDirRequest {
                path,
                parents: b("parents"),
            })
            .await
            .map(|r| json!(r.into_inner().created)),
        "remove" => f
            .remove(pb::RemoveRequest {
                path,
                recursive: b("recursive"),
            })
            .await
            .map(|r| json!(r.into_inner().removed)),
        "rename" => f
            .rename(pb::RenameRequest {
                from: path,
                to: s("to"),
                replace: b("replace"),
            })
            .await
            .map(|_| Value::Null),
        "truncate" => f
            .truncate(pb::TruncateRequest {
                path,
                size: req["size"].as_u64().unwrap(),
                create: b("create"),
                keep_existing: false,
            })
            .await
            .map(|r| json!(r.into_inner().size)),
        "stat" => f.stat_path(pb::StatPathRequest { path }).await.map(|r| {
            let e = r.into_inner();
            match e.kind() {
                FileKind::File => json!(["file", e.size]),
                FileKind::Dir => json!(["dir", 0]),
                FileKind::Symlink => json!(["symlink", e.size]),
                FileKind::Other | FileKind::Unspecified => json!(["other", e.size]),
            }
        }),
        "list" => f
            .list(pb::ListRequest {
                path,
                recursive: false,
                page_size: 0,
                page_token: String::new(),
            })
            .await
            .map(|r| {
                let names: Vec<String> = r
                    .into_inner()
                    .entries
                    .into_iter()
                    .map(|e| e.path.rsplit('/').next().unwrap().to_owned())
                    .collect();
                json!(names)
            }),
        other => panic!("unknown op {other}"),
    };
    match result {
        Ok(value) => json!({ "ok": value }),
        Err(status) => os_error(&status),
    }
}

/// An error as the oracle reports one, from the status's one ErrorInfo.
fn os_error(status: &Status) -> Value {
    let infos = support::error_infos(status);
    assert_eq!(infos.len(), 1, "exactly one ErrorInfo in {status:?}");
    let md = &infos[0].metadata;
    json!({
        "err": md.get("exception").cloned().unwrap_or_else(|| infos[0].reason.clone()),
        "errno": md.get("errno").and_then(|e| e.parse::<i64>().ok()),
        "message": status.message(),
    })
}

/// Every entry beneath `root`: its kind, and a file's bytes.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let rel = entry
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let kind = entry.file_type().unwrap();
            let shown = if kind.is_symlink() {
                format!("link to {:?}", std::fs::read_link(entry.path()).unwrap())
            } else if kind.is_dir() {
                todo.push(entry.path());
                "dir".to_owned()
            } else if kind.is_file() {
                format!("file {:?}", std::fs::read(entry.path()).unwrap())
            } else {
                format!("{kind:?}")
            };
            out.insert(rel, shown);
        }
    }
    out
}

/// The same start in both folders: a file with bytes, in a folder.
fn seed_tree(root: &Path) {
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    std::fs::write(root.join("a/f.txt"), b"hello").unwrap();
    std::fs::write(root.join("a/b/f.txt"), b"deep").unwrap();
}

#[tokio::test]
async fn files_calls_match_pythons_os() {
    let server = TestServer::start().await;
    let twin = tempfile::tempdir().unwrap();
    let mut oracle = Oracle::start(twin.path());
    let mut f = FilesClient::connect(server.endpoint()).await.unwrap();
    let root = server.path("");
    let mut seen_errors = BTreeMap::<String, usize>::new();
    let seeds = std::env::var("MMAPD_FILES_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(SEEDS);
    for seed in 1..=seeds {
        for dir in [root.as_path(), twin.path()] {
            for entry in std::fs::read_dir(dir).unwrap() {
                let p = entry.unwrap().path();
                if p.is_dir() {
                    std::fs::remove_dir_all(&p).unwrap();
                } else {
                    std::fs::remove_file(&p).unwrap();
                }
            }
            seed_tree(dir);
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let mut log = Vec::new();
        for _ in 0..CALLS {
            let req = request(&mut rng);
            log.push(req.to_string());
            if req["op"] == "symlink" {
                // Made directly in both folders; the trees must agree after.
                let (at, to) = (req["path"].as_str().unwrap(), req["to"].as_str().unwrap());
                let made = std::os::unix::fs::symlink(to, root.join(at)).is_ok();
                let twin_made = std::os::unix::fs::symlink(to, twin.path().join(at)).is_ok();
                assert_eq!(made, twin_made, "seed {seed}: {req}");
                continue;
            }
            let want = oracle.call(&req);
            let got = call(&mut f, &req).await;
            let history = || log[log.len().saturating_sub(8)..].join("\n  ");
            assert_eq!(
                got,
                want,
                "seed {seed}: mmapd (left) and os (right) differ; last calls:\n  {}",
                history()
            );
            assert_eq!(
                tree(&root),
                tree(twin.path()),
                "seed {seed}: the trees differ after the call; last calls:\n  {}",
                history()
            );
            if let Some(err) = want["err"].as_str() {
                *seen_errors
                    .entry(format!("{} {err} {}", req["op"], want["errno"]))
                    .or_default() += 1;
            }
        }
    }
    // The generator reaches the errors this test is for.
    for needed in [
        "\"mkdir\" FileExistsError 17",
        "\"mkdir\" NotADirectoryError 20",
        "\"remove\" FileNotFoundError 2",
        "\"remove\" OSError 39",
        "\"rename\" FileExistsError 17",
        "\"rename\" OSError 22",
        "\"truncate\" IsADirectoryError 21",
        "\"list\" NotADirectoryError 20",
    ] {
        assert!(
            seen_errors.contains_key(needed),
            "no {needed} among {seen_errors:#?}"
        );
    }
}

#[tokio::test]
async fn map_errors_match_pythons_open_for_every_spelling() {
    let server = TestServer::start().await;
    let twin = tempfile::tempdir().unwrap();
    for dir in [server.path(""), twin.path().to_path_buf()] {
        seed_tree(&dir);
        std::os::unix::fs::symlink("a/f.txt", dir.join("link")).unwrap();
        std::os::unix::fs::symlink("a", dir.join("dirlink")).unwrap();
        std::os::unix::fs::symlink("loop", dir.join("loop")).unwrap();
        std::os::unix::fs::symlink("gone", dir.join("dangling")).unwrap();
    }
    let mut oracle = Oracle::start(twin.path());
    let (mut c, _) = server.clients().await;
    let sid = support::session(&mut c, 0).await;
    let paths = [
        "a/f.txt",
        "./a/f.txt",
        "a//f.txt",
        "a/./f.txt",
        "a/f.txt/",
        "a/f.txt/.",
        "a/",
        "a/.",
        "a",
        "./a",
        "nope",
        "./nope",
        "a//nope",
        "a/nope/x",
        "a/f.txt/x",
        "link",
        "link/",
        "./link",
        "dirlink",
        "dirlink/",
        "dirlink/f.txt",
        "dirlink/./f.txt",
        "loop",
        "loop/",
        "loop/x",
        "dangling",
        "dangling/",
        "a/b/../f.txt",
    ];
    for path in paths {
        let want = oracle.call(&json!({"op": "map", "path": path}));
        let got = match support::map(&mut c, support::map_req(&sid, path, "", Access::Write)).await
        {
            Ok(reply) => json!({"ok": reply.length}),
            Err(status) => os_error(&status),
        };
        // `..` is PATH_ESCAPE in mmapd whatever it would resolve to.
        if path.contains("..") {
            assert_eq!(got["err"], "PermissionError", "{path}: {got}");
            continue;
        }
        assert_eq!(
            got, want,
            "Map({path:?}): mmapd (left) and open + mmap (right)"
        );
    }
}
