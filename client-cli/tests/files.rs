//! End-to-end tests of mmapctl's file commands (`ls`, `stat`, `mkdir`,
//! `rm`, `mv`, `truncate`, `touch`, and `put` of an empty file) against a
//! real server's `Files` service, in text and JSON, with their errors: a
//! missing path, a path outside the root, and a file a live mapping uses.

mod support;

use std::{
    os::unix::fs::PermissionsExt,
    path::Path,
    time::{Duration, SystemTime},
};

use mmapd::MapOptions;
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;
use support::{Holder, Server, json, json_lines, stdout_of};

/// 2001-09-09T01:46:40Z, a whole second so every rendering is exact.
const MTIME: u64 = 1_000_000_000;

/// Sets a file's permission bits and modification time.
fn pin(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open to set mtime")
        .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(MTIME))
        .expect("set mtime");
}

/// A root with `a.bin` (5 bytes, 0640, pinned mtime), `link -> a.bin`,
/// `sub/b.txt`, `sub/deeper/c.bin` and the empty folder `empty`.
fn tree() -> Server {
    let server = Server::start();
    server.write("a.bin", b"hello");
    pin(&server.path("a.bin"), 0o640);
    std::os::unix::fs::symlink("a.bin", server.path("link")).expect("symlink");
    std::fs::create_dir_all(server.path("sub/deeper")).expect("mkdir");
    std::fs::create_dir(server.path("empty")).expect("mkdir");
    server.write("sub/b.txt", b"bee\n");
    server.write("sub/deeper/c.bin", &[0; 3]);
    server
}

/// stdout of a successful `mmapctl ARGS`.
fn ok(server: &Server, args: &[&str]) -> String {
    let assert = server.mmapctl().args(args).assert().success().stderr("");
    stdout_of(assert.get_output())
}

/// The JSON error object a failed `mmapctl -o json ARGS` prints on stderr
/// (with nothing on stdout), after checking it exits 1.
/// `mmapctl put LOCAL ARGS...`, run.
fn put(server: &Server, local: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    server.mmapctl().arg("put").arg(local).args(args).assert()
}

fn json_error(server: &Server, args: &[&str]) -> serde_json::Value {
    let assert = server
        .mmapctl()
        .args(["-o", "json"])
        .args(args)
        .assert()
        .code(1)
        .stdout("");
    json(&assert.get_output().stderr)
}

#[test]
fn ls_prints_names_folders_with_a_slash_and_a_file_as_itself() {
    let server = tree();
    assert_eq!(ok(&server, &["ls"]), "a.bin\nempty/\nlink\nsub/\n");
    assert_eq!(ok(&server, &["ls", "sub"]), "sub/b.txt\nsub/deeper/\n");
    assert_eq!(
        ok(&server, &["ls", "-R"]),
        "a.bin\nempty/\nlink\nsub/\nsub/b.txt\nsub/deeper/\nsub/deeper/c.bin\n"
    );
    assert_eq!(
        ok(&server, &["ls", "--recursive", "sub"]),
        "sub/b.txt\nsub/deeper/\nsub/deeper/c.bin\n"
    );
    // A file lists as itself (List says NotADirectoryError; StatPath shows it).
    assert_eq!(ok(&server, &["ls", "sub/b.txt"]), "sub/b.txt\n");
    assert_eq!(ok(&server, &["ls", "-R", "a.bin"]), "a.bin\n");
    // An empty folder prints nothing, like ls.
    assert_eq!(ok(&server, &["ls", "empty"]), "");
}

#[test]
fn ls_long_is_a_table_with_kind_mode_size_mtime_mapped_and_path() {
    let server = tree();
    let out = ok(&server, &["ls", "-l"]);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["KIND", "MODE", "SIZE", "MTIME", "MAPPED", "PATH"],
        "{out}"
    );
    assert_eq!(
        rows[1],
        ["file", "0640", "5", "2001-09-09T01:46:40Z", "no", "a.bin"],
        "{out}"
    );
    assert_eq!(rows.len(), 5, "{out}");
    assert_eq!((rows[2][0], rows[2][5]), ("dir", "empty/"), "{out}");
    // The link itself (not followed), with its target.
    assert_eq!(rows[3][0], "symlink", "{out}");
    assert_eq!(rows[3][5..], ["link", "->", "a.bin"], "{out}");
    assert_eq!((rows[4][0], rows[4][5]), ("dir", "sub/"), "{out}");
    // The header lines up with the rows.
    let header = out.lines().next().unwrap();
    let first = out.lines().nth(1).unwrap();
    assert_eq!(header.find("PATH"), first.find("a.bin"), "{out}");
}

