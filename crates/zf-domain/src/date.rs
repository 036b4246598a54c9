//! A calendar date with no time and no time zone: a due date, a contract's
//! start, a day on a filing calendar.
//!
//! Deadlines in Chinese tax law are calendar days in Beijing time; carrying a
//! time or an offset would only invite off-by-one-day bugs around midnight.
//! Which day "today" is belongs to the caller, since this crate reads no clock.

use std::fmt;

use serde::Deserialize;
use thiserror::Error;

use crate::code_enum::{code_enum, MAX_ECHO_CHARS};

/// The range every date must fall in: wide enough for birth dates on ID cards
/// and contracts running to the end of the century, narrow enough that a
/// mistyped year (20026, 1026) is caught instead of stored.
pub const MIN_YEAR: i32 = 1900;
pub const MAX_YEAR: i32 = 2100;

/// 1970-01-01 as a Julian day number, so that day counts have the familiar
/// Unix epoch.
const EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// Why a value is not a date.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DateError {
    #[error(
        "date must be written YYYY-MM-DD (or YYYY/MM/DD, YYYYMMDD, YYYY年M月D日), \
         not \"{input}\""
    )]
    Format { input: String },
    #[error("date year must be between {MIN_YEAR} and {MAX_YEAR}, not {year}")]
    YearOutOfRange { year: i64 },
    #[error("date month must be between 1 and 12, not {month}")]
    NoSuchMonth { month: u32 },
    #[error("{year}-{month:02} has no day {day}")]
    NoSuchDay { year: i32, month: u32, day: u32 },
}

/// A day between 1900-01-01 and 2100-12-31.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Date(time::Date);

code_enum! {
    /// A day of the week, Monday first as in China.
    pub enum Weekday / WeekdayError ("weekday") {
        Monday = "monday", "星期一", "Monday";
        Tuesday = "tuesday", "星期二", "Tuesday";
        Wednesday = "wednesday", "星期三", "Wednesday";
        Thursday = "thursday", "星期四", "Thursday";
        Friday = "friday", "星期五", "Friday";
        Saturday = "saturday", "星期六", "Saturday";
        Sunday = "sunday", "星期日", "Sunday";
    }
}

impl Weekday {
    pub const fn is_weekend(self) -> bool {
        matches!(self, Weekday::Saturday | Weekday::Sunday)
    }
}

