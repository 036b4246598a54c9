//! Money as whole fen (分, 0.01 yuan), never floating point.
//!
//! Tax and bookkeeping figures must add up to the fen; binary floating point
//! cannot represent 0.1 yuan exactly, so every amount is an integer number of
//! fen from the moment it is parsed. Neither type has `Display`, because a
//! bare number could be read as fen or as yuan: callers pick
//! [`Fen::as_fen`] or [`Fen::to_yuan_string`].

use std::fmt;
use std::ops::Sub;

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};
use thiserror::Error;

/// 10^15 fen, ten trillion yuan: far above any single figure a client has, and
/// small enough that adding two amounts, or subtracting one from another,
/// never overflows an `i64`.
pub const MAX_FEN: i64 = 1_000_000_000_000_000;

const FEN_PER_YUAN: i64 = 100;

const NOT_WHOLE_NON_NEGATIVE: &str = "an amount in fen must be a whole non-negative number";
const NOT_WHOLE: &str = "an amount in fen must be a whole number";

/// Why a value is not an amount of money. Amounts are financial data, so the
/// messages describe the problem without echoing the figure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MoneyError {
    #[error("amount is empty")]
    Empty,
    #[error("amount must not be negative")]
    Negative,
    #[error("amount must be at most 10,000,000,000,000.00 yuan ({MAX_FEN} fen)")]
    TooLarge,
    #[error(
        "amount has {decimals} decimal places, but fen (2 places) is the smallest unit; \
         amounts are never rounded"
    )]
    TooManyDecimals { decimals: usize },
    #[error(
        "amount contains '{ch}'; write yuan like 1234, 1234.5, 1,234.56, ¥1234.56 or 1234.56元"
    )]
    BadCharacter { ch: char },
    #[error("amount must be written in yuan like 1234, 1234.5, 1,234.56, ¥1234.56 or 1234.56元")]
    Format,
    #[error(
        "amount has misplaced thousands separators: commas go between groups of three \
         digits, as in 1,234,567.89"
    )]
    BadGrouping,
}

/// A non-negative amount of money, at most [`MAX_FEN`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fen(i64);

/// An amount that may be negative, such as profit (revenue − cost) or a
/// balance. Between −[`MAX_FEN`] and [`MAX_FEN`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SignedFen(i64);

impl Fen {
    pub const ZERO: Fen = Fen(0);
    pub const MAX: Fen = Fen(MAX_FEN);

    pub fn new(fen: i64) -> Result<Self, MoneyError> {
        if fen < 0 {
            Err(MoneyError::Negative)
        } else if fen > MAX_FEN {
            Err(MoneyError::TooLarge)
        } else {
            Ok(Self(fen))
        }
    }

    /// Parses an amount in yuan as people write it: `1234`, `1234.5`,
    /// `1,234.56`, `¥1234.56`, `1234.56元`. More than two decimal places is an
    /// error rather than rounded, because a silently changed figure in a tax
    /// return is worse than a refused one.
    pub fn parse_yuan(input: &str) -> Result<Self, MoneyError> {
        let (negative, fen) = parse_yuan_parts(input)?;
        if negative {
            return Err(MoneyError::Negative);
        }
        Self::new(fen)
    }

    pub const fn as_fen(self) -> i64 {
        self.0
    }

    /// `1234.56`: always two decimals, no separators, no symbol; what
    /// [`Fen::parse_yuan`] reads back exactly.
    pub fn to_yuan_string(self) -> String {
        format_yuan(false, self.0)
    }

    /// `1,234.56`, for reading; also accepted by [`Fen::parse_yuan`].
    pub fn to_grouped_yuan_string(self) -> String {
        format_grouped_yuan(false, self.0)
    }

