//! End-to-end tests of the Files service over real gRPC: every call and
//! the `os` error each failure is, confinement beneath the root for each
//! call, the MAPPING_BUSY refusals while a mapping uses a file, and a Map
//! racing a Remove of its file.

mod support;

use std::{
    collections::HashMap,
    os::unix::fs::{MetadataExt, symlink},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use mmapd::pb::{self, Access, FileKind, files_client::FilesClient};
use support::{Fixture, TestServer, assert_error, rq};
use tonic::{Code, Status, transport::Channel};

type Files = FilesClient<Channel>;

async fn files(server: &TestServer) -> Files {
    FilesClient::connect(server.endpoint())
        .await
        .expect("connect")
}

fn list(path: &str, recursive: bool) -> pb::ListRequest {
    pb::ListRequest {
        path: path.into(),
        recursive,
        page_size: 0,
        page_token: String::new(),
    }
}

async fn paths(f: &mut Files, req: pb::ListRequest) -> Vec<String> {
    let reply = f.list(req).await.expect("list").into_inner();
    assert_eq!(reply.next_page_token, "", "one page expected");
    reply.entries.into_iter().map(|e| e.path).collect()
}

async fn stat(f: &mut Files, path: &str) -> Result<pb::FileEntry, Status> {
    let req = pb::StatPathRequest { path: path.into() };
    f.stat_path(req).await.map(tonic::Response::into_inner)
}

async fn mkdir(f: &mut Files, path: &str, parents: bool) -> Result<bool, Status> {
    let req = pb::MakeDirRequest {
        path: path.into(),
        parents,
    };
    f.make_dir(req).await.map(|r| r.into_inner().created)
}

async fn remove(f: &mut Files, path: &str, recursive: bool) -> Result<u64, Status> {
    let req = pb::RemoveRequest {
        path: path.into(),
        recursive,
    };
    f.remove(req).await.map(|r| r.into_inner().removed)
}

async fn rename(f: &mut Files, from: &str, to: &str, replace: bool) -> Result<(), Status> {
    let req = pb::RenameRequest {
        from: from.into(),
        to: to.into(),
        replace,
    };
    f.rename(req).await.map(drop)
}

async fn truncate(
    f: &mut Files,
    path: &str,
    size: u64,
    create: bool,
) -> Result<pb::FileEntry, Status> {
    let req = pb::TruncateRequest {
        path: path.into(),
        size,
        create,
        keep_existing: false,
    };
    f.truncate(req).await.map(tonic::Response::into_inner)
}

/// Asserts an `os` error: its code, OS_ERROR, the exception class, errno,
/// the path, and Python's message.
#[track_caller]
fn assert_os(status: &Status, code: Code, exception: &str, errno: i32, message: &str) {
    let md = assert_error(status, code, "OS_ERROR", message);
    assert_eq!(md["exception"], exception, "{status:?}");
    assert_eq!(md["errno"], errno.to_string(), "{status:?}");
}

#[tokio::test]
async fn every_call_does_what_its_os_function_does() {
    let server = TestServer::start().await;
    let mut f = files(&server).await;

    // Truncate with create makes an empty file and its folders.
    let made = truncate(&mut f, "a/b/empty.bin", 0, true).await.unwrap();
    assert_eq!(
        (made.path.as_str(), made.kind(), made.size),
        ("a/b/empty.bin", FileKind::File, 0)
    );
    assert_eq!(
        std::fs::metadata(server.path("a/b/empty.bin"))
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        truncate(&mut f, "a/b/empty.bin", 4096, false)
            .await
            .unwrap()
            .size,
        4096
    );
    assert_eq!(
        truncate(&mut f, "a/b/empty.bin", 10, false)
            .await
            .unwrap()
            .size,
        10
    );
    assert_eq!(
        std::fs::metadata(server.path("a/b/empty.bin"))
            .unwrap()
            .len(),
        10
    );
    // keep_existing: a file that exists is left whole; a missing one is made.
    let keep = |path: &str, size| pb::TruncateRequest {
        path: path.into(),
        size,
        create: true,
        keep_existing: true,
    };
    let kept = f
        .truncate(keep("a/b/empty.bin", 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept.size, 10);
    let fresh = f
        .truncate(keep("a/b/fresh.bin", 3))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fresh.size, 3);
    remove(&mut f, "a/b/fresh.bin", false).await.unwrap();

    assert!(mkdir(&mut f, "a/c", false).await.unwrap());
    assert!(mkdir(&mut f, "x/y/z", true).await.unwrap());
    assert!(!mkdir(&mut f, "x/y/z", true).await.unwrap());
    assert!(server.path("x/y/z").is_dir());
    std::fs::write(server.path("a.txt"), b"hello").unwrap();

    assert_eq!(paths(&mut f, list("", false)).await, ["a", "a.txt", "x"]);
    assert_eq!(
        paths(&mut f, list("", true)).await,
        [
            "a",
            "a.txt",
            "a/b",
            "a/b/empty.bin",
            "a/c",
            "x",
            "x/y",
            "x/y/z"
        ]
    );
    assert_eq!(paths(&mut f, list("./a/", false)).await, ["a/b", "a/c"]);

    let st = stat(&mut f, "a.txt").await.unwrap();
    assert_eq!((st.kind(), st.size, st.mapped), (FileKind::File, 5, false));
    let local = std::fs::metadata(server.path("a.txt")).unwrap();
    assert_eq!(st.mode, local.mode() & 0o7777);
    assert_eq!(st.mtime.unwrap().seconds, local.mtime());
    assert_eq!(stat(&mut f, "").await.unwrap().kind(), FileKind::Dir);

    rename(&mut f, "a.txt", "x/y/moved.txt", false)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(server.path("x/y/moved.txt")).unwrap(),
        b"hello"
    );
    assert!(!server.path("a.txt").exists());

    assert_eq!(remove(&mut f, "a/b/empty.bin", false).await.unwrap(), 1);
    assert_eq!(remove(&mut f, "a/b", false).await.unwrap(), 1);
    // x, x/y, x/y/z, x/y/moved.txt
    assert_eq!(remove(&mut f, "x", true).await.unwrap(), 4);
    assert_eq!(paths(&mut f, list("", true)).await, ["a", "a/c"]);
}

