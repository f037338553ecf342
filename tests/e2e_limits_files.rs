//! End-to-end tests of what the data root can hold against the server:
//! FIFOs, sockets and device nodes are refused at once without blocking
//! other Maps; a full disk is ENOSPC at Map time; a 2^62-byte create fails
//! cleanly. None of them leaves a file behind or stops other clients.

mod support;

use std::{path::Path, process::Command, time::Duration};

use mmapd::pb::{self, Access, mmap_client::MmapClient};
use support::{Fixture, TestServer, assert_error, map, map_req, rq, session};
use tonic::{Code, Status, transport::Channel};

/// Turns a hang into a failure instead of a stuck test run.
const HANG: Duration = Duration::from_secs(30);

fn create(sid: &str, path: &str, length: i64) -> pb::MapRequest {
    pb::MapRequest {
        create: true,
        length,
        ..map_req(sid, path, "", Access::Default)
    }
}

/// Maps `path` in the root (creating it) and checks bytes go in and out.
async fn served(c: &mut MmapClient<Channel>, sid: &str, path: &str) {
    let handle = map(c, create(sid, path, 4096)).await.expect("map").handle;
    c.write(rq::write(&handle, "fine")).await.expect("write");
    let item = c.get_item(rq::get_item(&handle, 3)).await.expect("get");
    assert_eq!(item.into_inner().value, u32::from(b'e'));
}

/// Reads back the 4 bytes a client wrote before the attack.
async fn still_has(c: &mut MmapClient<Channel>, handle: &str, bytes: &[u8]) {
    c.seek(rq::seek(handle, 0, pb::Whence::Set as i32))
        .await
        .unwrap();
    let read = c.read(rq::read(handle, Some(bytes.len() as i64))).await;
    assert_eq!(&read.expect("read back").into_inner().data[..], bytes);
}

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    match out.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
    }
}

#[track_caller]
fn assert_os_error(status: &Status, code: Code, errno: i32) {
    assert_eq!(status.code(), code, "{status:?}");
    let md = assert_error(status, code, "OS_ERROR", status.message());
    assert_eq!(md["errno"], errno.to_string(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn fifos_sockets_and_devices_are_refused_without_blocking_anyone() {
    let mut fx = Fixture::on(TestServer::start().await).await;
    let keep = fx.handle(create(&fx.sid, "keep.bin", 4096)).await;
    fx.c.write(rq::write(&keep, "kept")).await.unwrap();
    let root = fx.server.root.path().to_owned();
    run("mkfifo", &[root.join("fifo").to_str().unwrap()]).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
    // ENODEV, what mmap(2) says of a file it cannot map; ENXIO, what
    // open(2) says of a socket.
    let mut cases = vec![("fifo", 19), ("sock", 6)];
    // /dev/zero's numbers: the kernel would map it, only our check refuses.
    match run(
        "mknod",
        &[root.join("zero").to_str().unwrap(), "c", "1", "5"],
    ) {
        Ok(()) => cases.push(("zero", 19)),
        Err(why) => println!("skipping the device node: mknod refused: {why}"),
    }
    let (mut other, _) = fx.server.clients().await;
    let other_sid = session(&mut other, 0).await;
    let mut served_maps = 0;
    for (path, errno) in cases {
        for access in [Access::Default, Access::Read, Access::Copy] {
            let req = fx.file_req(path, access);
            let other_path = format!("{path}-{access:?}");
            let (refused, ()) = tokio::time::timeout(HANG, async {
                // Another client's Map runs at the same time.
                tokio::join!(fx.map(req), served(&mut other, &other_sid, &other_path))
            })
            .await
            .expect("no Map blocks");
            assert_os_error(&refused.unwrap_err(), Code::InvalidArgument, errno);
            served_maps += 1;
        }
    }
    let info = fx.admin.get_server_info(pb::GetServerInfoRequest {}).await;
    // keep.bin and the other client's files: nothing of the refused Maps.
    assert_eq!(info.unwrap().into_inner().mappings, 1 + served_maps);
    still_has(&mut fx.c, &keep, b"kept").await;
}

/// A tmpfs of 1 MiB, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount() -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().to_str().unwrap();
        match run("mount", &["-t", "tmpfs", "-o", "size=1m", "tmpfs", at]) {
            Ok(()) => Some(SmallDisk { dir }),
            Err(why) => {
                println!("skipping the full-disk test: mount refused: {why}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = run("umount", &["-l", self.dir.path().to_str().unwrap()]);
    }
}

#[tokio::test]
async fn a_create_larger_than_the_free_space_is_enospc_at_map_time() {
    let Some(disk) = SmallDisk::mount() else {
        return;
    };
    let root = disk.path().to_owned();
    let server = TestServer::start_with(|c| c.root = root.clone()).await;
    let mut fx = Fixture::on(server).await;
    let keep = fx.handle(create(&fx.sid, "keep.bin", 64 << 10)).await;
    fx.c.write(rq::write(&keep, "kept")).await.unwrap();

    let err = fx
        .map(create(&fx.sid, "big.bin", 2 << 20))
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::ResourceExhausted,
        "OS_ERROR",
        "[Errno 28] No space left on device: 'big.bin'",
    );
    assert!(!root.join("big.bin").exists(), "no file left behind");
    // The blocks of the failed create were given back: a later create fits.
    let (sid, c) = (fx.sid.clone(), &mut fx.c);
    served(c, &sid, "small.bin").await;
    still_has(c, &keep, b"kept").await;
    fx.server.shutdown().await;
    assert_eq!(std::fs::read(root.join("keep.bin")).unwrap()[..4], *b"kept");
}

#[tokio::test]
async fn a_create_of_two_to_the_62_bytes_fails_cleanly_and_leaves_no_file() {
    let huge = 1i64 << 62;
    // With the default limits it is over `max_mapping_length`.
    let mut fx = Fixture::new().await;
    let err = fx.map(create(&fx.sid, "huge.bin", huge)).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(!fx.server.path("huge.bin").exists());

    // Without that limit it reaches the file system, which refuses it.
    let server = TestServer::start_with(|c| c.limits.max_mapping_length = u64::MAX).await;
    let mut fx = Fixture::on(server).await;
    let err = fx.map(create(&fx.sid, "huge.bin", huge)).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    let md = assert_error(&err, err.code(), "OS_ERROR", err.message());
    // EFBIG where the file system caps file sizes, else ENOSPC.
    assert!(["27", "28"].contains(&md["errno"].as_str()), "{err:?}");
    assert!(!fx.server.path("huge.bin").exists(), "no file left behind");
    let (sid, c) = (fx.sid.clone(), &mut fx.c);
    served(c, &sid, "after.bin").await;
}
