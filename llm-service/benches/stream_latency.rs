//! Parley's own overhead on a streamed answer, against the fake provider on loopback:
//! time to first token and total time, straight to the provider over HTTP and through
//! llm-service over gRPC; the difference is what llm-service adds. Prints figures, asserts
//! nothing. `cargo bench -p llm-service --bench stream_latency` (ITERATIONS=… to change the count).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use llm_service::Config;
use parley_proto::llm::v1 as pb;
use parley_proto::llm::v1::llm_service_client::LlmServiceClient;
use parley_testkit::fake_openai::{FakeOpenAi, Reply};

const ANSWER: &str = "Parley streams answers token by token from any OpenAI-compatible provider, \
    and this sentence is long enough to be sent in a few dozen chunks like a real answer.";

struct Sample {
    first_token: Duration,
    total: Duration,
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(name: &str, samples: &[Sample]) -> (Duration, Duration) {
    let mut first: Vec<Duration> = samples.iter().map(|s| s.first_token).collect();
    let mut total: Vec<Duration> = samples.iter().map(|s| s.total).collect();
    let (f50, f95) = (percentile(&mut first, 0.5), percentile(&mut first, 0.95));
    let (t50, t95) = (percentile(&mut total, 0.5), percentile(&mut total, 0.95));
    println!(
        "{name:<28} first token p50 {:>7.3} ms  p95 {:>7.3} ms | total p50 {:>7.3} ms  p95 {:>7.3} ms",
        ms(f50),
        ms(f95),
        ms(t50),
        ms(t95)
    );
    (f50, t50)
}

async fn direct(http: &reqwest::Client, fake: &FakeOpenAi) -> Sample {
    let started = Instant::now();
    let mut response = http
        .post(format!("{}/chat/completions", fake.base_url()))
        .bearer_auth(fake.api_key())
        .json(&serde_json::json!({
            "model": "fake-model",
            "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "benchmark"}],
        }))
        .send()
        .await
        .unwrap();
    let mut first_token = None;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        if first_token.is_none() && chunk.windows(9).any(|w| w == b"\"content\"") {
            first_token = Some(started.elapsed());
        }
        body.extend_from_slice(&chunk);
    }
    assert!(body.ends_with(b"data: [DONE]\n\n"));
    Sample {
        first_token: first_token.unwrap(),
        total: started.elapsed(),
    }
}

async fn through_parley(client: &mut LlmServiceClient<tonic::transport::Channel>, fake: &FakeOpenAi) -> Sample {
    let started = Instant::now();
    let request = pb::StreamChatRequest {
        provider: Some(pb::Provider {
            base_url: fake.base_url(),
            api_key: fake.api_key(),
            model: "fake-model".to_string(),
        }),
        messages: vec![pb::ChatMessage {
            role: pb::ChatRole::User as i32,
            content: "benchmark".to_string(),
        }],
        params: None,
    };
    let mut stream = client.stream_chat(request).await.unwrap().into_inner();
    let mut first_token = None;
    let mut finished = false;
    while let Some(message) = stream.message().await.unwrap() {
        match message.chunk.unwrap() {
            pb::stream_chat_response::Chunk::ContentDelta(_) if first_token.is_none() => {
                first_token = Some(started.elapsed());
            }
            pb::stream_chat_response::Chunk::Finish(_) => finished = true,
            _ => {}
        }
    }
    assert!(finished);
    Sample {
        first_token: first_token.unwrap(),
        total: started.elapsed(),
    }
}

fn main() {
    let iterations: usize = std::env::var("ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let fake = FakeOpenAi::start().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let config = Config {
            allow_private_networks: true,
            ..Config::default()
        };
        tokio::spawn(llm_service::serve(listener, config, std::future::pending()));
        let channel = loop {
            if let Ok(channel) = tonic::transport::Channel::from_shared(format!("http://{address}"))
                .unwrap()
                .connect()
                .await
            {
                break channel;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let mut client = LlmServiceClient::new(channel);
        // reqwest is built with `rustls-no-provider` in this workspace: a plain client needs a
        // process-wide provider (llm-service's own client brings its own).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder().tcp_nodelay(true).build().unwrap();

        let chunks = ANSWER.split_whitespace().count();
        for _ in 0..20 {
            fake.push_reply(Reply::text(ANSWER));
            direct(&http, &fake).await;
            fake.push_reply(Reply::text(ANSWER));
            through_parley(&mut client, &fake).await;
        }
        // Back to back, then paced like a real model (a chunk every 2 ms), where the added
        // latency of the last chunk shows rather than hides behind the first.
        for (pace, iterations) in [
            (Duration::ZERO, iterations),
            (Duration::from_millis(2), iterations.div_ceil(4)),
        ] {
            println!(
                "\n{iterations} answers of {chunks} chunks, {} ms between chunks, fake provider on loopback",
                ms(pace)
            );
            let reply = || Reply::text(ANSWER).chunk_delay(pace);
            let mut direct_samples = Vec::with_capacity(iterations);
            let mut parley_samples = Vec::with_capacity(iterations);
            for _ in 0..iterations {
                fake.push_reply(reply());
                direct_samples.push(direct(&http, &fake).await);
                fake.push_reply(reply());
                parley_samples.push(through_parley(&mut client, &fake).await);
            }
            let (direct_first, direct_total) = report("direct HTTP to the provider", &direct_samples);
            let (parley_first, parley_total) = report("through llm-service (gRPC)", &parley_samples);
            println!(
                "added by llm-service (p50): first token {:.3} ms, total {:.3} ms",
                ms(parley_first.saturating_sub(direct_first)),
                ms(parley_total.saturating_sub(direct_total))
            );
        }
    });
}
