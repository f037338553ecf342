//! How a client spelled a path, beyond the name it normalizes to: what a
//! trailing `/` or a last `.` asks of the kernel, and how Python names the
//! path in its errors (as spelled, not normalized). Shared by Map and the
//! Files calls, whose errors must read as `open` and `os` would print them.
#![forbid(unsafe_code)]

use rustix::io::Errno;

use crate::{
    error::{Error, Result},
    paths::{Entry, Kind, os},
};

/// What a path's spelling asks beyond the name it normalizes to, as the
/// kernel reads it for `os` calls: a trailing `/` wants a folder, and a
/// last `.` names a folder by itself, which cannot be removed or renamed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Spelling {
    pub(super) wants_dir: bool,
    pub(super) dot: bool,
}

impl Spelling {
    pub(super) fn of(path: &str) -> Spelling {
        // Slashes after a last `.` change nothing: `a/./` is `a/.`.
        let name_end = path.trim_end_matches('/');
        let dot = name_end == "." || name_end.ends_with("/.");
        Spelling {
            wants_dir: dot || path.ends_with('/'),
            dot,
        }
    }
}

/// Python names a path in its errors as the caller spelled it (`a/b/`,
/// `./a`), not normalized: an error about the normalized `rel` gets the
/// caller's spelling back. Rename errors name both sides.
pub(super) fn as_asked<'a>(rel: &'a str, asked: &'a str) -> impl Fn(Error) -> Error + 'a {
    move |err| respelled(err, |path| (path == rel).then(|| asked.to_owned()))
}

/// An error of `os.makedirs(asked)`, made of the normalized `rel`: it
/// names the folder it failed on as the caller spelled that folder
/// (`./a/b`), as makedirs recurses on the caller's own string; the last
/// folder named with all of the spelling (a trailing `/` too) when `whole`.
pub(super) fn as_makedirs<'a>(
    rel: &'a str,
    asked: &'a str,
    whole: bool,
) -> impl Fn(Error) -> Error + 'a {
    move |err| {
        respelled(err, |path| {
            if whole && path == rel {
                Some(asked.to_owned())
            } else if rel == path || rel.starts_with(&format!("{path}/")) {
                Some(respell(asked, path))
            } else {
                None
            }
        })
    }
}

/// `err` with its path replaced by what `spell` makes of it, if anything.
fn respelled(err: Error, spell: impl Fn(&str) -> Option<String>) -> Error {
    if let Error::Os {
        errno,
        path: Some(path),
    } = &err
        && let Some(spelled) = spell(path)
    {
        return Error::Os {
            errno: *errno,
            path: Some(spelled),
        };
    }
    err
}

/// The start of `asked` that holds as many names as the normalized
/// `prefix` (names are what is left once empty and `.` parts go).
fn respell(asked: &str, prefix: &str) -> String {
    let want = prefix.split('/').filter(|c| !c.is_empty()).count();
    let (mut seen, mut at) = (0, 0);
    for part in asked.split('/') {
        let end = at + part.len();
        if !part.is_empty() && part != "." {
            seen += 1;
            if seen == want {
                return asked[..end].to_owned();
            }
        }
        at = end + 1;
    }
    prefix.to_owned()
}

/// NotADirectoryError unless `entry` is a folder.
pub(super) fn must_be_dir(entry: &Entry, path: &str) -> Result<()> {
    match entry.kind {
        Kind::Dir => Ok(()),
        Kind::File | Kind::Symlink | Kind::Other => Err(os(Errno::NOTDIR, path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(err: Error) -> String {
        let Error::Os { path, .. } = err else {
            panic!("{err:?}")
        };
        path.unwrap()
    }

    #[test]
    fn a_spelling_says_what_the_kernel_reads_in_it() {
        let of = |p| {
            let s = Spelling::of(p);
            (s.wants_dir, s.dot)
        };
        assert_eq!(of("a"), (false, false));
        assert_eq!(of("a/"), (true, false));
        assert_eq!(of("a//"), (true, false));
        assert_eq!(of("a/."), (true, true));
        assert_eq!(of("a/./"), (true, true));
        assert_eq!(of("."), (true, true));
        assert_eq!(of("./a"), (false, false));
        assert_eq!(of("a.b/.c"), (false, false));
    }

    #[test]
    fn errors_get_the_callers_spelling_back() {
        let err = |p: &str| os(Errno::NOENT, p);
        // The path itself, whole; another path is left alone.
        assert_eq!(named(as_asked("a/b", "./a//b/")(err("a/b"))), "./a//b/");
        assert_eq!(named(as_asked("a/b", "./a//b/")(err("a"))), "a");
        // makedirs: a folder on the way as spelled up to it, the last one
        // whole or without its trailing part.
        let asked = "./a//b/./c/";
        assert_eq!(
            named(as_makedirs("a/b/c", asked, true)(err("a/b"))),
            "./a//b"
        );
        assert_eq!(
            named(as_makedirs("a/b/c", asked, true)(err("a/b/c"))),
            asked
        );
        assert_eq!(
            named(as_makedirs("a/b/c", asked, false)(err("a/b/c"))),
            "./a//b/./c"
        );
        assert_eq!(
            named(as_makedirs("a/b/c", asked, true)(err("a/bc"))),
            "a/bc"
        );
        assert_eq!(named(as_makedirs("a/b/c", asked, true)(err("x"))), "x");
    }
}