    /// `None` when the sum would exceed [`MAX_FEN`].
    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        Fen::new(self.0 + other.0).ok()
    }

    /// `None` when `other` is larger; see [`Fen::signed_sub`] (or `-`) for a
    /// difference that may be negative.
    pub fn checked_sub(self, other: Fen) -> Option<Fen> {
        Fen::new(self.0 - other.0).ok()
    }

    /// `self − other`, which may be negative. Never fails: both are within
    /// `0..=MAX_FEN`.
    pub const fn signed_sub(self, other: Fen) -> SignedFen {
        SignedFen(self.0 - other.0)
    }

    /// `None` when the product would exceed [`MAX_FEN`], e.g. a monthly fee
    /// times the months of a contract.
    pub fn checked_mul(self, factor: u32) -> Option<Fen> {
        self.0
            .checked_mul(i64::from(factor))
            .and_then(|fen| Fen::new(fen).ok())
    }

    /// The total of `amounts`, or `None` when it would exceed [`MAX_FEN`].
    pub fn checked_sum(amounts: impl IntoIterator<Item = Fen>) -> Option<Fen> {
        amounts
            .into_iter()
            .try_fold(Fen::ZERO, |total, amount| total.checked_add(amount))
    }
}

impl SignedFen {
    pub const ZERO: SignedFen = SignedFen(0);

    pub fn new(fen: i64) -> Result<Self, MoneyError> {
        if fen.unsigned_abs() > MAX_FEN.unsigned_abs() {
            Err(MoneyError::TooLarge)
        } else {
            Ok(Self(fen))
        }
    }

    /// Like [`Fen::parse_yuan`], with an optional leading minus sign.
    pub fn parse_yuan(input: &str) -> Result<Self, MoneyError> {
        let (negative, fen) = parse_yuan_parts(input)?;
        Self::new(if negative { -fen } else { fen })
    }

    pub const fn as_fen(self) -> i64 {
        self.0
    }

    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// The size of the amount, ignoring its sign.
    pub const fn abs(self) -> Fen {
        Fen(self.0.abs())
    }

    /// The amount as a [`Fen`] when it is not negative.
    pub fn to_fen(self) -> Option<Fen> {
        Fen::new(self.0).ok()
    }

    /// `-1234.56` or `1234.56`.
    pub fn to_yuan_string(self) -> String {
        format_yuan(self.0 < 0, self.0.abs())
    }

    /// `-1,234.56` or `1,234.56`.
    pub fn to_grouped_yuan_string(self) -> String {
        format_grouped_yuan(self.0 < 0, self.0.abs())
    }

    pub fn checked_add(self, other: SignedFen) -> Option<SignedFen> {
        SignedFen::new(self.0 + other.0).ok()
    }

    pub fn checked_sub(self, other: SignedFen) -> Option<SignedFen> {
        SignedFen::new(self.0 - other.0).ok()
    }
}

impl From<Fen> for SignedFen {
    fn from(fen: Fen) -> Self {
        SignedFen(fen.0)
    }
}

impl Sub for Fen {
    type Output = SignedFen;

    fn sub(self, other: Fen) -> SignedFen {
        self.signed_sub(other)
    }
}

/// Returns (minus sign present, magnitude in fen) with the magnitude already
/// checked against [`MAX_FEN`].
fn parse_yuan_parts(input: &str) -> Result<(bool, i64), MoneyError> {
    let mut text = input.trim();
    let mut negative = false;
    if let Some(rest) = text.strip_prefix('-') {
        negative = true;
        text = rest.trim_start();
    }
    if let Some(rest) = text.strip_prefix(['¥', '￥']) {
        text = rest.trim_start();
    }
    if let Some(rest) = text.strip_prefix('-') {
        if negative {
            return Err(MoneyError::Format);
        }
        negative = true;
        text = rest.trim_start();
    }
    if let Some(rest) = text.strip_suffix('元') {
        text = rest.trim_end();
    }
    if text.is_empty() {
        return Err(MoneyError::Empty);
    }
    if let Some(ch) = text
        .chars()
        .find(|&ch| !(ch.is_ascii_digit() || ch == '.' || ch == ','))
    {
        return Err(MoneyError::BadCharacter { ch });
    }
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    let fraction_fen = match fraction {
        None => 0,
        Some(fraction) if fraction.contains(['.', ',']) || fraction.is_empty() => {
            return Err(MoneyError::Format)
        }
        Some(fraction) if fraction.len() > 2 => {
            return Err(MoneyError::TooManyDecimals {
                decimals: fraction.len(),
            })
        }
        // One decimal is tenths of a yuan: "1234.5" is 1234 yuan 50 fen.
        Some(fraction) => {
            fraction.parse::<i64>().map_err(|_| MoneyError::Format)?
                * 10_i64.pow(2 - fraction.len() as u32)
        }
    };
    let whole_yuan = parse_grouped_digits(whole)?;
    let fen = whole_yuan
        .checked_mul(FEN_PER_YUAN)
        .and_then(|fen| fen.checked_add(fraction_fen))
        .filter(|&fen| fen <= MAX_FEN)
        .ok_or(MoneyError::TooLarge)?;
    Ok((negative, fen))
}

