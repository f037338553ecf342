"""The Files service's oracle: what Python's `os` does with each call.

Run by tests/differential_files.rs with a folder to work in. Reads one JSON
request a line and answers one JSON line: {"ok": value} or
{"err": exception class, "errno": n, "message": str(exception)}.

Each call is the `os` function the Files service documents:
- mkdir: os.mkdir, or os.makedirs(exist_ok=True) with parents; the value
  is whether a folder was made (makedirs("link/.") of a dangling link
  returns having made nothing; mmapd says FileExistsError);
- remove: os.remove for a file or symlink, os.rmdir for a folder, or
  shutil.rmtree with recursive; the value is how many entries went
  (for `x/.` and `link/`, rmtree would empty the folder before failing;
  mmapd removes nothing);
- rename: os.replace with replace, else the kernel's renameat2 with
  RENAME_NOREPLACE (what os.rename would be if it refused to overwrite;
  Python has no binding), its error raised as Python raises OSErrors;
- truncate: os.truncate, or with create an open(O_CREAT) (making the
  missing folders) and ftruncate; the value is the size after. mmapd
  creates no file through a dangling symlink;
- stat: os.stat; the value is [kind, size] (size of files only);
- list: sorted os.listdir;
- map: open(path, "r+b") and mmap.mmap of it whole, as Map with access
  WRITE does; the value is the length.
"""

import ctypes
import errno
import json
import mmap
import os
import shutil
import stat
import sys

LIBC = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_NOREPLACE = 1


def dot_spelled(path):
    """Whether the last name is `.` (slashes after it change nothing)."""
    name_end = path.rstrip("/")
    return name_end == "." or name_end.endswith("/.")


def kind(mode):
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def mkdir(path, parents):
    if not parents:
        os.mkdir(path)
        return True
    existed = os.path.isdir(path)
    head, tail = os.path.split(path.rstrip("/") or path)
    if tail == "." and os.path.islink(head) and not os.path.exists(head):
        # makedirs("link/.") with a dangling link swallows the mkdir's
        # FileExistsError and returns, having made nothing; mmapd says it.
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), head)
    os.makedirs(path, exist_ok=True)
    return not existed


def remove(path, recursive):
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        os.remove(path)
        return 1
    if not recursive:
        os.rmdir(path)
        return 1
    if dot_spelled(path):
        # rmtree empties the folder and then fails on rmdir("x/."); mmapd
        # refuses up front and removes nothing.
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
    if path.endswith("/") and os.path.islink(path.rstrip("/")):
        # rmtree("link/") empties the folder the link leads to and then
        # fails on rmdir("link/"); mmapd refuses up front, as for `x/.`.
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
    count = 1
    for _, dirs, files in os.walk(path):
        count += len(dirs) + len(files)
    shutil.rmtree(path)
    return count


def rename(src, dst, replace):
    if replace:
        os.replace(src, dst)
        return None
    done = LIBC.renameat2(
        AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), RENAME_NOREPLACE
    )
    if done != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), src, None, dst)
    return None


def truncate(path, size, create):
    if create:
        if os.path.islink(path):
            try:
                os.stat(path)
            except FileNotFoundError:
                # open(O_CREAT) would make the file a dangling symlink
                # points at; mmapd makes files only under the name given.
                raise FileNotFoundError(
                    errno.ENOENT, os.strerror(errno.ENOENT), path
                ) from None
            except OSError:
                pass
        flags = os.O_WRONLY | os.O_CREAT
        try:
            fd = os.open(path, flags, 0o644)
        except FileNotFoundError:
            # Missing folders are made, as Map's create makes them; a
            # file on the way stays open()'s NotADirectoryError. A name
            # spelled as a folder (`x/`, `x/.`) then fails as open() fails
            # on it (mmapd says so without making the folders first).
            if path.endswith("/") or dot_spelled(path):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(path, flags, 0o644)
        try:
            os.ftruncate(fd, size)
            return os.fstat(fd).st_size
        finally:
            os.close(fd)
    os.truncate(path, size)
    return os.stat(path).st_size


def stat_path(path):
    st = os.stat(path)
    k = kind(st.st_mode)
    return [k, st.st_size if k == "file" else 0]


def open_map(path):
    with open(path, "r+b") as f:
        with mmap.mmap(f.fileno(), 0) as m:
            return len(m)


def call(req):
    op, path = req["op"], req.get("path")
    if op == "map":
        return open_map(path)
    if op == "mkdir":
        return mkdir(path, req["parents"])
    if op == "remove":
        return remove(path, req["recursive"])
    if op == "rename":
        return rename(path, req["to"], req["replace"])
    if op == "truncate":
        return truncate(path, req["size"], req["create"])
    if op == "stat":
        return stat_path(path)
    if op == "list":
        return sorted(os.listdir(path or "."))
    raise ValueError(f"unknown op {op!r}")


def main():
    os.chdir(sys.argv[1])
    print(json.dumps({"python": sys.version.split()[0]}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        try:
            out = {"ok": call(req)}
        except OSError as err:
            out = {"err": type(err).__name__, "errno": err.errno, "message": str(err)}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
