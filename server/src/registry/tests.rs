//! The registry's quotas and listings, without gRPC: each quota refuses
//! with its `ServerLimits` name and value, before anything was done.

use std::{path::Path, sync::mpsc, thread, time::Duration};

use super::*;
use crate::access::{Identity, Role};
use crate::mem;

fn page() -> i64 {
    mem::page_size() as i64
}

fn registry(dir: &Path, tweak: impl FnOnce(&mut Limits)) -> Registry {
    let mut limits = Limits::default();
    tweak(&mut limits);
    Registry::new(Root::open(dir).unwrap(), Duration::from_secs(60), limits)
}

fn session(r: &Registry) -> String {
    r.open_session("test", 0, &Caller::open()).unwrap().0
}

fn args(session: &str, path: &str, name: &str, length: i64, access: Access) -> MapArgs {
    MapArgs {
        session_id: session.to_owned(),
        path: path.to_owned(),
        length,
        offset: 0,
        access: access as i32,
        name: name.to_owned(),
        create: false,
        caller: Caller::open(),
    }
}

fn anon(session: &str, length: i64) -> MapArgs {
    args(session, "", "", length, Access::Default)
}

#[track_caller]
fn assert_quota<T: std::fmt::Debug>(result: Result<T>, limit: &str, value: u64) {
    match result {
        Err(Error::Quota { limit: l, value: v }) => assert_eq!((l, v), (limit, value)),
        other => panic!("expected the {limit} quota, got {other:?}"),
    }
}

#[test]
fn sessions_are_capped_and_freed_by_close() {
    let tmp = tempfile::tempdir().unwrap();
    let r = registry(tmp.path(), |l| l.max_sessions = 2);
    let first = session(&r);
    session(&r);
    assert_quota(
        r.open_session("third", 0, &Caller::open()),
        "max_sessions",
        2,
    );
    assert_eq!(r.session_count(), 2);
    r.close_session(&first, &Caller::open()).unwrap();
    session(&r);
}

#[test]
fn client_and_mapping_names_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let r = registry(tmp.path(), |l| {
        l.max_client_name_length = 8;
        l.max_name_length = 8;
    });
    assert_quota(
        r.open_session("123456789", 0, &Caller::open()),
        "max_client_name_length",
        8,
    );
    assert_eq!(r.session_count(), 0);
    let s = session(&r);
    let long = args(&s, "", "123456789", page(), Access::Default);
    assert_quota(r.map(long), "max_name_length", 8);
    assert_eq!((r.mapping_count(), r.anonymous_bytes()), (0, 0));
    r.map(args(&s, "", "12345678", page(), Access::Default))
        .unwrap();
}

#[test]
fn an_over_long_path_is_enametoolong_with_the_path_cut_short() {
    let tmp = tempfile::tempdir().unwrap();
    let r = registry(tmp.path(), |l| l.max_path_length = 100);
    let s = session(&r);
    let mut long = args(&s, &"x".repeat(101), "", 0, Access::Default);
    long.create = true;
    match r.map(long) {
        Err(Error::Os { errno, path }) => {
            assert_eq!(errno, Errno::NAMETOOLONG.raw_os_error());
            let path = path.unwrap();
            assert!(path.len() < 100 && path.ends_with("..."), "{path}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn handles_per_session_count_maps_and_free_on_close() {
    let tmp = tempfile::tempdir().unwrap();
    let r = registry(tmp.path(), |l| l.max_handles_per_session = 2);
    let s = session(&r);
    let first = r.map(anon(&s, page())).unwrap();
    r.map(anon(&s, page())).unwrap();
    assert_quota(r.map(anon(&s, page())), "max_handles_per_session", 2);
    assert_eq!(r.mapping_count(), 2);
    // Another session has its own quota.
    let other = session(&r);
    r.map(anon(&other, page())).unwrap();
    r.close_handle(first.id());
    r.map(anon(&s, page())).unwrap();
}

#[test]
fn mappings_are_capped_server_wide_but_attaching_is_free() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a"), vec![1u8; 4096]).unwrap();
    let r = registry(tmp.path(), |l| l.max_mappings = 2);
    let s = session(&r);
    r.map(args(&s, "a", "", 0, Access::Default)).unwrap();
    r.map(args(&s, "", "a", 0, Access::Default)).unwrap();
    r.map(anon(&s, page())).unwrap();
    assert_eq!(r.mapping_count(), 2);
    let mut create = args(&s, "b", "", page(), Access::Default);
    create.create = true;
    assert_quota(r.map(create), "max_mappings", 2);
    assert!(!tmp.path().join("b").exists(), "no file for a refused Map");
    // A private copy is a mapping of its own.
    assert_quota(r.map(args(&s, "", "a", 0, Access::Copy)), "max_mappings", 2);
    r.close_session(&s, &Caller::open()).unwrap();
    assert_eq!(r.mapping_count(), 0);
}

#[test]
fn mapping_length_is_capped_at_map_and_at_resize() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("big"), vec![0u8; 3 * 4096]).unwrap();
    let max = 2 * page() as u64;
    let r = registry(tmp.path(), |l| l.max_mapping_length = max);
    let s = session(&r);
    assert_quota(r.map(anon(&s, 3 * page())), "max_mapping_length", max);
    // A whole-file map is checked once the file's length is known.
    assert_quota(
        r.map(args(&s, "big", "", 0, Access::Read)),
        "max_mapping_length",
        max,
    );
    let h = r.map(anon(&s, page())).unwrap();
    assert_quota(h.resize(3 * page()), "max_mapping_length", max);
    assert_eq!(h.length().unwrap(), page() as u64);
    // CPython's own checks come first.
    assert!(matches!(h.resize(-1), Err(Error::BadValue(_))));
    h.resize(2 * page()).unwrap();
}

