//! The fake OpenAI-compatible provider as a program, for demos, benchmarks and the browser
//! tests: `cargo run -p parley-testkit --bin fake-openai -- --port 8000`.
//! Once listening it prints exactly one line on stdout:
//! `Fake OpenAI-compatible provider at http://127.0.0.1:PORT/v1 (api key: KEY)`.
//! Replies are scripted over HTTP (`POST /__fake/replies`); see `parley_testkit::fake_openai`.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use parley_testkit::fake_openai::{FakeOpenAi, FakeOpenAiConfig};

/// A fake OpenAI-compatible LLM provider on 127.0.0.1.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// The key clients must send as `Authorization: Bearer <key>`.
    #[arg(long, default_value = "sk-fake-key")]
    api_key: String,
    /// Delay between streamed chunks, so a person can watch the answer arrive.
    #[arg(long, default_value_t = 30)]
    chunk_delay_ms: u64,
    /// Models to list and accept (repeatable; default: fake-model, fake-reasoner).
    #[arg(long = "model")]
    models: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("fake-openai: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listen = SocketAddr::from(([127, 0, 0, 1], cli.port));
        // Bind here first so a taken port is one clear line, not a panic.
        if let Err(e) = std::net::TcpListener::bind(listen) {
            eprintln!("fake-openai: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
        let mut config = FakeOpenAiConfig {
            listen,
            api_key: Some(cli.api_key),
            chunk_delay: Duration::from_millis(cli.chunk_delay_ms),
            ..FakeOpenAiConfig::default()
        };
        if !cli.models.is_empty() {
            config.models = cli.models;
        }
        let fake = FakeOpenAi::start_with(config).await;
        let mut stdout = std::io::stdout();
        let _ = writeln!(
            stdout,
            "Fake OpenAI-compatible provider at {} (api key: {})",
            fake.base_url(),
            fake.api_key()
        );
        let _ = stdout.flush();
        let _ = tokio::signal::ctrl_c().await;
        ExitCode::SUCCESS
    })
}
