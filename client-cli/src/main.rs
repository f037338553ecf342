//! `mmapctl`, the command-line client for mmapd: parses the command line,
//! runs the command on a tokio runtime and turns the outcome into the exit
//! status (see `error`).
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod error;
mod output;
mod progress;

use std::{process::ExitCode, time::Duration};

use clap::Parser;

fn main() -> ExitCode {
    // clap prints usage errors itself and exits 2 (0 for --help).
    let cli = cli::Cli::parse();
    let ctx = commands::Ctx::new(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("mmapctl: error: cannot start the async runtime: {err}");
            return ExitCode::from(error::EXIT_FAILED);
        }
    };
    let result = runtime.block_on(commands::run(&ctx, cli.command));
    // Do not wait for a blocking stdin read nobody needs any more.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => err
            .explain_timeout(ctx.timeout)
            .report(&ctx.endpoint, ctx.out.json()),
    }
}
