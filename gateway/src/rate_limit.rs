//! Rate limits at the edge: per client address on the public auth methods (password and code
//! guessing), per user on the methods that start a generation. Over the limit, a call is
//! answered RESOURCE_EXHAUSTED with a `RetryInfo` saying when to try again.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use parley_service_kit::access_token::AuthenticatedUser;
use parley_service_kit::grpc_status::resource_exhausted;
use tonic::body::Body;
use tower::{Layer, Service};

use crate::client_addr::{ClientAddr, IpNetwork, client_ip};
use crate::{ADDRESS_LIMITED_METHODS, Config, USER_LIMITED_METHODS};

/// At most `burst` calls at once, refilled evenly so that `burst` more are allowed per `period`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub burst: u32,
    pub period: Duration,
}

impl RateLimit {
    pub fn per_minute(calls: u32) -> Self {
        Self {
            burst: calls,
            period: Duration::from_secs(60),
        }
    }

    fn refill_per_sec(&self) -> f64 {
        f64::from(self.burst) / self.period.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets by key. Buckets that have refilled completely are forgotten when the table
/// grows, so it stays bounded by the number of recently active keys.
struct Buckets<K> {
    limit: RateLimit,
    buckets: Mutex<HashMap<K, Bucket>>,
}

const PRUNE_ABOVE: usize = 10_000;

impl<K: Hash + Eq + Copy> Buckets<K> {
    fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one call from `key`'s allowance, or says how long until one is available.
    fn take(&self, key: K, now: Instant) -> Result<(), Duration> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let burst = f64::from(self.limit.burst);
        let rate = self.limit.refill_per_sec();
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * rate).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

struct Limits {
    by_address: Option<Buckets<IpAddr>>,
    by_user: Option<Buckets<i64>>,
    address_methods: HashSet<&'static str>,
    user_methods: HashSet<&'static str>,
    trusted_proxies: Vec<IpNetwork>,
}

#[derive(Clone)]
pub(crate) struct RateLimitLayer {
    limits: Arc<Limits>,
}

impl RateLimitLayer {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            limits: Arc::new(Limits {
                by_address: config.auth_rate_limit.filter(|l| l.burst > 0).map(Buckets::new),
                by_user: config.generation_rate_limit.filter(|l| l.burst > 0).map(Buckets::new),
                address_methods: ADDRESS_LIMITED_METHODS.iter().copied().collect(),
                user_methods: USER_LIMITED_METHODS.iter().copied().collect(),
                trusted_proxies: config.trusted_proxies.clone(),
            }),
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimited {
            inner,
            limits: self.limits.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct RateLimited<S> {
    inner: S,
    limits: Arc<Limits>,
}

impl Limits {
    fn check<B>(&self, request: &http::Request<B>) -> Result<(), tonic::Status> {
        let path = request.uri().path();
        let now = Instant::now();
        if let Some(buckets) = &self.by_address
            && self.address_methods.contains(path)
        {
            let peer = request
                .extensions()
                .get::<ClientAddr>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
            let client = client_ip(peer, request.headers(), &self.trusted_proxies);
            buckets.take(client, now).map_err(|retry| {
                tracing::info!(%client, method = path, "rate limited by address");
                resource_exhausted("too many sign-in attempts from this address", retry)
            })?;
        }
        if let Some(buckets) = &self.by_user
            && self.user_methods.contains(path)
            && let Some(user) = request.extensions().get::<AuthenticatedUser>()
        {
            buckets.take(user.user_id, now).map_err(|retry| {
                tracing::info!(user_id = user.user_id, method = path, "rate limited by user");
                resource_exhausted("too many messages", retry)
            })?;
        }
        Ok(())
    }
}

impl<S, B> Service<http::Request<B>> for RateLimited<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if let Err(status) = self.limits.check(&request) {
            return Box::pin(async move { Ok(status.into_http()) });
        }
        Box::pin(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_allow_a_burst_then_refill_evenly() {
        let buckets = Buckets::new(RateLimit {
            burst: 2,
            period: Duration::from_secs(10),
        });
        let start = Instant::now();
        assert_eq!(buckets.take(1, start), Ok(()));
        assert_eq!(buckets.take(1, start), Ok(()));
        let wait = buckets.take(1, start).err().unwrap_or_default();
        assert!((wait.as_secs_f64() - 5.0).abs() < 0.01, "{wait:?}");
        // Another key has its own allowance.
        assert_eq!(buckets.take(2, start), Ok(()));
        assert_eq!(buckets.take(1, start + Duration::from_secs(5)), Ok(()));
        assert!(buckets.take(1, start + Duration::from_secs(5)).is_err());
    }
}
