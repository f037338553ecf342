//! Shell commands: the help table (usage and one line of help per
//! command), the parsing of a line into the shared [`Op`] vocabulary, and
//! its execution through [`RemoteMmap::apply`]. Results print the way
//! Python shows them: integers, and `bytes` as `b'...'`. `ls` lists the
//! files beneath the data root, beside the mapping.

use mmapd::{Client, Op, RemoteMmap, Value, Whence};

use super::parse::{Args, ParseResult};
use crate::{
    cli::parse_advice,
    commands::{admin::access_name, files},
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
        "ls",
        "ls [-l] [-R] [PATH]",
        "list the files in a folder of the data root (default: the root); \
         -l as a table, -R the whole tree",
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

/// Runs one line on `map` (and, for `ls`, `client`). Blank lines and `#`
/// comments do nothing.
pub async fn execute(map: &mut RemoteMmap, client: &Client, line: &str) -> Result<Step> {
    let (command, mut args) = Args::new(line);
    if command.is_empty() || command.starts_with('#') {
        return Ok(Step::Quiet);
    }
    let command = command.to_ascii_lowercase();
    let parsed = parse(&command, &mut args).and_then(|line| args.end().map(|()| line));
    match parsed {
        Ok(line) => line.run(map, client).await,
        Err(message) => Err(CliError::Usage(match command.as_str() {
            "help" => message,
            _ if COMMANDS.iter().any(|(name, _, _)| *name == command) => {
                format!("{message}; usage: {}", usage(&command))
            }
            _ => message,
        })),
    }
}

/// One parsed command line: an mmap method call, in the vocabulary the
/// server and the client share, or one of the shell's own commands.
#[derive(Debug)]
enum Line {
    Op(Op),
    /// `ls`: the folder to list, relative to the data root.
    Ls {
        path: String,
        long: bool,
        recursive: bool,
    },
    Help(String),
    Quit,
}

fn parse(command: &str, args: &mut Args<'_>) -> ParseResult<Line> {
    let op = match command {
        "read" => Op::Read { n: args.int("N")? },
        "read_byte" => Op::ReadByte,
        "readline" => Op::ReadLine,
        "write" => Op::Write {
            data: args.data()?.into(),
        },
        "write_byte" => Op::WriteByte {
            value: args.required_int("N")?,
        },
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
            Op::Seek {
                pos,
                whence: whence.into(),
            }
        }
        "tell" => Op::Tell,
        "find" | "rfind" => {
            let sub = args.required_word("SUB")?.into();
            let (start, end) = (args.int("START")?, args.int("END")?);
            if command == "rfind" {
                Op::RFind { sub, start, end }
            } else {
                Op::Find { sub, start, end }
            }
        }
        "flush" => Op::Flush {
            offset: args.int("OFFSET")?,
            size: args.int("SIZE")?,
        },
        "move" => Op::Move {
            dest: args.required_int("DEST")?,
            src: args.required_int("SRC")?,
            count: args.required_int("COUNT")?,
        },
        "resize" => Op::Resize {
            new_size: args.required_int("N")?,
        },
        "madvise" => {
            let advice = args.required_word("ADVICE")?;
            let advice = parse_advice(&String::from_utf8_lossy(&advice))?;
            Op::Madvise {
                option: advice.into(),
                start: args.int("START")?,
                length: args.int("LENGTH")?,
            }
        }
        "size" => Op::Size,
        "len" => Op::Len,
        "get" => Op::GetItem {
            index: args.required_int("I")?,
        },
        "slice" => {
            let start = args.bound("START")?;
            let stop = args.bound("STOP")?;
            let step = match args.word()? {
                None => None,
                Some(word) if word == b"None" || word == b"_" => None,
                Some(word) => Some(super::parse::parse_int(&word, "STEP")?),
            };
            Op::GetSlice { start, stop, step }
        }
        "set" => Op::SetItem {
            index: args.required_int("I")?,
            value: args.required_int("V")?,
        },
        "setslice" => Op::SetSlice {
            start: args.bound("START")?,
            stop: args.bound("STOP")?,
            step: None,
            data: args.data()?.into(),
        },
        "stat" => Op::Stat,
        "ls" => return ls_line(args),
        "help" | "?" => return Ok(Line::Help(help(args.word()?.as_deref())?)),
        "quit" | "exit" => return Ok(Line::Quit),
        other => return Err(format!("unknown command {other:?}; type help for the list")),
    };
    Ok(Line::Op(op))
}

/// `ls [-l] [-R] [--] [PATH]`, flags as the CLI's (`-lR` too); `--` ends
/// them, for a name that starts with `-`.
fn ls_line(args: &mut Args<'_>) -> ParseResult<Line> {
    let (mut long, mut recursive) = (false, false);
    let mut path = None;
    while let Some(word) = args.word()? {
        let word = String::from_utf8(word).map_err(|_| "PATH must be UTF-8 text".to_owned())?;
        match word.strip_prefix('-') {
            Some("-") => {
                path = args.word()?;
                break;
            }
            Some(flags) if !flags.is_empty() => {
                for flag in flags.chars() {
                    match flag {
                        'l' => long = true,
                        'R' => recursive = true,
                        other => return Err(format!("ls has no option -{other}")),
                    }
                }
            }
            _ => {
                path = Some(word.into_bytes());
                break;
            }
        }
    }
    let path = String::from_utf8(path.unwrap_or_default())
        .map_err(|_| "PATH must be UTF-8 text".to_owned())?;
    Ok(Line::Ls {
        path,
        long,
        recursive,
    })
}

impl Line {
    async fn run(self, map: &mut RemoteMmap, client: &Client) -> Result<Step> {
        match self {
            Line::Op(op) => Ok(show(map.apply(op).await?)),
            Line::Ls {
                path,
                long,
                recursive,
            } => {
                let entries = files::list_entries(client, &path, recursive).await?;
                if entries.is_empty() {
                    return Ok(Step::Quiet);
                }
                let text = files::ls_text(&entries, long);
                Ok(Step::Print(text.trim_end_matches('\n').to_owned()))
            }
            Line::Help(text) => Ok(Step::Print(text.trim_end().to_owned())),
            Line::Quit => Ok(Step::Quit),
        }
    }
}

/// What Python's REPL would print for the value: numbers, `bytes` as
/// `b'...'`, and nothing for the methods that return None (`resize`
/// included: Python's returns None, though the server reports the length).
fn show(value: Value) -> Step {
    let print = Step::Print;
    match value {
        Value::Read(data) | Value::ReadLine(data) | Value::GetSlice(data) => {
            print(bytes_repr(&data))
        }
        Value::ReadByte(b) | Value::GetItem(b) => print(b.to_string()),
        Value::Write(n) | Value::Seek(n) | Value::Tell(n) | Value::Size(n) | Value::Len(n) => {
            print(n.to_string())
        }
        Value::Find(i) | Value::RFind(i) => print(i.to_string()),
        Value::WriteByte
        | Value::Flush
        | Value::Move
        | Value::Resize(_)
        | Value::Madvise
        | Value::SetItem
        | Value::SetSlice => Step::Quiet,
        Value::Stat(stat) => {
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
    }
}

/// A mapping's path, or `(anonymous)`.
fn display_path(path: &str) -> String {
    if path.is_empty() {
        "(anonymous)".to_owned()
    } else {
        path.to_owned()
    }
}
