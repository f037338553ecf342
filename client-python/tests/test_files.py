"""The explicit client's file calls (the Files service) against the real server: each does what its
``os`` function does, fails with the exception ``os`` raises, follows every page, and refuses files in use.
"""

from __future__ import annotations

import errno
import hashlib
import pathlib

import pytest

import mmapd
from conftest import Server


@pytest.fixture()
def fresh(tmp_path: pathlib.Path):  # type: ignore[no-untyped-def]
    """A server of its own, so listings of its root hold only what the test made."""
    root = tmp_path / "root"
    root.mkdir()
    srv = Server(root)
    try:
        with srv.connect() as c:
            yield c, root
    finally:
        srv.stop()


def paths(entries: list) -> list:
    return [e.path for e in entries]


def test_each_call_does_what_its_os_function_does(fresh) -> None:  # type: ignore[no-untyped-def]
    c, root = fresh
    assert c.mkdir("d") is True and (root / "d").is_dir()
    assert c.mkdir("d", parents=True) is False, "an existing folder is fine with parents"
    assert c.mkdir("d/a/b", parents=True) is True and (root / "d/a/b").is_dir()

    made = c.truncate("d/a/f.bin", 10, create=True)
    assert (made.path, made.kind, made.size) == ("d/a/f.bin", mmapd.FILE_KIND_FILE, 10)
    assert (root / "d/a/f.bin").read_bytes() == bytes(10)
    (root / "d/a/f.bin").write_bytes(b"0123456789")
    assert c.truncate("d/a/f.bin", 4).size == 4
    assert (root / "d/a/f.bin").read_bytes() == b"0123"
    # touch makes a missing file and keeps an existing one whole.
    assert c.touch("d/a/f.bin").size == 4 and (root / "d/a/f.bin").read_bytes() == b"0123"
    assert c.touch("d/t/new.txt").size == 0 and (root / "d/t/new.txt").read_bytes() == b""
    assert c.remove("d/t", recursive=True) == 2

    entry = c.stat("d/a/f.bin")
    assert isinstance(entry, mmapd.FileEntry)
    local = (root / "d/a/f.bin").stat()
    assert (entry.kind, entry.size, entry.mode, entry.mapped) == (mmapd.FILE_KIND_FILE, 4, local.st_mode & 0o7777, False)
    assert entry.mtime.ToNanoseconds() == local.st_mtime_ns
    assert c.stat(pathlib.PurePosixPath("d")).kind == mmapd.FILE_KIND_DIR

    (root / "d/link").symlink_to("h.bin")
    assert paths(c.listdir("d")) == ["d/a", "d/link"]
    assert paths(c.listdir("d", recursive=True)) == ["d/a", "d/a/b", "d/a/f.bin", "d/link"]
    link = c.listdir("d")[1]
    assert (link.kind, link.symlink_target) == (mmapd.FILE_KIND_SYMLINK, "h.bin")
    assert paths(c.listdir()) == ["d"]

    c.rename("d/a/f.bin", "d/g.bin")
    assert (root / "d/g.bin").read_bytes() == b"0123" and not (root / "d/a/f.bin").exists()
    (root / "d/h.bin").write_bytes(b"h")
    c.rename("d/g.bin", "d/h.bin", replace=True)
    assert (root / "d/h.bin").read_bytes() == b"0123" and not (root / "d/g.bin").exists()

    assert c.remove("d/link") == 1, "the link, not what it points at"
    assert not (root / "d/link").is_symlink() and (root / "d/h.bin").exists()
    assert c.remove("d/a/b") == 1 and not (root / "d/a/b").exists()
    assert c.remove("d", recursive=True) == 3, "d, d/a and d/h.bin"
    assert not (root / "d").exists()


