//! 所属期: the month, quarter or year a tax return or a set of accounts covers.

use std::cmp::Ordering;
use std::fmt;

use serde::Deserialize;
use thiserror::Error;

use crate::code_enum::{code_enum, MAX_ECHO_CHARS};
use crate::date::{number, year_number};
use crate::Date;

/// Periods before 2000 predate any client a firm will onboard; the upper bound
/// matches [`Date`]'s so that every period's days are dates.
pub const MIN_PERIOD_YEAR: i32 = 2000;
pub const MAX_PERIOD_YEAR: i32 = 2100;

/// Why a value is not a period.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PeriodError {
    #[error(
        "period must be a month (2026-03, 202603, 2026年3月), a quarter (2026-Q1, \
         2026年1季度) or a year (2026), not \"{input}\""
    )]
    Format { input: String },
    #[error("period year must be between {MIN_PERIOD_YEAR} and {MAX_PERIOD_YEAR}, not {year}")]
    YearOutOfRange { year: i32 },
    #[error("period month must be between 1 and 12, not {month}")]
    NoSuchMonth { month: u32 },
    #[error("period quarter must be between 1 and 4, not {quarter}")]
    NoSuchQuarter { quarter: u32 },
}

code_enum! {
    /// How long a period is.
    pub enum PeriodKind / PeriodKindError ("period kind") {
        Month = "month", "月度", "Month";
        Quarter = "quarter", "季度", "Quarter";
        Year = "year", "年度", "Year";
    }
}

/// A month, quarter or calendar year between 2000 and 2100.
///
/// Values from outside (parsing, serde) are always checked. The variants are
/// public so that code can match on them; build one by hand only through
/// [`Period::month`], [`Period::quarter`] or [`Period::annual`], which check
/// the ranges. Should an out-of-range value be built anyway, the date methods
/// clamp it into range rather than panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub enum Period {
    Month { year: i32, month: u32 },
    Quarter { year: i32, quarter: u32 },
    Year(i32),
}

impl Period {
    pub fn month(year: i32, month: u32) -> Result<Self, PeriodError> {
        check_year(year)?;
        if !(1..=12).contains(&month) {
            return Err(PeriodError::NoSuchMonth { month });
        }
        Ok(Period::Month { year, month })
    }

    pub fn quarter(year: i32, quarter: u32) -> Result<Self, PeriodError> {
        check_year(year)?;
        if !(1..=4).contains(&quarter) {
            return Err(PeriodError::NoSuchQuarter { quarter });
        }
        Ok(Period::Quarter { year, quarter })
    }

    pub fn annual(year: i32) -> Result<Self, PeriodError> {
        check_year(year)?;
        Ok(Period::Year(year))
    }

    /// Checks a value built from the variants directly.
    pub fn check(self) -> Result<Self, PeriodError> {
        match self {
            Period::Month { year, month } => Self::month(year, month),
            Period::Quarter { year, quarter } => Self::quarter(year, quarter),
            Period::Year(year) => Self::annual(year),
        }
    }

    /// The month containing `date`, when its year is a period year.
    pub fn month_of(date: Date) -> Result<Self, PeriodError> {
        Self::month(date.year(), date.month())
    }

    /// The quarter containing `date`, when its year is a period year.
    pub fn quarter_of(date: Date) -> Result<Self, PeriodError> {
        Self::quarter(date.year(), (date.month() - 1) / 3 + 1)
    }

    /// Accepts the spellings used on Chinese tax forms and in spreadsheets.
    pub fn parse(input: &str) -> Result<Self, PeriodError> {
        let trimmed = input.trim();
        let format_error = || PeriodError::Format {
            input: trimmed.chars().take(MAX_ECHO_CHARS).collect(),
        };
        match split_period(trimmed).ok_or_else(format_error)? {
            Parts::Month(year, month) => Self::month(year, month),
            Parts::Quarter(year, quarter) => Self::quarter(year, quarter),
            Parts::Year(year) => Self::annual(year),
        }
    }

