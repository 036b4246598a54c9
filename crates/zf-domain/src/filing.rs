//! Which tax filings a client owes in a year, and when each is due.
//!
//! Monthly and quarterly returns are due "within 15 days after the period
//! ends", but the State Taxation Administration moves that day each year for
//! weekends and public holidays (征期日历). The moved days come from a
//! calendar file: the bundled one, or a firm's own with local changes.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use utoipa::ToSchema;

use crate::date::{MAX_YEAR, MIN_YEAR};
use crate::period::{MAX_PERIOD_YEAR, MIN_PERIOD_YEAR};
use crate::{Date, Period, TaxKind, TaxpayerType};

const BUNDLED_TOML: &str = include_str!("../data/filing-calendar.toml");

static BUNDLED: LazyLock<FilingCalendar> = LazyLock::new(|| {
    FilingCalendar::parse(BUNDLED_TOML).expect("the bundled filing calendar is checked by a test")
});

/// The day of the month on which monthly and quarterly filings are due when
/// the calendar does not move it.
const STATUTORY_DAY: u32 = 15;

/// Why a filing calendar file was refused. Each message names the section and
/// key, so the line to fix can be found.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CalendarError {
    #[error("filing calendar is not valid TOML: {message}")]
    Syntax { message: String },
    #[error("filing calendar entry \"{key}\" must be a [year] section such as [2026]")]
    NotASection { key: String },
    #[error(
        "filing calendar section [{key}] is not a year between {MIN_PERIOD_YEAR} \
         and {MAX_PERIOD_YEAR}"
    )]
    BadYear { key: String },
    #[error(
        "filing calendar [{year}] has unknown key \"{key}\"; expected \"source\" or a \
         two-digit month 01-12"
    )]
    UnknownKey { year: i32, key: String },
    #[error("filing calendar [{year}] source must be a string")]
    BadSource { year: i32 },
    #[error(
        "filing calendar [{year}] {month:02} must be a date without a time, \
         like {year}-{month:02}-15"
    )]
    NotADate { year: i32, month: u32 },
    #[error("filing calendar [{year}] {month:02} is {date}, which is not in {year}-{month:02}")]
    WrongMonth { year: i32, month: u32, date: String },
    #[error(
        "filing calendar [{year}] {month:02} is {date}, before the statutory 15th; \
         deadlines are only ever moved later"
    )]
    BeforeStatutoryDay { year: i32, month: u32, date: String },
}

/// Filing deadlines by year and month, with where each year's came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilingCalendar {
    years: BTreeMap<i32, CalendarYear>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct CalendarYear {
    source: Option<String>,
    deadlines: BTreeMap<u32, Date>,
}

impl FilingCalendar {
    /// The calendar shipped with the program, read once.
    pub fn bundled() -> &'static FilingCalendar {
        &BUNDLED
    }

    /// Reads a calendar in the bundled file's format: one `[YYYY]` section per
    /// year, holding an optional `source` and keys `01`-`12`, each the last
    /// filing day of that month. Anything else is refused rather than
    /// ignored, since a misspelt key would silently leave a deadline on the
    /// 15th.
    pub fn parse(input: &str) -> Result<Self, CalendarError> {
        let table: toml::Table = input
            .parse()
            .map_err(|error: toml::de::Error| syntax_error(input, &error))?;
        let mut years = BTreeMap::new();
        for (key, value) in table {
            let toml::Value::Table(section) = value else {
                return Err(CalendarError::NotASection { key });
            };
            let year = crate::date::year_number(&key)
                .filter(|year| (MIN_PERIOD_YEAR..=MAX_PERIOD_YEAR).contains(year))
                .ok_or_else(|| CalendarError::BadYear { key: key.clone() })?;
            years.insert(year, parse_year(year, section)?);
        }
        Ok(Self { years })
    }

    /// The last filing day for returns filed in `month` of `year`: the
    /// calendar's day, or the statutory 15th when the calendar does not cover
    /// that month. Out-of-range arguments are clamped to the supported years
    /// and to months 1-12.
    pub fn monthly_deadline(&self, year: i32, month: u32) -> Date {
        let year = year.clamp(MIN_YEAR, MAX_YEAR);
        let month = month.clamp(1, 12);
        self.deadline(year, month)
            .expect("year and month are clamped into range")
    }

    fn deadline(&self, year: i32, month: u32) -> Option<Date> {
        let moved = self
            .years
            .get(&year)
            .and_then(|calendar| calendar.deadlines.get(&month));
        match moved {
            Some(&date) => Some(date),
            None => Date::new(year, month, STATUTORY_DAY).ok(),
        }
    }

    /// The document a year's deadlines were taken from, e.g. 税总办征科函〔2025〕64号.
    pub fn source(&self, year: i32) -> Option<&str> {
        self.years.get(&year)?.source.as_deref()
    }

    /// The years the calendar has a section for, in order.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.keys().copied()
    }
}