#[tokio::test]
async fn listings_page_in_path_order_and_show_links_as_links() {
    let server = TestServer::start().await;
    let mut f = files(&server).await;
    for i in 0..25 {
        std::fs::create_dir_all(server.path(&format!("d{i:02}"))).unwrap();
        std::fs::write(server.path(&format!("d{i:02}/f")), b"x").unwrap();
    }
    symlink("d00", server.path("link")).unwrap();
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let req = pb::ListRequest {
            page_size: 7,
            page_token: token,
            ..list("", true)
        };
        let reply = f.list(req).await.unwrap().into_inner();
        assert!(reply.entries.len() <= 7);
        pages += 1;
        seen.extend(reply.entries);
        token = reply.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(pages, 8, "51 entries in pages of 7");
    let names: Vec<&str> = seen.iter().map(|e| e.path.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    assert_eq!(names.len(), 51);
    let link = seen.last().unwrap();
    assert_eq!(
        (
            link.path.as_str(),
            link.kind(),
            link.symlink_target.as_str()
        ),
        ("link", FileKind::Symlink, "d00")
    );
    // StatPath follows it.
    assert_eq!(stat(&mut f, "link").await.unwrap().kind(), FileKind::Dir);
}

#[tokio::test]
async fn failures_are_the_os_errors_python_raises() {
    let server = TestServer::start().await;
    let mut f = files(&server).await;
    std::fs::create_dir_all(server.path("full")).unwrap();
    std::fs::write(server.path("full/x"), b"").unwrap();
    std::fs::create_dir_all(server.path("dir")).unwrap();
    std::fs::write(server.path("file"), b"data").unwrap();

    let nf = (Code::NotFound, "FileNotFoundError", 2);
    let exists = (Code::AlreadyExists, "FileExistsError", 17);
    let is_dir = (Code::InvalidArgument, "IsADirectoryError", 21);
    let not_dir = (Code::InvalidArgument, "NotADirectoryError", 20);
    let not_empty = (Code::FailedPrecondition, "OSError", 39);
    let cases: Vec<(Status, (Code, &str, i32), &str)> = vec![
        (
            stat(&mut f, "nope").await.unwrap_err(),
            nf,
            "[Errno 2] No such file or directory: 'nope'",
        ),
        (
            f.list(list("nope", false)).await.unwrap_err(),
            nf,
            "[Errno 2] No such file or directory: 'nope'",
        ),
        (
            f.list(list("file", false)).await.unwrap_err(),
            not_dir,
            "[Errno 20] Not a directory: 'file'",
        ),
        (
            mkdir(&mut f, "dir", false).await.unwrap_err(),
            exists,
            "[Errno 17] File exists: 'dir'",
        ),
        (
            mkdir(&mut f, "file", true).await.unwrap_err(),
            exists,
            "[Errno 17] File exists: 'file'",
        ),
        (
            mkdir(&mut f, "no/such", false).await.unwrap_err(),
            nf,
            "[Errno 2] No such file or directory: 'no/such'",
        ),
        (
            mkdir(&mut f, "file/sub", false).await.unwrap_err(),
            not_dir,
            "[Errno 20] Not a directory: 'file/sub'",
        ),
        (
            remove(&mut f, "nope", false).await.unwrap_err(),
            nf,
            "[Errno 2] No such file or directory: 'nope'",
        ),
        (
            remove(&mut f, "full", false).await.unwrap_err(),
            not_empty,
            "[Errno 39] Directory not empty: 'full'",
        ),
        (
            truncate(&mut f, "dir", 0, false).await.unwrap_err(),
            is_dir,
            "[Errno 21] Is a directory: 'dir'",
        ),
        (
            truncate(&mut f, "nope", 0, false).await.unwrap_err(),
            nf,
            "[Errno 2] No such file or directory: 'nope'",
        ),
        (
            rename(&mut f, "file", "dir", true).await.unwrap_err(),
            is_dir,
            "[Errno 21] Is a directory: 'file' -> 'dir'",
        ),
        (
            rename(&mut f, "dir", "file", true).await.unwrap_err(),
            not_dir,
            "[Errno 20] Not a directory: 'dir' -> 'file'",
        ),
        (
            rename(&mut f, "file", "full/x", false).await.unwrap_err(),
            exists,
            "[Errno 17] File exists: 'file' -> 'full/x'",
        ),
        (
            rename(&mut f, "dir", "full", true).await.unwrap_err(),
            not_empty,
            "[Errno 39] Directory not empty: 'dir' -> 'full'",
        ),
        (
            rename(&mut f, "nope", "x", false).await.unwrap_err(),
            nf,
            "[Errno 2] No such file or directory: 'nope' -> 'x'",
        ),
    ];
    for (status, (code, exception, errno), message) in &cases {
        assert_os(status, *code, exception, *errno, message);
    }
    // A rename names both paths in its metadata.
    let md = assert_error(&cases[11].0, Code::InvalidArgument, "OS_ERROR", cases[11].2);
    assert_eq!((md["path"].as_str(), md["path2"].as_str()), ("file", "dir"));
    // Nothing was changed by any of them.
    assert_eq!(std::fs::read(server.path("file")).unwrap(), b"data");
    assert!(server.path("full/x").exists() && server.path("dir").is_dir());

    // Limits: a size no mapping could have, a path past the limit.
    let status = truncate(&mut f, "big", u64::MAX, true).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(!server.path("big").exists());
    let long = "x".repeat(5_000);
    let status = stat(&mut f, &long).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

#[tokio::test]
async fn every_call_is_confined_beneath_the_root() {
    let server = TestServer::start().await;
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"keep").unwrap();
    symlink(outside.path(), server.path("out")).unwrap();
    symlink(outside.path().join("secret"), server.path("secret-link")).unwrap();
    std::fs::write(server.path("in.txt"), b"in").unwrap();
    let mut f = files(&server).await;

    let escape = |status: Status| {
        let md = assert_error(
            &status,
            Code::PermissionDenied,
            "PATH_ESCAPE",
            status.message(),
        );
        assert_eq!(md["exception"], "PermissionError");
        assert_eq!(md["errno"], "13");
    };
    for bad in [
        "../x",
        "/etc/passwd",
        "a/../../x",
        "out/secret",
        "out/new/x",
    ] {
        escape(stat(&mut f, bad).await.unwrap_err());
        escape(f.list(list(bad, true)).await.unwrap_err());
        escape(mkdir(&mut f, bad, true).await.unwrap_err());
        escape(mkdir(&mut f, bad, false).await.unwrap_err());
        escape(remove(&mut f, bad, true).await.unwrap_err());
        escape(truncate(&mut f, bad, 0, true).await.unwrap_err());
        escape(rename(&mut f, bad, "in2.txt", true).await.unwrap_err());
        escape(rename(&mut f, "in.txt", bad, true).await.unwrap_err());
    }
    // A link out as the last name: stat and truncate follow it (refused);
    // remove and rename act on the link itself, inside the root.
    escape(stat(&mut f, "secret-link").await.unwrap_err());
    escape(truncate(&mut f, "secret-link", 0, false).await.unwrap_err());
    escape(f.list(list("out", false)).await.unwrap_err());
    rename(&mut f, "secret-link", "moved-link", false)
        .await
        .unwrap();
    assert_eq!(remove(&mut f, "moved-link", false).await.unwrap(), 1);
    assert_eq!(
        remove(&mut f, "out", true).await.unwrap(),
        1,
        "the link only"
    );

    assert_eq!(
        std::fs::read(outside.path().join("secret")).unwrap(),
        b"keep"
    );
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
    assert_eq!(std::fs::read(server.path("in.txt")).unwrap(), b"in");
}

#[tokio::test]
async fn a_file_a_live_mapping_uses_cannot_be_removed_renamed_or_shrunk() {
    let server = TestServer::start().await;
    std::fs::create_dir_all(server.path("m")).unwrap();
    std::fs::write(server.path("m/data.bin"), vec![7u8; 8192]).unwrap();
    let mut fx = Fixture::on(server).await;
    let mut f = files(&fx.server).await;
    let handle = fx.map_file("m/data.bin", Access::Write).await;

    let busy = |status: Status, path: &str| {
        let md = assert_error(
            &status,
            Code::FailedPrecondition,
            "MAPPING_BUSY",
            &format!(
                "[Errno 16] Device or resource busy: '{path}' is used by mapping \"m/data.bin\""
            ),
        );
        assert_eq!(
            (
                md["errno"].as_str(),
                md["path"].as_str(),
                md["name"].as_str()
            ),
            ("16", path, "m/data.bin")
        );
        assert_eq!(md["exception"], "OSError");
    };
    busy(
        remove(&mut f, "m/data.bin", false).await.unwrap_err(),
        "m/data.bin",
    );
    busy(remove(&mut f, "m", true).await.unwrap_err(), "m");
    busy(
        rename(&mut f, "m/data.bin", "other.bin", false)
            .await
            .unwrap_err(),
        "m/data.bin",
    );
    busy(rename(&mut f, "m", "n", false).await.unwrap_err(), "m");
    std::fs::write(fx.server.path("spare.bin"), b"x").unwrap();
    busy(
        rename(&mut f, "spare.bin", "m/data.bin", true)
            .await
            .unwrap_err(),
        "m/data.bin",
    );
    busy(
        truncate(&mut f, "m/data.bin", 4096, false)
            .await
            .unwrap_err(),
        "m/data.bin",
    );
    // Growing cuts nothing, and the listing says who is mapped.
    assert_eq!(
        truncate(&mut f, "m/data.bin", 16384, false)
            .await
            .unwrap()
            .size,
        16384
    );
    let entries = f.list(list("", true)).await.unwrap().into_inner().entries;
    let mapped: HashMap<_, _> = entries
        .iter()
        .map(|e| (e.path.as_str(), e.mapped))
        .collect();
    assert_eq!(
        mapped,
        HashMap::from([("m", true), ("m/data.bin", true), ("spare.bin", false)])
    );
    assert!(stat(&mut f, "m/data.bin").await.unwrap().mapped);
    assert!(stat(&mut f, "").await.unwrap().mapped, "the root holds it");
    // The mapping still reads its bytes.
    let read =
        fx.c.read(rq::read(&handle, Some(4)))
            .await
            .unwrap()
            .into_inner();
    assert_eq!(&read.data[..], [7, 7, 7, 7]);

    // Once it is closed, all of it is allowed.
    fx.c.close(rq::close(&handle)).await.unwrap();
    assert!(!stat(&mut f, "m/data.bin").await.unwrap().mapped);
    truncate(&mut f, "m/data.bin", 10, false).await.unwrap();
    rename(&mut f, "m/data.bin", "m/renamed.bin", false)
        .await
        .unwrap();
    assert_eq!(remove(&mut f, "m", true).await.unwrap(), 2);
}

/// A Map and a Remove of the same file, racing: either the Remove is
/// refused (the Map registered first) or the Map fails (the file went
/// first). Never both succeed, which would leave a mapping of a ghost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_map_racing_a_remove_never_maps_a_removed_file() {
    let mut fx = Fixture::new().await;
    let mut f = files(&fx.server).await;
    let (mut both, mut maps, mut removes) = (0, 0, 0);
    for i in 0..150 {
        let path = format!("race{i}.bin");
        std::fs::write(fx.server.path(&path), [1u8; 64]).unwrap();
        let req = fx.file_req(&path, Access::Write);
        let mut c = fx.c.clone();
        let mut f2 = f.clone();
        let p2 = path.clone();
        let (mapped, removed) = tokio::join!(
            async move { c.map(req).await.map(tonic::Response::into_inner) },
            async move { remove(&mut f2, &p2, false).await }
        );
        match (mapped, removed) {
            (Ok(_), Ok(_)) => both += 1,
            (Ok(m), Err(status)) => {
                maps += 1;
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                fx.c.close(rq::close(&m.handle)).await.unwrap();
                remove(&mut f, &path, false).await.unwrap();
            }
            (Err(status), Ok(_)) => {
                removes += 1;
                assert_eq!(status.code(), Code::NotFound, "{status:?}");
            }
            (Err(a), Err(b)) => panic!("both failed: {a:?} {b:?}"),
        }
    }
    assert_eq!(
        both, 0,
        "a mapping of a removed file ({maps} maps won, {removes} removes won)"
    );
}