    /// `2026-03`, `2026-Q1` or `2026`: the one spelling used in JSON and
    /// storage.
    pub fn as_string(self) -> String {
        match self {
            Period::Month { year, month } => format!("{year:04}-{month:02}"),
            Period::Quarter { year, quarter } => format!("{year:04}-Q{quarter}"),
            Period::Year(year) => format!("{year:04}"),
        }
    }

    /// As printed on Chinese forms: `2026年3月`, `2026年第1季度`, `2026年度`.
    pub fn label_zh(self) -> String {
        match self {
            Period::Month { year, month } => format!("{year}年{month}月"),
            Period::Quarter { year, quarter } => format!("{year}年第{quarter}季度"),
            Period::Year(year) => format!("{year}年度"),
        }
    }

    pub fn kind(self) -> PeriodKind {
        match self {
            Period::Month { .. } => PeriodKind::Month,
            Period::Quarter { .. } => PeriodKind::Quarter,
            Period::Year(_) => PeriodKind::Year,
        }
    }

    pub fn year(self) -> i32 {
        self.bounds().0
    }

    pub fn first_day(self) -> Date {
        let (year, first_month, _) = self.bounds();
        Date::new(year, first_month, 1).expect("bounds() are clamped into the date range")
    }

    pub fn last_day(self) -> Date {
        let (year, _, last_month) = self.bounds();
        Date::last_of_month(year, last_month).expect("bounds() are clamped into the date range")
    }

    pub fn contains(self, date: Date) -> bool {
        (self.first_day()..=self.last_day()).contains(&date)
    }

    /// The following period of the same kind, or `None` after 2100.
    pub fn next(self) -> Option<Self> {
        self.step(1)
    }

    /// The preceding period of the same kind, or `None` before 2000.
    pub fn previous(self) -> Option<Self> {
        self.step(-1)
    }

    fn step(self, by: i32) -> Option<Self> {
        let (year, first_month, _) = self.bounds();
        let result = match self.kind() {
            PeriodKind::Year => Self::annual(year + by),
            PeriodKind::Month => {
                let index = year * 12 + first_month as i32 - 1 + by;
                Self::month(index.div_euclid(12), index.rem_euclid(12) as u32 + 1)
            }
            PeriodKind::Quarter => {
                let index = year * 4 + (first_month as i32 - 1) / 3 + by;
                Self::quarter(index.div_euclid(4), index.rem_euclid(4) as u32 + 1)
            }
        };
        result.ok()
    }

    /// (year, first month, last month), clamped into range so that the date
    /// methods are total even for a hand-built out-of-range value.
    fn bounds(self) -> (i32, u32, u32) {
        let clamp_year = |year: i32| year.clamp(MIN_PERIOD_YEAR, MAX_PERIOD_YEAR);
        match self {
            Period::Month { year, month } => {
                let month = month.clamp(1, 12);
                (clamp_year(year), month, month)
            }
            Period::Quarter { year, quarter } => {
                let quarter = quarter.clamp(1, 4);
                (clamp_year(year), quarter * 3 - 2, quarter * 3)
            }
            Period::Year(year) => (clamp_year(year), 1, 12),
        }
    }
}

fn check_year(year: i32) -> Result<(), PeriodError> {
    if (MIN_PERIOD_YEAR..=MAX_PERIOD_YEAR).contains(&year) {
        Ok(())
    } else {
        Err(PeriodError::YearOutOfRange { year })
    }
}

enum Parts {
    Month(i32, u32),
    Quarter(i32, u32),
    Year(i32),
}

