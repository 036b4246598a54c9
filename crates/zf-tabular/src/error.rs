//! Errors of reading and writing. Each renders in Chinese through `Display`,
//! because that is what the people importing the file read, and in English
//! through `to_english`, for the English UI and for logs.

use thiserror::Error;

/// Why bytes could not be read as a table.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReadError {
    /// Neither a text encoding we know nor an XLSX workbook.
    #[error("文件既不是文本（UTF-8、GBK/GB18030 或 UTF-16 编码的 CSV），也不是 XLSX 工作簿")]
    NotText,
    /// An `.xls` (Excel 97–2003) file, or an XLSX workbook protected by a
    /// password: both are OLE compound files, which this crate does not read.
    #[error(
        "这是旧版 Excel（.xls）文件或设置了密码的工作簿，无法读取；\
         请在 Excel 中另存为 .xlsx 或 CSV 后再导入"
    )]
    UnsupportedWorkbook,
    /// The file's structure is broken. `row` is the spreadsheet row number
    /// where that was noticed, when the problem belongs to a row.
    #[error("{}", malformed_zh(*.row, .reason))]
    Malformed {
        row: Option<usize>,
        reason: Malformation,
    },
    /// A [`Limits`](crate::Limits) bound was exceeded.
    #[error("{}", too_large_zh(*.limit, *.max, *.row))]
    TooLarge {
        limit: Limit,
        max: usize,
        row: Option<usize>,
    },
    /// No row has any content, so there is not even a header.
    #[error("文件中没有内容（找不到表头行）")]
    Empty,
}

impl ReadError {
    pub fn to_english(&self) -> String {
        match self {
            ReadError::NotText => "the file is neither text (CSV in UTF-8, GBK/GB18030 or UTF-16) \
                                   nor an XLSX workbook"
                .to_owned(),
            ReadError::UnsupportedWorkbook => "this is an old Excel (.xls) file or a \
                                               password-protected workbook, which cannot be read; \
                                               save it as .xlsx or CSV in Excel and import that"
                .to_owned(),
            ReadError::Malformed {
                row: Some(row),
                reason,
            } => {
                format!("row {row} is malformed: {}", reason.to_english())
            }
            ReadError::Malformed { row: None, reason } => {
                format!("the file is malformed: {}", reason.to_english())
            }
            ReadError::TooLarge { limit, max, row } => {
                let what = match limit {
                    Limit::Rows => format!("the file has more than {max} data rows"),
                    Limit::Columns => format!("the file has more than {max} columns"),
                    Limit::CellChars => format!("a cell has more than {max} characters"),
                    Limit::UnpackedBytes => {
                        format!("the workbook unpacks to more than {} MiB", max >> 20)
                    }
                };
                match row {
                    Some(row) => format!("row {row}: {what}"),
                    None => what,
                }
            }
            ReadError::Empty => "the file has no content (no header row)".to_owned(),
        }
    }
}

fn malformed_zh(row: Option<usize>, reason: &Malformation) -> String {
    match row {
        Some(row) => format!("第 {row} 行格式有误：{reason}"),
        None => format!("文件格式有误：{reason}"),
    }
}

fn too_large_zh(limit: Limit, max: usize, row: Option<usize>) -> String {
    let what = match limit {
        Limit::Rows => format!("数据行数超过上限 {max} 行"),
        Limit::Columns => format!("列数超过上限 {max} 列"),
        Limit::CellChars => format!("单元格内容超过上限 {max} 个字符"),
        Limit::UnpackedBytes => format!("工作簿解压后超过上限 {} MiB", max >> 20),
    };
    match row {
        Some(row) => format!("第 {row} 行：{what}"),
        None => what,
    }
}

/// What exactly is wrong in a [`ReadError::Malformed`] file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Malformation {
    /// A quoted CSV field runs to the end of the file. `line` counts every
    /// line break, including those inside quoted fields.
    #[error("从文本第 {line} 行开始的引号没有闭合")]
    UnclosedQuote { line: usize },
    /// Characters follow the closing quote of a CSV field before the next
    /// delimiter, as in `"abc"def`.
    #[error("文本第 {line} 行的引号闭合后还有多余的字符")]
    TextAfterQuote { line: usize },
    /// A CSV row has fewer cells than the header.
    #[error("有 {found} 个单元格，但表头有 {expected} 个")]
    CellCount { expected: usize, found: usize },
    /// A cell right of the last header has content. `column` is 1-based.
    #[error("第 {} 列有内容，但这一列没有表头", column_letters(*.column))]
    CellWithoutHeader { column: usize },
    /// A worksheet lists a row before one above it.
    #[error("工作表中的行顺序错乱")]
    RowsOutOfOrder,
    /// The workbook contains no worksheet (only chart sheets, say).
    #[error("工作簿中没有工作表")]
    NoWorksheet,
    /// The workbook's zip or XML is damaged; the detail comes from the XLSX
    /// reader and is in English.
    #[error("工作簿已损坏（{0}）")]
    Corrupt(String),
}