#[test]
fn anonymous_bytes_are_charged_at_map_and_resize_and_refunded() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("f"), vec![0u8; 4096]).unwrap();
    let max = 3 * page() as u64;
    let r = registry(tmp.path(), |l| l.max_anonymous_bytes = max);
    let s = session(&r);
    let h = r.map(anon(&s, 2 * page())).unwrap();
    assert_eq!(r.anonymous_bytes(), 2 * page() as u64);
    assert_quota(r.map(anon(&s, 2 * page())), "max_anonymous_bytes", max);
    assert_eq!(r.mapping_count(), 1);
    h.resize(3 * page()).unwrap();
    assert_eq!(r.anonymous_bytes(), max);
    assert_quota(h.resize(4 * page()), "max_anonymous_bytes", max);
    assert_eq!(h.length().unwrap(), max);
    h.resize(page()).unwrap();
    assert_eq!(r.anonymous_bytes(), page() as u64);
    // A private copy of a file may dirty every page: charged too.
    let copy = r.map(args(&s, "f", "", 0, Access::Copy)).unwrap();
    assert_eq!(r.anonymous_bytes(), 2 * page() as u64);
    r.close_handle(copy.id());
    r.close_handle(h.id());
    // The budget comes back when the mapping goes, with its last reference.
    drop((copy, h));
    assert_eq!((r.anonymous_bytes(), r.mapping_count()), (0, 0));
}

#[test]
fn sessions_page_in_id_order_and_refuse_bad_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let r = registry(tmp.path(), |l| l.max_page_size = 2);
    let mut ids: Vec<String> = (0..5).map(|_| session(&r)).collect();
    ids.sort();
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = r.sessions_page(0, &token, &Caller::open()).unwrap();
        assert!(page.rows.len() <= 2);
        seen.extend(page.rows.into_iter().map(|s| s.id));
        pages += 1;
        if page.next_token.is_empty() {
            break;
        }
        token = page.next_token;
    }
    assert_eq!((seen, pages), (ids, 3));
    assert_eq!(
        r.sessions_page(1, "", &Caller::open()).unwrap().rows.len(),
        1
    );
    for bad in ["nope", "../x", &"f".repeat(33)] {
        assert!(matches!(
            r.sessions_page(0, bad, &Caller::open()),
            Err(Error::Protocol(_))
        ));
    }
}

#[test]
fn mappings_page_through_shared_mappings_and_private_copies() {
    let tmp = tempfile::tempdir().unwrap();
    let r = registry(tmp.path(), |l| l.max_page_size = 2);
    let s = session(&r);
    for name in ["c", "a", "b"] {
        r.map(args(&s, "", name, page(), Access::Default)).unwrap();
    }
    r.map(args(&s, "", "b", 0, Access::Copy)).unwrap();
    r.map(args(&s, "", "b", 0, Access::Copy)).unwrap();
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = r.mappings_page(0, &token, &Caller::open()).unwrap();
        seen.extend(page.rows.into_iter().map(|m| (m.name, m.access)));
        if page.next_token.is_empty() {
            break;
        }
        token = page.next_token;
    }
    let d = Access::Default;
    let c = Access::Copy;
    let names: Vec<(&str, Access)> = seen.iter().map(|(n, a)| (n.as_str(), *a)).collect();
    assert_eq!(names, [("a", d), ("b", d), ("b", c), ("b", c), ("c", d)]);
    assert!(matches!(
        r.mappings_page(0, "no separator", &Caller::open()),
        Err(Error::Protocol(_))
    ));
}

