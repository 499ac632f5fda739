//! Signing in and the failure counters that slow password guessers.

use std::net::IpAddr;
use std::time::Duration;

use parley_service_kit::database::now_millis;

use super::{AccountService, SignedIn, check_password_given, find_account, millis, until};
use crate::Error;
use crate::account_fields::Login;
use crate::store::{AccountStatus, AttemptReserved};
use crate::verification;

/// How failures on one counter turn into a lock: `free_failures` in a row cost nothing, then
/// each locks for `first_lock`, doubling with every further failure up to `max_lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockSchedule {
    pub free_failures: i64,
    pub first_lock: Duration,
    pub max_lock: Duration,
}

impl LockSchedule {
    /// How long the counter stays locked after its `failures`-th failure.
    pub fn lock_after(&self, failures: i64) -> Duration {
        if failures <= self.free_failures {
            return Duration::ZERO;
        }
        let doublings = (failures - self.free_failures - 1).min(16) as u32;
        self.first_lock.saturating_mul(1 << doublings).min(self.max_lock)
    }
}

/// The three counters a failed sign-in is counted on. A guesser at one address is stopped by
/// the first, which leaves the owner, elsewhere, alone. The second slows one address trying
/// many logins; the third, a ceiling one address cannot reach, slows a guesser spread over
/// many addresses (and then, unavoidably, the owner too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInLimits {
    /// A login (as typed) from one client address.
    pub per_login_and_address: LockSchedule,
    /// Every login from one client address (an IPv6 address counts by its /64).
    pub per_address: LockSchedule,
    /// A login from every address together.
    pub per_login: LockSchedule,
}

/// One address hardly dents the per-login ceiling: its own counter allows 4 failures, then
/// locks 30 s, 1 min, … up to an hour, 34 failures a day (counters are forgotten a day
/// after their last failure). 200 takes six addresses guessing all day; beyond it a
/// distributed guesser gets about one guess every 15 minutes.
pub const SIGN_IN_LIMITS: SignInLimits = SignInLimits {
    per_login_and_address: LockSchedule {
        free_failures: 4,
        first_lock: Duration::from_secs(30),
        max_lock: Duration::from_secs(60 * 60),
    },
    per_address: LockSchedule {
        free_failures: 50,
        first_lock: Duration::from_secs(30),
        max_lock: Duration::from_secs(15 * 60),
    },
    per_login: LockSchedule {
        free_failures: 200,
        first_lock: Duration::from_secs(30),
        max_lock: Duration::from_secs(15 * 60),
    },
};

/// Where a request came from: the address the gateway saw (its `x-parley-client-ip`
/// header), or the connection's peer for a direct call; `None` when neither is known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientAddress {
    pub ip: Option<IpAddr>,
    /// Whether the gateway named it. Only then is it counted for every login together: a
    /// peer address may be a gateway that does not forward (every user behind one address),
    /// and one guesser there must not lock everyone out.
    pub forwarded: bool,
}

impl ClientAddress {
    /// The address as counters key it: IPv4 (also IPv4-mapped IPv6) in full, IPv6 by its /64,
    /// since one subscriber usually holds a whole /64 and could otherwise count afresh from
    /// each of its addresses.
    fn key(&self) -> String {
        match self.ip {
            None => "unknown".to_string(),
            Some(IpAddr::V4(v4)) => v4.to_string(),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
        }
    }
}

/// The ceiling counter of a login as typed (normalized), over every address: the same for
/// known and unknown logins, and separate for a username and an email, so locking one says
/// nothing about whether the other names the same account.
pub(super) fn login_key(login: &Login) -> String {
    verification::bucket_key("login", login.key())
}

/// The counter of a login as typed from one client address.
pub(super) fn login_address_key(login: &Login, address: &ClientAddress) -> String {
    verification::bucket_key("login-address", &format!("{}\u{0}{}", login.key(), address.key()))
}

/// The counter of every sign-in failure from one client address.
fn address_key(address: &ClientAddress) -> String {
    verification::bucket_key("address", &address.key())
}

/// The failure counter of a signed-in user's own password checks (ChangePassword,
/// DeleteAccount), so a stolen access token cannot be used to guess the password.
pub(super) fn own_password_key(user_id: i64) -> String {
    verification::bucket_key("own-password", &user_id.to_string())
}

impl AccountService {
    /// Reserves an attempt on a failure counter before a password is checked (see
    /// [`AccountStore::reserve_attempt`]); RESOURCE_EXHAUSTED while it is locked. Also counts
    /// a failure already known to have happened.
    pub(super) async fn reserve_attempt(&self, key: &str, schedule: LockSchedule) -> Result<(), Error> {
        let now = now_millis();
        match self
            .store
            .reserve_attempt(key, now, |failures| millis(schedule.lock_after(failures)))
            .await?
        {
            AttemptReserved::Granted { .. } => Ok(()),
            AttemptReserved::Locked { until: locked_until } => Err(Error::RateLimited {
                message: "too many failed sign-in attempts",
                retry_after: until(locked_until, now),
            }),
        }
    }