impl Malformation {
    pub fn to_english(&self) -> String {
        match self {
            Malformation::UnclosedQuote { line } => {
                format!("the quote opened on text line {line} is never closed")
            }
            Malformation::TextAfterQuote { line } => {
                format!("characters follow a closing quote on text line {line}")
            }
            Malformation::CellCount { expected, found } => {
                format!("it has {found} cells but the header has {expected}")
            }
            Malformation::CellWithoutHeader { column } => format!(
                "column {} has content but no header",
                column_letters(*column)
            ),
            Malformation::RowsOutOfOrder => "the worksheet's rows are out of order".to_owned(),
            Malformation::NoWorksheet => "the workbook has no worksheet".to_owned(),
            Malformation::Corrupt(detail) => format!("the workbook is damaged ({detail})"),
        }
    }
}

/// Which bound of [`Limits`](crate::Limits) a file exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    Rows,
    Columns,
    CellChars,
    /// The files inside an XLSX workbook, unpacked, in bytes; derived from
    /// the other limits (see [`read_xlsx`](crate::read_xlsx)).
    UnpackedBytes,
}

/// Why a table could not be written. Only XLSX writing can fail: the format
/// has hard limits that CSV does not.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WriteError {
    #[error(
        "工作表名称「{0}」无效：名称不能为空，不能超过 31 个字符，不能包含 [ ] : * ? / \\，\
         也不能以 ' 开头或结尾"
    )]
    InvalidSheetName(String),
    /// `rows` counts the header row too, as `max` does.
    #[error("共 {rows} 行，超过了 XLSX 的上限 {max} 行")]
    TooManyRows { rows: usize, max: usize },
    #[error("共 {columns} 列，超过了 XLSX 的上限 {max} 列")]
    TooManyColumns { columns: usize, max: usize },
    /// `row` is the spreadsheet row number (header = 1), `column` is 1-based.
    #[error("第 {row} 行第 {} 列的内容超过了 XLSX 单元格的上限 {max} 个字符", column_letters(*.column))]
    CellTooLong {
        row: usize,
        column: usize,
        max: usize,
    },
    /// Anything else the XLSX writer refused; the detail is in English.
    #[error("无法生成 XLSX 文件（{0}）")]
    Xlsx(String),
}

impl WriteError {
    pub fn to_english(&self) -> String {
        match self {
            WriteError::InvalidSheetName(name) => format!(
                "the sheet name \"{name}\" is invalid: it must be 1 to 31 characters, contain none \
                 of [ ] : * ? / \\ and not start or end with '"
            ),
            WriteError::TooManyRows { rows, max } => {
                format!("{rows} rows exceed the XLSX limit of {max}")
            }
            WriteError::TooManyColumns { columns, max } => {
                format!("{columns} columns exceed the XLSX limit of {max}")
            }
            WriteError::CellTooLong { row, column, max } => format!(
                "the cell in row {row}, column {} exceeds the XLSX limit of {max} characters",
                column_letters(*column)
            ),
            WriteError::Xlsx(detail) => format!("the XLSX file could not be made ({detail})"),
        }
    }
}

/// A spreadsheet's name for the 1-based `column`: 1 is `A`, 27 is `AA`.
/// Messages name columns this way because that is what the user sees above
/// the sheet.
pub fn column_letters(column: usize) -> String {
    let mut letters = Vec::new();
    let mut n = column;
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(b'A' + rem as u8);
        n = (n - 1) / 26;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_columns_like_a_spreadsheet() {
        for (column, name) in [(1, "A"), (26, "Z"), (27, "AA"), (52, "AZ"), (703, "AAA")] {
            assert_eq!(column_letters(column), name);
        }
    }

    #[test]
    fn renders_in_both_languages() {
        let error = ReadError::Malformed {
            row: Some(12),
            reason: Malformation::CellWithoutHeader { column: 28 },
        };
        assert_eq!(
            error.to_string(),
            "第 12 行格式有误：第 AB 列有内容，但这一列没有表头"
        );
        assert_eq!(
            error.to_english(),
            "row 12 is malformed: column AB has content but no header"
        );
        let error = ReadError::TooLarge {
            limit: Limit::Rows,
            max: 5,
            row: Some(7),
        };
        assert_eq!(error.to_string(), "第 7 行：数据行数超过上限 5 行");
        assert_eq!(
            error.to_english(),
            "row 7: the file has more than 5 data rows"
        );
    }
}