def test_failures_are_the_exceptions_os_raises(fresh) -> None:  # type: ignore[no-untyped-def]
    c, root = fresh
    (root / "dir").mkdir()
    (root / "full").mkdir()
    (root / "full/x").write_bytes(b"")
    (root / "file").write_bytes(b"data")

    def raised(call, *args, **kw):  # type: ignore[no-untyped-def]
        with pytest.raises(OSError) as info:
            call(*args, **kw)
        return info.value

    err = raised(c.stat, "nope")
    assert (type(err), err.errno, err.filename) == (FileNotFoundError, errno.ENOENT, "nope")
    assert str(err) == "[Errno 2] No such file or directory: 'nope'"
    err = raised(c.listdir, "file")
    assert (type(err), err.errno, err.filename) == (NotADirectoryError, errno.ENOTDIR, "file")
    err = raised(c.mkdir, "dir")
    assert (type(err), err.errno) == (FileExistsError, errno.EEXIST)
    err = raised(c.mkdir, "no/such")
    assert (type(err), err.filename) == (FileNotFoundError, "no/such")
    err = raised(c.remove, "full")
    assert (type(err), err.errno, err.filename) == (OSError, errno.ENOTEMPTY, "full")
    err = raised(c.truncate, "dir", 0)
    assert (type(err), err.errno) == (IsADirectoryError, errno.EISDIR)
    err = raised(c.truncate, "file", -1)
    assert (type(err), err.errno, err.filename) == (OSError, errno.EINVAL, "file")
    # A rename names both paths, as os.rename's error does.
    err = raised(c.rename, "file", "full/x")
    assert (type(err), err.errno, err.filename, err.filename2) == (FileExistsError, errno.EEXIST, "file", "full/x")
    assert str(err) == "[Errno 17] File exists: 'file' -> 'full/x'"
    err = raised(c.rename, "nope", "x")
    assert (type(err), err.filename, err.filename2) == (FileNotFoundError, "nope", "x")
    # Outside the root: refused, and nothing is touched.
    err = raised(c.remove, "../outside")
    assert isinstance(err, mmapd.PathEscape) and isinstance(err, PermissionError)
    assert (err.errno, err.filename, err.reason) == (errno.EACCES, "../outside", "PATH_ESCAPE")
    assert "outside the data root" in str(err)
    # Names Python's repr would escape are still the exception's filename.
    for odd in ["it's", "back\\slash", "tab\tname"]:
        err = raised(c.stat, odd)
        assert (type(err), err.filename) == (FileNotFoundError, odd)
    err = raised(c.rename, "it's", "b\\c")
    assert (err.filename, err.filename2) == ("it's", "b\\c")
    # A size is an integer, as os.truncate wants.
    for bad in [5.7, "5"]:
        with pytest.raises(TypeError):
            c.truncate("file", bad)  # type: ignore[arg-type]
    assert (root / "file").read_bytes() == b"data" and (root / "full/x").exists()


def test_listdir_follows_every_page(tmp_path: pathlib.Path) -> None:
    srv = Server(tmp_path, ["--max-page-size", "2"])
    try:
        names = [f"f{i}" for i in range(5)]
        for name in names:
            (tmp_path / name).write_bytes(b"")
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub/z").write_bytes(b"")
        with srv.connect() as c:
            assert paths(c.listdir()) == names + ["sub"]
            assert paths(c.listdir(recursive=True)) == names + ["sub", "sub/z"]
    finally:
        srv.stop()


def test_a_file_a_live_mapping_uses_is_mapping_busy(fresh) -> None:  # type: ignore[no-untyped-def]
    c, root = fresh
    (root / "used.bin").write_bytes(b"x" * 100)
    m = c.open("used.bin", name="holder")
    assert c.stat("used.bin").mapped is True
    for call, args in [(c.remove, ("used.bin",)), (c.rename, ("used.bin", "moved.bin")), (c.truncate, ("used.bin", 10))]:
        with pytest.raises(mmapd.MappingBusy) as info:
            call(*args)
        err = info.value
        assert isinstance(err, OSError) and err.errno == errno.EBUSY and err.filename == "used.bin"
        assert (err.reason, err.metadata["name"]) == ("MAPPING_BUSY", "holder")
        assert err.strerror == "Device or resource busy" and 'mapping "holder"' in str(err)
    assert (root / "used.bin").read_bytes() == b"x" * 100, "nothing changed"
    assert c.truncate("used.bin", 200).size == 200, "growing is fine"
    m.close()
    assert c.remove("used.bin") == 1 and not (root / "used.bin").exists()


def test_a_read_identity_lists_but_changes_nothing(tmp_path: pathlib.Path) -> None:
    digest = hashlib.sha256(b"ro-token").hexdigest()
    access = tmp_path / "access.toml"
    access.write_text(f'[[identity]]\nname = "ro"\ntoken_sha256 = "{digest}"\nrole = "read"\npaths = [""]\n')
    root = tmp_path / "root"
    root.mkdir()
    (root / "f").write_bytes(b"keep")
    srv = Server(root, ["--access-file", str(access)])
    try:
        with srv.connect(token="ro-token") as ro:
            assert paths(ro.listdir()) == ["f"] and ro.stat("f").size == 4
            for call, args in [(ro.remove, ("f",)), (ro.mkdir, ("d",)), (ro.truncate, ("f", 0))]:
                with pytest.raises(mmapd.AccessDenied):
                    call(*args)
        assert (root / "f").read_bytes() == b"keep" and not (root / "d").exists()
    finally:
        srv.stop()
