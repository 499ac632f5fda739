//! Token usage as users and administrators read it: a user's own per day, month or the
//! whole range; every account's per model for administrators. Ranges are UTC calendar days.

use std::collections::BTreeMap;

use parley_service_kit::database::now_millis;

use super::ChatService;
use super::shared_connections::Administrator;
use crate::Error;
use crate::ids::OwnerId;
use crate::store::UsageRow;
use crate::usage::Day;

/// Longest range one request may cover.
const MAX_RANGE_DAYS: i64 = 400;

/// How usage rows are grouped in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    WholeRange,
    Day,
    Month,
}

/// Usage of one period (day, month, or the whole range: `None`), config and model.
#[derive(Debug, Clone)]
pub struct UsageLine {
    pub period: Option<String>,
    pub row: UsageRow,
}

/// A range of days, both ends included.
#[derive(Debug, Clone, Copy)]
pub struct DayRange {
    pub first: Day,
    pub last: Day,
}

impl DayRange {
    /// From "YYYY-MM-DD" texts; empty ones default to the first day of last month and today.
    pub fn parse(start: &str, end: &str) -> Result<Self, Error> {
        let today = Day::of_millis(now_millis());
        let day = |field: &'static str, text: &str, default: Day| {
            if text.trim().is_empty() {
                return Ok(default);
            }
            Day::parse_iso(text.trim()).ok_or_else(|| Error::invalid(field, "must be a date as YYYY-MM-DD"))
        };
        let first = day("start_date", start, today.previous_month_start())?;
        let last = day("end_date", end, today)?;
        if first > last {
            return Err(Error::invalid("end_date", "must not be before start_date"));
        }
        if last.0 - first.0 >= MAX_RANGE_DAYS {
            return Err(Error::invalid(
                "end_date",
                format!("the range may cover at most {MAX_RANGE_DAYS} days"),
            ));
        }
        Ok(Self { first, last })
    }
}

impl ChatService {
    /// `owner`'s usage in `range`, grouped by `grouping`, oldest period first, then by config
    /// and model.
    pub async fn my_usage(&self, owner: OwnerId, range: DayRange, grouping: Grouping) -> Result<Vec<UsageLine>, Error> {
        let rows = self.store.usage_of(owner, range.first, range.last).await?;
        Ok(group(rows, grouping))
    }

    /// Every account's usage in `range` per config and model (one account's when given).
    pub async fn usage_per_account(
        &self,
        _: &Administrator,
        range: DayRange,
        account_id: &str,
    ) -> Result<Vec<UsageRow>, Error> {
        let account = account_id.trim();
        Ok(self
            .store
            .usage_per_account(range.first, range.last, (!account.is_empty()).then_some(account))
            .await?)
    }
}

/// Sums day rows into the periods of `grouping` (day rows come sorted by day).
fn group(rows: Vec<UsageRow>, grouping: Grouping) -> Vec<UsageLine> {
    let mut periods: BTreeMap<(String, i64, String), UsageLine> = BTreeMap::new();
    for row in rows {
        let period = match grouping {
            Grouping::WholeRange => String::new(),
            Grouping::Day => Day(row.day).iso(),
            Grouping::Month => Day(row.day).iso_month(),
        };
        let key = (period.clone(), row.api_config_id.0, row.model.clone());
        match periods.get_mut(&key) {
            Some(line) => {
                let sum = &mut line.row;
                sum.prompt_tokens += row.prompt_tokens;
                sum.completion_tokens += row.completion_tokens;
                sum.answers += row.answers;
                sum.cost_picos += row.cost_picos;
                if !row.currency.is_empty() {
                    sum.currency = row.currency;
                }
            }
            None => {
                let period = (grouping != Grouping::WholeRange).then_some(period);
                periods.insert(key, UsageLine { period, row });
            }
        }
    }
    periods.into_values().collect()
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;
    use crate::ids::ApiConfigId;

    fn row(day: &str, config: i64, model: &str, prompt: i64) -> UsageRow {
        UsageRow {
            account_id: String::new(),
            api_config_id: ApiConfigId(config),
            config_name: format!("config {config}"),
            shared: 0,
            model: model.into(),
            day: Day::parse_iso(day).map(|d| d.0).unwrap_or_default(),
            prompt_tokens: prompt,
            completion_tokens: 1,
            answers: 1,
            cost_picos: prompt * 1_000_000,
            currency: "USD".into(),
        }
    }

    #[test]
    fn days_sum_into_months_and_ranges() {
        let rows = || {
            vec![
                row("2026-11-30", 1, "a", 10),
                row("2026-12-01", 1, "a", 20),
                row("2026-12-01", 2, "b", 5),
                row("2026-12-02", 1, "a", 30),
            ]
        };
        let months = group(rows(), Grouping::Month);
        let summary: Vec<(Option<String>, i64, i64)> = months
            .iter()
            .map(|l| (l.period.clone(), l.row.api_config_id.0, l.row.prompt_tokens))
            .collect();
        assert_eq!(
            summary,
            vec![
                (Some("2026-11".into()), 1, 10),
                (Some("2026-12".into()), 1, 50),
                (Some("2026-12".into()), 2, 5)
            ]
        );
        let whole = group(rows(), Grouping::WholeRange);
        assert_eq!(whole.len(), 2);
        assert_eq!((whole[0].row.prompt_tokens, whole[0].row.answers), (60, 3));
        assert_eq!(whole[0].period, None);
        assert_eq!(group(rows(), Grouping::Day).len(), 4);
    }

    #[test]
    fn ranges_are_checked() {
        assert!(DayRange::parse("2026-12-01", "2026-12-31").is_ok());
        assert!(DayRange::parse("", "").is_ok());
        for (start, end, field) in [
            ("2026-12-02", "2026-12-01", "end_date"),
            ("2026-13-01", "2026-12-01", "start_date"),
            ("2024-01-01", "2026-12-01", "end_date"),
            ("2026-12-01", "tomorrow", "end_date"),
        ] {
            match DayRange::parse(start, end) {
                Err(Error::InvalidField { field: f, .. }) => assert_eq!(f, field, "{start}..{end}"),
                other => panic!("{start}..{end}: {other:?}"),
            }
        }
    }
}
