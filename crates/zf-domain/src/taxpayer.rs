//! 纳税人类型: VAT taxpayer status, which decides filing frequency and rates.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use utoipa::ToSchema;

/// Echoing unbounded user input into an error (and from there into logs and
/// responses) is a nuisance at best, so the echoed value is cut short.
const MAX_ECHO_CHARS: usize = 32;

/// The input was neither a taxpayer type code nor its Chinese label.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "taxpayer type must be \"general\" (一般纳税人) or \"small_scale\" (小规模纳税人), \
     not \"{value}\""
)]
pub struct TaxpayerTypeError {
    value: String,
}

/// VAT taxpayer status: "general" is 一般纳税人, "small_scale" is 小规模纳税人.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum TaxpayerType {
    /// 一般纳税人
    General,
    /// 小规模纳税人
    SmallScale,
}

impl TaxpayerType {
    pub const ALL: [TaxpayerType; 2] = [TaxpayerType::General, TaxpayerType::SmallScale];

    /// Accepts the API codes (any case, surrounding whitespace ignored) and
    /// the Chinese labels, because imported spreadsheets use the latter.
    pub fn parse(input: &str) -> Result<Self, TaxpayerTypeError> {
        let trimmed = input.trim();
        Self::ALL
            .into_iter()
            .find(|kind| trimmed.eq_ignore_ascii_case(kind.as_str()) || trimmed == kind.label_zh())
            .ok_or_else(|| TaxpayerTypeError {
                value: trimmed.chars().take(MAX_ECHO_CHARS).collect(),
            })
    }

    /// The code used in JSON, URLs and storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            TaxpayerType::General => "general",
            TaxpayerType::SmallScale => "small_scale",
        }
    }

    pub const fn label_zh(self) -> &'static str {
        match self {
            TaxpayerType::General => "一般纳税人",
            TaxpayerType::SmallScale => "小规模纳税人",
        }
    }

    pub const fn label_en(self) -> &'static str {
        match self {
            TaxpayerType::General => "General taxpayer",
            TaxpayerType::SmallScale => "Small-scale taxpayer",
        }
    }
}

impl fmt::Display for TaxpayerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaxpayerType {
    type Err = TaxpayerTypeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::parse(input)
    }
}

impl TryFrom<String> for TaxpayerType {
    type Error = TaxpayerTypeError;

    fn try_from(input: String) -> Result<Self, Self::Error> {
        Self::parse(&input)
    }
}

impl TryFrom<&str> for TaxpayerType {
    type Error = TaxpayerTypeError;

    fn try_from(input: &str) -> Result<Self, Self::Error> {
        Self::parse(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_labels() {
        assert_eq!(TaxpayerType::General.as_str(), "general");
        assert_eq!(TaxpayerType::SmallScale.as_str(), "small_scale");
        assert_eq!(TaxpayerType::General.label_zh(), "一般纳税人");
        assert_eq!(TaxpayerType::SmallScale.label_zh(), "小规模纳税人");
        assert_eq!(TaxpayerType::General.label_en(), "General taxpayer");
        assert_eq!(TaxpayerType::SmallScale.label_en(), "Small-scale taxpayer");
        assert_eq!(TaxpayerType::SmallScale.to_string(), "small_scale");
    }

    #[test]
    fn parse_round_trips_every_variant() {
        for kind in TaxpayerType::ALL {
            assert_eq!(TaxpayerType::parse(kind.as_str()), Ok(kind));
            assert_eq!(TaxpayerType::parse(kind.label_zh()), Ok(kind));
        }
    }

    #[test]
    fn parse_ignores_case_and_whitespace() {
        assert_eq!(
            TaxpayerType::parse(" Small_Scale "),
            Ok(TaxpayerType::SmallScale)
        );
    }

    #[test]
    fn parse_rejects_other_values_with_a_clear_message() {
        let error = TaxpayerType::parse("smallscale").unwrap_err();
        assert_eq!(
            error.to_string(),
            "taxpayer type must be \"general\" (一般纳税人) or \"small_scale\" \
             (小规模纳税人), not \"smallscale\""
        );
        let long = "x".repeat(1000);
        let message = TaxpayerType::parse(&long).unwrap_err().to_string();
        assert!(message.len() < 200, "{message}");
    }

    #[test]
    fn serde_uses_snake_case_and_reports_reason() {
        let json = serde_json::to_string(&TaxpayerType::SmallScale).unwrap();
        assert_eq!(json, "\"small_scale\"");
        let back: TaxpayerType = serde_json::from_str(&json).unwrap();
        assert_eq!(back, TaxpayerType::SmallScale);
        let error = serde_json::from_str::<TaxpayerType>("\"vip\"").unwrap_err();
        assert!(
            error.to_string().contains("taxpayer type must be"),
            "{error}"
        );
    }
}
