//! Unit tests of the confined file calls, against a temporary root.

use std::{fs, os::unix::fs::symlink, path::Path};

use super::*;

fn root() -> (tempfile::TempDir, Root) {
    let tmp = tempfile::tempdir().unwrap();
    let root = Root::open(&tmp.path().join("root")).unwrap();
    (tmp, root)
}

fn errno(err: Error) -> i32 {
    if let Error::Os { errno, .. } | Error::Rename { errno, .. } = err {
        errno
    } else {
        panic!("not an OS error: {err:?}")
    }
}

/// A caller that sees everything.
fn everything(_: &str) -> bool {
    true
}

/// The walks' depth limit in these tests.
const DEPTH: u32 = 8;

impl Root {
    fn remove_at(
        &self,
        rel: &str,
        recursive: bool,
        symlinks: Symlinks,
        check: &dyn Fn(&Entry) -> Result<()>,
    ) -> Result<u64> {
        self.remove(rel, recursive, DEPTH, symlinks, check)
    }
}

fn ok(_: &Entry) -> Result<()> {
    Ok(())
}

fn paths(listed: &Listed) -> Vec<&str> {
    listed.entries.iter().map(|e| e.path.as_str()).collect()
}

fn tree(base: &Path) {
    for dir in ["a/b", "a-z", "c"] {
        fs::create_dir_all(base.join(dir)).unwrap();
    }
    for file in ["a.txt", "a/x", "a/b/y", "a-z/q", "c/z"] {
        fs::write(base.join(file), file).unwrap();
    }
}

#[test]
fn listings_are_in_path_order_and_page_without_gaps() {
    let (tmp, root) = root();
    let base = tmp.path().join("root");
    tree(&base);
    let all = root
        .list("", true, "", 100, DEPTH, Symlinks::Follow, &everything)
        .unwrap();
    let expected = [
        "a", "a-z", "a-z/q", "a.txt", "a/b", "a/b/y", "a/x", "c", "c/z",
    ];
    assert_eq!(paths(&all), expected);
    assert!(!all.more);
    // Pages of every size reassemble into the same listing.
    for size in 1..=4 {
        let mut seen = Vec::new();
        let mut after = String::new();
        loop {
            let page = root
                .list("", true, &after, size, DEPTH, Symlinks::Follow, &everything)
                .unwrap();
            assert!(page.entries.len() <= size);
            seen.extend(page.entries.iter().map(|e| e.path.clone()));
            if !page.more {
                break;
            }
            after = page.entries.last().unwrap().path.clone();
        }
        assert_eq!(seen, expected, "page size {size}");
    }
    let top = root
        .list("", false, "", 100, DEPTH, Symlinks::Follow, &everything)
        .unwrap();
    assert_eq!(paths(&top), ["a", "a-z", "a.txt", "c"]);
    let sub = root
        .list("a", true, "", 100, DEPTH, Symlinks::Follow, &everything)
        .unwrap();
    assert_eq!(paths(&sub), ["a/b", "a/b/y", "a/x"]);
    let kinds: Vec<Kind> = sub.entries.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [Kind::Dir, Kind::File, Kind::File]);
    assert_eq!(sub.entries[1].size, 5);
}

#[test]
fn listing_a_file_or_a_missing_folder_is_python_s_error() {
    let (tmp, root) = root();
    tree(&tmp.path().join("root"));
    let list = |p: &str| root.list(p, false, "", 10, DEPTH, Symlinks::Follow, &everything);
    assert_eq!(errno(list("a.txt").unwrap_err()), 20);
    assert_eq!(errno(list("nope").unwrap_err()), 2);
}

#[test]
fn walks_list_symlinks_without_following_them() {
    let (tmp, root) = root();
    let base = tmp.path().join("root");
    fs::create_dir_all(base.join("d")).unwrap();
    fs::write(base.join("d/f"), b"x").unwrap();
    symlink("d", base.join("link")).unwrap();
    symlink(tmp.path(), base.join("out")).unwrap();
    let all = root
        .list("", true, "", 100, DEPTH, Symlinks::Follow, &everything)
        .unwrap();
    assert_eq!(paths(&all), ["d", "d/f", "link", "out"]);
    assert_eq!(all.entries[2].kind, Kind::Symlink);
    assert_eq!(all.entries[2].target.as_deref(), Some("d"));
    // Listing through a link out of the root is an escape.
    let err = root
        .list("out", false, "", 10, DEPTH, Symlinks::Follow, &everything)
        .unwrap_err();
    assert!(matches!(err, Error::PathEscape(_)), "{err:?}");
    // Stat follows a link inside the root and refuses one out of it.
    assert_eq!(root.stat("link", Symlinks::Follow).unwrap().kind, Kind::Dir);
    assert!(matches!(
        root.stat("out", Symlinks::Follow),
        Err(Error::PathEscape(_))
    ));
    // A caller who may not follow links at all gets ELOOP.
    assert_eq!(errno(root.stat("link", Symlinks::Refuse).unwrap_err()), 40);
}

