//! The command line: clap derive types for the global flags and every
//! command, and the value parsers for durations, advice and access modes.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};
use mmapd::{Access, Advice};

/// The command-line client for mmapd: remote memory-mapped files with the
/// semantics of Python's `mmap`.
#[derive(Debug, Parser)]
#[command(
    name = "mmapctl",
    version,
    about = "Command-line client for mmapd, the server of remote memory-mapped files",
    long_about = "Command-line client for mmapd, the server of remote memory-mapped files.\n\n\
        PATH arguments are relative to the server's data root; --name NAME reaches a live \
        mapping (such as an anonymous region) instead. Each data command opens a session, \
        maps the file, does one thing and closes again; `mmapctl shell` keeps a mapping \
        open for interactive use.",
    after_help = "Exit status: 0 success, 1 the server refused the request (or a local file \
        failed), 2 usage error, 3 cannot connect to the server.\n\n\
        Start a server with `cargo run --release --bin mmapd`, then try `mmapctl info`."
)]
pub struct Cli {
    /// Flags accepted by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The help heading of the global flags, so each command's own flags come
/// first in its help.
const GLOBAL: &str = "Global options";

/// Flags accepted by every command, before or after its name.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Address of the mmapd server
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "MMAPCTL_ENDPOINT",
        default_value = "http://127.0.0.1:50051",
        value_name = "URL"
    )]
    pub endpoint: String,

    /// Output format: aligned text, or JSON with one object per result
    #[arg(
        short,
        long,
        global = true,
        help_heading = GLOBAL,
        value_enum,
        default_value_t = Format::Text,
        value_name = "FORMAT"
    )]
    pub output: Format,

    /// Time limit for connecting and for each call, e.g. 5s or 500ms [default: 10s to connect, none for calls]
    ///
    /// A whole get, put or cat is one call, so give big transfers room.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    pub timeout: Option<Duration>,

    /// Lease of the session a command opens, e.g. 30s or 5m [default: the server's]
    ///
    /// mmapctl renews the lease while it runs; if it dies, the server closes
    /// the session's mappings once the lease runs out.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    pub session_ttl: Option<Duration>,

    /// CA certificate (PEM) the server's certificate must chain to, for an https:// endpoint [default: the public webpki roots]
    ///
    /// An https:// endpoint always speaks TLS; TLS files with an http://
    /// endpoint are refused rather than ignored.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "MMAPCTL_CA_CERT",
        value_name = "FILE"
    )]
    pub ca_cert: Option<PathBuf>,

    /// Client certificate (PEM) for a server that requires mTLS; needs --key
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "MMAPCTL_CERT",
        value_name = "FILE"
    )]
    pub cert: Option<PathBuf>,

    /// Private key (PEM) of --cert
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "MMAPCTL_KEY",
        value_name = "FILE"
    )]
    pub key: Option<PathBuf>,

    /// Bearer token sent with every call (make one with `mmapctl token`)
    ///
    /// Prefer the environment variable: a flag is visible to other users in
    /// the process list.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "MMAPCTL_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
}

/// Output format of results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned, human-readable text
    Text,
    /// One JSON object per line, per result, with stable snake_case fields
    Json,
}

/// Access mode of a mapping, as in Python's `mmap.ACCESS_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccessArg {
    /// Read-only
    Read,
    /// Read-write, shared: writes reach the file and other handles
    Write,
    /// Copy-on-write: writes stay private to this handle
    Copy,
}

impl From<AccessArg> for Access {
    fn from(access: AccessArg) -> Self {
        match access {
            AccessArg::Read => Access::Read,
            AccessArg::Write => Access::Write,
            AccessArg::Copy => Access::Copy,
        }
    }
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the server's version, limits and health (exit status 1 if not serving)
    Info,