#[test]
fn a_map_in_progress_blocks_only_maps_of_its_own_name() {
    let tmp = tempfile::tempdir().unwrap();
    let r = Arc::new(registry(tmp.path(), |_| {}));
    let s = session(&r);
    // Stand in for a Map of "slow" stuck in the file system.
    let entry = Arc::clone(r.names.lock().entry("slow".into()).or_default());
    let stuck = entry.create.lock();
    r.map(args(&s, "", "other", page(), Access::Default))
        .unwrap();
    assert_eq!(
        r.mappings_page(0, "", &Caller::open()).unwrap().rows.len(),
        1
    );
    let (done, finished) = mpsc::channel();
    let waiter = thread::spawn({
        let r = Arc::clone(&r);
        let s = s.clone();
        move || {
            let made = r.map(args(&s, "", "slow", page(), Access::Default));
            done.send(()).unwrap();
            made.map(|h| h.mapping().name().to_owned())
        }
    });
    assert!(finished.recv_timeout(Duration::from_millis(100)).is_err());
    drop(stuck);
    assert_eq!(waiter.join().unwrap().unwrap(), "slow");
}

#[test]
fn fifos_sockets_and_devices_are_refused_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let r = registry(tmp.path(), |_| {});
    let s = session(&r);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        tmp.path().join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(tmp.path().join("sock")).unwrap();
    let mut cases = vec![("fifo", Errno::NODEV), ("sock", Errno::NXIO)];
    // /dev/zero's numbers: the kernel would map it, so only our check
    // refuses it.
    let zero = rustix::fs::mknodat(
        rustix::fs::CWD,
        tmp.path().join("zero"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 5),
    );
    match zero {
        Ok(()) => cases.push(("zero", Errno::NODEV)),
        Err(err) => eprintln!("skipping the device node: mknod refused ({err})"),
    }
    for (path, errno) in cases {
        for access in [Access::Default, Access::Read] {
            match r.map(args(&s, path, "", 0, access)) {
                Err(Error::Os { errno: e, .. }) => assert_eq!(e, errno.raw_os_error(), "{path}"),
                other => panic!("{path}: {other:?}"),
            }
        }
    }
    assert_eq!(r.mapping_count(), 0);
}

