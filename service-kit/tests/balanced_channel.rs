//! `BalancedChannel` against real gRPC servers on several loopback addresses (127.0.0.2,
//! 127.0.0.3 … are all loopback on Linux) behind one name. Each server runs on a Tokio runtime
//! of its own, so killing one (shutting its runtime down) closes its sockets the way a dying
//! process does, open connections included.
//!
//! "One name" is resolved by a list the test controls (a test cannot make the system's
//! resolver answer a made-up name with several addresses without editing /etc/hosts); the
//! production path, `tokio::net::lookup_host` of `localhost`, is covered by its own test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parley_service_kit::balanced_channel::{BalancedChannel, ChannelOptions, ListResolver, Resolver};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// A gRPC server (grpc.health.v1) that counts the calls it answers.
struct Instance {
    address: SocketAddr,
    calls: Arc<AtomicUsize>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Instance {
    fn start(address: SocketAddr) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(address)?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let (_reporter, health) = tonic_health::server::health_reporter();
            let counting = tonic::service::interceptor::InterceptedService::new(health, move |request| {
                counted.fetch_add(1, Ordering::SeqCst);
                Ok(request)
            });
            tonic::transport::Server::builder()
                .add_service(counting)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
                .expect("serve");
        });
        Ok(Self {
            address,
            calls,
            runtime: Some(runtime),
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Ends the server and every connection it holds at once, as `kill -9` would; returns
    /// once its address refuses connections (the runtime drops its tasks in the background).
    fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
            for _ in 0..500 {
                if std::net::TcpStream::connect(self.address).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("{} still accepts connections", self.address);
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Instances on 127.0.0.2, 127.0.0.3 … all on one port, as a headless Service's pods are.
fn start_instances(count: u8) -> Vec<Instance> {
    for _ in 0..20 {
        let Ok(first) = Instance::start("127.0.0.2:0".parse().expect("address")) else {
            continue;
        };
        let port = first.address.port();
        let rest: Result<Vec<Instance>, _> = (3..2 + count)
            .map(|last| Instance::start(SocketAddr::new(IpAddr::from([127, 0, 0, last]), port)))
            .collect();
        if let Ok(rest) = rest {
            return std::iter::once(first).chain(rest).collect();
        }
    }
    panic!("no port free on every loopback address");
}

/// "chat.test" resolves to the instances given.
#[derive(Clone, Default)]
struct TestResolver(ListResolver);

impl TestResolver {
    fn set(&self, instances: &[&Instance]) {
        self.0
            .set("chat.test", instances.iter().map(|i| i.address.ip()).collect());
    }
}

fn options(resolver: Resolver) -> ChannelOptions {
    ChannelOptions {
        connect_timeout: Duration::from_secs(2),
        keep_alive_interval: None,
        resolve_interval: Duration::from_millis(100),
        resolver,
    }
}

fn channel(resolver: &TestResolver, port: u16) -> BalancedChannel {
    let options = options(Resolver(Arc::new(resolver.0.clone())));
    BalancedChannel::new(&format!("http://chat.test:{port}"), options).expect("channel")
}

async fn call(channel: &BalancedChannel) -> Result<(), tonic::Status> {
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest { service: String::new() })
        .await
        .map(|_| ())
}

/// `calls` calls one after another; every one must succeed.
async fn call_many(channel: &BalancedChannel, calls: usize) {
    for n in 0..calls {
        if let Err(status) = call(channel).await {
            panic!("call {n} failed: {status:?}");
        }
    }
}

fn counts(instances: &[&Instance]) -> Vec<usize> {
    instances.iter().map(|i| i.calls()).collect()
}

async fn wait_for_addresses(channel: &BalancedChannel, instances: &[&Instance]) {
    let mut wanted: Vec<SocketAddr> = instances.iter().map(|i| i.address).collect();
    wanted.sort();
    for _ in 0..200 {
        if channel.serving_addresses() == wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("serving {:?}, wanted {wanted:?}", channel.serving_addresses());
}

#[tokio::test]
async fn calls_spread_over_every_address_the_name_resolves_to_and_follow_it() {
    let instances = start_instances(4);
    let [a, b, c, d] = [&instances[0], &instances[1], &instances[2], &instances[3]];
    let resolver = TestResolver::default();
    resolver.set(&[a, b, c]);
    let channel = channel(&resolver, a.address.port());

    call_many(&channel, 90).await;
    assert_eq!(
        counts(&[a, b, c, d]),
        [30, 30, 30, 0],
        "one call in turn to each address"
    );

    // A replica added (scaled up) and one removed (scaled down): re-resolved on its own.
    resolver.set(&[b, c, d]);
    wait_for_addresses(&channel, &[b, c, d]).await;
    call_many(&channel, 90).await;
    assert_eq!(counts(&[a, b, c, d]), [30, 60, 60, 30]);
}

#[tokio::test]
async fn a_killed_instance_costs_only_its_own_calls_and_is_used_again_once_restarted() {
    let mut instances = start_instances(3);
    let resolver = TestResolver::default();
    resolver.set(&[&instances[0], &instances[1], &instances[2]]);
    let channel = channel(&resolver, instances[0].address.port());
    call_many(&channel, 30).await;
    assert_eq!(counts(&[&instances[0], &instances[1], &instances[2]]), [10, 10, 10]);

    // One long call held on each instance (Watch streams until the server goes away).
    let mut held = Vec::new();
    for instance in &instances {
        let before = instance.calls();
        let mut stream = HealthClient::new(channel.clone())
            .watch(HealthCheckRequest { service: String::new() })
            .await
            .expect("watch")
            .into_inner();
        assert_eq!(instance.calls(), before + 1, "watches go round in turn too");
        assert!(stream.message().await.expect("first status").is_some());
        held.push(stream);
    }
    let mut victim_stream = held.remove(1);

    let victim = instances[1].address;
    instances[1].kill();
    // The call it held fails: that one is the instance's own.
    loop {
        match victim_stream.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a killed server's stream ended cleanly"),
            Err(_) => break,
        }
    }

    // No other call fails: the first to reach the dead address is sent elsewhere, and the
    // address is left out (it is still resolved: the pod may only be restarting).
    let before = counts(&[&instances[0], &instances[2]]);
    call_many(&channel, 60).await;
    let after = counts(&[&instances[0], &instances[2]]);
    assert_eq!(after[0] + after[1] - before[0] - before[1], 60);
    assert!(
        !channel.serving_addresses().contains(&victim),
        "{:?}",
        channel.serving_addresses()
    );
    // The other held calls are untouched: still open (a watch sends only on a change).
    for stream in &mut held {
        let next = tokio::time::timeout(Duration::from_millis(50), stream.message()).await;
        assert!(next.is_err(), "a watch on a live instance ended: {next:?}");
    }

    // Restarted on the same address: probed back in, and called again.
    instances[1] = Instance::start(victim).expect("restart");
    wait_for_addresses(&channel, &[&instances[0], &instances[1], &instances[2]]).await;
    call_many(&channel, 30).await;
    assert_eq!(instances[1].calls(), 10, "the restarted instance takes its turn again");
}

#[tokio::test]
async fn no_reachable_address_is_unavailable_and_an_unknown_name_too() {
    let mut instances = start_instances(1);
    let resolver = TestResolver::default();
    resolver.set(&[&instances[0]]);
    let port = instances[0].address.port();
    instances[0].kill();
    let status = call(&channel(&resolver, port)).await.expect_err("nothing listens");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    let options = options(Resolver(Arc::new(resolver.0.clone())));
    let unknown = BalancedChannel::new(&format!("http://nowhere.test:{port}"), options).expect("channel");
    let status = call(&unknown).await.expect_err("no address");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("resolves to no address"), "{status:?}");
}

#[tokio::test]
async fn the_system_resolver_balances_over_what_localhost_resolves_to() {
    // Whatever `localhost` resolves to here (127.0.0.1, and ::1 where IPv6 is configured):
    // an instance listens on each of those addresses that can be bound.
    let probe = Instance::start("127.0.0.1:0".parse().expect("address")).expect("instance");
    let port = probe.address.port();
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host(("localhost", port))
        .await
        .expect("localhost")
        .collect();
    assert!(resolved.contains(&probe.address), "{resolved:?}");
    let mut instances = vec![probe];
    for address in &resolved {
        if *address != instances[0].address
            && let Ok(instance) = Instance::start(*address)
        {
            instances.push(instance);
        }
    }

    let channel =
        BalancedChannel::new(&format!("http://localhost:{port}"), options(Resolver::default())).expect("channel");
    let calls = 20 * instances.len();
    call_many(&channel, calls).await;
    let by_address: HashMap<SocketAddr, usize> = instances.iter().map(|i| (i.address, i.calls())).collect();
    assert_eq!(by_address.values().sum::<usize>(), calls, "{by_address:?}");
    for (address, count) in &by_address {
        assert!(*count >= 19, "{address} got {count} of {calls} calls");
    }
}