#[test]
fn mkdir_errors_are_os_mkdir_s_and_makedirs_s() {
    let (tmp, root) = root();
    let base = tmp.path().join("root");
    fs::write(base.join("f"), b"").unwrap();
    assert!(root.make_dir("d", false, Symlinks::Follow).unwrap());
    assert_eq!(
        errno(root.make_dir("d", false, Symlinks::Follow).unwrap_err()),
        17
    );
    assert!(!root.make_dir("d", true, Symlinks::Follow).unwrap());
    assert_eq!(
        errno(
            root.make_dir("nope/x", false, Symlinks::Follow)
                .unwrap_err()
        ),
        2
    );
    assert_eq!(
        errno(root.make_dir("f/x", false, Symlinks::Follow).unwrap_err()),
        20
    );
    assert_eq!(
        errno(root.make_dir("f", true, Symlinks::Follow).unwrap_err()),
        17
    );
    assert!(root.make_dir("p/q/r", true, Symlinks::Follow).unwrap());
    assert!(base.join("p/q/r").is_dir());
    symlink(tmp.path(), base.join("out")).unwrap();
    for parents in [false, true] {
        let err = root
            .make_dir("out/new", parents, Symlinks::Follow)
            .unwrap_err();
        assert!(matches!(err, Error::PathEscape(_)), "{err:?}");
    }
    assert!(!tmp.path().join("new").exists());
}

/// makedirs names the folder it failed on: past a file or a symlink loop,
/// the one inside it; the last one as FileExistsError. A caller that may
/// not follow links gets ELOOP for any link, as everywhere else.
#[test]
fn makedirs_names_the_folder_it_failed_on() {
    let (tmp, root) = root();
    let base = tmp.path().join("root");
    fs::write(base.join("f"), b"").unwrap();
    symlink("loop", base.join("loop")).unwrap();
    fs::create_dir(base.join("d")).unwrap();
    symlink("d", base.join("dlink")).unwrap();
    let failed = |path: &str, symlinks| {
        let err = root.make_dir(path, true, symlinks).unwrap_err();
        let Error::Os { errno, path } = err else {
            panic!("{err:?}")
        };
        (errno, path.unwrap())
    };
    assert_eq!(failed("f/x/y", Symlinks::Follow), (20, "f/x".into()));
    assert_eq!(failed("loop/x/y", Symlinks::Follow), (40, "loop/x".into()));
    assert_eq!(failed("loop", Symlinks::Follow), (17, "loop".into()));
    assert!(root.make_dir("dlink/x", true, Symlinks::Follow).unwrap());
    assert_eq!(failed("dlink/y", Symlinks::Refuse), (40, "dlink".into()));
    assert_eq!(failed("dlink", Symlinks::Refuse), (40, "dlink".into()));
}

#[test]
fn remove_takes_files_links_and_empty_folders_and_trees_when_asked() {
    let (tmp, root) = root();
    let base = tmp.path().join("root");
    tree(&base);
    symlink(tmp.path(), base.join("out")).unwrap();
    // The link goes, not what it points at.
    assert_eq!(
        root.remove_at("out", false, Symlinks::Follow, &ok).unwrap(),
        1
    );
    assert!(tmp.path().join("root").exists());
    assert_eq!(
        errno(
            root.remove_at("a", false, Symlinks::Follow, &ok)
                .unwrap_err()
        ),
        39
    );
    assert_eq!(root.remove_at("a", true, Symlinks::Follow, &ok).unwrap(), 4);
    assert!(!base.join("a").exists());
    assert_eq!(
        errno(
            root.remove_at("a", true, Symlinks::Follow, &ok)
                .unwrap_err()
        ),
        2
    );
    fs::remove_file(base.join("c/z")).unwrap();
    assert_eq!(
        root.remove_at("c", false, Symlinks::Follow, &ok).unwrap(),
        1
    );
    assert_eq!(
        errno(root.remove_at("", true, Symlinks::Follow, &ok).unwrap_err()),
        22
    );
}