/// The rename race over the wire: while `d` flips between a real folder
/// and a symlink out of the root, every call on a path under `d` acts
/// inside the root or fails; none reads or changes anything outside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_swapped_for_a_link_out_never_leads_a_call_outside() {
    let server = TestServer::start().await;
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("victim"), b"keep").unwrap();
    std::fs::create_dir(server.path("d")).unwrap();
    symlink(outside.path(), server.path("evil")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let swapper = {
        let (stop, swaps) = (stop.clone(), swaps.clone());
        let base = server.root.path().to_owned();
        std::thread::spawn(move || {
            // An atomic exchange: `d` is always there, a folder or the
            // link, so the calls below never make it anew.
            let cwd = rustix::fs::CWD;
            let (d, evil) = (base.join("d"), base.join("evil"));
            while !stop.load(Ordering::Relaxed) {
                rustix::fs::renameat_with(cwd, &d, cwd, &evil, rustix::fs::RenameFlags::EXCHANGE)
                    .expect("exchange");
                swaps.fetch_add(1, Ordering::Relaxed);
                // Leave the server's workers a share of the two cores.
                std::thread::yield_now();
            }
        })
    };
    let mut f = files(&server).await;
    // At least 100 rounds, and on until the folder has flipped often
    // (a loaded machine may starve the swapper at first).
    let mut i = 0;
    while i < 100 || (swaps.load(Ordering::Relaxed) < 400 && i < 5_000) {
        i += 1;
        if let Ok(reply) = f.list(list("d", true)).await {
            let names: Vec<_> = reply
                .into_inner()
                .entries
                .into_iter()
                .map(|e| e.path)
                .collect();
            assert!(
                !names.contains(&"d/victim".to_owned()),
                "listed outside: {names:?}"
            );
        }
        assert!(
            stat(&mut f, "d/victim").await.is_err(),
            "stat reached outside"
        );
        let _ = remove(&mut f, "d/victim", false).await;
        let _ = truncate(&mut f, "d/victim", 0, false).await;
        let _ = truncate(&mut f, &format!("d/made{i}"), 1, true).await;
        let _ = mkdir(&mut f, &format!("d/dir{i}/sub"), true).await;
        let _ = rename(&mut f, "d/victim", "stolen", false).await;
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(
        swaps.load(Ordering::Relaxed) >= 400,
        "the folder barely flipped"
    );
    assert_eq!(
        std::fs::read(outside.path().join("victim")).unwrap(),
        b"keep"
    );
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        1,
        "made outside"
    );
    assert!(!server.path("stolen").exists());
}