    /// Ask only the gRPC health service (no credential needed): exit 0 if SERVING
    #[command(
        long_about = "Ask only the gRPC health service (grpc.health.v1): print SERVING and \
            exit 0, or NOT_SERVING and exit 1.\n\n\
            Health needs no credential even when the server has an access file, so this \
            is the command for container and orchestrator health checks; `info` also \
            calls the Admin service, which an access file restricts."
    )]
    Health {
        /// Service to ask about: "" (the whole server) or mmapd.v1.Mmap
        #[arg(default_value = "", value_name = "SERVICE")]
        service: String,
    },

    /// List the server's live sessions
    Sessions,

    /// List the server's live mappings
    Mappings,

    /// Print a file's bytes (or a range of them) to stdout
    #[command(
        long_about = "Print a file's bytes (or a range of them) to stdout.\n\n\
            The bytes are written as they are (-o json does not apply) and streamed, so \
            files of any size work. With stdout redirected to a file, a progress bar \
            shows on stderr if that is a terminal."
    )]
    Cat(CatArgs),

    /// Download a file from the server to a local file
    #[command(allow_missing_positional = true)]
    Get(GetArgs),

    /// Upload a local file to the server, making the remote file the same size
    #[command(
        long_about = "Upload a local file to the server, making the remote file the same \
            size.\n\n\
            An empty local file makes the remote file empty (or, with --create, makes an \
            empty file); a live mapping of a larger remote file refuses that \
            (MAPPING_BUSY)."
    )]
    Put(PutArgs),

    /// Print a range of bytes: as text, raw, or as a hex dump
    #[command(
        long_about = "Print a range of bytes: as text, raw, or as a hex dump.\n\n\
            Without --hex or --raw the bytes are written as they are, except that on a \
            terminal anything that is not printable UTF-8 text is shown as a hex dump. \
            For large ranges use `cat` or `get`."
    )]
    Read(ReadArgs),

    /// Write bytes at an offset, from text, hex, a local file or stdin
    Write(WriteArgs),

    /// Print the lowest index of PATTERN, or -1 if it is not found
    #[command(allow_missing_positional = true)]
    Find(FindArgs),

    /// Print the highest index of PATTERN, or -1 if it is not found
    #[command(allow_missing_positional = true)]
    Rfind(FindArgs),

    /// Print the size of the file (mmap.size())
    Size(TargetArgs),

    /// Print the length of the mapping (len(mmap))
    Len(TargetArgs),

    /// Change the length of the mapping and of its file (mmap.resize())
    #[command(allow_missing_positional = true, allow_negative_numbers = true)]
    Resize(ResizeArgs),

    /// Flush the mapping (or a range) to disk; it is durable when this returns
    Flush(FlushArgs),

    /// Copy COUNT bytes from SRC to DEST within the mapping (mmap.move())
    #[command(
        allow_negative_numbers = true,
        override_usage = "mmapctl move [OPTIONS] <PATH> <DEST> <SRC> <COUNT>\n       \
                          mmapctl move [OPTIONS] --name <NAME> <DEST> <SRC> <COUNT>",
        help_template = MOVE_HELP
    )]
    Move(MoveArgs),

    /// Give the kernel advice about a range (mmap.madvise())
    #[command(
        allow_missing_positional = true,
        long_about = "Give the kernel advice about a range (mmap.madvise()).\n\n\
            ADVICE is a name, with or without the MADV_ prefix and in any case \
            (willneed, MADV_DONTNEED, sequential, ...), or its Linux number. \
            The server refuses MADV_REMOVE, MADV_DONTFORK and MADV_DOFORK."
    )]
    Madvise(MadviseArgs),

    /// List the files and folders beneath the data root (or in one folder)
    #[command(long_about = LS_ABOUT)]
    Ls(LsArgs),

    /// Describe one file or folder: kind, size, mode, mtime, whether mapped
    #[command(
        long_about = "Describe one file or folder: kind, size, mode, mtime, and whether a \
            live mapping uses it.\n\n\
            A symlink inside the data root is followed (os.stat); `ls -l` of its folder \
            shows the link itself."
    )]
    Stat(StatArgs),

    /// Make a folder (with -p, its missing parents too)
    Mkdir(MkdirArgs),

    /// Remove a file, a symlink or an empty folder (with -r, a whole folder)
    #[command(
        long_about = "Remove a file, a symlink or an empty folder (with -r, a whole folder).\n\n\
            A file that a live mapping uses is refused (MAPPING_BUSY); `mmapctl mappings` \
            lists the mappings."
    )]
    Rm(RmArgs),

    /// Rename (move) a file or folder within the data root
    #[command(
        long_about = "Rename (move) a file or folder within the data root.\n\n\
            An existing TO is an error (FileExistsError) unless --replace is given, which \
            replaces it like Python's os.replace (a file, or an empty folder for a folder). \
            Not to be confused with `move`, which copies bytes within a mapping."
    )]
    Mv(MvArgs),

    /// Set a file's size, cutting it or padding it with zero bytes
    Truncate(TruncateArgs),

    /// Make an empty file if PATH does not exist; an existing file is left as it is
    #[command(
        long_about = "Make an empty file if PATH does not exist (with its missing folders); an \
            existing file or folder is left as it is.\n\n\
            Unlike the Unix touch, this does not update the modification time of an \
            existing file: the server has no call that sets times."
    )]
    Touch(TouchArgs),

    /// Open an interactive shell on one mapping, with a command for every mmap method
    #[command(long_about = SHELL_ABOUT)]
    Shell(ShellArgs),

    /// Make a random bearer token and its SHA-256 for the access file, or hash a token
    #[command(long_about = TOKEN_ABOUT)]
    Token(TokenArgs),
}