#[test]
fn a_refused_entry_anywhere_in_a_tree_removes_nothing() {
    let (tmp, root) = root();
    let base = tmp.path().join("root");
    tree(&base);
    let refuse_y = |e: &Entry| match e.path.as_str() {
        "a/b/y" => Err(Error::Busy {
            path: e.path.clone(),
            name: "m".into(),
        }),
        _ => Ok(()),
    };
    let err = root
        .remove_at("a", true, Symlinks::Follow, &refuse_y)
        .unwrap_err();
    assert!(
        matches!(err, Error::Busy { ref path, .. } if path == "a/b/y"),
        "{err:?}"
    );
    for left in ["a/x", "a/b/y"] {
        assert!(base.join(left).exists(), "{left}");
    }
}

#[test]
fn rename_and_replace_say_what_os_rename_says() {
    let (tmp, root) = root();
    let base = tmp.path().join("root");
    tree(&base);
    let rename = |f: &str, t: &str, r: bool| root.rename(f, t, r, false, Symlinks::Follow, &ok);
    assert_eq!(errno(rename("a.txt", "c/z", false).unwrap_err()), 17);
    rename("a.txt", "c/z", true).unwrap();
    assert_eq!(fs::read(base.join("c/z")).unwrap(), b"a.txt");
    assert_eq!(errno(rename("nope", "x", false).unwrap_err()), 2);
    assert_eq!(errno(rename("c/z", "a", true).unwrap_err()), 21);
    assert_eq!(errno(rename("a", "c/z", true).unwrap_err()), 20);
    assert_eq!(errno(rename("a-z", "a", true).unwrap_err()), 39);
    let err = rename("nope", "x", false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "[Errno 2] No such file or directory: 'nope' -> 'x'"
    );
    rename("a", "moved/a", false).unwrap_err();
    root.make_dir("moved", false, Symlinks::Follow).unwrap();
    rename("a", "moved/a", false).unwrap();
    assert!(base.join("moved/a/b/y").exists());
    symlink(tmp.path(), base.join("out")).unwrap();
    let err = rename("c/z", "out/z", false).unwrap_err();
    assert!(matches!(err, Error::PathEscape(_)), "{err:?}");
    assert!(!tmp.path().join("z").exists());
}

#[test]
fn truncate_grows_shrinks_creates_and_asks_before_shrinking() {
    let (tmp, root) = root();
    let base = tmp.path().join("root");
    let t = |p: &str, size, create: bool| {
        let create = if create {
            Create::IfMissing
        } else {
            Create::Never
        };
        root.truncate(p, size, create, Symlinks::Follow, &ok)
    };
    assert_eq!(errno(t("f", 0, false).unwrap_err()), 2);
    let made = t("n/e/f", 0, true).unwrap();
    assert_eq!((made.size, made.kind), (0, Kind::File));
    assert_eq!(fs::metadata(base.join("n/e/f")).unwrap().len(), 0);
    assert_eq!(t("n/e/f", 10, false).unwrap().size, 10);
    let refuse = |_: &Entry| {
        Err(Error::Busy {
            path: "n/e/f".into(),
            name: "m".into(),
        })
    };
    let shrink = root.truncate("n/e/f", 3, Create::Never, Symlinks::Follow, &refuse);
    assert!(matches!(shrink, Err(Error::Busy { .. })));
    // Growing asks nobody.
    assert_eq!(
        root.truncate("n/e/f", 20, Create::Never, Symlinks::Follow, &refuse)
            .unwrap()
            .size,
        20
    );
    // Only a new file is sized when asked so; an existing one is kept.
    let kept = root.truncate("n/e/f", 0, Create::OnlyNew, Symlinks::Follow, &refuse);
    assert_eq!(kept.unwrap().size, 20);
    let new = root.truncate("n/e/g", 7, Create::OnlyNew, Symlinks::Follow, &ok);
    assert_eq!(new.unwrap().size, 7);
    assert_eq!(errno(t("n", 0, false).unwrap_err()), 21);
    assert_eq!(errno(t("", 0, false).unwrap_err()), 21);
}

