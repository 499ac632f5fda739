//! Rate limits at the edge: per client address on the public auth methods (password and code
//! guessing) and, with a separate and larger allowance, on RefreshToken and Logout (a busy tab
//! refreshing its token must never lock its user out of signing in), and with its own on
//! GetSharedChat (opening a shared link); per user on the methods
//! that start a generation and, with their own allowance, on those that ask the user's
//! provider (TestApiConfig, ListModels). Over the limit, a call is answered RESOURCE_EXHAUSTED
//! with a `RetryInfo` saying when to try again.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use parley_service_kit::access_token::AuthenticatedUser;
use parley_service_kit::grpc_status::{Reason, resource_exhausted, with_reason};

use crate::admission::Admission;
use crate::client_addr::{ClientIp, address_key};
use crate::config::Config;

/// Public methods that guess secrets (passwords, codes): limited per client address.
const ADDRESS_LIMITED_METHODS: &[&str] = &[
    "/parley.user.v1.UserService/Register",
    "/parley.user.v1.UserService/Login",
    "/parley.user.v1.UserService/SendVerificationCode",
    "/parley.user.v1.UserService/VerifyCode",
    "/parley.user.v1.UserService/ResetPassword",
];

/// Public methods that spend a refresh token: limited per client address too, but with their
/// own, larger allowance. A refresh token cannot be guessed, and a busy tab refreshing must
/// not use up the allowance its user needs to sign in.
const REFRESH_LIMITED_METHODS: &[&str] = &[
    "/parley.user.v1.UserService/RefreshToken",
    "/parley.user.v1.UserService/Logout",
];

/// The public method that reads a shared chat's snapshot: limited per client address with its
/// own allowance (a link's token cannot be guessed, but each call reads a whole chat).
const SHARED_CHAT_LIMITED_METHODS: &[&str] = &["/parley.chat.v1.SharedChatService/GetSharedChat"];

/// Methods that start a generation (they cost the user's provider money): limited per user.
const USER_LIMITED_METHODS: &[&str] = &[
    "/parley.chat.v1.MessageService/SendMessage",
    "/parley.chat.v1.MessageService/RegenerateMessage",
];

/// Methods that ask the user's provider (each can take up to the unary timeout and costs the
/// provider a request): limited per user, with their own allowance.
const PROVIDER_LIMITED_METHODS: &[&str] = &[
    "/parley.chat.v1.ApiConfigService/TestApiConfig",
    "/parley.chat.v1.ApiConfigService/ListModels",
    // Asks every provider of the caller's when its cached lists are old or refreshed.
    "/parley.chat.v1.ModelService/ListChatModels",
];

/// At most `burst` calls at once, refilled evenly so that `burst` more are allowed per `period`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub burst: u32,
    pub period: Duration,
}

impl RateLimit {
    pub(crate) fn per_minute(calls: u32) -> Self {
        Self {
            burst: calls,
            period: Duration::from_secs(60),
        }
    }