/// Splits any accepted spelling into numbers, without range checks.
fn split_period(input: &str) -> Option<Parts> {
    if let Some((year, rest)) = input.split_once('年') {
        let year = year_number(year)?;
        if rest.is_empty() || rest == "度" {
            return Some(Parts::Year(year));
        }
        if let Some(month) = rest
            .strip_suffix("月份")
            .or_else(|| rest.strip_suffix('月'))
        {
            return Some(Parts::Month(year, number(month, 1, 2)?));
        }
        let quarter = rest.strip_suffix("季度")?;
        let quarter = quarter.strip_prefix('第').unwrap_or(quarter);
        let quarter = match quarter {
            "一" => 1,
            "二" => 2,
            "三" => 3,
            "四" => 4,
            digits => number(digits, 1, 1)?,
        };
        return Some(Parts::Quarter(year, quarter));
    }
    if let Some((year, quarter)) = input.split_once(['Q', 'q']) {
        let year = year.strip_suffix('-').unwrap_or(year);
        return Some(Parts::Quarter(year_number(year)?, number(quarter, 1, 1)?));
    }
    for separator in ['-', '/'] {
        if let Some((year, month)) = input.split_once(separator) {
            return Some(Parts::Month(year_number(year)?, number(month, 1, 2)?));
        }
    }
    match input.len() {
        4 => Some(Parts::Year(year_number(input)?)),
        // `number` accepts only ASCII digits, so byte slicing is exact.
        6 => Some(Parts::Month(
            year_number(input.get(..4)?)?,
            number(input.get(4..)?, 2, 2)?,
        )),
        _ => None,
    }
}

/// Chronological: by first day, then the shorter period first, so a month
/// sorts before the quarter and the year that start with it.
impl Ord for Period {
    fn cmp(&self, other: &Self) -> Ordering {
        let key = |period: &Period| {
            let raw = match *period {
                Period::Month { year, month } => (year, month),
                Period::Quarter { year, quarter } => (year, quarter),
                Period::Year(year) => (year, 0),
            };
            (period.first_day(), period.last_day(), period.kind(), raw)
        };
        key(self).cmp(&key(other))
    }
}

impl PartialOrd for Period {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_string())
    }
}

impl std::str::FromStr for Period {
    type Err = PeriodError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::parse(input)
    }
}

impl TryFrom<String> for Period {
    type Error = PeriodError;

    fn try_from(input: String) -> Result<Self, Self::Error> {
        Self::parse(&input)
    }
}

impl TryFrom<&str> for Period {
    type Error = PeriodError;

    fn try_from(input: &str) -> Result<Self, Self::Error> {
        Self::parse(input)
    }
}

impl serde::Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl utoipa::PartialSchema for Period {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::schema::StringSchema {
            description: "所属期 (tax or accounting period): a month YYYY-MM, a quarter \
                          YYYY-Qn or a year YYYY, 2000-2100. Input may also be YYYYMM, \
                          YYYY-M, YYYYQn, 2026年3月 or 2026年1季度.",
            example: "2026-Q1",
            pattern: Some("^[0-9]{4}(-(0[1-9]|1[0-2])|-Q[1-4])?$"),
            min_length: Some(4),
            max_length: Some(7),
            uuid_format: false,
        }
        .build()
    }
}

impl utoipa::ToSchema for Period {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(year: i32, month: u32, day: u32) -> Date {
        Date::new(year, month, day).unwrap()
    }

    #[test]
    fn parses_every_spelling() {
        let march = Period::Month {
            year: 2026,
            month: 3,
        };
        let q1 = Period::Quarter {
            year: 2026,
            quarter: 1,
        };
        let cases = [
            ("2026-03", march),
            ("2026-3", march),
            ("2026/03", march),
            ("202603", march),
            ("2026年3月", march),
            ("2026年03月", march),
            ("2026年3月份", march),
            (" 2026Q1 ", q1),
            ("2026q1", q1),
            ("2026-Q1", q1),
            ("2026年1季度", q1),
            ("2026年第1季度", q1),
            ("2026年第一季度", q1),
            ("2026", Period::Year(2026)),
            ("2026年", Period::Year(2026)),
            ("2026年度", Period::Year(2026)),
        ];
        for (input, expected) in cases {
            assert_eq!(Period::parse(input), Ok(expected), "{input}");
        }
    }

