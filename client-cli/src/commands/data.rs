//! One-shot data commands. Each opens a session, maps its target (read-only
//! unless it changes data), acts, and closes the handle and the session
//! whatever happened. Transfers stream, one chunk in memory at a time.

use std::{
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
};

use futures::StreamExt;
use indicatif::ProgressBar;
use mmapd::{Access, RemoteMmap};
use serde::Serialize;
use tonic::Code;

use super::{Ctx, map_options};
use crate::{
    cli::{
        CatArgs, FindArgs, FlushArgs, GetArgs, MadviseArgs, MoveArgs, PutArgs, ReadArgs,
        ResizeArgs, Target, TargetArgs, WriteArgs,
    },
    error::{CliError, Result},
    output::{bytes, hexdump, human_bytes, is_printable_text, stdout_write},
    progress,
};

/// Bytes per `ReadStream` chunk for `cat` and `read`.
const CHUNK: u32 = 1024 * 1024;

/// Opens `target` with `access`, runs `action` on the handle, then closes
/// the handle and the session.
async fn with_map<T>(
    ctx: &Ctx,
    command: &str,
    target: &Target,
    access: Access,
    action: impl AsyncFnOnce(&mut RemoteMmap) -> Result<T>,
) -> Result<T> {
    let mut mapped = ctx.open(command, map_options(target, access)).await?;
    let result = action(&mut mapped.map).await;
    mapped.finish(result).await
}

/// How messages name a target: its path, or `mapping NAME`.
fn describe(target: &Target) -> String {
    match (&target.path, &target.name) {
        (Some(path), _) => path.clone(),
        (None, Some(name)) => format!("mapping {name}"),
        (None, None) => "(nothing)".to_owned(),
    }
}

/// A progress bar cleared however the transfer ends, so that an error
/// reported after it starts on a clean line.
struct ClearOnDrop(ProgressBar);

impl std::ops::Deref for ClearOnDrop {
    type Target = ProgressBar;

    fn deref(&self) -> &ProgressBar {
        &self.0
    }
}

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Whether stdout is redirected to a regular file (`cat x > file`), the
/// one case where `cat` shows a progress bar.
fn stdout_is_file() -> bool {
    let Ok(fd) = std::os::fd::AsFd::as_fd(&std::io::stdout()).try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|meta| meta.is_file())
}

/// `cat`: streams the bytes to stdout.
pub async fn cat(ctx: &Ctx, args: CatArgs) -> Result<()> {
    with_map(ctx, "cat", &args.target, Access::Read, async |map| {
        let bar = ClearOnDrop(if stdout_is_file() {
            let total = match args.length {
                Some(n) => n,
                None => map.len().await?.saturating_sub(args.offset),
            };
            progress::transfer("cat", total, true)
        } else {
            progress::transfer("cat", 0, false)
        });
        let mut chunks = map
            .read_stream(Some(args.offset), args.length, CHUNK)
            .await?;
        let mut stdout = std::io::stdout();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            stdout
                .write_all(&chunk)
                .map_err(|err| CliError::local("cannot write to stdout", err))?;
            bar.inc(chunk.len() as u64);
        }
        stdout
            .flush()
            .map_err(|err| CliError::local("cannot write to stdout", err))?;
        drop(bar);
        Ok(())
    })
    .await
}

/// `get` and `put` as JSON.
#[derive(Debug, Serialize)]
struct Transfer {
    path: Option<String>,
    name: Option<String>,
    local: PathBuf,
    bytes: u64,
}

impl Transfer {
    fn new(target: &Target, local: &Path, bytes: u64) -> Self {
        Transfer {
            path: target.path.clone(),
            name: target.name.clone(),
            local: local.to_owned(),
            bytes,
        }
    }
}

/// `get`: streams the mapping into a local file.
pub async fn get(ctx: &Ctx, args: GetArgs) -> Result<()> {
    let local = &args.local;
    let bytes = with_map(ctx, "get", &args.target, Access::Read, async |map| {
        let total = map.len().await?;
        // Created only once the remote side is known to exist.
        let file = tokio::fs::File::create(local)
            .await
            .map_err(|err| CliError::local(format!("cannot create {}", local.display()), err))?;
        let bar = ClearOnDrop(progress::transfer("get", total, true));
        let mut writer = bar.wrap_async_write(file);
        let bytes = map.download(Some(0), None, &mut writer).await?;
        drop(bar);
        Ok(bytes)
    })
    .await?;
    let result = Transfer::new(&args.target, local, bytes);
    ctx.out.result(&result, || {
        format!(
            "downloaded {} to {} ({})",
            describe(&args.target),
            local.display(),
            human_bytes(bytes)
        )
    })
}

