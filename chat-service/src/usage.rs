//! Token usage arithmetic, kept free of I/O: UTC days and months (usage is stored per day,
//! limits reset at UTC midnight and on the first of the month), ISO dates as the API takes and
//! gives them, and cost. Prices are micro-units per 1,000,000 tokens, so tokens × price is
//! the cost in pico-units (10⁻¹² of the currency), exact in integers; it is rounded to
//! micro-units only when shown.

use std::time::Duration;

use crate::context_budget;
use crate::ids::{ApiConfigId, OwnerId};

const MILLIS_PER_DAY: i64 = 86_400_000;
const PICOS_PER_MICRO: i64 = 1_000_000;

/// A UTC calendar day as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i64);

impl Day {
    pub fn of_millis(millis: i64) -> Self {
        Self(millis.div_euclid(MILLIS_PER_DAY))
    }

    pub fn start_millis(self) -> i64 {
        self.0 * MILLIS_PER_DAY
    }

    /// (year, month 1–12, day 1–31); Howard Hinnant's `civil_from_days`.
    pub fn civil(self) -> (i64, u32, u32) {
        let z = self.0 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        (year, month, day)
    }

    /// The day of a calendar date; `None` when it does not exist (2026-02-30).
    pub fn from_civil(year: i64, month: u32, day: u32) -> Option<Self> {
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return None;
        }
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let m = i64::from(month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Some(Self(era * 146_097 + doe - 719_468))
    }

    /// The first day of this day's month.
    pub fn month_start(self) -> Self {
        let (_, _, day) = self.civil();
        Self(self.0 - i64::from(day) + 1)
    }

    /// The first day of the next month.
    pub fn next_month_start(self) -> Self {
        let (year, month, _) = self.civil();
        let (year, month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
        Self::from_civil(year, month, 1).unwrap_or(Self(self.0 + 31))
    }

    /// The first day of the previous month.
    pub fn previous_month_start(self) -> Self {
        Self(self.month_start().0 - 1).month_start()
    }

    /// "2026-12-03".
    pub fn iso(self) -> String {
        let (year, month, day) = self.civil();
        format!("{year:04}-{month:02}-{day:02}")
    }

    /// "2026-12".
    pub fn iso_month(self) -> String {
        let (year, month, _) = self.civil();
        format!("{year:04}-{month:02}")
    }

    /// Parses "YYYY-MM-DD"; `None` for anything else or a date that does not exist.
    pub fn parse_iso(text: &str) -> Option<Self> {
        let mut parts = text.split('-');
        let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || year.len() != 4 || month.len() != 2 || day.len() != 2 {
            return None;
        }
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !(digits(year) && digits(month) && digits(day)) {
            return None;
        }
        Self::from_civil(year.parse().ok()?, month.parse().ok()?, day.parse().ok()?)
    }
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Cost in pico-units of `tokens` at `price_micros` per 1,000,000 tokens (saturating: a
/// price that large is an input error caught by validation long before).
pub fn cost_picos(prompt_tokens: i64, completion_tokens: i64, price: &ModelPrice) -> i64 {
    prompt_tokens
        .saturating_mul(price.prompt_micros)
        .saturating_add(completion_tokens.saturating_mul(price.completion_micros))
}

/// Pico-units as micro-units, rounded to the nearest.
pub fn picos_to_micros(picos: i64) -> i64 {
    (picos + PICOS_PER_MICRO / 2).div_euclid(PICOS_PER_MICRO)
}

/// A model's price, micro-units per 1,000,000 tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelPrice {
    pub prompt_micros: i64,
    pub completion_micros: i64,
}

/// Who an answer is charged to and at what price: made when the turn starts, turned into a
/// [`UsageCharge`] when the answer ends.
#[derive(Debug, Clone)]
pub struct UsageMeter {
    pub owner: OwnerId,
    pub config_id: ApiConfigId,
    pub shared: bool,
    pub model: String,
    pub price: ModelPrice,
    pub currency: String,
    /// Estimated tokens of what was sent, for answers the provider reports no usage of.
    pub prompt_estimate: i64,
}

/// One answer's tokens, added to `token_usage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageCharge {
    pub owner: OwnerId,
    pub config_id: ApiConfigId,
    pub shared: bool,
    pub model: String,
    pub day: Day,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_picos: i64,
    pub currency: String,
}

impl UsageMeter {
    /// The charge for an answer that ended at `now_millis`: the provider's counts when it
    /// reported them, else estimates (a stopped or cut answer still used tokens, and must count
    /// toward limits). Nothing for an answer that produced nothing and reported nothing.
    pub fn charge(&self, reported: Option<(i64, i64)>, answer_text: &str, now_millis: i64) -> Option<UsageCharge> {
        let (prompt_tokens, completion_tokens) = match reported {
            Some(counts) => counts,
            None if answer_text.is_empty() => return None,
            None => (
                self.prompt_estimate,
                context_budget::estimate_tokens(answer_text) as i64,
            ),
        };
        let (prompt_tokens, completion_tokens) = (prompt_tokens.max(0), completion_tokens.max(0));
        Some(UsageCharge {
            owner: self.owner,
            config_id: self.config_id,
            shared: self.shared,
            model: self.model.clone(),
            day: Day::of_millis(now_millis),
            prompt_tokens,
            completion_tokens,
            cost_picos: cost_picos(prompt_tokens, completion_tokens, &self.price),
            currency: self.currency.clone(),
        })
    }
}

/// Which token limit of a shared connection a user reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitPeriod {
    Daily,
    Monthly,
}