/// One line naming where the problem is, rather than the parser's multi-line
/// excerpt, so the message fits a log line or a CLI error.
fn syntax_error(input: &str, error: &toml::de::Error) -> CalendarError {
    let message = error.message().trim_end();
    let message = match error.span() {
        Some(span) => {
            let line = input
                .get(..span.start)
                .map_or(0, |before| before.matches('\n').count())
                + 1;
            format!("line {line}: {message}")
        }
        None => message.to_owned(),
    };
    CalendarError::Syntax { message }
}

fn parse_year(year: i32, section: toml::Table) -> Result<CalendarYear, CalendarError> {
    let mut calendar = CalendarYear::default();
    for (key, value) in section {
        if key == "source" {
            let toml::Value::String(source) = value else {
                return Err(CalendarError::BadSource { year });
            };
            calendar.source = Some(source);
            continue;
        }
        let month = crate::date::number(&key, 2, 2)
            .filter(|month| (1..=12).contains(month))
            .ok_or_else(|| CalendarError::UnknownKey {
                year,
                key: key.clone(),
            })?;
        let date = toml_date(&value).ok_or(CalendarError::NotADate { year, month })?;
        if date.year() != year || date.month() != month {
            return Err(CalendarError::WrongMonth {
                year,
                month,
                date: date.as_string(),
            });
        }
        if date.day() < STATUTORY_DAY {
            return Err(CalendarError::BeforeStatutoryDay {
                year,
                month,
                date: date.as_string(),
            });
        }
        calendar.deadlines.insert(month, date);
    }
    Ok(calendar)
}

/// A TOML local date (`2026-01-20`, unquoted); a time or offset means the
/// value is not a plain date.
fn toml_date(value: &toml::Value) -> Option<Date> {
    let toml::Value::Datetime(datetime) = value else {
        return None;
    };
    if datetime.time.is_some() || datetime.offset.is_some() {
        return None;
    }
    let date = datetime.date?;
    Date::new(
        i32::from(date.year),
        u32::from(date.month),
        u32::from(date.day),
    )
    .ok()
}

/// One filing a client must make: which tax, for which period, by when.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
pub struct Obligation {
    pub tax: TaxKind,
    pub period: Period,
    pub due: Date,
}