impl Date {
    pub fn new(year: i32, month: u32, day: u32) -> Result<Self, DateError> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return Err(DateError::YearOutOfRange {
                year: i64::from(year),
            });
        }
        let last = days_in_month(year, month).ok_or(DateError::NoSuchMonth { month })?;
        if !(1..=last).contains(&day) {
            return Err(DateError::NoSuchDay { year, month, day });
        }
        let month_enum =
            time::Month::try_from(month as u8).map_err(|_| DateError::NoSuchMonth { month })?;
        time::Date::from_calendar_date(year, month_enum, day as u8)
            .map(Self)
            .map_err(|_| DateError::NoSuchDay { year, month, day })
    }

    /// Accepts the spellings found in Chinese paperwork and spreadsheets;
    /// month and day may drop their leading zero except in `YYYYMMDD`.
    pub fn parse(input: &str) -> Result<Self, DateError> {
        let trimmed = input.trim();
        let (year, month, day) = split_date(trimmed).ok_or_else(|| DateError::Format {
            input: trimmed.chars().take(MAX_ECHO_CHARS).collect(),
        })?;
        Self::new(year, month, day)
    }

    /// The last day of a month, e.g. for the end of a filing period.
    pub fn last_of_month(year: i32, month: u32) -> Result<Self, DateError> {
        let last = days_in_month(year, month).ok_or(DateError::NoSuchMonth { month })?;
        Self::new(year, month, last)
    }

    pub fn year(self) -> i32 {
        self.0.year()
    }

    pub fn month(self) -> u32 {
        u32::from(u8::from(self.0.month()))
    }

    pub fn day(self) -> u32 {
        u32::from(self.0.day())
    }

    /// ISO 8601, `YYYY-MM-DD`: the one spelling used in JSON and storage, so
    /// that stored dates sort as text in date order.
    pub fn as_string(self) -> String {
        format!("{:04}-{:02}-{:02}", self.year(), self.month(), self.day())
    }

    /// Days since 1970-01-01 (negative before it), for storage as an integer
    /// and for date arithmetic.
    pub fn days_since_epoch(self) -> i64 {
        i64::from(self.0.to_julian_day()) - EPOCH_JULIAN_DAY
    }

    /// The inverse of [`Date::days_since_epoch`], refusing days outside the
    /// supported years.
    pub fn from_days(days: i64) -> Result<Self, DateError> {
        let out_of_range = || DateError::YearOutOfRange {
            // Roughly which year, for the message only.
            year: 1970 + days.div_euclid(365),
        };
        let julian = days
            .checked_add(EPOCH_JULIAN_DAY)
            .and_then(|julian| i32::try_from(julian).ok())
            .ok_or_else(out_of_range)?;
        let date = time::Date::from_julian_day(julian).map_err(|_| out_of_range())?;
        Self::try_from(date)
    }

    /// `days` later (earlier when negative), or `None` outside the supported
    /// years.
    pub fn checked_add_days(self, days: i64) -> Option<Self> {
        Self::from_days(self.days_since_epoch().checked_add(days)?).ok()
    }

    /// How many days from `self` to `later`; negative when `later` is earlier.
    pub fn days_until(self, later: Date) -> i64 {
        later.days_since_epoch() - self.days_since_epoch()
    }

    pub fn weekday(self) -> Weekday {
        match self.0.weekday() {
            time::Weekday::Monday => Weekday::Monday,
            time::Weekday::Tuesday => Weekday::Tuesday,
            time::Weekday::Wednesday => Weekday::Wednesday,
            time::Weekday::Thursday => Weekday::Thursday,
            time::Weekday::Friday => Weekday::Friday,
            time::Weekday::Saturday => Weekday::Saturday,
            time::Weekday::Sunday => Weekday::Sunday,
        }
    }
}

/// Days in a month of the proleptic Gregorian calendar, or `None` when
/// `month` is not 1-12.
pub fn days_in_month(year: i32, month: u32) -> Option<u32> {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => Some(31),
        4 | 6 | 9 | 11 => Some(30),
        2 if leap => Some(29),
        2 => Some(28),
        _ => None,
    }
}

/// Splits any accepted spelling into numbers, without range checks.
fn split_date(input: &str) -> Option<(i32, u32, u32)> {
    if let Some((year, rest)) = input.split_once('年') {
        let (month, rest) = rest.split_once('月')?;
        let day = rest
            .strip_suffix('日')
            .or_else(|| rest.strip_suffix('号'))?;
        return Some((year_number(year)?, number(month, 1, 2)?, number(day, 1, 2)?));
    }
    for separator in ['-', '/'] {
        let mut parts = input.split(separator);
        if let (Some(year), Some(month), Some(day), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        {
            return Some((year_number(year)?, number(month, 1, 2)?, number(day, 1, 2)?));
        }
    }
    if input.len() == 8 {
        // `number` accepts only ASCII digits, so byte slicing is exact.
        return Some((
            year_number(input.get(..4)?)?,
            number(input.get(4..6)?, 2, 2)?,
            number(input.get(6..)?, 2, 2)?,
        ));
    }
    None
}

/// A run of `min..=max` ASCII digits. Anything else, including signs,
/// spaces and full-width digits, is not a number here.
pub(crate) fn number(text: &str, min: usize, max: usize) -> Option<u32> {
    if !(min..=max).contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Years are always written with four digits.
pub(crate) fn year_number(text: &str) -> Option<i32> {
    number(text, 4, 4).and_then(|year| i32::try_from(year).ok())
}

impl TryFrom<time::Date> for Date {
    type Error = DateError;

    /// Lets the edges turn the clock's date (in Beijing time) into a domain
    /// date, with the same year range as every other date.
    fn try_from(date: time::Date) -> Result<Self, Self::Error> {
        if (MIN_YEAR..=MAX_YEAR).contains(&date.year()) {
            Ok(Self(date))
        } else {
            Err(DateError::YearOutOfRange {
                year: i64::from(date.year()),
            })
        }
    }
}

impl From<Date> for time::Date {
    fn from(date: Date) -> Self {
        date.0
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Date({})", self.as_string())
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_string())
    }
}

impl std::str::FromStr for Date {
    type Err = DateError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::parse(input)
    }
}