    /// RESOURCE_EXHAUSTED if any of the counters is locked now; counts nothing.
    async fn refuse_if_locked(&self, keys: &[&str]) -> Result<(), Error> {
        let now = now_millis();
        let mut latest = None;
        for key in keys {
            if let Some(locked_until) = self.store.locked_until(key).await?
                && locked_until > now
            {
                latest = latest.max(Some(locked_until));
            }
        }
        match latest {
            None => Ok(()),
            Some(locked_until) => Err(Error::RateLimited {
                message: "too many failed sign-in attempts",
                retry_after: until(locked_until, now),
            }),
        }
    }

    /// Signs in. Failures count on three counters (see [`SignInLimits`]): the login from this
    /// address is reserved before the password is checked, so parallel guesses cannot slip
    /// past its small allowance; the address's and the login's wide ones are checked first
    /// and counted once a password turned out wrong (a burst overshoots them by at most the
    /// hashing concurrency, which their size makes irrelevant). Only the first is cleared by
    /// a success: clearing the others would let a guesser holding any account of its own
    /// (or the owner, by signing in daily) reset them.
    pub async fn login(&self, login: &str, password: &str, client: ClientAddress) -> Result<SignedIn, Error> {
        let login = Login::parse("login", login)?;
        check_password_given("password", password)?;
        // Taken first: a request refused because the server is busy has used no attempt.
        let slot = self.passwords.slot().await?;
        let user = find_account(&self.store, &login).await?;
        let pair_key = login_address_key(&login, &client);
        let address_key = address_key(&client);
        let login_key = login_key(&login);
        // The address's own counter only for an address the gateway named (see ClientAddress).
        let wide: Vec<(&str, LockSchedule)> = [
            Some((address_key.as_str(), self.limits.per_address)).filter(|_| client.forwarded),
            Some((login_key.as_str(), self.limits.per_login)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let wide_keys: Vec<&str> = wide.iter().map(|(key, _)| *key).collect();
        self.refuse_if_locked(&wide_keys).await?;
        self.reserve_attempt(&pair_key, self.limits.per_login_and_address)
            .await?;
        let matches = match &user {
            Some(user) => slot.verify(password, &user.password_hash).await?,
            None => {
                slot.verify_nothing(password).await?;
                false
            }
        };
        drop(slot);
        // A failure was counted on the pair's counter when the attempt was reserved.
        let Some(user) = user.filter(|_| matches) else {
            for (key, schedule) in wide {
                // Locked meanwhile by a parallel failure: this one need not count as well.
                match self.reserve_attempt(key, schedule).await {
                    Ok(()) | Err(Error::RateLimited { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            return Err(Error::BadCredentials);
        };
        self.store.clear_login_failures(&pair_key).await?;
        match user.status {
            AccountStatus::Active => {}
            AccountStatus::Disabled => return Err(Error::AccountDisabled),
            AccountStatus::Pending => return Err(Error::AwaitingApproval),
        }
        self.start_session(user).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_grows_then_caps() {
        let pair = SIGN_IN_LIMITS.per_login_and_address;
        assert_eq!(pair.lock_after(1), Duration::ZERO);
        assert_eq!(pair.lock_after(4), Duration::ZERO);
        assert_eq!(pair.lock_after(5), Duration::from_secs(30));
        assert_eq!(pair.lock_after(6), Duration::from_secs(60));
        assert_eq!(pair.lock_after(7), Duration::from_secs(120));
        assert_eq!(pair.lock_after(100), Duration::from_secs(60 * 60));
        let ceiling = SIGN_IN_LIMITS.per_login;
        assert_eq!(ceiling.lock_after(200), Duration::ZERO);
        assert_eq!(ceiling.lock_after(201), Duration::from_secs(30));
        assert_eq!(ceiling.lock_after(1000), Duration::from_secs(15 * 60));
    }

    /// What one address can add to a login's ceiling in a day of steady guessing (its counter
    /// is forgotten a day after its last failure): far below the ceiling's free failures, or
    /// one address could lock the owner out.
    #[test]
    fn one_address_cannot_reach_the_ceiling_in_a_day() {
        let pair = SIGN_IN_LIMITS.per_login_and_address;
        let day = 24 * 60 * 60 * 1000;
        let (mut now, mut failures) = (0i64, 0i64);
        while now < day {
            failures += 1;
            now += millis(pair.lock_after(failures)).max(1);
        }
        assert!(
            failures * 5 < SIGN_IN_LIMITS.per_login.free_failures,
            "{failures} a day"
        );
    }

    fn address(text: &str) -> ClientAddress {
        ClientAddress {
            ip: Some(text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))),
            forwarded: true,
        }
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        assert_eq!(
            address("2001:db8:1:2:aaaa::1").key(),
            address("2001:db8:1:2:bbbb::9").key()
        );
        assert_ne!(address("2001:db8:1:2::1").key(), address("2001:db8:1:3::1").key());
        assert_eq!(address("::ffff:192.0.2.7").key(), "192.0.2.7");
        assert_eq!(address("192.0.2.7").key(), "192.0.2.7");
        assert_eq!(ClientAddress::default().key(), "unknown");
    }
}