/// Folders nested past `max_tree_depth` are refused by the walks (each
/// level costs the server a stack frame and an open folder), with the
/// limit named and reported by GetServerInfo; nothing is removed.
#[tokio::test]
async fn walks_refuse_trees_deeper_than_the_limit() {
    let server = TestServer::start_with(|c| c.limits.max_tree_depth = 3).await;
    let (_, mut admin) = server.clients().await;
    let info = admin
        .get_server_info(pb::GetServerInfoRequest {})
        .await
        .unwrap();
    assert_eq!(info.into_inner().limits.unwrap().max_tree_depth, 3);
    let mut f = files(&server).await;
    mkdir(&mut f, "a/b/c/d/e", true).await.unwrap();
    let quota = |status: Status| {
        let md = assert_error(
            &status,
            Code::ResourceExhausted,
            "QUOTA_EXCEEDED",
            "max_tree_depth limit of 3 reached",
        );
        assert_eq!(
            (md["limit"].as_str(), md["value"].as_str()),
            ("max_tree_depth", "3")
        );
    };
    quota(f.list(list("", true)).await.unwrap_err());
    quota(remove(&mut f, "a", true).await.unwrap_err());
    assert!(server.path("a/b/c/d/e").is_dir(), "nothing removed");
    // Three levels below the folder named are fine, and the token may not
    // be longer than a path.
    assert_eq!(
        paths(&mut f, list("a/b", true)).await,
        ["a/b/c", "a/b/c/d", "a/b/c/d/e"]
    );
    let req = pb::ListRequest {
        page_token: "x".repeat(5_000),
        ..list("", false)
    };
    let status = f.list(req).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(remove(&mut f, "a/b", true).await.unwrap(), 4);
}

