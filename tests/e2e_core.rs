//! End-to-end tests of the Mmap service over real gRPC: each RPC's CPython
//! behaviour, the error contract (code, reason, message, one ErrorInfo),
//! path confinement, and that the server keeps serving after errors.

mod support;

use mmapd::pb::{self, Access, Advice, Whence};
use support::{Fixture, assert_error, map_req, rq};
use tonic::Code;

#[tokio::test]
async fn every_unary_method_behaves_like_cpython() {
    let mut fx = Fixture::with_file("f", b"hello\nworld\nabc").await;
    let m = fx.map(fx.file_req("f", Access::Default)).await.unwrap();
    assert_eq!((m.length, m.size, m.name.as_str()), (15, 15, "f"));
    let h = m.handle;
    let Fixture { server, mut c, .. } = fx;

    let line = c
        .read_line(pb::ReadLineRequest { handle: h.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(&line.data[..], b"hello\n");
    let byte = c
        .read_byte(pb::ReadByteRequest { handle: h.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(byte.value, u32::from(b'w'));
    let read = c.read(rq::read(&h, Some(4))).await.unwrap().into_inner();
    assert_eq!(&read.data[..], b"orld");
    let tell = c.tell(rq::tell(&h)).await.unwrap().into_inner();
    assert_eq!(tell.position, 11);
    let rest = c.read(rq::read(&h, None)).await.unwrap().into_inner();
    assert_eq!(&rest.data[..], b"\nabc");

    let pos = c.seek(rq::seek(&h, -3, Whence::End as i32)).await.unwrap();
    assert_eq!(pos.into_inner().position, 12);
    let w = c.write(rq::write(&h, "XYZ")).await.unwrap().into_inner();
    assert_eq!(w.written, 3);
    c.seek(rq::seek(&h, 0, Whence::Set as i32)).await.unwrap();
    c.write_byte(pb::WriteByteRequest {
        handle: h.clone(),
        value: i64::from(b'H'),
    })
    .await
    .unwrap();

    let find = |sub: &str, start, end| pb::FindRequest {
        handle: h.clone(),
        sub: sub.to_owned().into(),
        start,
        end,
    };
    assert_eq!(
        c.find(find("o", None, None))
            .await
            .unwrap()
            .into_inner()
            .index,
        4
    );
    assert_eq!(
        c.r_find(find("o", Some(0), None))
            .await
            .unwrap()
            .into_inner()
            .index,
        7
    );
    assert_eq!(
        c.find(find("o", Some(-3), None))
            .await
            .unwrap()
            .into_inner()
            .index,
        -1
    );

    let item = c.get_item(rq::get_item(&h, -1)).await.unwrap().into_inner();
    assert_eq!(item.value, u32::from(b'Z'));
    c.set_item(rq::set_item(&h, 1, i64::from(b'E')))
        .await
        .unwrap();
    let slice = c
        .get_slice(pb::GetSliceRequest {
            handle: h.clone(),
            start: None,
            stop: Some(5),
            step: Some(2),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(&slice.data[..], b"Hlo");
    c.set_slice(pb::SetSliceRequest {
        handle: h.clone(),
        start: Some(-1),
        stop: Some(10),
        step: Some(-2),
        data: "12".into(),
    })
    .await
    .unwrap();
    c.r#move(pb::MoveRequest {
        handle: h.clone(),
        dest: 6,
        src: 0,
        count: 5,
    })
    .await
    .unwrap();
    c.flush(rq::flush(&h)).await.unwrap();
    assert_eq!(
        std::fs::read(server.path("f")).unwrap(),
        b"HEllo\nHEllo\n2Y1"
    );

    c.madvise(pb::MadviseRequest {
        handle: h.clone(),
        option: Advice::MadvWillneed as i32,
        start: None,
        length: None,
    })
    .await
    .unwrap();
    let resized = c.resize(rq::resize(&h, 8192)).await.unwrap().into_inner();
    assert_eq!(resized.length, 8192);
    assert_eq!(
        c.size(pb::SizeRequest { handle: h.clone() })
            .await
            .unwrap()
            .into_inner()
            .size,
        8192
    );
    assert_eq!(
        c.len(pb::LenRequest { handle: h.clone() })
            .await
            .unwrap()
            .into_inner()
            .length,
        8192
    );
    assert_eq!(std::fs::metadata(server.path("f")).unwrap().len(), 8192);

    let stat = c
        .stat(pb::StatRequest { handle: h.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (stat.length, stat.position, stat.path.as_str(), stat.offset),
        (8192, 1, "f", 0)
    );
    c.close(rq::close(&h)).await.unwrap();
    // Closing twice is not an error, as in CPython.
    c.close(rq::close(&h)).await.unwrap();
}

#[tokio::test]
async fn errors_carry_code_reason_and_cpython_message() {
    let mut fx = Fixture::with_file("f", vec![7u8; 100]).await;
    std::fs::write(fx.server.path("empty"), b"").unwrap();

    let missing = fx
        .map(fx.file_req("nope", Access::Default))
        .await
        .unwrap_err();
    let md = assert_error(
        &missing,
        Code::NotFound,
        "OS_ERROR",
        "[Errno 2] No such file or directory: 'nope'",
    );
    assert_eq!(md["errno"], "2");
    let file = |path: &str| fx.file_req(path, Access::Default);
    let refused = [
        (
            file("empty"),
            Code::InvalidArgument,
            "VALUE_ERROR",
            "cannot mmap an empty file",
        ),
        (
            pb::MapRequest {
                length: 101,
                ..file("f")
            },
            Code::OutOfRange,
            "VALUE_ERROR",
            "mmap length is greater than file size",
        ),
        (
            pb::MapRequest {
                length: -1,
                ..file("f")
            },
            Code::InvalidArgument,
            "OVERFLOW_ERROR",
            "memory mapped length must be positive",
        ),
        (
            pb::MapRequest {
                access: 7,
                ..file("f")
            },
            Code::InvalidArgument,
            "VALUE_ERROR",
            "mmap invalid access parameter.",
        ),
        (
            map_req("bogus", "f", "", Access::Default),
            Code::NotFound,
            "SESSION_NOT_FOUND",
            "session \"bogus\" not found or expired",
        ),
    ];
    for (req, code, reason, message) in refused {
        let err = fx.map(req).await.unwrap_err();
        assert_error(&err, code, reason, message);
    }
    let unaligned = fx
        .map(pb::MapRequest {
            offset: 1,
            length: 10,
            ..fx.file_req("f", Access::Default)
        })
        .await
        .unwrap_err();
    let md = assert_error(
        &unaligned,
        Code::InvalidArgument,
        "OS_ERROR",
        "[Errno 22] Invalid argument",
    );
    assert_eq!(md["errno"], "22");
    let ro = fx.map_file("f", Access::Read).await;
    let c = &mut fx.c;
    let write = c.write(rq::write(&ro, "x")).await.unwrap_err();
    assert_error(
        &write,
        Code::FailedPrecondition,
        "TYPE_ERROR",
        "mmap can't modify a readonly memory map.",
    );
    let resize = c.resize(rq::resize(&ro, 10)).await.unwrap_err();
    assert_error(
        &resize,
        Code::FailedPrecondition,
        "TYPE_ERROR",
        "mmap can't resize a readonly or copy-on-write memory map.",
    );
    let seek = c.seek(rq::seek(&ro, 101, 0)).await.unwrap_err();
    assert_error(&seek, Code::OutOfRange, "VALUE_ERROR", "seek out of range");
    let whence = c.seek(rq::seek(&ro, 0, 5)).await.unwrap_err();
    assert_error(
        &whence,
        Code::InvalidArgument,
        "VALUE_ERROR",
        "unknown seek type",
    );
    let index = c.get_item(rq::get_item(&ro, 100)).await.unwrap_err();
    assert_error(
        &index,
        Code::OutOfRange,
        "INDEX_ERROR",
        "mmap index out of range",
    );
    let step = c
        .get_slice(pb::GetSliceRequest {
            handle: ro.clone(),
            start: None,
            stop: None,
            step: Some(0),
        })
        .await
        .unwrap_err();
    assert_error(
        &step,
        Code::InvalidArgument,
        "VALUE_ERROR",
        "slice step cannot be zero",
    );
    let advise = |option, start| pb::MadviseRequest {
        handle: ro.clone(),
        option,
        start,
        length: None,
    };
    let start = c.madvise(advise(0, Some(100))).await.unwrap_err();
    assert_error(
        &start,
        Code::OutOfRange,
        "VALUE_ERROR",
        "madvise start out of bounds",
    );
    for refused in [
        Advice::MadvRemove as i32,
        Advice::MadvDontfork as i32,
        Advice::MadvDofork as i32,
        100,
    ] {
        let err = c.madvise(advise(refused, None)).await.unwrap_err();
        let message = format!("madvise option {refused} is refused by this server");
        assert_error(&err, Code::InvalidArgument, "VALUE_ERROR", &message);
    }

    let rw = fx
        .map(fx.named_req("f", "rw", Access::Write))
        .await
        .unwrap();
    let c = &mut fx.c;
    let wb = c
        .write_byte(pb::WriteByteRequest {
            handle: rw.handle.clone(),
            value: 256,
        })
        .await
        .unwrap_err();
    assert_error(
        &wb,
        Code::InvalidArgument,
        "OVERFLOW_ERROR",
        "unsigned byte integer is greater than maximum",
    );
    let set = c
        .set_item(rq::set_item(&rw.handle, 0, -1))
        .await
        .unwrap_err();
    assert_error(
        &set,
        Code::InvalidArgument,
        "VALUE_ERROR",
        "mmap item value must be in range(0, 256)",
    );
    let slice = c
        .set_slice(pb::SetSliceRequest {
            handle: rw.handle.clone(),
            start: Some(0),
            stop: Some(2),
            step: None,
            data: "abc".into(),
        })
        .await
        .unwrap_err();
    assert_error(
        &slice,
        Code::InvalidArgument,
        "INDEX_ERROR",
        "mmap slice assignment is wrong size",
    );
    let data = c
        .write(rq::write(&rw.handle, vec![1u8; 101]))
        .await
        .unwrap_err();
    assert_error(&data, Code::OutOfRange, "VALUE_ERROR", "data out of range");
    let moved = c
        .r#move(pb::MoveRequest {
            handle: rw.handle.clone(),
            dest: 90,
            src: 0,
            count: 11,
        })
        .await
        .unwrap_err();
    assert_error(
        &moved,
        Code::OutOfRange,
        "VALUE_ERROR",
        "source, destination, or count out of range",
    );
    let flush = c
        .flush(pb::FlushRequest {
            handle: rw.handle.clone(),
            offset: Some(0),
            size: Some(101),
        })
        .await
        .unwrap_err();
    assert_error(
        &flush,
        Code::OutOfRange,
        "VALUE_ERROR",
        "flush values out of range",
    );

    // resize(0): CPython truncates the file and then fails; here nothing changes.
    let zero = c.resize(rq::resize(&rw.handle, 0)).await.unwrap_err();
    assert_error(
        &zero,
        Code::InvalidArgument,
        "VALUE_ERROR",
        "new size out of range: cannot resize to 0 bytes",
    );
    assert_eq!(std::fs::read(fx.server.path("f")).unwrap(), vec![7u8; 100]);

    c.close(rq::close(&rw.handle)).await.unwrap();
    let closed = c.read(rq::read(&rw.handle, None)).await.unwrap_err();
    assert_error(
        &closed,
        Code::FailedPrecondition,
        "VALUE_ERROR",
        "mmap closed or invalid",
    );

    // After all of that the server still serves, and nothing was lost.
    let got = c.read(rq::read(&ro, Some(3))).await.unwrap().into_inner();
    assert_eq!(&got.data[..], &[7, 7, 7]);
}

#[tokio::test]
async fn paths_outside_the_root_are_refused() {
    let mut fx = Fixture::new().await;
    let outside = fx
        .server
        .root
        .path()
        .parent()
        .unwrap()
        .join(format!("outside-{}", std::process::id()));
    std::fs::write(&outside, b"secret").unwrap();
    std::os::unix::fs::symlink(&outside, fx.server.path("link")).unwrap();
    std::os::unix::fs::symlink("../../etc/passwd", fx.server.path("rel")).unwrap();
    for path in ["../x", "/etc/passwd", "a/../../etc/passwd", "link", "rel"] {
        let err = fx
            .map(pb::MapRequest {
                create: true,
                length: 10,
                ..fx.file_req(path, Access::Default)
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{path}: {err:?}");
        let md = assert_error(&err, Code::PermissionDenied, "PATH_ESCAPE", err.message());
        assert_eq!(md["errno"], "13", "{path}");
        assert!(
            err.message().contains("outside the data root"),
            "{path}: {}",
            err.message()
        );
    }
    assert_eq!(std::fs::read(&outside).unwrap(), b"secret");
    std::fs::remove_file(outside).unwrap();
}

#[tokio::test]
async fn create_makes_a_zero_file_of_offset_plus_length() {
    let mut fx = Fixture::new().await;
    let page = 4096;
    let m = fx
        .map(pb::MapRequest {
            create: true,
            length: 10,
            offset: page,
            ..fx.file_req("new.bin", Access::Write)
        })
        .await
        .unwrap();
    assert_eq!((m.length, m.size), (10, 4106));
    assert_eq!(
        std::fs::read(fx.server.path("new.bin")).unwrap(),
        vec![0u8; 4106]
    );
}

#[tokio::test]
async fn anonymous_regions_grow_without_sigbus() {
    let mut fx = Fixture::new().await;
    // An empty path maps an anonymous region.
    let anon = fx.file_req("", Access::Default);
    let m = fx
        .map(pb::MapRequest {
            length: 10,
            ..anon.clone()
        })
        .await
        .unwrap();
    let c = &mut fx.c;
    assert!(m.name.starts_with("anon-"));
    assert_eq!(
        c.size(pb::SizeRequest {
            handle: m.handle.clone()
        })
        .await
        .unwrap()
        .into_inner()
        .size,
        10
    );
    c.resize(rq::resize(&m.handle, 1 << 20)).await.unwrap();
    c.set_item(rq::set_item(&m.handle, -1, 9)).await.unwrap();
    let last = c
        .get_item(rq::get_item(&m.handle, (1 << 20) - 1))
        .await
        .unwrap();
    assert_eq!(last.into_inner().value, 9);
    // An offset is accepted and ignored, as by MAP_ANONYMOUS.
    let at = fx
        .map(pb::MapRequest {
            length: 100,
            offset: 4096,
            ..anon.clone()
        })
        .await
        .unwrap();
    let c = &mut fx.c;
    let last = c.get_item(rq::get_item(&at.handle, 99)).await.unwrap();
    assert_eq!(last.into_inner().value, 0);
    let stat = c
        .stat(pb::StatRequest { handle: at.handle })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((stat.offset, stat.length, stat.size), (4096, 100, 100));
    let zero = fx
        .map(pb::MapRequest { length: 0, ..anon })
        .await
        .unwrap_err();
    assert_error(
        &zero,
        Code::InvalidArgument,
        "OS_ERROR",
        "[Errno 22] Invalid argument",
    );
}