/// `put`: streams a local file into the remote file, creating it with
/// `--create` and resizing it to the local file's size.
pub async fn put(ctx: &Ctx, args: PutArgs) -> Result<()> {
    let local = &args.local;
    let cannot_read = |err| CliError::local(format!("cannot read {}", local.display()), err);
    let file = tokio::fs::File::open(local).await.map_err(cannot_read)?;
    let meta = file.metadata().await.map_err(cannot_read)?;
    // A pipe or device says 0 bytes whatever it holds: taking that for an
    // empty file would cut the remote file to nothing.
    if !meta.is_file() {
        return Err(CliError::Failed(format!(
            "cannot put {}: it is not a regular file, so its size is not known before \
             reading it (save it to a file first)",
            local.display()
        )));
    }
    let len = meta.len();
    if len == 0 {
        return put_empty(ctx, &args).await;
    }
    let signed = i64::try_from(len)
        .map_err(|_| CliError::Failed(format!("{} is too large", local.display())))?;
    let options = map_options(&args.target, Access::Write);
    // Map exactly the local size (creating the file if asked); an existing
    // smaller file, or a live mapping of another length, is mapped whole
    // instead and resized below.
    let mut mapped = match ctx
        .open("put", options.clone().length(signed).create(args.create))
        .await
    {
        Ok(mapped) => mapped,
        Err(CliError::Mmapd(err))
            if err.reason() == Some("VALUE_ERROR") || err.code() == Some(Code::AlreadyExists) =>
        {
            ctx.open("put", options).await?
        }
        Err(err) => return Err(err),
    };
    let result = async {
        let map = &mut mapped.map;
        if map.size().await? != len || map.len().await? != len {
            map.resize(signed).await?;
        }
        let bar = ClearOnDrop(progress::transfer("put", len, true));
        let mut reader = bar.wrap_async_read(file);
        let bytes = map.upload(Some(0), &mut reader).await?;
        drop(bar);
        Ok(bytes)
    }
    .await;
    let bytes = mapped.finish(result).await?;
    let result = Transfer::new(&args.target, local, bytes);
    ctx.out.result(&result, || {
        format!(
            "uploaded {} to {} ({})",
            local.display(),
            describe(&args.target),
            human_bytes(bytes)
        )
    })
}

/// `put` of an empty local file. mmap cannot map 0 bytes, so the remote
/// file is made or cut to 0 bytes with the `Truncate` call instead (which a
/// live mapping of the file refuses as MAPPING_BUSY).
async fn put_empty(ctx: &Ctx, args: &PutArgs) -> Result<()> {
    let Some(path) = &args.target.path else {
        return Err(CliError::Failed(format!(
            "cannot put {} into mapping {}: it is empty, and a mapping cannot shrink to \
             0 bytes (give a PATH to make an empty file)",
            args.local.display(),
            args.target.name.as_deref().unwrap_or_default()
        )));
    };
    let entry = ctx.connect().await?.truncate(path, 0, args.create).await?;
    let result = Transfer::new(&args.target, &args.local, entry.size);
    ctx.out.result(&result, || {
        format!(
            "uploaded {} to {} ({})",
            args.local.display(),
            describe(&args.target),
            human_bytes(entry.size)
        )
    })
}

/// `read` as JSON.
#[derive(Debug, Serialize)]
struct ReadResult {
    offset: u64,
    length: usize,
    /// The bytes as lowercase hex.
    hex: String,
    /// The bytes as text, when they are UTF-8.
    text: Option<String>,
}