#[test]
fn ls_json_is_one_object_per_entry_and_shows_what_is_mapped() {
    let server = tree();
    let mut holder = Holder::open(&server.endpoint, "holder");
    holder.map(MapOptions::file("sub/b.txt"));

    let assert = server
        .mmapctl()
        .args(["-o", "json", "ls", "-R"])
        .assert()
        .success()
        .stderr("");
    let entries = json_lines(&assert.get_output().stdout);
    let paths: Vec<&str> = entries
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "a.bin",
            "empty",
            "link",
            "sub",
            "sub/b.txt",
            "sub/deeper",
            "sub/deeper/c.bin"
        ]
    );
    assert_eq!(
        entries[0],
        serde_json::json!({
            "path": "a.bin",
            "kind": "file",
            "size": 5,
            "mtime": "2001-09-09T01:46:40.000000000Z",
            "mapped": false,
            "mode": 0o640,
        })
    );
    assert_eq!(entries[1]["kind"], "dir");
    assert_eq!(entries[2]["kind"], "symlink");
    assert_eq!(entries[2]["symlink_target"], "a.bin");
    // A folder is mapped when a file beneath it is.
    let mapped: Vec<&str> = entries
        .iter()
        .filter(|e| e["mapped"] == true)
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(mapped, ["sub", "sub/b.txt"]);
    assert_eq!(entries[4]["size"], 4);
    let mtime = entries[4]["mtime"].as_str().unwrap();
    assert!(
        humantime::parse_rfc3339(mtime).is_ok(),
        "not RFC 3339: {mtime}"
    );

    // The mapped column of the table too.
    let out = ok(&server, &["ls", "-l", "sub"]);
    let row = out.lines().find(|l| l.ends_with("sub/b.txt")).unwrap();
    assert_eq!(row.split_whitespace().nth(4), Some("yes"), "{out}");

    // An empty folder is no lines.
    assert_eq!(ok(&server, &["-o", "json", "ls", "empty"]), "");
    // A file is its one object.
    let assert = server
        .mmapctl()
        .args(["-o", "json", "ls", "a.bin"])
        .assert()
        .success();
    assert_eq!(json(&assert.get_output().stdout)["size"], 5);
}

#[test]
fn ls_fetches_every_page() {
    let server = Server::start_with(|config| config.limits.max_page_size = 2);
    for i in 0..7 {
        server.write(&format!("f{i}"), b"x");
    }
    let expected: String = (0..7).map(|i| format!("f{i}\n")).collect();
    assert_eq!(ok(&server, &["ls"]), expected);
    assert_eq!(ok(&server, &["ls", "-R"]), expected);
}