/// The folders on a mapped file's path are held by inode, not by the path
/// string it was mapped by: moving them under another name, or through a
/// symlink, is MAPPING_BUSY too.
#[tokio::test]
async fn folders_of_a_mapped_file_are_busy_under_every_name() {
    let server = TestServer::start().await;
    std::fs::create_dir_all(server.path("d/sub")).unwrap();
    std::fs::write(server.path("d/sub/f"), [1u8; 4096]).unwrap();
    symlink("d", server.path("link")).unwrap();
    let mut fx = Fixture::on(server).await;
    let mut f = files(&fx.server).await;
    let handle = fx.map_file("link/sub/f", Access::Write).await;
    let busy = |status: Status| {
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert!(
            status
                .message()
                .contains("is used by mapping \"link/sub/f\""),
            "{status:?}"
        );
    };
    busy(rename(&mut f, "d/sub", "y", false).await.unwrap_err());
    busy(rename(&mut f, "link/sub", "y", false).await.unwrap_err());
    busy(rename(&mut f, "d", "e", false).await.unwrap_err());
    busy(remove(&mut f, "d", true).await.unwrap_err());
    busy(remove(&mut f, "link/sub", true).await.unwrap_err());
    assert!(stat(&mut f, "d").await.unwrap().mapped);
    assert!(fx.server.path("d/sub/f").exists());
    // The link itself is only a name; the folders behind it stay put.
    rename(&mut f, "link", "link2", false).await.unwrap();
    fx.c.close(rq::close(&handle)).await.unwrap();
    rename(&mut f, "d/sub", "y", false).await.unwrap();
}