/// `read`: prints a range as text, raw bytes or a hex dump.
pub async fn read(ctx: &Ctx, args: ReadArgs) -> Result<()> {
    let data = with_map(ctx, "read", &args.target, Access::Read, async |map| {
        let mut chunks = map
            .read_stream(Some(args.offset), args.length, CHUNK)
            .await?;
        let mut data = Vec::new();
        while let Some(chunk) = chunks.next().await {
            data.extend_from_slice(&chunk?);
        }
        Ok(data)
    })
    .await?;
    if ctx.out.json() {
        let result = ReadResult {
            offset: args.offset,
            length: data.len(),
            hex: hex::encode(&data),
            text: String::from_utf8(data).ok(),
        };
        return ctx.out.result(&result, String::new);
    }
    let terminal = std::io::stdout().is_terminal();
    if args.hex || (!args.raw && terminal && !is_printable_text(&data)) {
        return stdout_write(hexdump(&data, args.offset).as_bytes());
    }
    stdout_write(&data)?;
    if terminal && !args.raw && !data.is_empty() && !data.ends_with(b"\n") {
        stdout_write(b"\n")?;
    }
    Ok(())
}

/// Where `write` gets its bytes.
enum Source {
    Bytes(Vec<u8>),
    File(PathBuf),
    Stdin,
}

/// Picks the one source given. `write --name N -` parses `-` as PATH
/// (clap fills positionals in order), so it is moved back here.
fn write_source(args: &mut WriteArgs) -> Result<Source> {
    if args.target.name.is_some() && args.target.path.as_deref() == Some("-") {
        args.target.path = None;
        args.stdin = Some("-".to_owned());
    }
    let mut sources = Vec::new();
    if let Some(text) = args.data.take() {
        sources.push(Source::Bytes(text.into_bytes()));
    }
    if let Some(digits) = args.hex.take() {
        sources.push(Source::Bytes(parse_hex(&digits)?));
    }
    match args.file.take() {
        Some(path) if path.as_os_str() == "-" => sources.push(Source::Stdin),
        Some(path) => sources.push(Source::File(path)),
        None => {}
    }
    if args.stdin.is_some() {
        sources.push(Source::Stdin);
    }
    match (sources.pop(), sources.is_empty()) {
        (Some(source), true) => Ok(source),
        (Some(_), false) | (None, _) => Err(CliError::Usage(
            "write needs exactly one of --data TEXT, --hex HEX, --file FILE or - (stdin)".into(),
        )),
    }
}

/// Hex digits to bytes; whitespace and a leading `0x` are allowed.
pub fn parse_hex(digits: &str) -> Result<Vec<u8>> {
    let digits: String = digits.split_whitespace().collect();
    let digits = digits.strip_prefix("0x").unwrap_or(&digits);
    hex::decode(digits).map_err(|err| CliError::Usage(format!("invalid hex {digits:?}: {err}")))
}

/// `write` as JSON.
#[derive(Debug, Serialize)]
struct WriteResult {
    offset: u64,
    written: u64,
}

/// `write`: writes bytes at `--offset`, streaming files and stdin.
pub async fn write(ctx: &Ctx, mut args: WriteArgs) -> Result<()> {
    let source = write_source(&mut args)?;
    let offset = args.offset;
    let written = with_map(ctx, "write", &args.target, Access::Write, async |map| {
        Ok(match source {
            Source::Bytes(bytes) => map.upload(Some(offset), &mut bytes.as_slice()).await?,
            Source::Stdin => map.upload(Some(offset), &mut tokio::io::stdin()).await?,
            Source::File(path) => {
                let mut file = tokio::fs::File::open(&path).await.map_err(|err| {
                    CliError::local(format!("cannot read {}", path.display()), err)
                })?;
                map.upload(Some(offset), &mut file).await?
            }
        })
    })
    .await?;
    let result = WriteResult { offset, written };
    ctx.out.result(&result, || {
        format!("wrote {} at offset {offset}", bytes(written))
    })
}

/// `find` and `rfind` as JSON.
#[derive(Debug, Serialize)]
struct FindResult {
    /// Index of the match, or -1.
    index: i64,
}

/// `find` (or `rfind` when `reverse`): prints the index of the pattern.
pub async fn find(ctx: &Ctx, args: FindArgs, reverse: bool) -> Result<()> {
    let pattern = if args.hex {
        parse_hex(&args.pattern)?
    } else {
        args.pattern.clone().into_bytes()
    };
    let command = if reverse { "rfind" } else { "find" };
    let index = with_map(ctx, command, &args.target, Access::Read, async |map| {
        Ok(if reverse {
            map.rfind(&pattern, args.start, args.end).await?
        } else {
            map.find(&pattern, args.start, args.end).await?
        })
    })
    .await?;
    ctx.out.result(&FindResult { index }, || index.to_string())
}

