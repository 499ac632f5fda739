//! The README's grpcurl walkthroughs ("a whole chat", "a room") run as written: each shell
//! block is executed with a real grpcurl (installed by `make tools-deps`) against the whole
//! stack and the fake provider, with only the two addresses swapped for the test's random
//! ports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use parley_testkit::fake_openai::{FakeOpenAi, FakeOpenAiConfig};
use support::Stack;

const HEADING: &str = "## A whole chat with grpcurl";
const ROOM_HEADING: &str = "## A room with grpcurl";
const README_GATEWAY: &str = "127.0.0.1:8080";
const README_PROVIDER: &str = "127.0.0.1:8000";
const README_API_KEY: &str = "sk-fake-key";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The first ```sh block after `heading`.
fn shell_block(readme: &str, heading: &str) -> String {
    let section = &readme[readme
        .find(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?}"))..];
    let start = section.find("```sh\n").expect("no ```sh block in the section") + "```sh\n".len();
    let end = section[start..].find("```").expect("unterminated block");
    section[start..start + end].to_string()
}

fn grpcurl_dir() -> PathBuf {
    let dir = repo().join("tools/bin");
    assert!(
        dir.join("grpcurl").exists(),
        "grpcurl is missing at {}: install the test tools with `make tools-deps`",
        dir.display()
    );
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_grpcurl_walkthrough_runs_a_whole_chat() {
    let stdout = run_walkthrough(HEADING).await;
    // Reflection lists the public services and nothing internal.
    assert!(stdout.contains("parley.chat.v1.MessageService"), "{stdout}");
    assert!(!stdout.contains("parley.llm.v1"), "{stdout}");
    // The streamed answer arrived in order and was stored.
    let answer = parley_testkit::fake_openai::default_reply_text("Hello!");
    let started = stdout.find("assistantStarted").expect("no assistantStarted event");
    let completed = stdout.find("\"completed\"").expect("no completed event");
    assert!(started < completed, "{stdout}");
    assert!(stdout[completed..].contains(&answer), "{stdout}");
    assert!(stdout.contains("MESSAGE_STATUS_COMPLETE"), "{stdout}");
    assert!(stdout.contains("\"ok\": true"), "TestApiConfig did not pass:\n{stdout}");
}

/// Runs the README's block under `heading` against a fresh stack and fake provider; answers
/// its stdout (and fails the test, showing everything, when the script fails).
async fn run_walkthrough(heading: &str) -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let block = shell_block(&readme, heading);
    assert!(
        block.contains(README_GATEWAY) && block.contains(README_PROVIDER),
        "{block}"
    );
    let fake = FakeOpenAi::start_with(FakeOpenAiConfig {
        api_key: Some(README_API_KEY.to_string()),
        ..FakeOpenAiConfig::default()
    })
    .await;
    let stack = Stack::start().await;
    let script = block
        .replace(README_GATEWAY, &stack.addr.to_string())
        .replace(README_PROVIDER, &fake.address().to_string());
    let output = run_bash(&script, &grpcurl_dir()).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the walkthrough failed:\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    stack.stop().await;
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_grpcurl_walkthrough_runs_a_room() {
    let stdout = run_walkthrough(ROOM_HEADING).await;
    // Ben's stream: both messages, the AI's answer posted, streamed and completed.
    let posted = stdout.find("Pizza or sushi?").expect("no posted message");
    let asked = stdout.find("@ai what do you suggest?").expect("no question to the AI");
    let delta = stdout.find("aiAnswerDelta").expect("no streamed answer");
    let completed = stdout.find("messageCompleted").expect("no completed answer");
    assert!(posted < asked && asked < delta && delta < completed, "{stdout}");
    assert!(stdout[completed..].contains("AUTHOR_KIND_AI"), "{stdout}");
    assert!(stdout[completed..].contains("MESSAGE_STATUS_COMPLETE"), "{stdout}");
}

async fn run_bash(script: &str, tools: &Path) -> std::process::Output {
    let path = format!("{}:{}", tools.display(), std::env::var("PATH").unwrap_or_default());
    tokio::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .env("PATH", path)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}