/// A trailing `/` wants a folder and a last `.` names one by itself, as
/// the kernel reads them for Python's `os` calls (checked with python3):
/// the same errno for each spelling, and nothing changed.
#[tokio::test]
async fn path_spellings_say_what_os_says() {
    let server = TestServer::start().await;
    std::fs::write(server.path("f"), b"data").unwrap();
    std::fs::create_dir(server.path("d")).unwrap();
    std::fs::create_dir(server.path("e")).unwrap();
    symlink("d", server.path("dl")).unwrap();
    std::fs::create_dir(server.path("fifo-dir")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        server.path("fifo-dir/p"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    symlink("nowhere", server.path("dangling")).unwrap();
    let mut f = files(&server).await;
    let errno = |status: Status| {
        let md = assert_error(&status, status.code(), "OS_ERROR", status.message());
        md["errno"].parse::<i32>().unwrap()
    };
    assert_eq!(
        errno(truncate(&mut f, "f/", 0, false).await.unwrap_err()),
        20
    );
    assert_eq!(
        errno(truncate(&mut f, "d/", 0, false).await.unwrap_err()),
        21
    );
    assert_eq!(
        errno(truncate(&mut f, "new/", 0, true).await.unwrap_err()),
        21
    );
    assert_eq!(
        errno(truncate(&mut f, "fifo-dir/p", 0, false).await.unwrap_err()),
        22
    );
    assert_eq!(errno(stat(&mut f, "f/").await.unwrap_err()), 20);
    assert_eq!(stat(&mut f, "dl/").await.unwrap().kind(), FileKind::Dir);
    assert_eq!(stat(&mut f, "d/.").await.unwrap().kind(), FileKind::Dir);
    assert_eq!(errno(remove(&mut f, "f/", false).await.unwrap_err()), 20);
    assert_eq!(errno(remove(&mut f, "dl/", false).await.unwrap_err()), 20);
    assert_eq!(errno(remove(&mut f, "e/.", false).await.unwrap_err()), 22);
    assert_eq!(
        errno(rename(&mut f, "f/", "g", false).await.unwrap_err()),
        20
    );
    let busy = rename(&mut f, "d/.", "x", false).await.unwrap_err();
    // Lasting, like MAPPING_BUSY: not UNAVAILABLE, which retry policies
    // would repeat.
    assert_eq!(busy.code(), Code::FailedPrecondition, "{busy:?}");
    assert_eq!(errno(busy), 16);
    assert_eq!(
        errno(rename(&mut f, "dl/", "x2", false).await.unwrap_err()),
        20
    );
    assert_eq!(
        errno(mkdir(&mut f, "dangling", true).await.unwrap_err()),
        17
    );
    assert!(!server.path("new").exists() && !server.path("g").exists());
    assert_eq!(std::fs::read(server.path("f")).unwrap(), b"data");
    assert!(server.path("e").is_dir() && server.path("dl").is_symlink());
    // The plain spellings still work.
    assert_eq!(remove(&mut f, "e/", false).await.unwrap(), 1);
    rename(&mut f, "d/", "d2", false).await.unwrap();
}
