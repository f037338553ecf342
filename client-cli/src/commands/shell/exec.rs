//! Shell commands: the table of commands with their usage and help, and the
//! execution of one line against the handle. Results print the way Python
//! shows them: integers, and `bytes` as `b'...'`.

use mmapd::{RemoteMmap, Whence};

use super::parse::{Args, ParseResult};
use crate::{
    cli::parse_advice,
    commands::admin::access_name,
    error::{CliError, Result},
    output::{align, bytes_repr},
};

/// Name, usage and one-line help of every shell command.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    (
        "read",
        "read [N]",
        "read N bytes (default: to the end) from the position",
    ),
    ("read_byte", "read_byte", "read one byte, as a number"),
    (
        "readline",
        "readline",
        "read up to and including the next newline",
    ),
    (
        "write",
        "write DATA",
        "write DATA at the position; prints the bytes written",
    ),
    (
        "write_byte",
        "write_byte N",
        "write the byte N (0-255) at the position",
    ),
    (
        "seek",
        "seek POS [WHENCE]",
        "move the position; WHENCE is set/0 (default), cur/1 or end/2",
    ),
    ("tell", "tell", "print the position"),
    (
        "find",
        "find SUB [START [END]]",
        "lowest index of SUB, or -1",
    ),
    (
        "rfind",
        "rfind SUB [START [END]]",
        "highest index of SUB, or -1",
    ),
    (
        "flush",
        "flush [OFFSET [SIZE]]",
        "write changes to disk (msync)",
    ),
    (
        "move",
        "move DEST SRC COUNT",
        "copy COUNT bytes from SRC to DEST",
    ),
    (
        "resize",
        "resize N",
        "change the length of the mapping and its file",
    ),
    (
        "madvise",
        "madvise ADVICE [START [LENGTH]]",
        "advise the kernel: willneed, dontneed, sequential, ...",
    ),
    ("size", "size", "size of the underlying file"),
    ("len", "len", "length of the mapping"),
    (
        "get",
        "get I",
        "the byte at index I (negative counts from the end): m[I]",
    ),
    (
        "slice",
        "slice START STOP [STEP]",
        "the bytes m[START:STOP:STEP]; None (or _) leaves a bound out",
    ),
    ("set", "set I V", "set the byte at index I to V: m[I] = V"),
    (
        "setslice",
        "setslice START STOP DATA",
        "m[START:STOP] = DATA (DATA must be as long as the slice)",
    ),
    (
        "stat",
        "stat",
        "length, size, position, access, name, path and offset",
    ),
    (
        "help",
        "help [COMMAND]",
        "list the commands, or explain one",
    ),
    (
        "quit",
        "quit",
        "close the mapping and leave (also: exit, Ctrl-D)",
    ),
];

/// How DATA, SUB and quoting work, for `help`.
const SYNTAX: &str = "\
DATA is the rest of the line as plain text, or one quoted literal with Python
escapes: 'two  spaces', \"line\\n\", b'\\x00\\xff'. SUB (for find/rfind) is one
word or one quoted literal. Numbers may be negative or 0x hex.";

/// What the shell does after a line.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Print this result.
    Print(String),
    /// Nothing to print (the method returns None).
    Quiet,
    /// Leave the shell.
    Quit,
}

/// The usage line of `command`.
fn usage(command: &str) -> &'static str {
    COMMANDS
        .iter()
        .find(|(name, _, _)| *name == command)
        .map_or("help", |(_, usage, _)| usage)
}

/// The `help` text: every command, or one.
fn help(topic: Option<&[u8]>) -> ParseResult<String> {
    let Some(topic) = topic else {
        let rows: Vec<Vec<String>> = COMMANDS
            .iter()
            .map(|(_, usage, about)| vec![(*usage).to_owned(), (*about).to_owned()])
            .collect();
        return Ok(format!("{}\n{SYNTAX}", align(&rows)));
    };
    let topic = String::from_utf8_lossy(topic);
    COMMANDS
        .iter()
        .find(|(name, _, _)| *name == topic)
        .map(|(_, usage, about)| format!("{usage}\n    {about}"))
        .ok_or_else(|| format!("no command {topic:?}; type help for the list"))
}

/// Runs one line. Blank lines and `#` comments do nothing.
pub async fn execute(map: &mut RemoteMmap, line: &str) -> Result<Step> {
    let (command, mut args) = Args::new(line);
    if command.is_empty() || command.starts_with('#') {
        return Ok(Step::Quiet);
    }
    let command = command.to_ascii_lowercase();
    let parsed = parse(&command, &mut args).and_then(|call| args.end().map(|()| call));
    match parsed {
        Ok(call) => call.run(map).await,
        Err(message) => Err(CliError::Usage(match command.as_str() {
            "help" => message,
            _ if COMMANDS.iter().any(|(name, _, _)| *name == command) => {
                format!("{message}; usage: {}", usage(&command))
            }
            _ => message,
        })),
    }
}

/// One parsed command line.
#[derive(Debug)]
enum Call {
    Read(Option<i64>),
    ReadByte,
    ReadLine,
    Write(Vec<u8>),
    WriteByte(i64),
    Seek(i64, Whence),
    Tell,
    Find {
        sub: Vec<u8>,
        start: Option<i64>,
        end: Option<i64>,
        reverse: bool,
    },
    Flush(Option<i64>, Option<i64>),
    Move(i64, i64, i64),
    Resize(i64),
    Madvise(mmapd::Advice, Option<i64>, Option<i64>),
    Size,
    Len,
    Get(i64),
    Slice(Option<i64>, Option<i64>, Option<i64>),
    Set(i64, i64),
    SetSlice(Option<i64>, Option<i64>, Vec<u8>),
    Stat,
    Help(String),
    Quit,
}