const TOKEN_ABOUT: &str = "Make a random bearer token and its SHA-256 for the access file, \
    or hash a token.\n\n\
    Without --hash it prints a new token (32 random bytes, hex), its SHA-256 and an \
    [[identity]] entry for mmapd's --access-file. The access file holds only the hash; \
    the client passes the token with --token or MMAPCTL_TOKEN. With --hash it prints the \
    SHA-256 of an existing token, read from stdin when given as `-` or without a value \
    (one trailing newline is ignored). The same hash: `printf %s TOKEN | sha256sum`. \
    Nothing is sent to a server.";

const LS_ABOUT: &str = "List the files and folders beneath the data root (or in one folder).\n\n\
    Paths are printed relative to the data root, one per line, folders with a trailing /. \
    -l prints a table (kind, mode, size, modification time in UTC, whether a live mapping \
    uses it, path; a symlink shows its target), and -o json one object per entry. -R lists \
    the whole tree beneath PATH. Symlinks in the listing are listed, not followed; a PATH \
    that is itself a symlink is followed, like `ls` without -l. A file PATH lists just that \
    file. Control characters and backslashes in names are shown escaped (\\n, \\u{1b}, \\\\); \
    -o json gives names as they are.";

/// Arguments of `ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Folder (or file) to list, relative to the data root [default: the root]
    #[arg(value_name = "PATH", default_value = "", hide_default_value = true)]
    pub path: String,

    /// A table: kind, mode, size, mtime, mapped, path
    #[arg(short, long)]
    pub long: bool,

    /// List everything beneath PATH, not just its entries
    #[arg(short = 'R', long)]
    pub recursive: bool,
}

/// Arguments of `stat`.
#[derive(Debug, Args)]
pub struct StatArgs {
    /// File or folder on the server, relative to its data root
    #[arg(value_name = "PATH")]
    pub path: String,
}

/// Arguments of `mkdir`.
#[derive(Debug, Args)]
pub struct MkdirArgs {
    /// Folder to make, relative to the data root
    #[arg(value_name = "PATH")]
    pub path: String,

    /// Make missing parent folders too, and accept a folder that exists
    #[arg(short, long)]
    pub parents: bool,
}

/// Arguments of `rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// File, symlink or folder to remove, relative to the data root
    #[arg(value_name = "PATH")]
    pub path: String,

    /// Remove a folder and everything beneath it
    #[arg(short, long)]
    pub recursive: bool,
}

