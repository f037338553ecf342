//! `mmapctl shell`: a REPL holding one handle. On a terminal it uses
//! rustyline (line editing, history in `~/.mmapctl_history`, completion of
//! command names) with a prompt showing the position; with stdin piped it
//! reads one command per line with no prompt, so it can be scripted.

mod exec;
mod parse;

use std::io::IsTerminal;

use mmapd::{Client, MapOptions, RemoteMmap};
use rustyline::{
    Context, Editor, Helper, Highlighter, Hinter, Validator,
    completion::{Completer, Pair},
    error::ReadlineError,
    history::DefaultHistory,
};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::Ctx;
use crate::{
    cli::ShellArgs,
    error::{CliError, Result},
    output::stdout_write,
};
use exec::{COMMANDS, Step, execute};

/// Opens the mapping, runs the loop for the kind of stdin, then closes.
pub async fn run(ctx: &Ctx, args: ShellArgs) -> Result<()> {
    let options = map_options(&args)?;
    let mut mapped = ctx.open("shell", options).await?;
    let result = if std::io::stdin().is_terminal() {
        interactive(&mut mapped.map, &mapped.client).await
    } else {
        scripted(&mut mapped.map, &mapped.client).await
    };
    mapped.finish(result).await
}

/// The `Map` arguments: a file, a named mapping, or a new anonymous region.
fn map_options(args: &ShellArgs) -> Result<MapOptions> {
    let mut options = match (&args.path, &args.name) {
        (Some(path), Some(name)) => MapOptions::file(path.as_str()).name(name.as_str()),
        (Some(path), None) => MapOptions::file(path.as_str()),
        (None, Some(name)) => MapOptions::named(name.as_str()),
        (None, None) if args.length.is_some() => MapOptions::default(),
        (None, None) => {
            return Err(CliError::Usage(
                "shell needs a PATH, --name NAME, or --length N for a new anonymous region".into(),
            ));
        }
    };
    if let Some(length) = args.length {
        options = options.length(length);
    }
    Ok(options
        .offset(args.offset)
        .access(args.access.into())
        .create(args.create))
}

/// Whether an error ends the shell rather than just the line.
fn is_fatal(err: &CliError) -> bool {
    err.exit_code() == crate::error::EXIT_CONNECT || err.is_broken_pipe()
}

/// Piped stdin: one command per line, no prompt. Failed lines are reported
/// with their line number and the script goes on; the exit status is that
/// of the first failure.
async fn scripted(map: &mut RemoteMmap, client: &Client) -> Result<()> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut first_failure = None;
    let mut number = 0;
    while let Some(line) = lines
        .next_line()
        .await
        .map_err(|err| CliError::local("cannot read stdin", err))?
    {
        number += 1;
        match execute(map, client, &line).await {
            Ok(Step::Print(text)) => stdout_write(format!("{text}\n").as_bytes())?,
            Ok(Step::Quiet) => {}
            Ok(Step::Quit) => break,
            Err(err) if is_fatal(&err) => return Err(err),
            Err(err) => {
                eprintln!("mmapctl: error: line {number}: {err}");
                first_failure.get_or_insert(err.exit_code());
            }
        }
    }
    match first_failure {
        Some(code) => Err(CliError::Reported(code)),
        None => Ok(()),
    }
}

/// Completes command names at the start of the line.
#[derive(Helper, Hinter, Highlighter, Validator)]
struct ShellHelper;

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let typed = &line[..pos];
        if typed.contains(char::is_whitespace) {
            return Ok((pos, Vec::new()));
        }
        let matches = COMMANDS
            .iter()
            .filter(|(name, _, _)| name.starts_with(typed))
            .map(|(name, usage, _)| Pair {
                display: (*usage).to_owned(),
                replacement: format!("{name} "),
            })
            .collect();
        Ok((0, matches))
    }
}

/// Where history is kept: `$MMAPCTL_HISTORY`, else `~/.mmapctl_history`.
fn history_path() -> Option<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("MMAPCTL_HISTORY") {
        return Some(path.into());
    }
    std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".mmapctl_history"))
}

/// `name [position/length]> `, or `name [?]> ` if the handle cannot say.
async fn prompt(map: &mut RemoteMmap) -> Result<String> {
    match map.stat().await {
        Ok(stat) => Ok(format!(
            "{} [{}/{}]> ",
            stat.name, stat.position, stat.length
        )),
        Err(err) if err.is_connect_error() => Err(err.into()),
        Err(_) => Ok(format!("{} [?]> ", map.name())),
    }
}

/// A terminal: rustyline with history and a prompt showing the position.
async fn interactive(map: &mut RemoteMmap, client: &Client) -> Result<()> {
    let readline_error = |err: ReadlineError| CliError::Failed(format!("line editor: {err}"));
    let mut editor: Editor<ShellHelper, DefaultHistory> = Editor::new().map_err(readline_error)?;
    editor.set_helper(Some(ShellHelper));
    let history = history_path();
    if let Some(path) = &history {
        // A missing history file is normal the first time.
        let _ = editor.load_history(path);
    }
    let stat = map.stat().await?;
    let what = if stat.path.is_empty() {
        format!(
            "anonymous region {} (reach it from elsewhere with --name {})",
            stat.name, stat.name
        )
    } else {
        stat.path.clone()
    };
    let banner = format!(
        "mapped {what}: {} bytes, access {}. Type help for commands, quit to leave.\n",
        stat.length,
        super::admin::access_name(stat.access())
    );
    stdout_write(banner.as_bytes())?;
    loop {
        let prompt = prompt(map).await?;
        // rustyline blocks; run it off the runtime so the session lease
        // keeps being renewed while the user thinks.
        let (returned, line) = tokio::task::spawn_blocking(move || {
            let line = editor.readline(&prompt);
            (editor, line)
        })
        .await
        .map_err(|err| CliError::Failed(format!("line editor stopped: {err}")))?;
        editor = returned;
        let line = match line {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(err) => return Err(readline_error(err)),
        };
        if !line.trim().is_empty() {
            let _ = editor.add_history_entry(line.as_str());
        }
        match execute(map, client, &line).await {
            Ok(Step::Print(text)) => stdout_write(format!("{text}\n").as_bytes())?,
            Ok(Step::Quiet) => {}
            Ok(Step::Quit) => break,
            Err(err) if is_fatal(&err) => return Err(err),
            Err(err) => eprintln!("error: {err}"),
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    Ok(())
}