/// Every filing a client of `taxpayer` type must make whose due date falls in
/// `filing_year`, sorted by due date, then tax kind. This is what a firm plans
/// a year by, so it includes the previous December's (and fourth quarter's)
/// returns, filed in January, and leaves out this December's.
///
/// Rules:
/// - a month's or quarter's return is due in the following month, on the
///   calendar's day for that month;
/// - general taxpayers (一般纳税人) file VAT and its surcharges monthly;
///   small-scale ones (小规模纳税人) quarterly;
/// - everyone withholds individual income tax monthly and prepays corporate
///   income tax quarterly;
/// - the previous year's corporate income tax settlement is due 31 May and
///   the annual report 30 June; these do not move with the calendar.
///
/// Years whose periods or due dates fall outside the supported range yield
/// only the filings that fit.
pub fn obligations(
    calendar: &FilingCalendar,
    taxpayer: TaxpayerType,
    filing_year: i32,
) -> Vec<Obligation> {
    use TaxKind::*;
    let (monthly, quarterly): (&[TaxKind], &[TaxKind]) = match taxpayer {
        TaxpayerType::General => (&[Vat, Surcharges, IitWithholding], &[CitPrepayment]),
        TaxpayerType::SmallScale => (&[IitWithholding], &[Vat, Surcharges, CitPrepayment]),
    };
    let mut result = Vec::new();
    for filing_month in 1..=12 {
        let Some(due) = calendar.deadline(filing_year, filing_month) else {
            continue;
        };
        let (period_year, period_month) = if filing_month == 1 {
            (filing_year - 1, 12)
        } else {
            (filing_year, filing_month - 1)
        };
        if let Ok(period) = Period::month(period_year, period_month) {
            result.extend(monthly.iter().map(|&tax| Obligation { tax, period, due }));
        }
        // Quarters end in March, June, September and December.
        if period_month % 3 == 0 {
            if let Ok(period) = Period::quarter(period_year, period_month / 3) {
                result.extend(quarterly.iter().map(|&tax| Obligation { tax, period, due }));
            }
        }
    }
    if let Ok(period) = Period::annual(filing_year - 1) {
        for (tax, month, day) in [(CitAnnual, 5, 31), (AnnualReport, 6, 30)] {
            if let Ok(due) = Date::new(filing_year, month, day) {
                result.push(Obligation { tax, period, due });
            }
        }
    }
    result.sort_by_key(|obligation| (obligation.due, obligation.tax));
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(input: &str) -> Date {
        Date::parse(input).unwrap()
    }

    /// Builds the expected list from literal rows, so the test does not
    /// share the code under test's date arithmetic.
    fn table(rows: &[(&str, &str, &str)]) -> Vec<Obligation> {
        rows.iter()
            .map(|&(tax, period, due)| Obligation {
                tax: TaxKind::parse(tax).unwrap(),
                period: Period::parse(period).unwrap(),
                due: date(due),
            })
            .collect()
    }

    #[test]
    fn bundled_calendar_parses_with_its_sources() {
        let calendar = FilingCalendar::bundled();
        assert_eq!(calendar.years().collect::<Vec<_>>(), [2025, 2026]);
        assert_eq!(calendar.source(2025), Some("税总办征科函〔2024〕71号"));
        assert_eq!(calendar.source(2026), Some("税总办征科函〔2025〕64号"));
        assert_eq!(calendar.source(2027), None);
        assert_eq!(calendar.monthly_deadline(2025, 10), date("2025-10-27"));
        assert_eq!(calendar.monthly_deadline(2026, 2), date("2026-02-24"));
        assert_eq!(calendar.monthly_deadline(2026, 6), date("2026-06-15"));
        assert_eq!(
            FilingCalendar::parse(BUNDLED_TOML).unwrap(),
            *FilingCalendar::bundled()
        );
    }

    #[test]
    fn small_scale_taxpayer_2026() {
        let expected = table(&[
            ("vat", "2025-Q4", "2026-01-20"),
            ("surcharges", "2025-Q4", "2026-01-20"),
            ("cit_prepayment", "2025-Q4", "2026-01-20"),
            ("iit_withholding", "2025-12", "2026-01-20"),
            ("iit_withholding", "2026-01", "2026-02-24"),
            ("iit_withholding", "2026-02", "2026-03-16"),
            ("vat", "2026-Q1", "2026-04-20"),
            ("surcharges", "2026-Q1", "2026-04-20"),
            ("cit_prepayment", "2026-Q1", "2026-04-20"),
            ("iit_withholding", "2026-03", "2026-04-20"),
            ("iit_withholding", "2026-04", "2026-05-22"),
            ("cit_annual", "2025", "2026-05-31"),
            ("iit_withholding", "2026-05", "2026-06-15"),
            ("annual_report", "2025", "2026-06-30"),
            ("vat", "2026-Q2", "2026-07-15"),
            ("surcharges", "2026-Q2", "2026-07-15"),
            ("cit_prepayment", "2026-Q2", "2026-07-15"),
            ("iit_withholding", "2026-06", "2026-07-15"),
            ("iit_withholding", "2026-07", "2026-08-17"),
            ("iit_withholding", "2026-08", "2026-09-15"),
            ("vat", "2026-Q3", "2026-10-26"),
            ("surcharges", "2026-Q3", "2026-10-26"),
            ("cit_prepayment", "2026-Q3", "2026-10-26"),
            ("iit_withholding", "2026-09", "2026-10-26"),
            ("iit_withholding", "2026-10", "2026-11-16"),
            ("iit_withholding", "2026-11", "2026-12-15"),
        ]);
        let actual = obligations(FilingCalendar::bundled(), TaxpayerType::SmallScale, 2026);
        assert_eq!(actual, expected);
    }

    #[test]
    fn general_taxpayer_2026() {
        let expected = table(&[
            ("vat", "2025-12", "2026-01-20"),
            ("surcharges", "2025-12", "2026-01-20"),
            ("cit_prepayment", "2025-Q4", "2026-01-20"),
            ("iit_withholding", "2025-12", "2026-01-20"),
            ("vat", "2026-01", "2026-02-24"),
            ("surcharges", "2026-01", "2026-02-24"),
            ("iit_withholding", "2026-01", "2026-02-24"),
            ("vat", "2026-02", "2026-03-16"),
            ("surcharges", "2026-02", "2026-03-16"),
            ("iit_withholding", "2026-02", "2026-03-16"),
            ("vat", "2026-03", "2026-04-20"),
            ("surcharges", "2026-03", "2026-04-20"),
            ("cit_prepayment", "2026-Q1", "2026-04-20"),
            ("iit_withholding", "2026-03", "2026-04-20"),
            ("vat", "2026-04", "2026-05-22"),
            ("surcharges", "2026-04", "2026-05-22"),
            ("iit_withholding", "2026-04", "2026-05-22"),
            ("cit_annual", "2025", "2026-05-31"),
            ("vat", "2026-05", "2026-06-15"),
            ("surcharges", "2026-05", "2026-06-15"),
            ("iit_withholding", "2026-05", "2026-06-15"),
            ("annual_report", "2025", "2026-06-30"),
            ("vat", "2026-06", "2026-07-15"),
            ("surcharges", "2026-06", "2026-07-15"),
            ("cit_prepayment", "2026-Q2", "2026-07-15"),
            ("iit_withholding", "2026-06", "2026-07-15"),
            ("vat", "2026-07", "2026-08-17"),
            ("surcharges", "2026-07", "2026-08-17"),
            ("iit_withholding", "2026-07", "2026-08-17"),
            ("vat", "2026-08", "2026-09-15"),
            ("surcharges", "2026-08", "2026-09-15"),
            ("iit_withholding", "2026-08", "2026-09-15"),
            ("vat", "2026-09", "2026-10-26"),
            ("surcharges", "2026-09", "2026-10-26"),
            ("cit_prepayment", "2026-Q3", "2026-10-26"),
            ("iit_withholding", "2026-09", "2026-10-26"),
            ("vat", "2026-10", "2026-11-16"),
            ("surcharges", "2026-10", "2026-11-16"),
            ("iit_withholding", "2026-10", "2026-11-16"),
            ("vat", "2026-11", "2026-12-15"),
            ("surcharges", "2026-11", "2026-12-15"),
            ("iit_withholding", "2026-11", "2026-12-15"),
        ]);
        let actual = obligations(FilingCalendar::bundled(), TaxpayerType::General, 2026);
        assert_eq!(actual, expected);
    }

    #[test]
    fn a_year_missing_from_the_calendar_falls_back_to_the_15th() {
        let calendar = FilingCalendar::bundled();
        for month in 1..=12 {
            assert_eq!(
                calendar.monthly_deadline(2027, month),
                Date::new(2027, month, 15).unwrap()
            );
        }
        let actual = obligations(calendar, TaxpayerType::SmallScale, 2027);
        assert_eq!(
            actual[..4],
            table(&[
                ("vat", "2026-Q4", "2027-01-15"),
                ("surcharges", "2026-Q4", "2027-01-15"),
                ("cit_prepayment", "2026-Q4", "2027-01-15"),
                ("iit_withholding", "2026-12", "2027-01-15"),
            ])
        );
        assert_eq!(actual.len(), 26);
        assert!(actual.iter().all(|o| o.due.year() == 2027));
    }

    #[test]
    fn months_missing_from_a_year_fall_back_too() {
        let calendar = FilingCalendar::parse("[2030]\n02 = 2030-02-18\n").unwrap();
        assert_eq!(calendar.monthly_deadline(2030, 2), date("2030-02-18"));
        assert_eq!(calendar.monthly_deadline(2030, 3), date("2030-03-15"));
        assert_eq!(calendar.source(2030), None);
        assert_eq!(
            FilingCalendar::parse("").unwrap().monthly_deadline(2026, 1),
            date("2026-01-15")
        );
    }

    #[test]
    fn out_of_range_arguments_are_clamped_not_panicked_on() {
        let calendar = FilingCalendar::bundled();
        assert_eq!(calendar.monthly_deadline(2026, 13), date("2026-12-15"));
        assert_eq!(calendar.monthly_deadline(9999, 0), date("2100-01-15"));
        assert!(obligations(calendar, TaxpayerType::General, 1990).is_empty());
        assert!(obligations(calendar, TaxpayerType::General, 3000).is_empty());
        // 2000's January filings are for 1999, before any period.
        let first = obligations(calendar, TaxpayerType::General, 2000);
        assert!(first.iter().all(|o| o.period.year() == 2000));
    }

    #[test]
    fn parse_rejects_malformed_calendars() {
        use CalendarError::*;
        let cases: [(&str, CalendarError); 11] = [
            (
                "[2026]\n03 = 2026-04-16\n",
                WrongMonth {
                    year: 2026,
                    month: 3,
                    date: "2026-04-16".into(),
                },
            ),
            (
                "[2026]\n03 = 2027-03-16\n",
                WrongMonth {
                    year: 2026,
                    month: 3,
                    date: "2027-03-16".into(),
                },
            ),
            (
                "[2026]\n03 = 2026-03-02\n",
                BeforeStatutoryDay {
                    year: 2026,
                    month: 3,
                    date: "2026-03-02".into(),
                },
            ),
            (
                "[2026]\nsoruce = \"x\"\n",
                UnknownKey {
                    year: 2026,
                    key: "soruce".into(),
                },
            ),
            (
                "[2026]\n3 = 2026-03-16\n",
                UnknownKey {
                    year: 2026,
                    key: "3".into(),
                },
            ),
            (
                "[2026]\n13 = 2026-12-16\n",
                UnknownKey {
                    year: 2026,
                    key: "13".into(),
                },
            ),
            (
                "[2026]\n03 = \"2026-03-16\"\n",
                NotADate {
                    year: 2026,
                    month: 3,
                },
            ),
            (
                "[2026]\n03 = 2026-03-16T00:00:00\n",
                NotADate {
                    year: 2026,
                    month: 3,
                },
            ),
            ("[2026]\nsource = 64\n", BadSource { year: 2026 }),
            ("[1999]\n", BadYear { key: "1999".into() }),
            (
                "source = \"x\"\n",
                NotASection {
                    key: "source".into(),
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(FilingCalendar::parse(input), Err(expected), "{input}");
        }
        assert!(matches!(
            FilingCalendar::parse("[2026]\n03 = 2026-02-30\n"),
            Err(Syntax { .. } | NotADate { .. })
        ));
        let error = FilingCalendar::parse("[2026]\n03 = 2026-03-16\n[2026\n").unwrap_err();
        assert!(matches!(error, Syntax { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .starts_with("filing calendar is not valid TOML: line 3: "),
            "{error}"
        );
        assert!(matches!(
            FilingCalendar::parse("[2026]\n03 = 2026-03-16\n03 = 2026-03-17\n"),
            Err(Syntax { .. })
        ));
    }

    #[test]
    fn calendar_errors_point_at_the_line_to_fix() {
        let error = FilingCalendar::parse("[2026]\n03 = 2026-04-16\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "filing calendar [2026] 03 is 2026-04-16, which is not in 2026-03"
        );
        let error = FilingCalendar::parse("[2026]\nsoruce = \"x\"\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "filing calendar [2026] has unknown key \"soruce\"; expected \"source\" or a \
             two-digit month 01-12"
        );
    }

    #[test]
    fn obligations_serialise_for_the_api() {
        let first = obligations(FilingCalendar::bundled(), TaxpayerType::SmallScale, 2026)[0];
        let json = serde_json::to_value(first).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"tax": "vat", "period": "2025-Q4", "due": "2026-01-20"})
        );
        assert_eq!(serde_json::from_value::<Obligation>(json).unwrap(), first);
    }
}