/// Whole yuan, with or without thousands separators; with them, every group
/// but the first must have exactly three digits, so "12,34" is refused as the
/// likely typo it is.
fn parse_grouped_digits(whole: &str) -> Result<i64, MoneyError> {
    if whole.is_empty() {
        return Err(MoneyError::Format);
    }
    let mut groups = whole.split(',');
    let first = groups.next().unwrap_or_default();
    let mut digits = String::with_capacity(whole.len());
    digits.push_str(first);
    if whole.contains(',') {
        if !(1..=3).contains(&first.len()) {
            return Err(MoneyError::BadGrouping);
        }
        for group in groups {
            if group.len() != 3 {
                return Err(MoneyError::BadGrouping);
            }
            digits.push_str(group);
        }
    }
    // Leading zeros carry no value; dropping them keeps "000…0001" from
    // looking too large to fit.
    let significant = digits.trim_start_matches('0');
    if significant.is_empty() {
        return Ok(0);
    }
    if significant.len() > 18 {
        return Err(MoneyError::TooLarge);
    }
    significant.parse().map_err(|_| MoneyError::TooLarge)
}

fn format_yuan(negative: bool, magnitude: i64) -> String {
    let sign = if negative { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        magnitude / FEN_PER_YUAN,
        magnitude % FEN_PER_YUAN
    )
}

fn format_grouped_yuan(negative: bool, magnitude: i64) -> String {
    let whole = (magnitude / FEN_PER_YUAN).to_string();
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3 + 4);
    if negative {
        grouped.push('-');
    }
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{grouped}.{:02}", magnitude % FEN_PER_YUAN)
}

impl serde::Serialize for Fen {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0)
    }
}

impl serde::Serialize for SignedFen {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0)
    }
}

/// Accepts JSON integers only: a fraction of a fen does not exist, and a
/// float such as 1.0 means the sender is not counting in fen.
struct FenVisitor {
    signed: bool,
}

impl FenVisitor {
    fn message(&self) -> &'static str {
        if self.signed {
            NOT_WHOLE
        } else {
            NOT_WHOLE_NON_NEGATIVE
        }
    }

    fn check<E: de::Error>(&self, fen: i128) -> Result<i64, E> {
        if fen < 0 && !self.signed {
            return Err(E::custom(NOT_WHOLE_NON_NEGATIVE));
        }
        if fen.unsigned_abs() > MAX_FEN.unsigned_abs().into() {
            return Err(E::custom(format_args!(
                "an amount in fen must be at most {MAX_FEN} in size"
            )));
        }
        i64::try_from(fen).map_err(|_| E::custom(self.message()))
    }
}

impl Visitor<'_> for FenVisitor {
    type Value = i64;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.signed {
            formatter.write_str("an amount in fen (a whole number)")
        } else {
            formatter.write_str("an amount in fen (a whole non-negative number)")
        }
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<i64, E> {
        self.check(i128::from(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<i64, E> {
        self.check(i128::from(value))
    }

    fn visit_i128<E: de::Error>(self, value: i128) -> Result<i64, E> {
        self.check(value)
    }

    fn visit_u128<E: de::Error>(self, value: u128) -> Result<i64, E> {
        self.check(i128::try_from(value).unwrap_or(i128::MAX))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<i64, E> {
        if value.fract() == 0.0 && (self.signed || value >= 0.0) {
            Err(E::custom(format_args!(
                "{}, written without a decimal point or exponent",
                self.message()
            )))
        } else {
            Err(E::custom(self.message()))
        }
    }
}

impl<'de> serde::Deserialize<'de> for Fen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_i64(FenVisitor { signed: false })
            .map(Fen)
    }
}

impl<'de> serde::Deserialize<'de> for SignedFen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_i64(FenVisitor { signed: true })
            .map(SignedFen)
    }
}