#[test]
fn ls_and_stat_errors_name_the_path() {
    let server = tree();
    server
        .mmapctl()
        .args(["ls", "nope"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(contains("mmapctl: error: ").and(contains("No such file or directory")));
    let err = json_error(&server, &["ls", "nope"]);
    assert_eq!(err["reason"], "OS_ERROR");
    assert_eq!(err["metadata"]["exception"], "FileNotFoundError");
    assert_eq!(err["metadata"]["path"], "nope");

    // Out of the root: PATH_ESCAPE, with a hint.
    server
        .mmapctl()
        .args(["stat", "../outside"])
        .assert()
        .code(1)
        .stderr(contains("PATH_ESCAPE").and(contains("mmapctl: hint: paths are relative")));
    let err = json_error(&server, &["ls", ".."]);
    assert_eq!(err["reason"], "PATH_ESCAPE");
    assert_eq!(err["code"], "PERMISSION_DENIED");
    assert!(
        err["hints"][0].as_str().unwrap().contains("data root"),
        "{err}"
    );
}

#[test]
fn stat_prints_key_value_lines_or_an_object_and_follows_links() {
    let server = tree();
    assert_eq!(
        ok(&server, &["stat", "a.bin"]),
        "path: a.bin\nkind: file\nsize: 5\nmode: 0640\nmtime: 2001-09-09T01:46:40Z\nmapped: no\n"
    );
    let out = ok(&server, &["stat", "sub"]);
    assert!(out.starts_with("path: sub/\nkind: dir\n"), "{out}");

    let assert = server
        .mmapctl()
        .args(["-o", "json", "stat", "a.bin"])
        .assert()
        .success();
    assert_eq!(
        json(&assert.get_output().stdout),
        serde_json::json!({
            "path": "a.bin",
            "kind": "file",
            "size": 5,
            "mtime": "2001-09-09T01:46:40.000000000Z",
            "mapped": false,
            "mode": 0o640,
        })
    );
    // A symlink inside the root is followed: the file it points to.
    let assert = server
        .mmapctl()
        .args(["-o", "json", "stat", "link"])
        .assert()
        .success();
    let link = json(&assert.get_output().stdout);
    assert_eq!(
        (link["kind"].as_str(), link["size"].as_u64()),
        (Some("file"), Some(5))
    );

    server
        .mmapctl()
        .args(["stat", "missing"])
        .assert()
        .code(1)
        .stderr(contains("No such file or directory"));
}

#[test]
fn mkdir_makes_folders_and_with_p_their_parents() {
    let server = Server::start();
    // Without -p a missing parent is an error, and nothing is made.
    let err = json_error(&server, &["mkdir", "x/y"]);
    assert_eq!(err["metadata"]["exception"], "FileNotFoundError");
    assert!(!server.path("x").exists());

    assert_eq!(ok(&server, &["mkdir", "-p", "x/y"]), "made folder x/y\n");
    assert!(server.path("x/y").is_dir());
    assert_eq!(
        ok(&server, &["mkdir", "--parents", "x/y"]),
        "folder x/y already exists\n"
    );
    assert_eq!(ok(&server, &["mkdir", "x/z"]), "made folder x/z\n");
    assert!(server.path("x/z").is_dir());

    let assert = server
        .mmapctl()
        .args(["-o", "json", "mkdir", "-p", "x/y"])
        .assert()
        .success();
    assert_eq!(
        json(&assert.get_output().stdout),
        serde_json::json!({"path": "x/y", "created": false})
    );
    let assert = server
        .mmapctl()
        .args(["-o", "json", "mkdir", "-p", "p/q/r"])
        .assert()
        .success();
    assert_eq!(
        json(&assert.get_output().stdout),
        serde_json::json!({"path": "p/q/r", "created": true})
    );

    // An existing folder without -p: FileExistsError, with a hint.
    server
        .mmapctl()
        .args(["mkdir", "x"])
        .assert()
        .code(1)
        .stderr(contains("File exists").and(contains("mkdir -p")));
}

#[test]
fn rm_removes_files_empty_folders_and_with_r_trees() {
    let server = tree();
    assert_eq!(ok(&server, &["rm", "a.bin"]), "removed a.bin (1 entry)\n");
    assert!(!server.path("a.bin").exists());
    // The link is removed itself, dangling or not.
    assert_eq!(ok(&server, &["rm", "link"]), "removed link (1 entry)\n");
    assert!(server.path("link").symlink_metadata().is_err());
    let assert = server
        .mmapctl()
        .args(["-o", "json", "rm", "empty"])
        .assert()
        .success();
    assert_eq!(
        json(&assert.get_output().stdout),
        serde_json::json!({"path": "empty", "removed": 1})
    );

    // A folder with something in it needs -r.
    server
        .mmapctl()
        .args(["rm", "sub"])
        .assert()
        .code(1)
        .stderr(contains("not empty").and(contains("rm -r")));
    assert!(server.path("sub/b.txt").exists());
    assert_eq!(
        ok(&server, &["rm", "-r", "sub"]),
        "removed sub (4 entries)\n"
    );
    assert!(!server.path("sub").exists());
    assert_eq!(ok(&server, &["ls"]), "");
}

#[test]
fn rm_of_a_missing_path_fails_with_file_not_found() {
    let server = Server::start();
    server
        .mmapctl()
        .args(["rm", "ghost.bin"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(contains("mmapctl: error: ").and(contains("No such file or directory")));
    let err = json_error(&server, &["rm", "-r", "ghost.bin"]);
    assert_eq!(err["code"], "NOT_FOUND");
    assert_eq!(err["reason"], "OS_ERROR");
    assert_eq!(err["exit_code"], 1);
    assert_eq!(err["metadata"]["exception"], "FileNotFoundError");
    assert_eq!(err["metadata"]["errno"], "2");
    assert_eq!(err["metadata"]["path"], "ghost.bin");
}

#[test]
fn rm_mv_and_truncate_of_a_mapped_file_are_mapping_busy() {
    let server = Server::start();
    server.write("m.bin", &[7; 4096]);
    let mut holder = Holder::open(&server.endpoint, "holder");
    holder.map(MapOptions::file("m.bin"));

    server
        .mmapctl()
        .args(["rm", "m.bin"])
        .assert()
        .code(1)
        .stderr(
            contains("FAILED_PRECONDITION, MAPPING_BUSY")
                .and(contains("mmapctl: hint: a live mapping uses this file")),
        );
    let err = json_error(&server, &["rm", "m.bin"]);
    assert_eq!(err["code"], "FAILED_PRECONDITION");
    assert_eq!(err["reason"], "MAPPING_BUSY");
    assert_eq!(err["metadata"]["errno"], "16");
    assert!(
        err["hints"][0]
            .as_str()
            .unwrap()
            .contains("mmapctl mappings"),
        "{err}"
    );
    let err = json_error(&server, &["mv", "m.bin", "moved.bin"]);
    assert_eq!(err["reason"], "MAPPING_BUSY");
    assert!(!server.path("moved.bin").exists());
    // Nor may a folder holding it go.
    std::fs::create_dir(server.path("d")).unwrap();
    server.write("d/n.bin", &[1; 10]);
    holder.map(MapOptions::file("d/n.bin"));
    let err = json_error(&server, &["rm", "-r", "d"]);
    assert_eq!(err["reason"], "MAPPING_BUSY");
    assert!(server.path("d/n.bin").exists());
    assert_eq!(server.read("m.bin"), vec![7; 4096]);

    // Cutting the mapped file short, including `put` of an empty file.
    let err = json_error(&server, &["truncate", "m.bin", "0"]);
    assert_eq!(err["reason"], "MAPPING_BUSY");
    let local = tempfile::tempdir().unwrap();
    let empty = local.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    put(&server, &empty, &["m.bin"])
        .code(1)
        .stderr(contains("MAPPING_BUSY"));
    assert_eq!(server.read("m.bin"), vec![7; 4096]);
}

#[test]
fn mv_renames_refuses_an_existing_target_and_replaces_with_replace() {
    let server = Server::start();
    server.write("a.txt", b"first");
    server.write("other.txt", b"second");
    assert_eq!(
        ok(&server, &["mv", "a.txt", "b.txt"]),
        "renamed a.txt to b.txt\n"
    );
    assert!(!server.path("a.txt").exists());
    assert_eq!(server.read("b.txt"), b"first");

    // An existing target is FileExistsError, and both files stay.
    server
        .mmapctl()
        .args(["mv", "b.txt", "other.txt"])
        .assert()
        .code(1)
        .stderr(contains("File exists").and(contains("mv --replace")));
    let err = json_error(&server, &["mv", "b.txt", "other.txt"]);
    assert_eq!(err["metadata"]["exception"], "FileExistsError");
    assert_eq!(server.read("other.txt"), b"second");
    assert_eq!(server.read("b.txt"), b"first");

    assert_eq!(
        ok(&server, &["mv", "-f", "b.txt", "other.txt"]),
        "renamed b.txt to other.txt\n"
    );
    assert_eq!(server.read("other.txt"), b"first");
    assert!(!server.path("b.txt").exists());

    // Into a new folder, in JSON, with the long flag.
    std::fs::create_dir(server.path("dir")).unwrap();
    server.write("dir/taken", b"old");
    let assert = server
        .mmapctl()
        .args(["-o", "json", "mv", "--replace", "other.txt", "dir/taken"])
        .assert()
        .success();
    assert_eq!(
        json(&assert.get_output().stdout),
        serde_json::json!({"from": "other.txt", "to": "dir/taken", "replace": true})
    );
    assert_eq!(server.read("dir/taken"), b"first");

    let err = json_error(&server, &["mv", "missing", "x"]);
    assert_eq!(err["metadata"]["exception"], "FileNotFoundError");
}

#[test]
fn truncate_grows_shrinks_and_creates_with_create() {
    let server = Server::start();
    server.write("f.bin", b"abcdef");
    assert_eq!(
        ok(&server, &["truncate", "f.bin", "10"]),
        "truncated f.bin to 10 bytes\n"
    );
    assert_eq!(server.read("f.bin"), b"abcdef\0\0\0\0");
    assert_eq!(
        ok(&server, &["truncate", "f.bin", "2"]),
        "truncated f.bin to 2 bytes\n"
    );
    assert_eq!(server.read("f.bin"), b"ab");

    // A missing file needs --create.
    let err = json_error(&server, &["truncate", "new.bin", "4096"]);
    assert_eq!(err["metadata"]["exception"], "FileNotFoundError");
    assert!(!server.path("new.bin").exists());
    assert_eq!(
        ok(&server, &["truncate", "n/e/w.bin", "4096", "--create"]),
        "truncated n/e/w.bin to 4 KiB\n"
    );
    assert_eq!(server.read("n/e/w.bin"), vec![0; 4096]);

    // JSON is the file's entry afterwards.
    let assert = server
        .mmapctl()
        .args(["-o", "json", "truncate", "f.bin", "0"])
        .assert()
        .success();
    let entry = json(&assert.get_output().stdout);
    assert_eq!(
        (
            entry["path"].as_str(),
            entry["kind"].as_str(),
            entry["size"].as_u64()
        ),
        (Some("f.bin"), Some("file"), Some(0))
    );
    assert_eq!(server.read("f.bin"), b"");
    // Truncate of a folder is refused.
    std::fs::create_dir(server.path("dir")).unwrap();
    let err = json_error(&server, &["truncate", "dir", "1"]);
    assert_eq!(err["reason"], "OS_ERROR");
}

#[test]
fn touch_makes_a_missing_file_and_leaves_an_existing_one_alone() {
    let server = Server::start();
    assert_eq!(ok(&server, &["touch", "t.txt"]), "made empty file t.txt\n");
    assert_eq!(server.read("t.txt"), b"");
    assert_eq!(
        ok(&server, &["touch", "deep/er/t.txt"]),
        "made empty file deep/er/t.txt\n"
    );
    assert_eq!(server.read("deep/er/t.txt"), b"");

    server.write("kept.txt", b"keep me");
    assert_eq!(
        ok(&server, &["touch", "kept.txt"]),
        "kept.txt exists (7 bytes), left unchanged\n"
    );
    assert_eq!(server.read("kept.txt"), b"keep me");

    let assert = server
        .mmapctl()
        .args(["-o", "json", "touch", "kept.txt"])
        .assert()
        .success();
    assert_eq!(
        json(&assert.get_output().stdout),
        serde_json::json!({"path": "kept.txt", "created": false, "size": 7})
    );
    let assert = server
        .mmapctl()
        .args(["-o", "json", "touch", "fresh.txt"])
        .assert()
        .success();
    assert_eq!(
        json(&assert.get_output().stdout),
        serde_json::json!({"path": "fresh.txt", "created": true, "size": 0})
    );
    assert_eq!(server.read("fresh.txt"), b"");
}

#[test]
fn put_of_an_empty_file_makes_or_empties_the_remote_file() {
    let server = Server::start();
    let local = tempfile::tempdir().unwrap();
    let empty = local.path().join("empty");
    std::fs::write(&empty, b"").unwrap();

    // Like any put, a new remote file needs --create.
    put(&server, &empty, &["e.bin"])
        .code(1)
        .stderr(contains("No such file or directory"));
    assert!(!server.path("e.bin").exists());

    put(&server, &empty, &["e.bin", "--create"])
        .success()
        .stdout(format!("uploaded {} to e.bin (0 bytes)\n", empty.display()));
    assert_eq!(server.read("e.bin"), b"");

    let assert = server
        .mmapctl()
        .args(["-o", "json", "put"])
        .arg(&empty)
        .args(["a/b/e.bin", "--create"])
        .assert()
        .success();
    let result = json(&assert.get_output().stdout);
    assert_eq!(result["bytes"], 0);
    assert_eq!(result["path"], "a/b/e.bin");
    assert_eq!(result["local"], empty.to_str().unwrap());
    assert_eq!(server.read("a/b/e.bin"), b"");

    // An existing file is emptied.
    server.write("full.bin", &[9; 100]);
    put(&server, &empty, &["full.bin"]).success();
    assert_eq!(server.read("full.bin"), b"");

    // A mapping by name cannot become 0 bytes.
    put(&server, &empty, &["--name", "region"])
        .code(1)
        .stderr(contains("it is empty"));
}

/// What the acceptance suite runs: nested put, get, a tree listing, a
/// recursive remove, and a JSON listing.
#[test]
fn put_get_ls_rm_round_trip_through_nested_folders() {
    let server = Server::start();
    let local = tempfile::tempdir().unwrap();
    let source = local.path().join("c.bin");
    let data = support::pseudo_random(100_000, 7);
    std::fs::write(&source, &data).unwrap();

    put(&server, &source, &["a/b/c.bin", "--create"]).success();
    let copy = local.path().join("copy.bin");
    server
        .mmapctl()
        .args(["get", "a/b/c.bin"])
        .arg(&copy)
        .assert()
        .success();
    assert!(
        std::fs::read(&copy).unwrap() == data,
        "downloaded copy differs"
    );

    assert_eq!(ok(&server, &["ls", "-R"]), "a/\na/b/\na/b/c.bin\n");
    let assert = server
        .mmapctl()
        .args(["-o", "json", "ls", "-R"])
        .assert()
        .success();
    let entries = json_lines(&assert.get_output().stdout);
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[2]["path"], "a/b/c.bin");
    assert_eq!(entries[2]["size"], 100_000);
    assert_eq!(entries[2]["mapped"], false);

    assert_eq!(ok(&server, &["rm", "-r", "a"]), "removed a (3 entries)\n");
    assert!(!server.path("a").exists());
    assert_eq!(ok(&server, &["-o", "json", "ls"]), "");
    assert_eq!(ok(&server, &["ls"]), "");
}

/// A pipe reports 0 bytes whatever it holds; `put` must not take that for
/// an empty file and cut the remote file to nothing.
#[test]
fn put_from_a_pipe_is_refused_and_loses_nothing() {
    let server = Server::start();
    server.write("keep.txt", b"precious");
    server
        .mmapctl()
        .args(["put", "/dev/stdin", "keep.txt"])
        .write_stdin("new content")
        .assert()
        .failure()
        .stderr(contains("not a regular file"));
    assert_eq!(server.read("keep.txt"), b"precious");
}

/// Times before 1970 render (a file may carry any mtime), and names with
/// control characters are spelled out in text, as they are in JSON.
#[test]
fn old_times_and_odd_names_render() {
    let server = Server::start();
    server.write("old", b"");
    std::fs::File::options()
        .write(true)
        .open(server.path("old"))
        .expect("open")
        .set_modified(SystemTime::UNIX_EPOCH - Duration::from_secs(315_619_200))
        .expect("set mtime");
    server.write("new\nline\u{1b}[31m", b"");
    let long = ok(&server, &["ls", "-l"]);
    assert!(long.contains("1960-01-01T00:00:00Z"), "{long}");
    assert!(long.contains("new\\nline\\u{1b}[31m"), "{long}");
    assert!(
        !long.contains('\u{1b}'),
        "a raw escape reached the terminal: {long:?}"
    );
    assert_eq!(ok(&server, &["ls"]), "new\\nline\\u{1b}[31m\nold\n");
    let rows = json_lines(
        &server
            .mmapctl()
            .args(["-o", "json", "ls"])
            .assert()
            .success()
            .get_output()
            .stdout,
    );
    assert_eq!(rows[0]["path"], "new\nline\u{1b}[31m");
    assert_eq!(rows[1]["mtime"], "1960-01-01T00:00:00.000000000Z");
    let stat = ok(&server, &["stat", "old"]);
    assert!(stat.contains("mtime: 1960-01-01T00:00:00Z"), "{stat}");
}

/// `truncate` takes the new size as a plain number: `+5` (GNU's "grow by
/// 5") is a usage error, not a size of 5.
#[test]
fn truncate_refuses_a_signed_size() {
    let server = Server::start();
    server.write("f", b"0123456789");
    for size in ["+5", "-5", "5K", ""] {
        server
            .mmapctl()
            .args(["truncate", "f", "--", size])
            .assert()
            .code(2)
            .stderr(contains("not a size"));
    }
    assert_eq!(server.read("f"), b"0123456789");
}