/// Arguments of `mv`.
#[derive(Debug, Args)]
pub struct MvArgs {
    /// Path to rename, relative to the data root
    #[arg(value_name = "FROM")]
    pub from: String,

    /// Its new path, relative to the data root
    #[arg(value_name = "TO")]
    pub to: String,

    /// Replace an existing TO (os.replace) instead of failing
    #[arg(short = 'f', long)]
    pub replace: bool,
}

/// Arguments of `truncate`.
#[derive(Debug, Args)]
pub struct TruncateArgs {
    /// File on the server, relative to its data root
    #[arg(value_name = "PATH")]
    pub path: String,

    /// New size in bytes (a plain number: not +N or -N, which GNU truncate
    /// reads as growing or cutting by N)
    #[arg(value_name = "SIZE", value_parser = plain_size)]
    pub size: u64,

    /// Make the file (and its missing folders) if it does not exist
    #[arg(long)]
    pub create: bool,
}

/// A size as a plain number of bytes. A sign is refused rather than read
/// as the number: `+5` means "grow by 5" to GNU truncate.
fn plain_size(text: &str) -> std::result::Result<u64, String> {
    if !text.bytes().all(|b| b.is_ascii_digit()) || text.is_empty() {
        return Err(format!(
            "{text:?} is not a size: give the new size as a plain number of bytes"
        ));
    }
    text.parse()
        .map_err(|_| format!("{text:?} is too large for a size"))
}

/// Arguments of `touch`.
#[derive(Debug, Args)]
pub struct TouchArgs {
    /// File on the server, relative to its data root
    #[arg(value_name = "PATH")]
    pub path: String,
}

/// Roles of the access file, for the `token` snippet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Map with READ or COPY access only
    Read,
    /// Every data operation within its paths
    Readwrite,
    /// Also the Admin service, and sees every session
    Admin,
}

impl RoleArg {
    /// The role as the access file spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RoleArg::Read => "read",
            RoleArg::Readwrite => "readwrite",
            RoleArg::Admin => "admin",
        }
    }
}

/// Arguments of `token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Print the SHA-256 of TOKEN instead of making a new token (`-` or no value: read stdin)
    #[arg(
        long,
        value_name = "TOKEN",
        num_args = 0..=1,
        default_missing_value = "-"
    )]
    pub hash: Option<String>,

    /// Identity name in the printed [[identity]] entry
    #[arg(long, default_value = "NAME", conflicts_with = "hash")]
    pub name: String,

    /// Role in the printed [[identity]] entry
    #[arg(long, value_enum, default_value_t = RoleArg::Readwrite, conflicts_with = "hash")]
    pub role: RoleArg,

    /// Path prefix in the printed [[identity]] entry (repeat for more) [default: "", everything]
    #[arg(long = "path", value_name = "PREFIX", conflicts_with = "hash")]
    pub paths: Vec<String>,
}

/// The help of `move`, whose positionals clap cannot describe one by one.
const MOVE_HELP: &str = "\
{about-with-newline}
{usage-heading} {usage}

Arguments:
  [PATH]   File on the server, relative to its data root (leave out with --name)
  <DEST>   Index to copy to
  <SRC>    Index to copy from
  <COUNT>  Number of bytes

{all-args}{after-help}";

const SHELL_ABOUT: &str = "Open an interactive shell on one mapping, with a command for \
    every mmap method.\n\n\
    The shell holds one handle (one cursor) until you type `quit`. The prompt shows the \
    position and the length. Type `help` for the commands: read, write, seek, tell, find, \
    slice, resize, ..., and ls to list the files of the data root.\n\n\
    With stdin not a terminal it reads one command per line with no prompt, so it can be \
    scripted: `printf 'write hello\\nseek 0\\nread 5\\n' | mmapctl shell notes.txt`. \
    Errors are printed and the script goes on; the exit status is that of the first \
    failure.\n\n\
    With neither PATH nor --name it maps a new anonymous region of --length bytes.\n\n\
    Results print the way Python shows them: numbers, and bytes as b'...' \
    (-o json does not apply).";