impl LimitPeriod {
    pub fn name(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Monthly => "monthly",
        }
    }
}

/// A reached limit: which, and when it resets (UTC midnight, or the first of next month).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitReached {
    pub period: LimitPeriod,
    pub limit: i64,
    pub resets_at_millis: i64,
}

impl LimitReached {
    pub fn retry_after(&self, now_millis: i64) -> Duration {
        Duration::from_millis(u64::try_from(self.resets_at_millis - now_millis).unwrap_or(0))
    }
}

/// Whether tokens used today and this month leave room under the limits (0: none). The daily
/// limit is named first when both are reached, unless the monthly one resets later.
pub fn check_limits(
    daily_limit: i64,
    monthly_limit: i64,
    used_today: i64,
    used_this_month: i64,
    now_millis: i64,
) -> Result<(), LimitReached> {
    let today = Day::of_millis(now_millis);
    if monthly_limit > 0 && used_this_month >= monthly_limit {
        return Err(LimitReached {
            period: LimitPeriod::Monthly,
            limit: monthly_limit,
            resets_at_millis: today.next_month_start().start_millis(),
        });
    }
    if daily_limit > 0 && used_today >= daily_limit {
        return Err(LimitReached {
            period: LimitPeriod::Daily,
            limit: daily_limit,
            resets_at_millis: Day(today.0 + 1).start_millis(),
        });
    }
    Ok(())
}

/// "2026-12-04T00:00:00Z" for a day's start.
pub fn iso_instant(millis: i64) -> String {
    format!("{}T00:00:00Z", Day::of_millis(millis).iso())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_through_the_calendar() {
        assert_eq!(Day(0).iso(), "1970-01-01");
        assert_eq!(Day::parse_iso("2026-12-03").unwrap().iso(), "2026-12-03");
        assert_eq!(Day::parse_iso("2024-02-29").unwrap().iso(), "2024-02-29");
        for day in -800..80_000 {
            let (y, m, d) = Day(day).civil();
            assert_eq!(Day::from_civil(y, m, d), Some(Day(day)));
        }
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-1-01",
            "26-01-01",
            "2026-01-01x",
            "",
            "2026-00-10",
        ] {
            assert_eq!(Day::parse_iso(bad), None, "{bad}");
        }
    }

    #[test]
    fn months_start_and_end_where_the_calendar_says() {
        let day = Day::parse_iso("2026-12-17").unwrap();
        assert_eq!(day.month_start().iso(), "2026-12-01");
        assert_eq!(day.next_month_start().iso(), "2027-01-01");
        assert_eq!(day.previous_month_start().iso(), "2026-11-01");
        assert_eq!(day.iso_month(), "2026-12");
        let march = Day::parse_iso("2024-03-01").unwrap();
        assert_eq!(march.previous_month_start().iso(), "2024-02-01");
        assert_eq!(march.month_start(), march);
    }

    #[test]
    fn cost_is_exact_and_rounded_only_when_shown() {
        // 0.15 per million prompt tokens, 0.60 per million completion tokens.
        let price = ModelPrice {
            prompt_micros: 150_000,
            completion_micros: 600_000,
        };
        let picos = cost_picos(1_000, 500, &price);
        assert_eq!(picos, 450_000_000);
        assert_eq!(picos_to_micros(picos), 450);
        assert_eq!(picos_to_micros(499_999), 0);
        assert_eq!(picos_to_micros(500_000), 1);
    }

    #[test]
    fn reported_counts_win_and_silence_is_estimated() {
        let meter = UsageMeter {
            owner: OwnerId(1),
            config_id: ApiConfigId(2),
            shared: true,
            model: "m".into(),
            price: ModelPrice {
                prompt_micros: 1_000_000,
                completion_micros: 2_000_000,
            },
            currency: "USD".into(),
            prompt_estimate: 40,
        };
        let now = Day::parse_iso("2026-12-03").unwrap().start_millis() + 5;
        let charge = meter.charge(Some((10, 20)), "whatever", now).unwrap();
        assert_eq!((charge.prompt_tokens, charge.completion_tokens), (10, 20));
        assert_eq!(picos_to_micros(charge.cost_picos), 50);
        assert_eq!(charge.day.iso(), "2026-12-03");
        let estimated = meter.charge(None, "abcdefgh", now).unwrap();
        assert_eq!((estimated.prompt_tokens, estimated.completion_tokens), (40, 6));
        assert_eq!(meter.charge(None, "", now), None);
    }

    #[test]
    fn limits_name_the_period_and_its_reset() {
        let now = Day::parse_iso("2026-12-03").unwrap().start_millis() + 3_600_000;
        assert_eq!(check_limits(0, 0, 1_000_000, 1_000_000, now), Ok(()));
        assert_eq!(check_limits(100, 1_000, 99, 500, now), Ok(()));
        let daily = check_limits(100, 1_000, 100, 500, now).unwrap_err();
        assert_eq!(daily.period, LimitPeriod::Daily);
        assert_eq!(iso_instant(daily.resets_at_millis), "2026-12-04T00:00:00Z");
        assert_eq!(daily.retry_after(now), Duration::from_secs(23 * 3600));
        let monthly = check_limits(100, 1_000, 100, 1_000, now).unwrap_err();
        assert_eq!(monthly.period, LimitPeriod::Monthly);
        assert_eq!(iso_instant(monthly.resets_at_millis), "2027-01-01T00:00:00Z");
    }
}
