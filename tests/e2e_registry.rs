//! End-to-end tests of the registry over real gRPC: named mappings shared
//! across sessions, private copies, leases that expire or close, admin
//! listings, health, reflection (down to decoding an error's ErrorInfo from
//! the reflected descriptors alone), the access replies report, and the
//! flush on graceful shutdown.

mod support;

use std::time::Duration;

use mmapd::pb::{self, Access, Whence};
use support::{Fixture, TestServer, assert_error, map, map_req, rq, session};
use tonic::Code;

#[tokio::test]
async fn handles_with_one_name_share_bytes_and_resize_but_not_cursors() {
    let mut fx = Fixture::with_file("shared.bin", vec![0u8; 64]).await;
    let (mut b, _) = fx.server.clients().await;
    let sb = session(&mut b, 0).await;
    let ha = fx.map_file("shared.bin", Access::Write).await;
    let Fixture {
        c: mut a,
        mut admin,
        ..
    } = fx;
    // Attach by name alone from the other session.
    let hb = map(&mut b, map_req(&sb, "", "shared.bin", Access::Default))
        .await
        .unwrap()
        .handle;

    a.write(rq::write(&ha, "from a")).await.unwrap();
    let seen = b.read(rq::read(&hb, Some(6))).await.unwrap().into_inner();
    assert_eq!(&seen.data[..], b"from a");
    assert_eq!(
        a.tell(rq::tell(&ha)).await.unwrap().into_inner().position,
        6
    );
    b.seek(rq::seek(&hb, 1, Whence::Set as i32)).await.unwrap();
    assert_eq!(
        a.tell(rq::tell(&ha)).await.unwrap().into_inner().position,
        6
    );

    b.resize(rq::resize(&hb, 8192)).await.unwrap();
    assert_eq!(
        a.len(pb::LenRequest { handle: ha.clone() })
            .await
            .unwrap()
            .into_inner()
            .length,
        8192
    );
    b.set_item(rq::set_item(&hb, 8000, 42)).await.unwrap();
    let item = a.get_item(rq::get_item(&ha, 8000)).await.unwrap();
    assert_eq!(item.into_inner().value, 42);

    let mappings = admin
        .list_mappings(pb::ListMappingsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .mappings;
    assert_eq!(mappings.len(), 1);
    assert_eq!(
        (
            mappings[0].name.as_str(),
            mappings[0].handles,
            mappings[0].length
        ),
        ("shared.bin", 2, 8192)
    );

    // A conflicting attach is refused and changes nothing.
    let conflict = map(
        &mut b,
        pb::MapRequest {
            length: 5,
            ..map_req(&sb, "", "shared.bin", Access::Default)
        },
    )
    .await
    .unwrap_err();
    assert_error(
        &conflict,
        Code::AlreadyExists,
        "MAPPING_CONFLICT",
        "mapping \"shared.bin\" already exists with a different length",
    );
    let missing = map(&mut b, map_req(&sb, "", "no-such-name", Access::Default))
        .await
        .unwrap_err();
    assert_error(
        &missing,
        Code::NotFound,
        "MAPPING_NOT_FOUND",
        "no mapping named \"no-such-name\"",
    );
}

#[tokio::test]
async fn copy_access_is_private_to_its_handle() {
    let mut fx = Fixture::with_file("f", b"original").await;
    let shared = fx.map_file("f", Access::Write).await;
    let copy = fx.map_file("f", Access::Copy).await;
    let Fixture { server, mut c, .. } = fx;
    c.write(rq::write(&copy, "COPY")).await.unwrap();
    c.flush(rq::flush(&copy)).await.unwrap();
    let seen = c.read(rq::read(&shared, None)).await.unwrap().into_inner();
    assert_eq!(&seen.data[..], b"original");
    assert_eq!(std::fs::read(server.path("f")).unwrap(), b"original");
    let mine = c
        .get_slice(pb::GetSliceRequest {
            handle: copy,
            start: None,
            stop: None,
            step: None,
        })
        .await
        .unwrap();
    assert_eq!(&mine.into_inner().data[..], b"COPYinal");
}

#[tokio::test]
async fn replies_carry_the_access_a_handle_behaves_as() {
    let mut fx = Fixture::with_file("f", b"original").await;
    std::fs::write(fx.server.path("ro"), b"read only").unwrap();
    // ACCESS_DEFAULT (a shared file, then an anonymous region) answers
    // WRITE; the others answer themselves.
    let asked = [
        ("f", Access::Default, Access::Write),
        ("f", Access::Read, Access::Read),
        ("f", Access::Write, Access::Write),
        ("f", Access::Copy, Access::Copy),
        ("ro", Access::Read, Access::Read),
        ("", Access::Default, Access::Write),
    ];
    let mut handles = Vec::new();
    for (path, access, expected) in asked {
        let req = pb::MapRequest {
            length: if path.is_empty() { 16 } else { 0 },
            name: if path.is_empty() {
                "anon".into()
            } else {
                String::new()
            },
            ..fx.file_req(path, access)
        };
        let reply = fx.map(req).await.unwrap();
        assert_eq!(reply.access(), expected, "Map of {path:?} with {access:?}");
        let stat = pb::StatRequest {
            handle: reply.handle.clone(),
        };
        let stat = fx.c.stat(stat).await.unwrap();
        assert_eq!(
            stat.into_inner().access(),
            expected,
            "Stat of {path:?} with {access:?}"
        );
        handles.push(reply.handle);
    }
    // What WRITE promises, the ACCESS_DEFAULT handle does: it writes
    // through to the file.
    fx.c.write(rq::write(&handles[0], "DEFAULT!"))
        .await
        .unwrap();
    fx.c.flush(rq::flush(&handles[0])).await.unwrap();
    assert_eq!(std::fs::read(fx.server.path("f")).unwrap(), b"DEFAULT!");

    let mut listed: Vec<_> = fx
        .admin
        .list_mappings(pb::ListMappingsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .mappings
        .into_iter()
        .map(|m| (m.name.clone(), m.access()))
        .collect();
    listed.sort_by_key(|(name, access)| (name.clone(), *access as i32));
    let expected = [
        ("anon", Access::Write),
        ("f", Access::Write),
        ("f", Access::Copy),
        ("ro", Access::Read),
    ];
    assert_eq!(listed, expected.map(|(n, a)| (n.to_owned(), a)));
}

#[tokio::test]
async fn an_expired_lease_closes_its_handles() {
    let server = TestServer::start().await;
    std::fs::write(server.path("f"), b"data").unwrap();
    let (mut c, mut admin) = server.clients().await;
    let short = session(&mut c, 1).await;
    let kept = session(&mut c, 1).await;
    let h_short = map(&mut c, map_req(&short, "f", "a", Access::Default))
        .await
        .unwrap()
        .handle;
    let h_kept = map(&mut c, map_req(&kept, "f", "b", Access::Default))
        .await
        .unwrap()
        .handle;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        c.keep_alive(pb::KeepAliveRequest {
            session_id: kept.clone(),
        })
        .await
        .unwrap();
    }
    let err = c.read(rq::read(&h_short, None)).await.unwrap_err();
    assert_error(
        &err,
        Code::FailedPrecondition,
        "VALUE_ERROR",
        "mmap closed or invalid",
    );
    let err = c
        .keep_alive(pb::KeepAliveRequest {
            session_id: short.clone(),
        })
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::NotFound,
        "SESSION_NOT_FOUND",
        &format!("session {short:?} not found or expired"),
    );
    let ok = c.read(rq::read(&h_kept, None)).await.unwrap().into_inner();
    assert_eq!(&ok.data[..], b"data");
    let sessions = admin
        .list_sessions(pb::ListSessionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        (sessions[0].session_id.as_str(), sessions[0].handles),
        (kept.as_str(), 1)
    );
    let mappings = admin
        .list_mappings(pb::ListMappingsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .mappings;
    assert_eq!(
        mappings.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["b"]
    );
}

#[tokio::test]
async fn close_session_closes_handles_and_keeps_writes() {
    let mut fx = Fixture::with_file("f", vec![b'.'; 10]).await;
    let h = fx.map_file("f", Access::Default).await;
    let Fixture {
        server, mut c, sid, ..
    } = fx;
    c.write(rq::write(&h, "saved")).await.unwrap();
    c.close_session(pb::CloseSessionRequest {
        session_id: sid.clone(),
    })
    .await
    .unwrap();
    assert_eq!(std::fs::read(server.path("f")).unwrap(), b"saved.....");
    let err = c.tell(rq::tell(&h)).await.unwrap_err();
    assert_error(
        &err,
        Code::FailedPrecondition,
        "VALUE_ERROR",
        "mmap closed or invalid",
    );
    let err = c
        .close_session(pb::CloseSessionRequest { session_id: sid })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn graceful_shutdown_returns_and_keeps_writes() {
    let mut fx = Fixture::with_file("f", vec![0u8; 4096]).await;
    let h = fx.map_file("f", Access::Default).await;
    let Fixture {
        server,
        mut c,
        admin,
        ..
    } = fx;
    c.write(rq::write(&h, "unflushed")).await.unwrap();
    drop((c, admin));
    let root = server.shutdown().await;
    // The server is gone; the file must hold the write.
    assert_eq!(
        &std::fs::read(root.path().join("f")).unwrap()[..9],
        b"unflushed"
    );
}

#[tokio::test]
async fn admin_info_health_and_reflection_answer() {
    let server = TestServer::start().await;
    let (_, mut admin) = server.clients().await;
    let info = admin
        .get_server_info(pb::GetServerInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert!(info.page_size >= 4096 && info.page_size.is_power_of_two());
    assert_eq!(info.allocation_granularity, info.page_size);
    assert_eq!(
        (info.default_chunk_size, info.max_chunk_size),
        (256 << 10, 4 << 20)
    );

    let channel = tonic::transport::Channel::from_shared(server.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    for service in ["", "mmapd.v1.Mmap", "mmapd.v1.Admin"] {
        let reply = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            reply.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service}"
        );
    }
}

#[tokio::test]
async fn reflection_serves_the_error_info_every_error_carries() {
    use prost::Message;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let server = TestServer::start().await;
    let channel = tonic::transport::Channel::from_shared(server.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(
            "google.rpc.ErrorInfo".into(),
        )),
    };
    let mut replies = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.message().await.unwrap().expect("one reply");
    let Some(MessageResponse::FileDescriptorResponse(files)) = reply.message_response else {
        panic!("no descriptor for google.rpc.ErrorInfo: {reply:?}");
    };
    let files: Vec<_> = files
        .file_descriptor_proto
        .iter()
        .map(|bytes| prost_types::FileDescriptorProto::decode(&bytes[..]).unwrap())
        .collect();
    let details = files
        .iter()
        .find(|f| f.name() == "google/rpc/error_details.proto")
        .expect("error_details.proto is served");
    let info = details
        .message_type
        .iter()
        .find(|m| m.name() == "ErrorInfo");
    let fields: Vec<_> = info.unwrap().field.iter().map(|f| f.name()).collect();
    assert_eq!(fields, ["reason", "domain", "metadata"]);
}

/// What a reflection client without the proto does to decode an error:
/// take the raw `grpc-status-details-bin`, fetch the files declaring
/// `google.rpc.Status` and `google.rpc.ErrorInfo` (and every file they
/// import, by name, as grpcurl does) from reflection v1, and decode the
/// details with a descriptor pool built from those files alone.
#[tokio::test]
async fn a_real_errors_error_info_decodes_through_reflection_alone() {
    use prost_reflect::{DynamicMessage, MapKey, ReflectMessage};
    let mut fx = Fixture::new().await;
    let status = fx
        .map(fx.file_req("missing.bin", Access::Read))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let details = status.details().to_vec();
    assert!(!details.is_empty(), "no grpc-status-details-bin");

    let pool = reflected_pool(
        &fx.server.endpoint(),
        &["google.rpc.Status", "google.rpc.ErrorInfo"],
    )
    .await;
    // Status's `details` are Anys: the pool could only be built because
    // reflection served the import too.
    let files: Vec<_> = pool.files().map(|f| f.name().to_owned()).collect();
    for name in [
        "google/rpc/status.proto",
        "google/rpc/error_details.proto",
        "google/protobuf/any.proto",
    ] {
        assert!(files.iter().any(|f| f == name), "{name} not in {files:?}");
    }
    let status_type = pool.get_message_by_name("google.rpc.Status").unwrap();
    let decoded = DynamicMessage::decode(status_type, &details[..]).unwrap();
    let field = |m: &DynamicMessage, name: &str| {
        m.get_field_by_name(name)
            .unwrap_or_else(|| panic!("no field {name} in {}", m.descriptor().full_name()))
            .into_owned()
    };
    assert_eq!(
        field(&decoded, "code").as_i32(),
        Some(Code::NotFound as i32)
    );
    assert_eq!(field(&decoded, "message").as_str(), Some(status.message()));
    let anys = field(&decoded, "details");
    let anys = anys.as_list().unwrap();
    assert_eq!(anys.len(), 1, "exactly one detail: {anys:?}");
    let any = anys[0].as_message().unwrap();
    let type_url = field(any, "type_url");
    let type_name = type_url
        .as_str()
        .unwrap()
        .strip_prefix("type.googleapis.com/")
        .expect("a type.googleapis.com/ type URL");
    assert_eq!(type_name, "google.rpc.ErrorInfo");
    let info_type = pool.get_message_by_name(type_name).unwrap();
    let value = field(any, "value");
    let info = DynamicMessage::decode(info_type, value.as_bytes().unwrap().clone()).unwrap();
    assert_eq!(field(&info, "reason").as_str(), Some("OS_ERROR"));
    assert_eq!(field(&info, "domain").as_str(), Some("mmapd"));
    let metadata = field(&info, "metadata");
    let metadata = metadata.as_map().unwrap();
    let entry = |key: &str| {
        metadata
            .get(&MapKey::String(key.into()))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    assert_eq!(entry("errno").as_deref(), Some("2"), "{metadata:?}");
    assert_eq!(
        entry("path").as_deref(),
        Some("missing.bin"),
        "{metadata:?}"
    );
}

/// A descriptor pool of exactly what the server's reflection v1 serves for
/// `symbols` and, transitively, the files they import.
async fn reflected_pool(endpoint: &str, symbols: &[&str]) -> prost_reflect::DescriptorPool {
    use prost::Message;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let channel = tonic::transport::Channel::from_shared(endpoint.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut reflection = ServerReflectionClient::new(channel);
    let mut wanted: Vec<MessageRequest> = symbols
        .iter()
        .map(|s| MessageRequest::FileContainingSymbol((*s).to_owned()))
        .collect();
    let mut files = std::collections::BTreeMap::new();
    while let Some(ask) = wanted.pop() {
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(ask.clone()),
        };
        let reply = reflection
            .server_reflection_info(tokio_stream::once(request))
            .await
            .unwrap()
            .into_inner()
            .message()
            .await
            .unwrap()
            .expect("one reply");
        let Some(MessageResponse::FileDescriptorResponse(found)) = reply.message_response else {
            panic!("reflection has no file for {ask:?}: {reply:?}");
        };
        for bytes in &found.file_descriptor_proto {
            let file = prost_types::FileDescriptorProto::decode(&bytes[..]).unwrap();
            for import in &file.dependency {
                if !files.contains_key(import) {
                    wanted.push(MessageRequest::FileByFilename(import.clone()));
                }
            }
            files.insert(file.name().to_owned(), file);
        }
    }
    let mut pool = prost_reflect::DescriptorPool::new();
    pool.add_file_descriptor_protos(files.into_values())
        .expect("the reflected files are complete and consistent");
    pool
}

#[tokio::test]
async fn shrinking_a_file_under_another_mapping_is_refused_not_a_sigbus() {
    let mut fx = Fixture::with_file("f", vec![5u8; 8192]).await;
    let a = fx.handle(fx.named_req("f", "a", Access::Write)).await;
    let b = fx.handle(fx.named_req("f", "b", Access::Copy)).await;
    let Fixture { server, mut c, .. } = fx;
    let err = c.resize(rq::resize(&a, 100)).await.unwrap_err();
    assert_error(
        &err,
        Code::FailedPrecondition,
        "VALUE_ERROR",
        "cannot shrink the file below byte 8192: mapping \"b\" still maps it",
    );
    assert_eq!(std::fs::metadata(server.path("f")).unwrap().len(), 8192);
    // The other mapping's last byte is still readable: the server is alive.
    let last = c.get_item(rq::get_item(&b, -1)).await.unwrap();
    assert_eq!(last.into_inner().value, 5);
    // Growing is always fine, and once the other mapping is gone, so is shrinking.
    c.resize(rq::resize(&a, 16384)).await.unwrap();
    c.close(rq::close(&b)).await.unwrap();
    c.resize(rq::resize(&a, 100)).await.unwrap();
    assert_eq!(std::fs::metadata(server.path("f")).unwrap().len(), 100);
}

#[tokio::test]
async fn other_bounds_of_one_path_get_their_own_mapping_unless_named() {
    let mut fx = Fixture::with_file("f", vec![1u8; 8192]).await;
    let whole = fx.map(fx.file_req("f", Access::Default)).await.unwrap();
    let same = fx.map(fx.file_req("f", Access::Default)).await.unwrap();
    assert_eq!(
        same.name, "f",
        "same bounds share the default-named mapping"
    );
    let part = fx
        .map(pb::MapRequest {
            length: 10,
            ..fx.file_req("f", Access::Default)
        })
        .await
        .unwrap();
    assert!(part.name.starts_with("f#"), "{}", part.name);
    assert_eq!(part.length, 10);
    // Both see one file's bytes, as two CPython objects would.
    fx.c.write(rq::write(&part.handle, "xy")).await.unwrap();
    let seen =
        fx.c.read(rq::read(&whole.handle, Some(2)))
            .await
            .unwrap()
            .into_inner();
    assert_eq!(&seen.data[..], b"xy");
    // With an explicit name, other bounds are a conflict.
    let err = fx
        .map(pb::MapRequest {
            length: 10,
            ..fx.named_req("f", "f", Access::Default)
        })
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::AlreadyExists,
        "MAPPING_CONFLICT",
        "mapping \"f\" already exists with a different length",
    );
}

#[tokio::test]
async fn a_failed_create_leaves_no_file_and_whole_file_maps_do_not_attach_to_windows() {
    let mut fx = Fixture::new().await;
    let unaligned = pb::MapRequest {
        create: true,
        length: 10,
        offset: 1,
        ..fx.file_req("n", Access::Default)
    };
    let err = fx.map(unaligned).await.unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "OS_ERROR",
        "[Errno 22] Invalid argument",
    );
    assert!(
        !fx.server.path("n").exists(),
        "the failed Map removed the file it created"
    );
    let huge = pb::MapRequest {
        create: true,
        length: i64::MAX,
        offset: 4096,
        ..fx.file_req("h", Access::Default)
    };
    let err = fx.map(huge).await.unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "OVERFLOW_ERROR",
        "mmap offset + length is too large",
    );
    assert!(!fx.server.path("h").exists());

    std::fs::write(fx.server.path("f"), vec![0u8; 8192]).unwrap();
    let window = fx
        .map(pb::MapRequest {
            length: 4096,
            ..fx.file_req("f", Access::Default)
        })
        .await
        .unwrap();
    assert_eq!(window.name, "f");
    // mmap(fd, 0) is the whole file, as in CPython, not the 4096-byte window.
    let whole = fx.map(fx.file_req("f", Access::Default)).await.unwrap();
    assert_eq!(whole.length, 8192);
    assert_ne!(whole.name, "f");
}

#[tokio::test]
async fn a_copy_of_an_anonymous_region_blocks_shrinking_it() {
    let mut fx = Fixture::new().await;
    let anon = pb::MapRequest {
        length: 8192,
        ..fx.named_req("", "region", Access::Default)
    };
    let shared = fx.handle(anon).await;
    fx.c.set_item(rq::set_item(&shared, 8000, 3)).await.unwrap();
    let copy = fx.handle(fx.named_req("", "region", Access::Copy)).await;
    let c = &mut fx.c;
    let err = c.resize(rq::resize(&shared, 4096)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    // Before the fix this read raised SIGBUS in the server.
    let byte = c.get_item(rq::get_item(&copy, 8000)).await.unwrap();
    assert_eq!(byte.into_inner().value, 3);
}