/// The mapping a data command acts on: a path, or a registered name.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// File on the server, relative to its data root (leave out with --name)
    #[arg(value_name = "PATH", required_unless_present = "name")]
    pub path: Option<String>,

    /// Act on the live mapping registered as NAME instead of PATH
    ///
    /// Reaches an anonymous region, or any mapping another session holds;
    /// `mmapctl mappings` lists the names. Given with PATH, PATH is mapped
    /// under NAME.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

/// Arguments of commands that take only a target.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The mapping to act on.
    #[command(flatten)]
    pub target: Target,
}

/// Arguments of `cat`.
#[derive(Debug, Args)]
pub struct CatArgs {
    /// The mapping to read.
    #[command(flatten)]
    pub target: Target,

    /// First byte to print
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub offset: u64,

    /// Number of bytes to print [default: to the end]
    #[arg(long, value_name = "N")]
    pub length: Option<u64>,
}

/// Arguments of `get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The mapping to download.
    #[command(flatten)]
    pub target: Target,

    /// Local file to write (created or replaced)
    #[arg(value_name = "LOCAL")]
    pub local: PathBuf,
}

/// Arguments of `put`.
#[derive(Debug, Args)]
pub struct PutArgs {
    /// Local file to upload
    #[arg(value_name = "LOCAL")]
    pub local: PathBuf,

    /// Where to upload it.
    #[command(flatten)]
    pub target: Target,

    /// Create the remote file (and its missing folders) if it does not exist
    #[arg(long)]
    pub create: bool,
}

/// Arguments of `read`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// The mapping to read.
    #[command(flatten)]
    pub target: Target,

    /// First byte to read
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub offset: u64,

    /// Number of bytes to read [default: to the end]
    #[arg(long, value_name = "N")]
    pub length: Option<u64>,

    /// Print a hex dump (offset, hex bytes, printable characters)
    #[arg(long, conflicts_with = "raw")]
    pub hex: bool,

    /// Write the bytes exactly as they are, even to a terminal
    #[arg(long)]
    pub raw: bool,
}

/// Arguments of `write`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("source").args(["data", "hex", "file"]))]
pub struct WriteArgs {
    /// The mapping to write to.
    #[command(flatten)]
    pub target: Target,

    /// Read the bytes to write from stdin
    #[arg(value_name = "-", value_parser = ["-"], hide_possible_values = true)]
    pub stdin: Option<String>,

    /// Byte offset to write at
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub offset: u64,

    /// The bytes to write, as UTF-8 text
    #[arg(long, value_name = "TEXT")]
    pub data: Option<String>,

    /// The bytes to write, as hex digits (spaces allowed), e.g. "de ad be ef"
    #[arg(long, value_name = "HEX")]
    pub hex: Option<String>,

    /// Local file whose contents to write
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// Arguments of `find` and `rfind`.
#[derive(Debug, Args)]
pub struct FindArgs {
    /// The mapping to search.
    #[command(flatten)]
    pub target: Target,

    /// Bytes to look for, as text (or hex digits with --hex)
    #[arg(value_name = "PATTERN")]
    pub pattern: String,

    /// Search from this index; negative counts from the end [default: 0]
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub start: Option<i64>,

    /// Search up to this index; negative counts from the end [default: the end]
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub end: Option<i64>,

    /// PATTERN is hex digits, e.g. 00ff
    #[arg(long)]
    pub hex: bool,
}

/// Arguments of `resize`.
#[derive(Debug, Args)]
pub struct ResizeArgs {
    /// The mapping to resize.
    #[command(flatten)]
    pub target: Target,

    /// New length in bytes
    #[arg(value_name = "N")]
    pub new_size: i64,
}

/// Arguments of `flush`.
#[derive(Debug, Args)]
pub struct FlushArgs {
    /// The mapping to flush.
    #[command(flatten)]
    pub target: Target,

