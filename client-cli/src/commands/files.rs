//! File management through the `Files` service, with no session or
//! mapping: `ls`, `stat`, `mkdir`, `rm`, `mv`, `truncate` and `touch`.
//! Entries print as names, as a table (`ls -l`), as `key: value` lines
//! (`stat`), or as one JSON object each.

use mmapd::{Client, FileEntry, FileKind};
use serde::Serialize;

use super::Ctx;
use crate::{
    cli::{LsArgs, MkdirArgs, MvArgs, RmArgs, StatArgs, TouchArgs, TruncateArgs},
    error::{CliError, Result},
    output::{align, human_bytes, stdout_write},
};

/// errno of "Not a directory", for an `ls` of a file.
const ENOTDIR: i32 = 20;
/// errno of "No such file or directory", for `touch` of a new file.
const ENOENT: i32 = 2;

/// One entry, as JSON.
#[derive(Debug, Serialize)]
pub struct EntryRow {
    /// Relative to the data root.
    path: String,
    /// `file`, `dir`, `symlink` or `other`.
    kind: &'static str,
    size: u64,
    /// RFC 3339, UTC; `null` if the server sent none.
    mtime: Option<String>,
    mapped: bool,
    /// Permission bits (`st_mode & 0o7777`), as a number.
    mode: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    symlink_target: Option<String>,
}

impl From<&FileEntry> for EntryRow {
    fn from(entry: &FileEntry) -> Self {
        EntryRow {
            path: entry.path.clone(),
            kind: kind_name(entry.kind()),
            size: entry.size,
            mtime: entry.mtime.and_then(|t| rfc3339(t.seconds, t.nanos, true)),
            mapped: entry.mapped,
            mode: entry.mode,
            symlink_target: (!entry.symlink_target.is_empty())
                .then(|| entry.symlink_target.clone()),
        }
    }
}

/// How `ls -o json` and `stat -o json` name a kind.
pub fn kind_name(kind: FileKind) -> &'static str {
    match kind {
        FileKind::File => "file",
        FileKind::Dir => "dir",
        FileKind::Symlink => "symlink",
        // The server never sends Unspecified; it is shown, not hidden.
        FileKind::Other | FileKind::Unspecified => "other",
    }
}

/// The name `ls` prints: the path, with a `/` after a folder.
pub fn display_name(entry: &FileEntry) -> String {
    let path = shown(&entry.path);
    if entry.kind() == FileKind::Dir && !entry.path.is_empty() {
        format!("{path}/")
    } else if entry.path.is_empty() {
        // The root itself, from `stat ""`.
        "/".to_owned()
    } else {
        path
    }
}