fn integer_schema(
    description: &'static str,
    minimum: i64,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .description(Some(description))
        .minimum(Some(minimum))
        .maximum(Some(MAX_FEN))
        .examples([123_456])
        .build()
        .into()
}

impl utoipa::PartialSchema for Fen {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        integer_schema(
            "An amount of money in fen (分, 0.01 yuan) as a whole non-negative number: \
             123456 is ¥1,234.56. Never a decimal.",
            0,
        )
    }
}

impl utoipa::ToSchema for Fen {}

impl utoipa::PartialSchema for SignedFen {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        integer_schema(
            "An amount of money in fen (分, 0.01 yuan) that may be negative, such as a \
             profit: -123456 is -¥1,234.56. Never a decimal.",
            -MAX_FEN,
        )
    }
}

impl utoipa::ToSchema for SignedFen {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fen(value: i64) -> Fen {
        Fen::new(value).unwrap()
    }

    #[test]
    fn new_refuses_negative_and_too_large() {
        assert_eq!(Fen::new(0), Ok(Fen::ZERO));
        assert_eq!(Fen::new(MAX_FEN), Ok(Fen::MAX));
        assert_eq!(Fen::new(-1), Err(MoneyError::Negative));
        assert_eq!(Fen::new(MAX_FEN + 1), Err(MoneyError::TooLarge));
        assert_eq!(Fen::new(i64::MIN), Err(MoneyError::Negative));
    }