#[test]
fn racing_maps_and_closes_of_one_name_share_one_mapping_and_clean_up() {
    let tmp = tempfile::tempdir().unwrap();
    let r = Arc::new(registry(tmp.path(), |_| {}));
    let s = session(&r);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (r, s) = (Arc::clone(&r), s.clone());
            thread::spawn(move || {
                let mut held: Vec<Arc<Handle>> = Vec::new();
                for i in 0..200 {
                    let access = if i % 5 == 0 {
                        Access::Copy
                    } else {
                        Access::Default
                    };
                    let h = r.map(args(&s, "", "x", page(), access)).unwrap();
                    let shared = held.iter().rev().find(|h| !h.mapping().is_private());
                    if access == Access::Default
                        && let Some(other) = shared
                    {
                        // Two handles of one name open at once: one mapping.
                        assert!(Arc::ptr_eq(h.mapping(), other.mapping()), "thread {t}");
                    }
                    held.push(h);
                    if i % 3 == 0 {
                        for h in held.drain(..) {
                            r.close_handle(h.id());
                        }
                    }
                }
                for h in held {
                    r.close_handle(h.id());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!((r.mapping_count(), r.anonymous_bytes()), (0, 0));
    assert!(r.names.lock().is_empty(), "no name entry left behind");
}

fn who(name: &str, role: Role, paths: &[&str]) -> Caller {
    Caller::new(Identity {
        name: name.into(),
        role,
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

#[test]
fn another_identitys_session_and_handles_are_not_found() {
    let tmp = tempfile::tempdir().unwrap();
    let r = registry(tmp.path(), |_| {});
    let alice = who("alice", Role::Readwrite, &[""]);
    let bob = who("bob", Role::Readwrite, &[""]);
    let admin = who("root", Role::Admin, &[""]);
    let (s, _) = r.open_session("a", 0, &alice).unwrap();
    let mut map = anon(&s, page());
    map.caller = alice.clone();
    let h = r.map(map.clone()).unwrap();

    for intruder in [&bob, &admin, &Caller::open()] {
        assert!(matches!(
            r.keep_alive(&s, intruder),
            Err(Error::SessionNotFound(_))
        ));
        assert!(matches!(
            r.close_session(&s, intruder),
            Err(Error::SessionNotFound(_))
        ));
        assert!(matches!(
            r.handle(h.id(), intruder),
            Err(Error::HandleNotFound(_))
        ));
        assert!(matches!(
            r.close(h.id(), intruder),
            Err(Error::HandleNotFound(_))
        ));
        let mut theirs = map.clone();
        theirs.caller = intruder.clone();
        assert!(matches!(r.map(theirs), Err(Error::SessionNotFound(_))));
    }
    // Nothing the intruders did touched alice's session.
    assert!(r.handle(h.id(), &alice).is_ok());
    r.keep_alive(&s, &alice).unwrap();
    r.close(h.id(), &alice).unwrap();
    assert!(matches!(r.handle(h.id(), &alice), Err(Error::Closed)));
    r.close_session(&s, &alice).unwrap();
}

#[test]
fn listings_show_an_admin_everything_and_others_their_own() {
    let tmp = tempfile::tempdir().unwrap();
    let r = registry(tmp.path(), |_| {});
    let alice = who("alice", Role::Readwrite, &[""]);
    let bob = who("bob", Role::Read, &[""]);
    let admin = who("root", Role::Admin, &[""]);
    let mut mine = Vec::new();
    for (caller, name) in [(&alice, "a1"), (&alice, "a2"), (&bob, "b1")] {
        let (s, _) = r.open_session(name, 0, caller).unwrap();
        let mut map = args(&s, "", name, page(), Access::Default);
        map.caller = caller.clone();
        if caller.owns(Some("bob")) {
            map.access = Access::Copy as i32;
            map.caller = who("bob", Role::Readwrite, &[""]);
        }
        r.map(map).unwrap();
        mine.push(s);
    }
    let names = |c: &Caller| -> Vec<String> {
        let page = r.mappings_page(0, "", c).unwrap();
        page.rows.into_iter().map(|m| m.name).collect()
    };
    let sessions = |c: &Caller| r.sessions_page(0, "", c).unwrap().rows.len();
    assert_eq!(names(&alice), ["a1", "a2"]);
    assert_eq!(sessions(&alice), 2);
    assert_eq!(names(&bob), ["b1"]);
    assert_eq!(sessions(&bob), 1);
    assert_eq!(names(&admin), ["a1", "a2", "b1"]);
    assert_eq!(sessions(&admin), 3);
    assert_eq!(sessions(&Caller::open()), 3);
    // Pages of a filtered listing go on after their token.
    let first = r.mappings_page(1, "", &alice).unwrap();
    assert_eq!(first.rows[0].name, "a1");
    let second = r.mappings_page(1, &first.next_token, &alice).unwrap();
    assert_eq!(second.rows[0].name, "a2");
    assert!(second.next_token.is_empty());
}

#[test]
fn map_checks_role_and_paths_before_touching_the_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let r = registry(tmp.path(), |_| {});
    let reader = who("r", Role::Read, &["shared/"]);
    let writer = who("w", Role::Readwrite, &["alice/"]);
    let session = |c: &Caller| r.open_session("x", 0, c).unwrap().0;
    let (rs, ws) = (session(&reader), session(&writer));
    let attempt = |s: &str, c: &Caller, path: &str, name: &str, access: Access| {
        let mut a = args(s, path, name, page(), access);
        a.create = !c.owns(Some("r"));
        a.caller = c.clone();
        r.map(a)
    };
    let denied = |res: Result<Arc<Handle>>, what: &str| match res {
        Err(Error::Denied { action, target, .. }) => assert_eq!(target, what, "{action}"),
        other => panic!("expected a denial of {what}, got {other:?}"),
    };
    denied(
        attempt(&rs, &reader, "shared/f", "", Access::Write),
        "shared/f",
    );
    denied(
        attempt(&rs, &reader, "shared/f", "", Access::Default),
        "shared/f",
    );
    denied(attempt(&ws, &writer, "bob/f", "", Access::Write), "bob/f");
    denied(
        attempt(&ws, &writer, "./bob//f", "", Access::Write),
        "bob/f",
    );
    denied(
        attempt(&ws, &writer, "alice/f", "bob/f", Access::Write),
        "bob/f",
    );
    denied(
        attempt(&ws, &writer, "", "anon-shared", Access::Write),
        "anon-shared",
    );
    assert!(
        !tmp.path().join("bob").exists(),
        "a denied Map created nothing"
    );
    std::fs::create_dir(tmp.path().join("alice")).unwrap();
    attempt(&ws, &writer, "alice/f", "", Access::Write).unwrap();
    attempt(&ws, &writer, "", "alice/region", Access::Write).unwrap();
    // An unnamed anonymous region gets a fresh name nobody else covers.
    attempt(&ws, &writer, "", "", Access::Write).unwrap();
    std::fs::create_dir(tmp.path().join("shared")).unwrap();
    std::fs::write(tmp.path().join("shared/f"), vec![0; page() as usize]).unwrap();
    attempt(&rs, &reader, "shared/f", "", Access::Read).unwrap();
    attempt(&rs, &reader, "shared/f", "", Access::Copy).unwrap();
}