/// `size` as JSON.
#[derive(Debug, Serialize)]
struct SizeResult {
    size: u64,
}

/// `size`: the file's size.
pub async fn size(ctx: &Ctx, args: TargetArgs) -> Result<()> {
    let size = with_map(ctx, "size", &args.target, Access::Read, async |map| {
        Ok(map.size().await?)
    })
    .await?;
    ctx.out.result(&SizeResult { size }, || size.to_string())
}

/// `len` and `resize` as JSON.
#[derive(Debug, Serialize)]
struct LenResult {
    length: u64,
}

/// `len`: the mapping's length.
pub async fn len(ctx: &Ctx, args: TargetArgs) -> Result<()> {
    let length = with_map(ctx, "len", &args.target, Access::Read, async |map| {
        Ok(map.len().await?)
    })
    .await?;
    ctx.out.result(&LenResult { length }, || length.to_string())
}

/// `resize`: changes the length of the mapping and the file.
pub async fn resize(ctx: &Ctx, args: ResizeArgs) -> Result<()> {
    let length = with_map(ctx, "resize", &args.target, Access::Write, async |map| {
        Ok(map.resize(args.new_size).await?)
    })
    .await?;
    ctx.out.result(&LenResult { length }, || {
        format!("resized {} to {}", describe(&args.target), bytes(length))
    })
}

/// `flush` as JSON.
#[derive(Debug, Serialize)]
struct FlushResult {
    flushed: bool,
}

/// `flush`: msync, so the range is on disk when this returns.
pub async fn flush(ctx: &Ctx, args: FlushArgs) -> Result<()> {
    with_map(ctx, "flush", &args.target, Access::Write, async |map| {
        // Python's flush(offset) alone means size = len(m), which is out of
        // range for any offset but 0; the help promises "to the end".
        let size = match (args.offset, args.size) {
            (Some(offset), None) => {
                Some(i64::try_from(map.len().await?).unwrap_or(i64::MAX) - offset)
            }
            (_, size) => size,
        };
        Ok(map.flush(args.offset, size).await?)
    })
    .await?;
    ctx.out.result(&FlushResult { flushed: true }, || {
        format!("flushed {}", describe(&args.target))
    })
}

/// `move` as JSON.
#[derive(Debug, Serialize)]
struct MoveResult {
    dest: i64,
    src: i64,
    count: i64,
}

/// `move`: memmove within the mapping.
pub async fn move_(ctx: &Ctx, args: MoveArgs) -> Result<()> {
    let (target, [dest, src, count]) = args.resolve().map_err(CliError::Usage)?;
    with_map(ctx, "move", &target, Access::Write, async |map| {
        Ok(map.move_(dest, src, count).await?)
    })
    .await?;
    ctx.out.result(&MoveResult { dest, src, count }, || {
        format!("moved {} from {src} to {dest}", bytes(count))
    })
}

/// `madvise` as JSON.
#[derive(Debug, Serialize)]
struct MadviseResult {
    /// The advice's name, e.g. `MADV_WILLNEED`.
    advice: &'static str,
    /// Its Linux number.
    value: i32,
}

/// `madvise`: passes advice about a range to the kernel.
pub async fn madvise(ctx: &Ctx, args: MadviseArgs) -> Result<()> {
    let advice = args.advice;
    with_map(ctx, "madvise", &args.target, Access::Read, async |map| {
        Ok(map.madvise(advice, args.start, args.length).await?)
    })
    .await?;
    let result = MadviseResult {
        advice: advice.as_str_name(),
        value: advice as i32,
    };
    ctx.out
        .result(&result, || format!("advised {}", advice.as_str_name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_input() {
        assert_eq!(
            parse_hex("de ad BE ef").unwrap(),
            vec![0xde, 0xad, 0xbe, 0xef]
        );
        assert_eq!(parse_hex("0x00ff").unwrap(), vec![0, 255]);
        assert!(matches!(parse_hex("abc"), Err(CliError::Usage(_))));
    }
}