    fn refill_per_sec(&self) -> f64 {
        f64::from(self.burst) / self.period.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets by key, in two generations so that forgetting idle keys costs nothing per
/// call. A bucket untouched for a whole `period` has refilled completely, so it is the same as
/// no bucket: every `period` the current generation becomes the previous one and the previous
/// one is dropped (one deallocation, no scan). Memory stays bounded by the keys active in the
/// last two periods, and every call is O(1).
struct Buckets<K> {
    limit: RateLimit,
    generations: Mutex<Generations<K>>,
}

struct Generations<K> {
    current: HashMap<K, Bucket>,
    previous: HashMap<K, Bucket>,
    rotated: Instant,
}

impl<K: Hash + Eq + Copy> Buckets<K> {
    fn new(limit: RateLimit, now: Instant) -> Self {
        Self {
            limit,
            generations: Mutex::new(Generations {
                current: HashMap::new(),
                previous: HashMap::new(),
                rotated: now,
            }),
        }
    }

    /// Takes one call from `key`'s allowance, or says how long until one is available.
    fn take(&self, key: K, now: Instant) -> Result<(), Duration> {
        let Ok(mut generations) = self.generations.lock() else {
            return Ok(());
        };
        let generations = &mut *generations;
        let since_rotation = now.saturating_duration_since(generations.rotated);
        if since_rotation >= self.limit.period {
            if since_rotation.saturating_sub(self.limit.period) >= self.limit.period {
                // Both generations are older than a period: all of them are full again.
                generations.current.clear();
            }
            generations.previous = std::mem::take(&mut generations.current);
            generations.rotated = now;
        }
        let burst = f64::from(self.limit.burst);
        let rate = self.limit.refill_per_sec();
        let bucket = match generations.current.get_mut(&key) {
            Some(bucket) => bucket,
            None => {
                let moved = generations.previous.remove(&key).unwrap_or(Bucket {
                    tokens: burst,
                    updated: now,
                });
                generations.current.entry(key).or_insert(moved)
            }
        };
        let idle = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + idle * rate).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.generations
            .lock()
            .map_or(0, |g| g.current.len() + g.previous.len())
    }
}

/// One limit on a set of methods, keyed by client address.
struct AddressLimit {
    methods: HashSet<&'static str>,
    buckets: Buckets<IpAddr>,
    refusal: &'static str,
}

/// One limit on a set of methods, keyed by user.
struct UserLimit {
    methods: HashSet<&'static str>,
    buckets: Buckets<i64>,
    refusal: &'static str,
}

/// Every rate limit, checked before a call is forwarded.
pub(crate) struct Limits {
    by_address: Vec<AddressLimit>,
    by_user: Vec<UserLimit>,
}

impl Limits {
    pub(crate) fn new(config: &Config) -> Self {
        let now = Instant::now();
        let active = |limit: Option<RateLimit>| limit.filter(|l| l.burst > 0);
        let by_address = [
            (
                config.auth_rate_limit,
                ADDRESS_LIMITED_METHODS,
                "too many sign-in attempts from this address",
            ),
            (
                config.refresh_rate_limit,
                REFRESH_LIMITED_METHODS,
                "too many token refreshes from this address",
            ),
            (
                config.shared_chat_rate_limit,
                SHARED_CHAT_LIMITED_METHODS,
                "too many shared chats opened from this address",
            ),
        ]
        .into_iter()
        .filter_map(|(limit, methods, refusal)| {
            Some(AddressLimit {
                methods: methods.iter().copied().collect(),
                buckets: Buckets::new(active(limit)?, now),
                refusal,
            })
        })
        .collect();
        let by_user = [
            (config.generation_rate_limit, USER_LIMITED_METHODS, "too many messages"),
            (
                config.provider_rate_limit,
                PROVIDER_LIMITED_METHODS,
                "too many connection tests and model lists",
            ),
        ]
        .into_iter()
        .filter_map(|(limit, methods, refusal)| {
            Some(UserLimit {
                methods: methods.iter().copied().collect(),
                buckets: Buckets::new(active(limit)?, now),
                refusal,
            })
        })
        .collect();
        Self { by_address, by_user }
    }
}

impl Admission for Limits {
    type Ticket = ();