fn parse(command: &str, args: &mut Args<'_>) -> ParseResult<Call> {
    Ok(match command {
        "read" => Call::Read(args.int("N")?),
        "read_byte" => Call::ReadByte,
        "readline" => Call::ReadLine,
        "write" => Call::Write(args.data()?),
        "write_byte" => Call::WriteByte(args.required_int("N")?),
        "seek" => {
            let pos = args.required_int("POS")?;
            let whence = match args.word()?.as_deref() {
                None | Some(b"0" | b"set" | b"SEEK_SET") => Whence::Set,
                Some(b"1" | b"cur" | b"SEEK_CUR") => Whence::Cur,
                Some(b"2" | b"end" | b"SEEK_END") => Whence::End,
                Some(other) => {
                    return Err(format!(
                        "WHENCE must be set, cur or end (0, 1 or 2), not {:?}",
                        String::from_utf8_lossy(other)
                    ));
                }
            };
            Call::Seek(pos, whence)
        }
        "tell" => Call::Tell,
        "find" | "rfind" => Call::Find {
            sub: args.required_word("SUB")?,
            start: args.int("START")?,
            end: args.int("END")?,
            reverse: command == "rfind",
        },
        "flush" => Call::Flush(args.int("OFFSET")?, args.int("SIZE")?),
        "move" => Call::Move(
            args.required_int("DEST")?,
            args.required_int("SRC")?,
            args.required_int("COUNT")?,
        ),
        "resize" => Call::Resize(args.required_int("N")?),
        "madvise" => {
            let advice = args.required_word("ADVICE")?;
            let advice = parse_advice(&String::from_utf8_lossy(&advice))?;
            Call::Madvise(advice, args.int("START")?, args.int("LENGTH")?)
        }
        "size" => Call::Size,
        "len" => Call::Len,
        "get" => Call::Get(args.required_int("I")?),
        "slice" => {
            let start = args.bound("START")?;
            let stop = args.bound("STOP")?;
            let step = match args.word()? {
                None => None,
                Some(word) if word == b"None" || word == b"_" => None,
                Some(word) => Some(super::parse::parse_int(&word, "STEP")?),
            };
            Call::Slice(start, stop, step)
        }
        "set" => Call::Set(args.required_int("I")?, args.required_int("V")?),
        "setslice" => {
            let start = args.bound("START")?;
            let stop = args.bound("STOP")?;
            Call::SetSlice(start, stop, args.data()?)
        }
        "stat" => Call::Stat,
        "help" | "?" => Call::Help(help(args.word()?.as_deref())?),
        "quit" | "exit" => Call::Quit,
        other => return Err(format!("unknown command {other:?}; type help for the list")),
    })
}

impl Call {
    async fn run(self, map: &mut RemoteMmap) -> Result<Step> {
        let print = |value: String| Ok(Step::Print(value));
        match self {
            Call::Read(n) => print(bytes_repr(&map.read(n).await?)),
            Call::ReadByte => print(map.read_byte().await?.to_string()),
            Call::ReadLine => print(bytes_repr(&map.readline().await?)),
            Call::Write(data) => print(map.write(&data).await?.to_string()),
            Call::WriteByte(value) => quiet(map.write_byte(value).await?),
            Call::Seek(pos, whence) => print(map.seek(pos, whence).await?.to_string()),
            Call::Tell => print(map.tell().await?.to_string()),
            Call::Find {
                sub,
                start,
                end,
                reverse: false,
            } => print(map.find(&sub, start, end).await?.to_string()),
            Call::Find {
                sub,
                start,
                end,
                reverse: true,
            } => print(map.rfind(&sub, start, end).await?.to_string()),
            Call::Flush(offset, size) => quiet(map.flush(offset, size).await?),
            Call::Move(dest, src, count) => quiet(map.move_(dest, src, count).await?),
            Call::Resize(n) => quiet(map.resize(n).await.map(drop)?),
            Call::Madvise(advice, start, length) => {
                quiet(map.madvise(advice, start, length).await?)
            }
            Call::Size => print(map.size().await?.to_string()),
            Call::Len => print(map.len().await?.to_string()),
            Call::Get(index) => print(map.get(index).await?.to_string()),
            Call::Slice(start, stop, step) => {
                print(bytes_repr(&map.get_slice(start, stop, step).await?))
            }
            Call::Set(index, value) => quiet(map.set(index, value).await?),
            Call::SetSlice(start, stop, data) => {
                quiet(map.set_slice(start, stop, None, &data).await?)
            }
            Call::Stat => {
                let stat = map.stat().await?;
                let rows = [
                    ("length", stat.length.to_string()),
                    ("size", stat.size.to_string()),
                    ("position", stat.position.to_string()),
                    ("access", access_name(stat.access()).to_owned()),
                    ("name", stat.name.clone()),
                    ("path", display_path(&stat.path)),
                    ("offset", stat.offset.to_string()),
                ];
                let rows: Vec<Vec<String>> = rows
                    .into_iter()
                    .map(|(key, value)| vec![key.to_owned(), value])
                    .collect();
                print(align(&rows).trim_end().to_owned())
            }
            Call::Help(text) => print(text.trim_end().to_owned()),
            Call::Quit => Ok(Step::Quit),
        }
    }
}

/// The result of a method that returns None.
fn quiet((): ()) -> Result<Step> {
    Ok(Step::Quiet)
}

/// A mapping's path, or `(anonymous)`.
fn display_path(path: &str) -> String {
    if path.is_empty() {
        "(anonymous)".to_owned()
    } else {
        path.to_owned()
    }
}