/// However deep a client nests folders, a walk stops at the limit with
/// QUOTA_EXCEEDED (it holds an fd and a stack frame per level), and a
/// removal that would pass it removes nothing.
#[test]
fn walks_stop_at_the_depth_limit() {
    let (tmp, root) = root();
    let base = tmp.path().join("root");
    // d0/d1/.../d9: nine levels below d0, eight below d1.
    let deep = (0..=DEPTH + 1)
        .map(|i| format!("d{i}"))
        .collect::<Vec<_>>()
        .join("/");
    fs::create_dir_all(base.join(&deep)).unwrap();
    let quota = |r: Result<Listed>| match r {
        Err(Error::Quota { limit, value }) => assert_eq!((limit, value), ("max_tree_depth", 8)),
        other => panic!("{other:?}"),
    };
    quota(root.list("", true, "", 1000, DEPTH, Symlinks::Follow, &everything));
    match root.remove_at("d0", true, Symlinks::Follow, &ok) {
        Err(Error::Quota { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(base.join(&deep).is_dir(), "nothing removed");
    quota(root.list("d0", true, "", 1000, DEPTH, Symlinks::Follow, &everything));
    // Eight levels below the folder named are fine.
    let listed = root.list(
        "d0/d1",
        true,
        "",
        1000,
        DEPTH,
        Symlinks::Follow,
        &everything,
    );
    assert_eq!(listed.unwrap().entries.len(), DEPTH as usize);
    let removed = root
        .remove_at("d0/d1", true, Symlinks::Follow, &ok)
        .unwrap();
    assert_eq!(removed, u64::from(DEPTH) + 1);
}

#[test]
fn the_root_is_named_by_empty_and_dot_paths_only() {
    for root in ["", ".", "./", "./."] {
        assert_eq!(Root::normalize_or_root(root).unwrap(), "", "{root:?}");
    }
    for escape in ["/", "..", "/etc", "a/../.."] {
        assert!(
            matches!(Root::normalize_or_root(escape), Err(Error::PathEscape(_))),
            "{escape:?}"
        );
    }
}

/// The rename race: while a folder on the way is swapped back and forth
/// with a symlink out of the root, no call ever touches anything outside.
#[test]
fn swapping_a_folder_for_a_symlink_out_never_leads_a_call_outside() {
    let (tmp, root) = root();
    let base = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("victim"), b"keep").unwrap();
    fs::create_dir_all(base.join("d")).unwrap();
    symlink(&outside, base.join("evil")).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            // `d` flips between a real folder and the link out, atomically,
            // so it is always there and no call makes it anew.
            let (d, evil) = (base.join("d"), base.join("evil"));
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    &d,
                    rustix::fs::CWD,
                    &evil,
                    RenameFlags::EXCHANGE,
                )
                .unwrap();
            }
        });
        for i in 0..2_000 {
            let _ = root.remove_at("d/victim", false, Symlinks::Follow, &ok);
            let _ = root.truncate("d/victim", 0, Create::Never, Symlinks::Follow, &ok);
            let _ = root.make_dir(&format!("d/new{i}"), true, Symlinks::Follow);
            let _ = root.rename("d/victim", "moved", false, false, Symlinks::Follow, &ok);
            let _ = root.truncate(
                &format!("d/made{i}"),
                1,
                Create::IfMissing,
                Symlinks::Follow,
                &ok,
            );
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    assert_eq!(fs::read(outside.join("victim")).unwrap(), b"keep");
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        1,
        "something was made outside"
    );
}

/// A name that is not UTF-8 cannot be listed (paths are strings on the
/// wire), but a recursive removal still takes it, so its folder goes.
#[test]
fn a_recursive_removal_takes_names_that_are_not_utf8() {
    use std::{ffi::OsStr, os::unix::ffi::OsStrExt};
    let (tmp, root) = root();
    let base = tmp.path().join("root");
    fs::create_dir_all(base.join("nu/sub")).unwrap();
    fs::write(base.join("nu").join(OsStr::from_bytes(b"bad\xff")), b"x").unwrap();
    fs::create_dir(base.join("nu/sub").join(OsStr::from_bytes(b"dir\xfe"))).unwrap();
    let listed = root
        .list("nu", true, "", 100, DEPTH, Symlinks::Follow, &everything)
        .unwrap();
    assert_eq!(paths(&listed), ["nu/sub"]);
    assert_eq!(
        errno(
            root.remove_at("nu", false, Symlinks::Follow, &ok)
                .unwrap_err()
        ),
        39
    );
    assert_eq!(
        root.remove_at("nu", true, Symlinks::Follow, &ok).unwrap(),
        4
    );
    assert!(!base.join("nu").exists());
}
