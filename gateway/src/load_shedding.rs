//! Caps on calls in flight, each refusing at once with RESOURCE_EXHAUSTED and a retry delay
//! instead of letting calls pile up:
//!
//! - per client address, on every call and (smaller) on the calls that need no account, so a
//!   few addresses cannot take every slot without signing in;
//! - globally, on the API (open streams included); reflection streams have a small pool of
//!   their own and health checks take none, so neither can starve the API;
//! - per user, on open streams and on unary calls, so one account cannot take every slot.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use parley_service_kit::access_token::AuthenticatedUser;
use parley_service_kit::grpc_status::resource_exhausted;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::admission::Admission;
use crate::client_addr::{ClientIp, address_key};

const RETRY_AFTER: Duration = Duration::from_secs(1);

const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";
const REFLECTION_PREFIX: &str = "/grpc.reflection.";

/// Whether `path` is a call to the gateway's own health or reflection service.
fn is_health(path: &str) -> bool {
    path.starts_with(HEALTH_PREFIX)
}

fn is_reflection(path: &str) -> bool {
    path.starts_with(REFLECTION_PREFIX)
}

/// Open calls (or connections) by key (an address, a user), each key capped; a key with none
/// open is forgotten.
pub(crate) struct OpenCounts<K> {
    open: Arc<Mutex<HashMap<K, usize>>>,
}