    #[test]
    fn canonical_strings_and_labels() {
        assert_eq!(Period::month(2026, 3).unwrap().as_string(), "2026-03");
        assert_eq!(Period::quarter(2026, 1).unwrap().as_string(), "2026-Q1");
        assert_eq!(Period::annual(2026).unwrap().as_string(), "2026");
        assert_eq!(Period::month(2026, 11).unwrap().to_string(), "2026-11");
        assert_eq!(Period::month(2026, 3).unwrap().label_zh(), "2026年3月");
        assert_eq!(
            Period::quarter(2026, 4).unwrap().label_zh(),
            "2026年第4季度"
        );
        assert_eq!(Period::annual(2025).unwrap().label_zh(), "2025年度");
    }

    #[test]
    fn refuses_malformed_and_out_of_range() {
        for input in [
            "",
            "26",
            "2026-",
            "2026-003",
            "2026Q",
            "2026Q12",
            "2026-Q-1",
            "2026年13",
            "2026年第五季度",
            "2026-03-01",
            "20263",
            "Q1 2026",
            "２０２６",
        ] {
            assert!(
                matches!(Period::parse(input), Err(PeriodError::Format { .. })),
                "{input}: {:?}",
                Period::parse(input)
            );
        }
        assert_eq!(
            Period::parse("2026-13"),
            Err(PeriodError::NoSuchMonth { month: 13 })
        );
        assert_eq!(
            Period::parse("202600"),
            Err(PeriodError::NoSuchMonth { month: 0 })
        );
        assert_eq!(
            Period::parse("2026Q5").unwrap_err().to_string(),
            "period quarter must be between 1 and 4, not 5"
        );
        assert_eq!(
            Period::parse("1999").unwrap_err().to_string(),
            "period year must be between 2000 and 2100, not 1999"
        );
        assert!(Period::parse("2101-01").is_err());
        assert!(Period::parse("next month")
            .unwrap_err()
            .to_string()
            .starts_with("period must be a month (2026-03"));
    }

    #[test]
    fn first_and_last_days() {
        let feb = Period::month(2024, 2).unwrap();
        assert_eq!(feb.first_day(), date(2024, 2, 1));
        assert_eq!(feb.last_day(), date(2024, 2, 29));
        let q2 = Period::quarter(2026, 2).unwrap();
        assert_eq!(q2.first_day(), date(2026, 4, 1));
        assert_eq!(q2.last_day(), date(2026, 6, 30));
        let q4 = Period::quarter(2025, 4).unwrap();
        assert_eq!(q4.first_day(), date(2025, 10, 1));
        assert_eq!(q4.last_day(), date(2025, 12, 31));
        let year = Period::annual(2100).unwrap();
        assert_eq!(year.last_day(), date(2100, 12, 31));
        assert!(q2.contains(date(2026, 4, 1)));
        assert!(q2.contains(date(2026, 6, 30)));
        assert!(!q2.contains(date(2026, 7, 1)));
        assert!(!q2.contains(date(2026, 3, 31)));
    }

    #[test]
    fn out_of_range_hand_built_values_do_not_panic() {
        let bad = Period::Month {
            year: 3000,
            month: 13,
        };
        assert!(bad.check().is_err());
        assert_eq!(bad.last_day(), date(2100, 12, 31));
        let bad = Period::Quarter {
            year: 1,
            quarter: 0,
        };
        assert_eq!(bad.first_day(), date(2000, 1, 1));
        assert!(bad.next().is_some());
    }