    fn admit<B>(&self, request: &http::Request<B>) -> Result<(), tonic::Status> {
        let path = request.uri().path();
        let now = Instant::now();
        if let Some(limit) = self.by_address.iter().find(|l| l.methods.contains(path)) {
            let Some(&ClientIp(ip)) = request.extensions().get::<ClientIp>() else {
                tracing::error!(method = path, "no client address on a rate-limited call");
                return Err(tonic::Status::internal("the client's address is unknown"));
            };
            let client = address_key(ip);
            limit.buckets.take(client, now).map_err(|retry| {
                tracing::info!(%client, method = path, "rate limited by address");
                rate_limited(limit.refusal, retry)
            })?;
        }
        if let Some(limit) = self.by_user.iter().find(|l| l.methods.contains(path))
            && let Some(user) = request.extensions().get::<AuthenticatedUser>()
        {
            limit.buckets.take(user.user_id, now).map_err(|retry| {
                tracing::info!(user_id = user.user_id, method = path, "rate limited by user");
                rate_limited(limit.refusal, retry)
            })?;
        }
        Ok(())
    }
}

/// RESOURCE_EXHAUSTED with when to retry and the reason the UI words as "too many requests".
fn rate_limited(refusal: &str, retry: Duration) -> tonic::Status {
    with_reason(resource_exhausted(refusal, retry), Reason::RateLimited)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every full method path (`/package.Service/Method`) the compiled protos define.
    fn defined_methods() -> HashSet<String> {
        use prost::Message;
        let set =
            prost_types::FileDescriptorSet::decode(parley_proto::FILE_DESCRIPTOR_SET).unwrap_or_else(|e| panic!("{e}"));
        set.file
            .iter()
            .flat_map(|file| {
                file.service.iter().flat_map(move |service| {
                    service
                        .method
                        .iter()
                        .map(move |method| format!("/{}.{}/{}", file.package(), service.name(), method.name()))
                })
            })
            .collect()
    }

    /// Renaming an RPC must not silently switch off its rate limit.
    #[test]
    fn every_limited_method_is_defined_and_the_address_limited_ones_are_public() {
        let defined = defined_methods();
        let lists = [
            ("ADDRESS_LIMITED_METHODS", ADDRESS_LIMITED_METHODS),
            ("REFRESH_LIMITED_METHODS", REFRESH_LIMITED_METHODS),
            ("SHARED_CHAT_LIMITED_METHODS", SHARED_CHAT_LIMITED_METHODS),
            ("USER_LIMITED_METHODS", USER_LIMITED_METHODS),
            ("PROVIDER_LIMITED_METHODS", PROVIDER_LIMITED_METHODS),
        ];
        for (name, list) in lists {
            assert!(!list.is_empty(), "{name} is empty");
            for method in list {
                assert!(
                    defined.contains(*method),
                    "{name} lists {method}, which no proto defines"
                );
            }
        }
        // Limited by address because they need no account; the others are per user, so
        // they must need one (a public method has no user to count).
        let public = crate::public_methods();
        for method in ADDRESS_LIMITED_METHODS
            .iter()
            .chain(REFRESH_LIMITED_METHODS)
            .chain(SHARED_CHAT_LIMITED_METHODS)
        {
            assert!(
                public.contains(method),
                "{method} is limited by address but needs an account"
            );
        }
        for method in USER_LIMITED_METHODS.iter().chain(PROVIDER_LIMITED_METHODS) {
            assert!(!public.contains(method), "{method} is limited per user but is public");
        }
    }

    #[test]
    fn a_refusal_says_when_to_retry_and_why() {
        let status = rate_limited("too many sign-ins", Duration::from_secs(3));
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            parley_service_kit::grpc_status::reason(&status),
            Some(Reason::RateLimited)
        );
        assert_eq!(
            parley_service_kit::grpc_status::retry_delay(&status),
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn buckets_allow_a_burst_then_refill_evenly() {
        let start = Instant::now();
        let buckets = Buckets::new(
            RateLimit {
                burst: 2,
                period: Duration::from_secs(10),
            },
            start,
        );
        assert_eq!(buckets.take(1, start), Ok(()));
        assert_eq!(buckets.take(1, start), Ok(()));
        let wait = buckets.take(1, start).err().unwrap_or_default();
        assert!((wait.as_secs_f64() - 5.0).abs() < 0.01, "{wait:?}");
        // Another key has its own allowance.
        assert_eq!(buckets.take(2, start), Ok(()));
        assert_eq!(buckets.take(1, start + Duration::from_secs(5)), Ok(()));
        assert!(buckets.take(1, start + Duration::from_secs(5)).is_err());
    }

    #[test]
    fn a_bucket_keeps_its_state_across_one_rotation() {
        let start = Instant::now();
        let period = Duration::from_secs(10);
        let buckets = Buckets::new(RateLimit { burst: 2, period }, start);
        assert_eq!(buckets.take(1, start + Duration::from_secs(9)), Ok(()));
        assert_eq!(buckets.take(1, start + Duration::from_secs(9)), Ok(()));
        // The generations rotate at 10 s; key 1 moved to the previous one, still empty-ish.
        assert_eq!(buckets.take(2, start + Duration::from_secs(10)), Ok(()));
        assert!(buckets.take(1, start + Duration::from_secs(10)).is_err());
    }

    #[test]
    fn idle_keys_are_forgotten_without_scanning() {
        let start = Instant::now();
        let period = Duration::from_secs(60);
        let buckets = Buckets::new(RateLimit { burst: 1, period }, start);
        for key in 0..50_000u32 {
            assert_eq!(buckets.take(key, start), Ok(()));
        }
        assert_eq!(buckets.remembered(), 50_000);
        // Every key is limited until it has refilled ...
        assert!(buckets.take(7, start + period / 2).is_err());
        // ... and a period later the idle ones are gone, having refilled completely.
        let later = start + period * 2;
        assert_eq!(buckets.take(7, later), Ok(()));
        assert_eq!(buckets.take(8, later + period), Ok(()));
        assert_eq!(buckets.remembered(), 2);
        assert_eq!(buckets.take(9, later + period * 3), Ok(()));
        assert_eq!(buckets.remembered(), 1);
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(address_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            address_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            address_key(ip("2001:db8:1:2::1"))
        );
        assert_ne!(address_key(ip("2001:db8:1:3::1")), address_key(ip("2001:db8:1:2::1")));
        assert_eq!(address_key(ip("203.0.113.9")), ip("203.0.113.9"));

        let start = Instant::now();
        let buckets = Buckets::new(RateLimit::per_minute(1), start);
        assert_eq!(buckets.take(address_key(ip("2001:db8::1")), start), Ok(()));
        assert!(buckets.take(address_key(ip("2001:db8::2")), start).is_err());
    }
}