    /// Start of the range; a multiple of the page size [default: 0]
    #[arg(long, value_name = "N")]
    pub offset: Option<i64>,

    /// Length of the range [default: to the end]
    #[arg(long, value_name = "N")]
    pub size: Option<i64>,
}

/// Arguments of `move`.
#[derive(Debug, Args)]
pub struct MoveArgs {
    /// Act on the live mapping registered as NAME instead of PATH
    ///
    /// Reaches an anonymous region, or any mapping another session holds;
    /// `mmapctl mappings` lists the names. Given with PATH, PATH is mapped
    /// under NAME.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// [PATH] DEST SRC COUNT, described in MOVE_HELP
    // Four positionals of which the first is optional are beyond clap's
    // `allow_missing_positional`, so they are taken as one list, hidden,
    // and described by the help template.
    #[arg(
        value_names = ["PATH", "DEST", "SRC", "COUNT"],
        num_args = 3..=4,
        required = true,
        hide = true
    )]
    pub args: Vec<String>,
}

impl MoveArgs {
    /// The target and DEST, SRC and COUNT.
    pub fn resolve(&self) -> Result<(Target, [i64; 3]), String> {
        let (path, numbers) = match self.args.as_slice() {
            [path, rest @ ..] if rest.len() == 3 => (Some(path.clone()), rest),
            numbers => (None, numbers),
        };
        if path.is_none() && self.name.is_none() {
            return Err("move needs PATH (or --name NAME) before DEST SRC COUNT".into());
        }
        let mut parsed = [0; 3];
        for ((slot, text), what) in parsed.iter_mut().zip(numbers).zip(["DEST", "SRC", "COUNT"]) {
            *slot = text
                .parse()
                .map_err(|_| format!("{what} must be an integer, not {text:?}"))?;
        }
        let target = Target {
            path,
            name: self.name.clone(),
        };
        Ok((target, parsed))
    }
}

/// Arguments of `madvise`.
#[derive(Debug, Args)]
pub struct MadviseArgs {
    /// The mapping to advise on.
    #[command(flatten)]
    pub target: Target,

    /// The advice: a name such as willneed or MADV_SEQUENTIAL, or a number
    #[arg(value_name = "ADVICE", value_parser = parse_advice)]
    pub advice: Advice,

    /// Start of the range; a multiple of the page size [default: 0]
    #[arg(long, value_name = "N")]
    pub start: Option<i64>,

    /// Length of the range [default: to the end]
    #[arg(long, value_name = "N")]
    pub length: Option<i64>,
}

/// Arguments of `shell`.
#[derive(Debug, Args)]
pub struct ShellArgs {
    /// File on the server, relative to its data root
    #[arg(value_name = "PATH")]
    pub path: Option<String>,

    /// Attach to the live mapping registered as NAME instead of mapping PATH
    ///
    /// Given with PATH, PATH is mapped under NAME; with --length and no
    /// PATH, the new anonymous region is called NAME (or attached to, if it
    /// exists).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Access mode of the mapping
    #[arg(long, value_enum, default_value_t = AccessArg::Write, value_name = "MODE")]
    pub access: AccessArg,

    /// Offset into the file to map from; a multiple of the allocation granularity
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub offset: i64,

    /// Bytes to map [default: the whole file from --offset]
    #[arg(long, value_name = "N")]
    pub length: Option<i64>,

    /// Create PATH if it does not exist, as --offset + --length zero bytes
    #[arg(long, requires = "length")]
    pub create: bool,
}

/// Parses "5s", "500ms", "2m" (humantime) or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text)
        .map_err(|err| format!("{err} (expected e.g. 5s, 500ms, 2m or a number of seconds)"))
}