    #[test]
    fn next_and_previous() {
        let next = |input: &str| Period::parse(input).unwrap().next().map(Period::as_string);
        assert_eq!(next("2025-12").as_deref(), Some("2026-01"));
        assert_eq!(next("2026-01").as_deref(), Some("2026-02"));
        assert_eq!(next("2025-Q4").as_deref(), Some("2026-Q1"));
        assert_eq!(next("2026").as_deref(), Some("2027"));
        assert_eq!(next("2100-12"), None);
        assert_eq!(next("2100-Q4"), None);
        assert_eq!(next("2100"), None);
        let previous = |input: &str| Period::parse(input).unwrap().previous();
        assert_eq!(previous("2026-01"), Period::month(2025, 12).ok());
        assert_eq!(previous("2026-Q1"), Period::quarter(2025, 4).ok());
        assert_eq!(previous("2000-01"), None);
    }

    #[test]
    fn periods_of_a_date() {
        let day = date(2026, 8, 17);
        assert_eq!(Period::month_of(day), Period::month(2026, 8));
        assert_eq!(Period::quarter_of(day), Period::quarter(2026, 3));
        assert!(Period::month_of(date(1999, 1, 1)).is_err());
    }

    #[test]
    fn orders_chronologically() {
        let mut periods: Vec<Period> = [
            "2026", "2026-Q2", "2026-02", "2025-12", "2026-Q1", "2026-01",
        ]
        .into_iter()
        .map(|p| Period::parse(p).unwrap())
        .collect();
        periods.sort();
        let sorted: Vec<String> = periods.into_iter().map(Period::as_string).collect();
        assert_eq!(
            sorted,
            ["2025-12", "2026-01", "2026-Q1", "2026", "2026-02", "2026-Q2"]
        );
    }

    #[test]
    fn kinds() {
        assert_eq!(Period::parse("2026-03").unwrap().kind(), PeriodKind::Month);
        assert_eq!(Period::parse("2026Q3").unwrap().kind(), PeriodKind::Quarter);
        assert_eq!(Period::parse("2026").unwrap().kind(), PeriodKind::Year);
        assert_eq!(PeriodKind::Quarter.label_zh(), "季度");
    }

    #[test]
    fn serde_as_canonical_string() {
        let period = Period::parse("2026年1季度").unwrap();
        assert_eq!(serde_json::to_string(&period).unwrap(), "\"2026-Q1\"");
        assert_eq!(
            serde_json::from_str::<Period>("\"2026-Q1\"").unwrap(),
            period
        );
        assert_eq!(
            serde_json::from_str::<Period>("\"202601\"").unwrap(),
            Period::month(2026, 1).unwrap()
        );
        let error = serde_json::from_str::<Period>("\"2026-13\"").unwrap_err();
        assert!(
            error.to_string().contains("month must be between 1 and 12"),
            "{error}"
        );
        assert!(serde_json::from_str::<Period>("202601").is_err());
    }

    fn any_period() -> impl Strategy<Value = Period> {
        prop_oneof![
            (2000i32..=2100, 1u32..=12).prop_map(|(year, month)| Period::Month { year, month }),
            (2000i32..=2100, 1u32..=4)
                .prop_map(|(year, quarter)| Period::Quarter { year, quarter }),
            (2000i32..=2100).prop_map(Period::Year),
        ]
    }

    proptest! {
        #[test]
        fn canonical_string_round_trips(period in any_period()) {
            prop_assert_eq!(Period::parse(&period.as_string()), Ok(period));
            prop_assert_eq!(Period::parse(&period.label_zh()), Ok(period));
            prop_assert_eq!(period.check(), Ok(period));
        }

        #[test]
        fn next_starts_the_day_after_the_last(period in any_period()) {
            if let Some(next) = period.next() {
                prop_assert_eq!(period.last_day().checked_add_days(1), Some(next.first_day()));
                prop_assert_eq!(next.kind(), period.kind());
                prop_assert_eq!(next.previous(), Some(period));
                prop_assert!(next > period);
            }
            prop_assert!(period.contains(period.first_day()));
            prop_assert!(period.contains(period.last_day()));
        }

        #[test]
        fn parse_never_panics(input in any::<String>()) {
            if let Ok(period) = Period::parse(&input) {
                prop_assert_eq!(Period::parse(&period.as_string()), Ok(period));
            }
        }
    }
}
