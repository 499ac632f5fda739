//! What every binary's `main` does: set up logs, run, and on failure print one clear line and
//! exit non-zero (no panic, no backtrace).

use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use tokio::net::TcpListener;

/// Parses the command line (and `PARLEY_…` variables). `--help` and `--version` print and exit
/// 0; a bad flag or variable prints one line naming it and exits 2, clap's usage status.
pub fn parse_args<T: Parser>(program: &str) -> T {
    match T::try_parse() {
        Ok(args) => args,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => e.exit(),
        Err(e) => {
            eprintln!("{program}: {}", first_line(&e.render().to_string()));
            std::process::exit(2)
        }
    }
}

/// clap's message without its `error: ` prefix and the "For more information…" tail.
fn first_line(rendered: &str) -> &str {
    let line = rendered
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("invalid arguments");
    line.strip_prefix("error: ").unwrap_or(line)
}

/// Runs `main` on a multi-threaded runtime.
pub fn run<F, E>(program: &str, main: F) -> ExitCode
where
    F: Future<Output = Result<(), E>>,
    E: Display,
{
    crate::telemetry::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{program}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Binds a listener, with an error that names the address.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Parser)]
    struct Args {
        #[arg(long)]
        port: u16,
    }

    #[test]
    fn a_bad_value_is_one_line_naming_the_flag() {
        let Err(e) = Args::try_parse_from(["x", "--port", "seventy"]) else {
            panic!("seventy parsed as a port")
        };
        let line = first_line(&e.render().to_string()).to_string();
        assert!(line.contains("--port") && line.contains("seventy"), "{line}");
        assert!(!line.contains('\n') && !line.starts_with("error"), "{line}");
    }
}