/// A name as text output shows it: control characters (a newline, an
/// escape sequence a file name could smuggle onto a terminal) spelled
/// out as Rust escapes, and a backslash doubled so the spelling is not
/// ambiguous. JSON output carries names as they are.
pub fn shown(name: &str) -> String {
    if !name.chars().any(|c| c.is_control() || c == '\\') {
        return name.to_owned();
    }
    name.chars()
        .map(|c| {
            if c.is_control() || c == '\\' {
                c.escape_default().collect()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Modification time to the second, UTC, or `-`.
fn mtime_text(entry: &FileEntry) -> String {
    entry
        .mtime
        .and_then(|t| rfc3339(t.seconds, t.nanos, false))
        .unwrap_or_else(|| "-".to_owned())
}

/// An RFC 3339 UTC time (with nanoseconds if asked), for any instant in
/// years 0 to 9999, before 1970 too (a file may carry any mtime); `None`
/// outside them, where RFC 3339 has no spelling.
fn rfc3339(seconds: i64, nanos: i32, with_nanos: bool) -> Option<String> {
    let nanos = u32::try_from(nanos).ok().filter(|&n| n < 1_000_000_000)?;
    let (days, secs) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days: days since 1970-01-01 to a date.
    let z = days.checked_add(719_468)?;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return None;
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let fraction = if with_nanos {
        format!(".{nanos:09}")
    } else {
        String::new()
    };
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}{fraction}Z"
    ))
}

/// Whether `err` is the server's answer that a path is not a folder.
fn is_not_a_directory(err: &mmapd::Error) -> bool {
    exception_is(err, "NotADirectoryError", ENOTDIR)
}

/// Whether `err` is the server's answer that a path does not exist.
fn is_not_found(err: &mmapd::Error) -> bool {
    exception_is(err, "FileNotFoundError", ENOENT)
}

/// An `OS_ERROR` with this Python exception (or, failing that, errno).
fn exception_is(err: &mmapd::Error, exception: &str, errno: i32) -> bool {
    if err.reason() != Some("OS_ERROR") {
        return false;
    }
    match err.metadata().and_then(|m| m.get("exception")) {
        Some(name) => name == exception,
        None => err.errno() == Some(errno),
    }
}

/// The entries `ls PATH` shows: the folder's (or tree's) entries, or, for a
/// file, the file itself, as the Unix `ls` does.
pub async fn list_entries(client: &Client, path: &str, recursive: bool) -> Result<Vec<FileEntry>> {
    match client.list(path, recursive).await {
        Ok(entries) => Ok(entries),
        Err(err) if is_not_a_directory(&err) => match client.stat_path(path).await {
            // A symlink to a file lists as the link, named as given.
            Ok(entry) => Ok(vec![entry]),
            // The path changed in between: the List error is the one asked for.
            Err(_) => Err(err.into()),
        },
        Err(err) => Err(err.into()),
    }
}

/// `ls`: names, a table with `-l`, or JSON lines.
pub async fn ls(ctx: &Ctx, args: LsArgs) -> Result<()> {
    let client = ctx.connect().await?;
    let entries = list_entries(&client, &args.path, args.recursive).await?;
    if ctx.out.json() {
        let rows: Vec<EntryRow> = entries.iter().map(EntryRow::from).collect();
        return ctx.out.table(&rows, &[], |_| Vec::new(), "");
    }
    // An empty folder prints nothing, like ls.
    if entries.is_empty() {
        return Ok(());
    }
    stdout_write(ls_text(&entries, args.long).as_bytes())
}

/// What `ls` prints (CLI and shell): one name a line, or with `long` a
/// table with a header.
pub fn ls_text(entries: &[FileEntry], long: bool) -> String {
    if long {
        let mut rows = vec![
            ["KIND", "MODE", "SIZE", "MTIME", "MAPPED", "PATH"]
                .map(str::to_owned)
                .to_vec(),
        ];
        rows.extend(entries.iter().map(long_row));
        align(&rows)
    } else {
        let mut text: String = entries
            .iter()
            .map(display_name)
            .collect::<Vec<_>>()
            .join("\n");
        text.push('\n');
        text
    }
}

/// One row of `ls -l`.
fn long_row(entry: &FileEntry) -> Vec<String> {
    let mut path = display_name(entry);
    if !entry.symlink_target.is_empty() {
        path = format!("{path} -> {}", shown(&entry.symlink_target));
    }
    vec![
        kind_name(entry.kind()).to_owned(),
        format!("{:04o}", entry.mode),
        entry.size.to_string(),
        mtime_text(entry),
        if entry.mapped { "yes" } else { "no" }.to_owned(),
        path,
    ]
}

/// `key: value` lines describing one entry.
pub fn stat_text(entry: &FileEntry) -> String {
    let mut lines = vec![
        format!("path: {}", display_name(entry)),
        format!("kind: {}", kind_name(entry.kind())),
        format!("size: {}", entry.size),
        format!("mode: {:04o}", entry.mode),
        format!("mtime: {}", mtime_text(entry)),
        format!("mapped: {}", if entry.mapped { "yes" } else { "no" }),
    ];
    if !entry.symlink_target.is_empty() {
        lines.push(format!("symlink_target: {}", shown(&entry.symlink_target)));
    }
    lines.join("\n")
}

/// `stat`: one entry, as `key: value` lines or a JSON object.
pub async fn stat(ctx: &Ctx, args: StatArgs) -> Result<()> {
    let entry = ctx.connect().await?.stat_path(&args.path).await?;
    ctx.out
        .result(&EntryRow::from(&entry), || stat_text(&entry))
}

/// `mkdir` as JSON.
#[derive(Debug, Serialize)]
struct MkdirResult {
    path: String,
    /// False with `-p` when the folder already existed.
    created: bool,
}

/// `mkdir`: makes a folder, with `-p` its parents too.
pub async fn mkdir(ctx: &Ctx, args: MkdirArgs) -> Result<()> {
    let created = ctx
        .connect()
        .await?
        .make_dir(&args.path, args.parents)
        .await?;
    let result = MkdirResult {
        path: args.path,
        created,
    };
    ctx.out.result(&result, || {
        if created {
            format!("made folder {}", result.path)
        } else {
            format!("folder {} already exists", result.path)
        }
    })
}

/// `rm` as JSON.
#[derive(Debug, Serialize)]
struct RmResult {
    path: String,
    /// Entries removed, the path itself included.
    removed: u64,
}

/// `rm`: removes a file, symlink or empty folder; with `-r`, a tree.
pub async fn rm(ctx: &Ctx, args: RmArgs) -> Result<()> {
    let removed = ctx
        .connect()
        .await?
        .remove(&args.path, args.recursive)
        .await?;
    let result = RmResult {
        path: args.path,
        removed,
    };
    ctx.out.result(&result, || {
        let entries = if removed == 1 { "entry" } else { "entries" };
        format!("removed {} ({removed} {entries})", result.path)
    })
}

/// `mv` as JSON.
#[derive(Debug, Serialize)]
struct MvResult {
    from: String,
    to: String,
    /// Whether `--replace` was given (an existing TO was allowed).
    replace: bool,
}

/// `mv`: renames, refusing an existing target unless `--replace`.
pub async fn mv(ctx: &Ctx, args: MvArgs) -> Result<()> {
    ctx.connect()
        .await?
        .rename(&args.from, &args.to, args.replace)
        .await?;
    let result = MvResult {
        from: args.from,
        to: args.to,
        replace: args.replace,
    };
    ctx.out.result(&result, || {
        format!("renamed {} to {}", result.from, result.to)
    })
}

/// `truncate`: sets a file's size; JSON is the file's entry afterwards.
pub async fn truncate(ctx: &Ctx, args: TruncateArgs) -> Result<()> {
    let entry = ctx
        .connect()
        .await?
        .truncate(&args.path, args.size, args.create)
        .await?;
    ctx.out.result(&EntryRow::from(&entry), || {
        format!("truncated {} to {}", args.path, human_bytes(entry.size))
    })
}

/// `touch` as JSON.
#[derive(Debug, Serialize)]
struct TouchResult {
    path: String,
    /// Whether the file was made (false: it existed and is unchanged).
    created: bool,
    size: u64,
}

/// `touch`: makes an empty file if the path is missing. An existing path is
/// left alone (its mtime too: the service has no call that sets times).
pub async fn touch(ctx: &Ctx, args: TouchArgs) -> Result<()> {
    let client = ctx.connect().await?;
    // The stat only words the answer (and spares a folder the call); the
    // Truncate that makes the file leaves one that exists by then as it
    // is, so nothing is ever cut.
    let (created, entry) = match client.stat_path(&args.path).await {
        // A folder, FIFO or device exists as it is; only files are made.
        Ok(entry) if matches!(entry.kind(), FileKind::Dir | FileKind::Other) => (false, entry),
        Ok(_) => (false, client.touch(&args.path).await?),
        Err(err) if is_not_found(&err) => (true, client.touch(&args.path).await?),
        Err(err) => return Err(CliError::from(err)),
    };
    let size = entry.size;
    let result = TouchResult {
        path: args.path,
        created,
        size,
    };
    ctx.out.result(&result, || {
        if created {
            format!("made empty file {}", result.path)
        } else {
            format!(
                "{} exists ({}), left unchanged",
                result.path,
                human_bytes(result.size)
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_before_1970_and_up_to_year_9999() {
        assert_eq!(
            rfc3339(1_700_000_000, 5, true).as_deref(),
            Some("2023-11-14T22:13:20.000000005Z")
        );
        assert_eq!(
            rfc3339(0, 0, false).as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        assert_eq!(
            rfc3339(-1, 0, false).as_deref(),
            Some("1969-12-31T23:59:59Z")
        );
        assert_eq!(
            rfc3339(-315_619_200, 0, false).as_deref(),
            Some("1960-01-01T00:00:00Z")
        );
        assert_eq!(
            rfc3339(951_782_400, 0, false).as_deref(),
            Some("2000-02-29T00:00:00Z")
        );
        assert_eq!(
            rfc3339(253_402_300_799, 0, false).as_deref(),
            Some("9999-12-31T23:59:59Z")
        );
        assert_eq!(rfc3339(253_402_300_800, 0, false), None, "year 10000");
        assert_eq!(rfc3339(i64::MIN, 0, true), None);
        assert_eq!(rfc3339(0, -1, true), None);
    }

    #[test]
    fn control_characters_in_names_are_spelled_out() {
        assert_eq!(shown("plain é name"), "plain é name");
        assert_eq!(shown("new\nline"), "new\\nline");
        assert_eq!(shown("x\u{1b}[31mred"), "x\\u{1b}[31mred");
        assert_eq!(shown("back\\slash"), "back\\\\slash");
    }
}