impl TryFrom<String> for Date {
    type Error = DateError;

    fn try_from(input: String) -> Result<Self, Self::Error> {
        Self::parse(&input)
    }
}

impl TryFrom<&str> for Date {
    type Error = DateError;

    fn try_from(input: &str) -> Result<Self, Self::Error> {
        Self::parse(input)
    }
}

impl serde::Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl utoipa::PartialSchema for Date {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
            .description(Some(
                "A calendar date, YYYY-MM-DD, between 1900-01-01 and 2100-12-31. Input may \
                 also be YYYY/MM/DD, YYYYMMDD or YYYY年M月D日.",
            ))
            .examples(["2026-01-20"])
            .build()
            .into()
    }
}

impl utoipa::ToSchema for Date {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(year: i32, month: u32, day: u32) -> Date {
        Date::new(year, month, day).unwrap()
    }

    #[test]
    fn parses_every_spelling() {
        let expected = date(2026, 3, 5);
        for input in [
            "2026-03-05",
            "2026-3-5",
            " 2026/03/05 ",
            "2026/3/5",
            "20260305",
            "2026年3月5日",
            "2026年03月05日",
            "2026年3月5号",
        ] {
            assert_eq!(Date::parse(input), Ok(expected), "{input}");
        }
        assert_eq!(expected.as_string(), "2026-03-05");
        assert_eq!(expected.to_string(), "2026-03-05");
        assert_eq!(format!("{expected:?}"), "Date(2026-03-05)");
    }

    #[test]
    fn refuses_malformed_text() {
        for input in [
            "",
            "2026",
            "2026-03",
            "2026-03-05-01",
            "26-03-05",
            "2026-003-05",
            "2026-03/05",
            "2026-+3-05",
            "2026-３-05",
            "2026 03 05",
            "2026年3月5",
            "2026年3月5日晚",
            "2026030",
            "05/03/2026",
        ] {
            assert!(
                matches!(Date::parse(input), Err(DateError::Format { .. })),
                "{input}"
            );
        }
        assert_eq!(
            Date::parse("tomorrow").unwrap_err().to_string(),
            "date must be written YYYY-MM-DD (or YYYY/MM/DD, YYYYMMDD, YYYY年M月D日), \
             not \"tomorrow\""
        );
    }

    #[test]
    fn validates_calendar_and_leap_years() {
        assert!(Date::new(2024, 2, 29).is_ok());
        assert!(Date::new(2000, 2, 29).is_ok());
        assert_eq!(
            Date::new(2025, 2, 29),
            Err(DateError::NoSuchDay {
                year: 2025,
                month: 2,
                day: 29
            })
        );
        assert_eq!(
            Date::new(2100, 2, 29).unwrap_err().to_string(),
            "2100-02 has no day 29"
        );
        assert_eq!(
            Date::parse("2026-04-31"),
            Err(DateError::NoSuchDay {
                year: 2026,
                month: 4,
                day: 31
            })
        );
        assert_eq!(
            Date::parse("2026-13-01"),
            Err(DateError::NoSuchMonth { month: 13 })
        );
        assert_eq!(
            Date::new(2026, 0, 1),
            Err(DateError::NoSuchMonth { month: 0 })
        );
        assert!(Date::new(2026, 1, 0).is_err());
        assert_eq!(
            Date::parse("1899-12-31").unwrap_err().to_string(),
            "date year must be between 1900 and 2100, not 1899"
        );
        assert!(Date::parse("2101-01-01").is_err());
        assert!(Date::parse("1900-01-01").is_ok());
        assert!(Date::parse("2100-12-31").is_ok());
    }