impl<K: Hash + Eq + Copy + Send + 'static> OpenCounts<K> {
    pub(crate) fn new() -> Self {
        Self {
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// One more open call for `key`, unless it already has `max`.
    pub(crate) fn take(&self, key: K, max: usize) -> Option<OpenSlot<K>> {
        let mut open = self.open.lock().ok()?;
        let count = open.entry(key).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(OpenSlot {
            open: Arc::clone(&self.open),
            key,
        })
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.open.lock().map_or(usize::MAX, |open| open.len())
    }
}

/// One open call of a key; gives its slot back when dropped.
pub(crate) struct OpenSlot<K: Hash + Eq> {
    open: Arc<Mutex<HashMap<K, usize>>>,
    key: K,
}

impl<K: Hash + Eq> Drop for OpenSlot<K> {
    fn drop(&mut self) {
        if let Ok(mut open) = self.open.lock()
            && let Some(count) = open.get_mut(&self.key)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Calls in flight per client address (IPv6 by /64), before auth: every call, and with a
/// smaller cap the public ones (sign-in, codes, health, reflection), which anyone can make.
pub(crate) struct CallsPerAddress {
    public_methods: HashSet<&'static str>,
    max_calls: usize,
    max_public_calls: usize,
    calls: OpenCounts<IpAddr>,
    public_calls: OpenCounts<IpAddr>,
}

impl CallsPerAddress {
    pub(crate) fn new(public_methods: &[&'static str], max_calls: usize, max_public_calls: usize) -> Self {
        Self {
            public_methods: public_methods.iter().copied().collect(),
            max_calls,
            max_public_calls,
            calls: OpenCounts::new(),
            public_calls: OpenCounts::new(),
        }
    }

    fn is_public(&self, path: &str) -> bool {
        self.public_methods.contains(path) || is_health(path) || is_reflection(path)
    }
}

/// A call's slots in the per-address counts.
pub(crate) struct AddressSlots {
    _call: OpenSlot<IpAddr>,
    _public: Option<OpenSlot<IpAddr>>,
}

impl Admission for CallsPerAddress {
    type Ticket = AddressSlots;

    fn admit<B>(&self, request: &http::Request<B>) -> Result<AddressSlots, tonic::Status> {
        let path = request.uri().path();
        let Some(&ClientIp(ip)) = request.extensions().get::<ClientIp>() else {
            // Every request is given one before this layer; without it there is nobody to
            // count, and refusing is safer than admitting uncounted.
            tracing::error!(method = path, "no client address on a call");
            return Err(tonic::Status::internal("the client's address is unknown"));
        };
        let client = address_key(ip);
        let refuse = |what: &'static str| {
            tracing::info!(%client, method = path, "too many {what} in flight from one address");
            resource_exhausted(format!("too many {what} at once from this address"), RETRY_AFTER)
        };
        let public = if self.is_public(path) {
            Some(
                self.public_calls
                    .take(client, self.max_public_calls)
                    .ok_or_else(|| refuse("calls without an account"))?,
            )
        } else {
            None
        };
        let call = self.calls.take(client, self.max_calls).ok_or_else(|| refuse("calls"))?;
        Ok(AddressSlots {
            _call: call,
            _public: public,
        })
    }
}

/// The global caps, before auth: the API's calls in flight (streams included), and a small
/// pool of its own for reflection streams (which anyone may hold open). Health checks are
/// answered from memory at once and take no slot, so a full pool never fails a probe.
pub(crate) struct CallsInFlight {
    api: Arc<Semaphore>,
    reflection: Arc<Semaphore>,
}

impl CallsInFlight {
    /// Both caps are at least 1 and at most a million (`Config::validate`).
    pub(crate) fn new(max_api_calls: usize, max_reflection_streams: usize) -> Self {
        let semaphore = |max: usize| Arc::new(Semaphore::new(max.clamp(1, Semaphore::MAX_PERMITS)));
        Self {
            api: semaphore(max_api_calls),
            reflection: semaphore(max_reflection_streams),
        }
    }
}

impl Admission for CallsInFlight {
    /// `None` for health checks.
    type Ticket = Option<OwnedSemaphorePermit>;

    fn admit<B>(&self, request: &http::Request<B>) -> Result<Option<OwnedSemaphorePermit>, tonic::Status> {
        let path = request.uri().path();
        if is_health(path) {
            return Ok(None);
        }
        let (pool, refusal) = if is_reflection(path) {
            (&self.reflection, "too many reflection streams open")
        } else {
            (&self.api, "the server is busy")
        };
        pool.clone().try_acquire_owned().map(Some).map_err(|_| {
            tracing::warn!(method = %path, "shedding load: {refusal}");
            resource_exhausted(refusal, RETRY_AFTER)
        })
    }
}

/// Calls of a set of methods one user may have in flight, capped. Runs after auth: only a
/// signed-in caller's calls count.
pub(crate) struct CallsPerUser {
    /// The methods counted (the streaming ones, or the unary ones).
    methods: HashSet<String>,
    max_per_user: usize,
    open: OpenCounts<i64>,
    refusal: &'static str,
}

impl CallsPerUser {
    /// Open streams (SendMessage, WatchGeneration …) per user.
    pub(crate) fn streams(streaming_methods: HashSet<String>, max_per_user: usize) -> Self {
        Self::new(
            streaming_methods,
            max_per_user,
            "too many streams open at once for this account",
        )
    }

    /// Unary calls in flight per user (a slow provider can hold TestApiConfig for a minute).
    pub(crate) fn unary(unary_methods: HashSet<String>, max_per_user: usize) -> Self {
        Self::new(
            unary_methods,
            max_per_user,
            "too many unary calls in flight at once for this account",
        )
    }

    fn new(methods: HashSet<String>, max_per_user: usize, refusal: &'static str) -> Self {
        Self {
            methods,
            max_per_user,
            open: OpenCounts::new(),
            refusal,
        }
    }
}

impl Admission for CallsPerUser {
    /// `None` for calls that are not a signed-in user's call of these methods.
    type Ticket = Option<OpenSlot<i64>>;

    fn admit<B>(&self, request: &http::Request<B>) -> Result<Option<OpenSlot<i64>>, tonic::Status> {
        let path = request.uri().path();
        let Some(user) = request.extensions().get::<AuthenticatedUser>() else {
            return Ok(None);
        };
        if !self.methods.contains(path) {
            return Ok(None);
        }
        match self.open.take(user.user_id, self.max_per_user) {
            Some(slot) => Ok(Some(slot)),
            None => {
                tracing::info!(user_id = user.user_id, method = path, "{}", self.refusal);
                Err(resource_exhausted(self.refusal, RETRY_AFTER))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_per_key_and_come_back() {
        let counts = OpenCounts::new();
        let first = counts.take(1, 2);
        let second = counts.take(1, 2);
        assert!(first.is_some() && second.is_some());
        assert!(counts.take(1, 2).is_none());
        assert!(counts.take(2, 2).is_some(), "another key has its own slots");
        drop(first);
        let third = counts.take(1, 2);
        assert!(third.is_some());
        drop((second, third));
        assert_eq!(counts.remembered(), 0, "a key with nothing open is forgotten");
    }

    fn request(path: &str, ip: &str) -> http::Request<()> {
        let mut request = http::Request::post(path).body(()).unwrap_or_else(|e| panic!("{e}"));
        let ip: IpAddr = ip.parse().unwrap_or_else(|e| panic!("{e}"));
        request.extensions_mut().insert(ClientIp(ip));
        request
    }

    #[test]
    fn public_calls_have_a_smaller_cap_per_address_within_the_whole() {
        const LOGIN: &str = "/parley.user.v1.UserService/Login";
        let caps = CallsPerAddress::new(&[LOGIN], 3, 2);
        let login = |ip| caps.admit(&request(LOGIN, ip));
        let other = |ip| caps.admit(&request("/parley.chat.v1.SessionService/ListSessions", ip));
        let held = [login("203.0.113.1"), login("203.0.113.1")];
        assert!(held.iter().all(Result::is_ok));
        assert!(login("203.0.113.1").is_err(), "a third public call");
        let watch = caps.admit(&request(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "203.0.113.1",
        ));
        assert!(watch.is_err(), "reflection is public too");
        assert!(login("203.0.113.2").is_ok(), "another address");
        let third = other("203.0.113.1");
        assert!(third.is_ok(), "calls with an account still fit the whole cap");
        assert!(other("203.0.113.1").is_err(), "the whole cap");
        // IPv6 addresses count by /64.
        let v6 = [login("2001:db8::1"), login("2001:db8::2")];
        assert!(v6.iter().all(Result::is_ok));
        assert!(login("2001:db8::3").is_err());
        drop(held);
        assert!(login("203.0.113.1").is_ok(), "slots come back");
    }

    #[test]
    fn health_takes_no_slot_and_reflection_has_its_own_pool() {
        let caps = CallsInFlight::new(1, 1);
        let ip = "203.0.113.1";
        let reflection = caps.admit(&request(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            ip,
        ));
        assert!(matches!(reflection, Ok(Some(_))));
        assert!(
            caps.admit(&request(
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                ip
            ))
            .is_err()
        );
        assert!(matches!(
            caps.admit(&request("/grpc.health.v1.Health/Check", ip)),
            Ok(None)
        ));
        let api = caps.admit(&request("/parley.user.v1.UserService/Login", ip));
        assert!(matches!(api, Ok(Some(_))), "reflection does not take the API's slots");
        assert!(caps.admit(&request("/parley.user.v1.UserService/Login", ip)).is_err());
    }
}
