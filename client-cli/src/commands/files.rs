//! File management through the `Files` service, with no session or
//! mapping: `ls`, `stat`, `mkdir`, `rm`, `mv`, `truncate` and `touch`.
//! Entries print as names, as a table (`ls -l`), as `key: value` lines
//! (`stat`), or as one JSON object each.

use std::time::SystemTime;

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
            mtime: entry
                .modified()
                .map(|t| humantime::format_rfc3339_nanos(t).to_string()),
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
    if entry.kind() == FileKind::Dir && !entry.path.is_empty() {
        format!("{}/", entry.path)
    } else if entry.path.is_empty() {
        // The root itself, from `stat ""`.
        "/".to_owned()
    } else {
        entry.path.clone()
    }
}

/// Modification time to the second, UTC, or `-`.
fn mtime_text(entry: &FileEntry) -> String {
    entry.modified().map_or_else(
        || "-".to_owned(),
        |t: SystemTime| humantime::format_rfc3339_seconds(t).to_string(),
    )
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
    let text = if args.long {
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
    };
    stdout_write(text.as_bytes())
}

/// One row of `ls -l`.
fn long_row(entry: &FileEntry) -> Vec<String> {
    let mut path = display_name(entry);
    if !entry.symlink_target.is_empty() {
        path = format!("{path} -> {}", entry.symlink_target);
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
        lines.push(format!("symlink_target: {}", entry.symlink_target));
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
        Ok(entry) if entry.kind() == FileKind::Dir => (false, entry),
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