    #[test]
    fn epoch_days_and_arithmetic() {
        assert_eq!(date(1970, 1, 1).days_since_epoch(), 0);
        assert_eq!(date(2026, 1, 1).days_since_epoch(), 20_454);
        assert_eq!(date(1969, 12, 31).days_since_epoch(), -1);
        assert_eq!(Date::from_days(20_454), Ok(date(2026, 1, 1)));
        assert_eq!(
            date(2024, 2, 28).checked_add_days(1),
            Some(date(2024, 2, 29))
        );
        assert_eq!(
            date(2025, 2, 28).checked_add_days(1),
            Some(date(2025, 3, 1))
        );
        assert_eq!(
            date(2026, 1, 1).checked_add_days(-1),
            Some(date(2025, 12, 31))
        );
        assert_eq!(date(2100, 12, 31).checked_add_days(1), None);
        assert_eq!(date(1900, 1, 1).checked_add_days(-1), None);
        assert_eq!(date(2026, 1, 1).checked_add_days(i64::MAX), None);
        assert!(Date::from_days(i64::MIN).is_err());
        assert_eq!(Date::from_days(-25_567), Ok(date(1900, 1, 1)));
        assert_eq!(Date::from_days(47_846), Ok(date(2100, 12, 31)));
        assert!(Date::from_days(47_847).is_err());
        assert_eq!(date(2026, 1, 15).days_until(date(2026, 1, 20)), 5);
        assert_eq!(date(2026, 1, 20).days_until(date(2026, 1, 15)), -5);
        assert!(date(2025, 12, 31) < date(2026, 1, 1));
    }

    #[test]
    fn weekdays() {
        assert_eq!(date(2026, 1, 1).weekday(), Weekday::Thursday);
        assert_eq!(date(2026, 3, 15).weekday(), Weekday::Sunday);
        assert!(date(2026, 3, 15).weekday().is_weekend());
        assert_eq!(date(2000, 1, 1).weekday(), Weekday::Saturday);
        assert_eq!(Weekday::Sunday.label_zh(), "星期日");
    }

    #[test]
    fn last_of_month() {
        assert_eq!(Date::last_of_month(2024, 2), Ok(date(2024, 2, 29)));
        assert_eq!(Date::last_of_month(2026, 4), Ok(date(2026, 4, 30)));
        assert!(Date::last_of_month(2026, 13).is_err());
    }

    #[test]
    fn converts_with_time_dates_in_range_only() {
        let ours = date(2026, 5, 31);
        let theirs: time::Date = ours.into();
        assert_eq!(Date::try_from(theirs), Ok(ours));
        let far = time::Date::from_calendar_date(2200, time::Month::January, 1).unwrap();
        assert!(Date::try_from(far).is_err());
    }

    #[test]
    fn serde_as_iso_string() {
        let json = serde_json::to_string(&date(2026, 1, 20)).unwrap();
        assert_eq!(json, "\"2026-01-20\"");
        assert_eq!(
            serde_json::from_str::<Date>("\"2026/1/20\"").unwrap(),
            date(2026, 1, 20)
        );
        let error = serde_json::from_str::<Date>("\"2026-02-30\"").unwrap_err();
        assert!(
            error.to_string().contains("2026-02 has no day 30"),
            "{error}"
        );
    }

    proptest! {
        #[test]
        fn days_round_trip(days in -25_567i64..=47_846) {
            let date = Date::from_days(days).unwrap();
            prop_assert_eq!(date.days_since_epoch(), days);
            prop_assert_eq!(Date::parse(&date.as_string()), Ok(date));
            let next = date.checked_add_days(1);
            if let Some(next) = next {
                prop_assert!(next > date);
                prop_assert_eq!(date.days_until(next), 1);
            }
        }

        #[test]
        fn parse_never_panics(input in any::<String>()) {
            if let Ok(date) = Date::parse(&input) {
                prop_assert_eq!(Date::parse(&date.as_string()), Ok(date));
            }
        }

        #[test]
        fn new_agrees_with_days_in_month(
            year in 1900i32..=2100,
            month in 0u32..=13,
            day in 0u32..=32,
        ) {
            let valid = days_in_month(year, month).is_some_and(|last| (1..=last).contains(&day));
            prop_assert_eq!(Date::new(year, month, day).is_ok(), valid);
        }
    }
}