/// Parses `willneed`, `MADV_WILLNEED` (any case) or a number such as `3`.
pub fn parse_advice(text: &str) -> Result<Advice, String> {
    let known = || {
        (0..=32)
            .filter_map(|n| Advice::try_from(n).ok())
            .filter(|a| !REFUSED_ADVICE.contains(a))
            .map(|a| a.as_str_name().trim_start_matches("MADV_").to_lowercase())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let advice = if let Ok(number) = text.parse::<i32>() {
        Advice::try_from(number)
            .map_err(|_| format!("no advice has the number {number}; known: {}", known()))?
    } else {
        let upper = text.to_uppercase();
        let name = if upper.starts_with("MADV_") {
            upper
        } else {
            format!("MADV_{upper}")
        };
        Advice::from_str_name(&name)
            .ok_or_else(|| format!("unknown advice {text:?}; known: {}", known()))?
    };
    if REFUSED_ADVICE.contains(&advice) {
        return Err(format!(
            "the server refuses {} (it would punch holes in the file or change the server \
             process); known: {}",
            advice.as_str_name(),
            known()
        ));
    }
    Ok(advice)
}

/// Advice the proto names but the server refuses (see `safe_advice` in the
/// server): offering it here would only turn into a server error.
const REFUSED_ADVICE: [Advice; 3] = [Advice::MadvRemove, Advice::MadvDontfork, Advice::MadvDofork];

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn advice_names_and_numbers() {
        assert_eq!(parse_advice("willneed"), Ok(Advice::MadvWillneed));
        assert_eq!(parse_advice("MADV_WILLNEED"), Ok(Advice::MadvWillneed));
        assert_eq!(parse_advice("madv_dontneed"), Ok(Advice::MadvDontneed));
        assert_eq!(parse_advice("2"), Ok(Advice::MadvSequential));
        let err = parse_advice("7").unwrap_err();
        assert!(err.contains("willneed"), "{err}");
        assert!(parse_advice("sometimes").is_err());
        assert!(!err.contains("remove") && !err.contains("fork"), "{err}");
        for refused in ["remove", "dontfork", "DOFORK", "9"] {
            let err = parse_advice(refused).unwrap_err();
            assert!(err.contains("the server refuses"), "{refused}: {err}");
        }
    }

    #[test]
    fn a_path_or_a_name_is_needed() {
        let parse = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        assert!(parse(&["mmapctl", "size"]).is_err());
        assert!(parse(&["mmapctl", "size", "--name", "n"]).is_ok());
        let resolve = |args: &[&str]| {
            let cli = parse(args).unwrap();
            let Command::Move(args) = cli.command else {
                panic!("not move: {cli:?}");
            };
            args.resolve()
        };
        let (target, numbers) =
            resolve(&["mmapctl", "move", "--name", "n", "1", "2", "-3"]).unwrap();
        assert_eq!((target.path, numbers), (None, [1, 2, -3]));
        let (target, numbers) = resolve(&["mmapctl", "move", "f", "1", "2", "3"]).unwrap();
        assert_eq!((target.path.as_deref(), numbers), (Some("f"), [1, 2, 3]));
        assert!(resolve(&["mmapctl", "move", "1", "2", "3"]).is_err());
        assert!(resolve(&["mmapctl", "move", "f", "x", "2", "3"]).is_err());
        assert!(parse(&["mmapctl", "move", "f", "1", "2", "3", "4"]).is_err());
        // One optional positional before a required one works.
        let cli = parse(&["mmapctl", "find", "--name", "n", "needle"]).unwrap();
        let Command::Find(args) = cli.command else {
            panic!("not find: {cli:?}");
        };
        assert_eq!((args.target.path, args.pattern.as_str()), (None, "needle"));
        let cli = parse(&["mmapctl", "get", "remote", "local"]).unwrap();
        let Command::Get(args) = cli.command else {
            panic!("not get: {cli:?}");
        };
        assert_eq!(args.target.path.as_deref(), Some("remote"));
        assert!(parse(&["mmapctl", "resize", "f", "-1"]).is_ok());
    }
}
