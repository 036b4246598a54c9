//! An error about one cell of an imported table, for the layer that
//! validates rows.

use thiserror::Error;

/// A problem with one cell: the spreadsheet row number, the column's
/// (Chinese) header and why the value was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("第 {row} 行「{column}」: {reason}")]
pub struct RowError {
    pub row: usize,
    pub column: String,
    pub reason: String,
}

impl RowError {
    pub fn new(row: usize, column: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            row,
            column: column.into(),
            reason: reason.into(),
        }
    }

    /// The same message for the English UI; `column` and `reason` are shown
    /// as given, so the caller supplies them in the language wanted.
    pub fn to_english(&self) -> String {
        format!(
            "row {}, column \"{}\": {}",
            self.row, self.column, self.reason
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_row_and_column() {
        let error = RowError::new(12, "手机号", "不是有效的手机号");
        assert_eq!(error.to_string(), "第 12 行「手机号」: 不是有效的手机号");
        assert_eq!(
            RowError::new(12, "手机号", "not a mobile number").to_english(),
            "row 12, column \"手机号\": not a mobile number"
        );
    }
}