    #[test]
    fn parses_the_ways_people_write_yuan() {
        for (input, expected) in [
            ("1234", 123_400),
            ("1234.5", 123_450),
            ("1234.56", 123_456),
            ("1,234.56", 123_456),
            ("¥1234.56", 123_456),
            ("￥ 1,234.56", 123_456),
            ("1234.56元", 123_456),
            (" ¥1,234.56 元 ", 123_456),
            ("0.01", 1),
            ("0", 0),
            ("0.0", 0),
            ("007", 700),
            ("1,234,567.89", 123_456_789),
            ("10000000000000", MAX_FEN),
            ("10,000,000,000,000.00", MAX_FEN),
        ] {
            assert_eq!(Fen::parse_yuan(input), Ok(fen(expected)), "{input}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_read_exactly() {
        use MoneyError::*;
        for (input, expected) in [
            ("", Empty),
            ("¥", Empty),
            ("元", Empty),
            ("-1", Negative),
            ("-¥1", Negative),
            ("¥-1", Negative),
            ("- 0.01", Negative),
            ("1.234", TooManyDecimals { decimals: 3 }),
            ("0.001", TooManyDecimals { decimals: 3 }),
            ("1.", Format),
            (".5", Format),
            ("1.2.3", Format),
            ("1.2,3", Format),
            ("--1", Format),
            ("1e3", BadCharacter { ch: 'e' }),
            ("+1", BadCharacter { ch: '+' }),
            ("1 234", BadCharacter { ch: ' ' }),
            ("１２", BadCharacter { ch: '１' }),
            ("NaN", BadCharacter { ch: 'N' }),
            ("12,34", BadGrouping),
            ("1234,567", BadGrouping),
            (",123", BadGrouping),
            ("1,,234", BadGrouping),
            ("1,234,", BadGrouping),
            ("10000000000000.01", TooLarge),
            ("99999999999999999999999", TooLarge),
        ] {
            assert_eq!(Fen::parse_yuan(input), Err(expected), "{input}");
        }
        assert_eq!(
            Fen::parse_yuan("1.234").unwrap_err().to_string(),
            "amount has 3 decimal places, but fen (2 places) is the smallest unit; \
             amounts are never rounded"
        );
    }

    #[test]
    fn long_zero_padding_is_not_too_large() {
        let input = format!("{}1.00", "0".repeat(40));
        assert_eq!(Fen::parse_yuan(&input), Ok(fen(100)));
    }

    #[test]
    fn formats_yuan() {
        assert_eq!(fen(123_456).to_yuan_string(), "1234.56");
        assert_eq!(fen(5).to_yuan_string(), "0.05");
        assert_eq!(fen(100).to_yuan_string(), "1.00");
        assert_eq!(Fen::ZERO.to_yuan_string(), "0.00");
        assert_eq!(fen(123_456_789).to_grouped_yuan_string(), "1,234,567.89");
        assert_eq!(fen(100_000).to_grouped_yuan_string(), "1,000.00");
        assert_eq!(fen(99_999).to_grouped_yuan_string(), "999.99");
        assert_eq!(
            SignedFen::new(-123_456).unwrap().to_yuan_string(),
            "-1234.56"
        );
        assert_eq!(SignedFen::new(-5).unwrap().to_yuan_string(), "-0.05");
        assert_eq!(
            SignedFen::new(-123_456_789)
                .unwrap()
                .to_grouped_yuan_string(),
            "-1,234,567.89"
        );
    }

    #[test]
    fn arithmetic_stays_in_range() {
        assert_eq!(fen(100).checked_add(fen(23)), Some(fen(123)));
        assert_eq!(Fen::MAX.checked_add(fen(1)), None);
        assert_eq!(fen(100).checked_sub(fen(30)), Some(fen(70)));
        assert_eq!(fen(30).checked_sub(fen(100)), None);
        assert_eq!(fen(30).signed_sub(fen(100)).as_fen(), -70);
        assert_eq!((fen(30) - fen(100)).as_fen(), -70);
        assert_eq!((Fen::ZERO - Fen::MAX).as_fen(), -MAX_FEN);
        assert_eq!(fen(50_000).checked_mul(12), Some(fen(600_000)));
        assert_eq!(Fen::MAX.checked_mul(2), None);
        assert_eq!(Fen::checked_sum([fen(1), fen(2), fen(3)]), Some(fen(6)));
        assert_eq!(Fen::checked_sum([Fen::MAX, fen(1)]), None);
        assert_eq!(Fen::checked_sum([]), Some(Fen::ZERO));
    }

    #[test]
    fn signed_amounts() {
        let loss = SignedFen::parse_yuan("-1,234.56").unwrap();
        assert_eq!(loss.as_fen(), -123_456);
        assert!(loss.is_negative());
        assert_eq!(loss.abs(), fen(123_456));
        assert_eq!(loss.to_fen(), None);
        assert_eq!(SignedFen::parse_yuan("-¥12元").unwrap().as_fen(), -1200);
        assert_eq!(SignedFen::parse_yuan("¥-12").unwrap().as_fen(), -1200);
        assert_eq!(
            SignedFen::parse_yuan("12").unwrap().to_fen(),
            Some(fen(1200))
        );
        assert_eq!(SignedFen::from(fen(7)).as_fen(), 7);
        assert_eq!(SignedFen::new(-MAX_FEN - 1), Err(MoneyError::TooLarge));
        assert_eq!(SignedFen::new(i64::MIN), Err(MoneyError::TooLarge));
        let most = SignedFen::new(MAX_FEN).unwrap();
        assert_eq!(most.checked_add(SignedFen::new(1).unwrap()), None);
        assert_eq!(
            SignedFen::new(-MAX_FEN)
                .unwrap()
                .checked_sub(SignedFen::new(1).unwrap()),
            None
        );
    }

    #[test]
    fn serde_is_a_json_integer_of_fen() {
        assert_eq!(serde_json::to_string(&fen(123_456)).unwrap(), "123456");
        assert_eq!(serde_json::from_str::<Fen>("123456").unwrap(), fen(123_456));
        assert_eq!(serde_json::from_str::<Fen>("0").unwrap(), Fen::ZERO);
        for input in ["-1", "1.5", "0.01", "-0.5"] {
            let error = serde_json::from_str::<Fen>(input).unwrap_err().to_string();
            assert!(
                error.starts_with("an amount in fen must be a whole non-negative number"),
                "{input}: {error}"
            );
        }
        let error = serde_json::from_str::<Fen>("1.0").unwrap_err().to_string();
        assert!(error.contains("without a decimal point"), "{error}");
        let error = serde_json::from_str::<Fen>("\"12.34\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("expected an amount in fen"), "{error}");
        let error = serde_json::from_str::<Fen>("1000000000000001")
            .unwrap_err()
            .to_string();
        assert!(error.contains("at most 1000000000000000"), "{error}");
        assert!(serde_json::from_str::<Fen>("18446744073709551615").is_err());
        assert!(serde_json::from_str::<Fen>("null").is_err());
    }

    #[test]
    fn signed_serde_accepts_negative_integers_only() {
        let value = SignedFen::new(-42).unwrap();
        assert_eq!(serde_json::to_string(&value).unwrap(), "-42");
        assert_eq!(serde_json::from_str::<SignedFen>("-42").unwrap(), value);
        let error = serde_json::from_str::<SignedFen>("-4.2")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("an amount in fen must be a whole number"),
            "{error}"
        );
        assert!(serde_json::from_str::<SignedFen>("-1000000000000001").is_err());
    }

    #[test]
    fn schema_is_a_bounded_integer() {
        use utoipa::PartialSchema;
        let schema = serde_json::to_value(Fen::schema()).unwrap();
        assert_eq!(schema["type"], "integer");
        assert_eq!(schema["minimum"], 0);
        assert_eq!(schema["maximum"], MAX_FEN);
        let schema = serde_json::to_value(SignedFen::schema()).unwrap();
        assert_eq!(schema["minimum"], -MAX_FEN);
    }

    proptest! {
        #[test]
        fn yuan_string_round_trips(value in 0..=MAX_FEN) {
            let amount = fen(value);
            prop_assert_eq!(Fen::parse_yuan(&amount.to_yuan_string()), Ok(amount));
            prop_assert_eq!(Fen::parse_yuan(&amount.to_grouped_yuan_string()), Ok(amount));
            let decorated = format!("¥{}元", amount.to_grouped_yuan_string());
            prop_assert_eq!(Fen::parse_yuan(&decorated), Ok(amount));
            let json = serde_json::to_string(&amount).unwrap();
            prop_assert_eq!(serde_json::from_str::<Fen>(&json).unwrap(), amount);
        }

        #[test]
        fn signed_yuan_string_round_trips(value in -MAX_FEN..=MAX_FEN) {
            let amount = SignedFen::new(value).unwrap();
            prop_assert_eq!(SignedFen::parse_yuan(&amount.to_yuan_string()), Ok(amount));
            prop_assert_eq!(SignedFen::parse_yuan(&amount.to_grouped_yuan_string()), Ok(amount));
        }

        #[test]
        fn difference_adds_back(a in 0..=MAX_FEN, b in 0..=MAX_FEN) {
            let difference = fen(a) - fen(b);
            prop_assert_eq!(difference.as_fen(), a - b);
            prop_assert_eq!(fen(a).checked_sub(fen(b)), difference.to_fen());
            prop_assert_eq!(
                SignedFen::from(fen(b)).checked_add(difference),
                Some(SignedFen::from(fen(a)))
            );
        }

        #[test]
        fn parse_never_panics_and_never_rounds(input in "[-¥0-9.,元 ]{0,30}") {
            if let Ok(amount) = Fen::parse_yuan(&input) {
                prop_assert!((0..=MAX_FEN).contains(&amount.as_fen()));
                // Every digit written is kept: the canonical form has at most
                // as many significant fraction digits as the input.
                let fraction = input.split_once('.').map(|(_, f)| f).unwrap_or("");
                prop_assert!(fraction.chars().filter(char::is_ascii_digit).count() <= 2);
            }
        }

        #[test]
        fn parse_never_panics_on_anything(input in any::<String>()) {
            let _ = Fen::parse_yuan(&input);
            let _ = SignedFen::parse_yuan(&input);
        }
    }
}
