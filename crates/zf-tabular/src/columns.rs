//! Finding the columns a caller expects among a file's headers.

use thiserror::Error;

use crate::error::column_letters;
use crate::table::Row;

/// A column a caller expects. `header` is the Chinese header written on
/// export and named in messages; `aliases` are other headers accepted on
/// import (English names, older or shorter wordings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub key: &'static str,
    pub header: &'static str,
    pub aliases: &'static [&'static str],
    pub required: bool,
}

/// Why a file's headers do not fit the expected columns.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeaderError {
    /// The Chinese headers of the required columns that were not found.
    #[error("缺少必需的列：{}", .0.iter().map(|h| format!("「{h}」")).collect::<Vec<_>>().join("、"))]
    Missing(Vec<String>),
    /// Two headers name the same column, possibly one by an alias; the
    /// columns are 1-based.
    #[error(
        "「{header}」列出现了两次（第 {} 列和第 {} 列）",
        column_letters(*.first_column),
        column_letters(*.second_column)
    )]
    Duplicate {
        header: String,
        first_column: usize,
        second_column: usize,
    },
}

impl HeaderError {
    pub fn to_english(&self) -> String {
        match self {
            HeaderError::Missing(headers) => {
                let quoted: Vec<String> = headers.iter().map(|h| format!("\"{h}\"")).collect();
                format!("required columns are missing: {}", quoted.join(", "))
            }
            HeaderError::Duplicate {
                header,
                first_column,
                second_column,
            } => format!(
                "the column \"{header}\" appears twice (columns {} and {})",
                column_letters(*first_column),
                column_letters(*second_column)
            ),
        }
    }
}

/// Where each expected column is in a table, from [`map_columns`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMap {
    found: Vec<(&'static str, usize)>,
    unknown: Vec<String>,
}

impl ColumnMap {
    /// The cell of column `key` in `row`, trimmed; `None` when the file has
    /// no such column or the cell is blank, so callers have a single case
    /// for "not given".
    pub fn get<'a>(&self, row: &'a Row, key: &str) -> Option<&'a str> {
        let index = self.index(key)?;
        let cell = row.cells.get(index)?.trim();
        (!cell.is_empty()).then_some(cell)
    }

    /// The 0-based position of column `key` in the table's cells.
    pub fn index(&self, key: &str) -> Option<usize> {
        self.found
            .iter()
            .find(|(found, _)| *found == key)
            .map(|&(_, index)| index)
    }

    /// Whether the file has column `key`, so an optional column that is
    /// absent can be told from one that is present but blank.
    pub fn contains(&self, key: &str) -> bool {
        self.index(key).is_some()
    }

    /// Headers matching no expected column, trimmed, in file order; the
    /// caller may warn that they will be ignored.
    pub fn unknown(&self) -> &[String] {
        &self.unknown
    }
}

/// Finds each of `columns` among `headers`.
///
/// Matching ignores surrounding whitespace, full-width versus half-width
/// parentheses and ASCII case, because those are the differences people make
/// when retyping a header. Blank headers are ignored.
pub fn map_columns(headers: &[String], columns: &[Column]) -> Result<ColumnMap, HeaderError> {
    let names: Vec<Vec<String>> = columns
        .iter()
        .map(|column| {
            std::iter::once(column.header)
                .chain(column.aliases.iter().copied())
                .map(normalise)
                .collect()
        })
        .collect();
    let mut found: Vec<(&'static str, usize)> = Vec::new();
    let mut unknown = Vec::new();
    for (index, header) in headers.iter().enumerate() {
        let header = normalise(header);
        if header.is_empty() {
            continue;
        }
        let Some(column) = names
            .iter()
            .position(|names| names.contains(&header))
            .map(|position| &columns[position])
        else {
            unknown.push(headers[index].trim().to_owned());
            continue;
        };
        if let Some(&(_, first)) = found.iter().find(|(key, _)| *key == column.key) {
            return Err(HeaderError::Duplicate {
                header: column.header.to_owned(),
                first_column: first + 1,
                second_column: index + 1,
            });
        }
        found.push((column.key, index));
    }
    let missing: Vec<String> = columns
        .iter()
        .filter(|column| column.required && !found.iter().any(|(key, _)| *key == column.key))
        .map(|column| column.header.to_owned())
        .collect();
    if !missing.is_empty() {
        return Err(HeaderError::Missing(missing));
    }
    Ok(ColumnMap { found, unknown })
}

fn normalise(header: &str) -> String {
    header
        // A BOM that survived decoding sticks to the first header.
        .trim_matches(|ch: char| ch.is_whitespace() || ch == '\u{feff}')
        .chars()
        .map(|ch| match ch {
            '（' => '(',
            '）' => ')',
            other => other.to_ascii_lowercase(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: &[Column] = &[
        Column {
            key: "name",
            header: "企业名称",
            aliases: &["name", "名称"],
            required: true,
        },
        Column {
            key: "uscc",
            header: "统一社会信用代码",
            aliases: &["USCC", "信用代码"],
            required: true,
        },
        Column {
            key: "phone",
            header: "联系电话（手机）",
            aliases: &[],
            required: false,
        },
    ];

    fn headers(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    fn row(cells: &[&str]) -> Row {
        Row {
            number: 2,
            cells: headers(cells),
        }
    }

    #[test]
    fn matches_headers_and_aliases_loosely() {
        let map = map_columns(
            &headers(&[" uscc ", "备注", "联系电话(手机)", "\u{feff}Name", ""]),
            COLUMNS,
        )
        .unwrap();
        assert_eq!(map.index("uscc"), Some(0));
        assert_eq!(map.index("phone"), Some(2));
        assert_eq!(map.index("name"), Some(3));
        assert_eq!(map.unknown(), ["备注"]);
    }

    #[test]
    fn gets_trimmed_cells_and_none_when_blank_or_absent() {
        let map = map_columns(&headers(&["企业名称", "信用代码"]), COLUMNS).unwrap();
        let row = row(&[" 甲公司 ", "  "]);
        assert_eq!(map.get(&row, "name"), Some("甲公司"));
        assert_eq!(map.get(&row, "uscc"), None);
        assert_eq!(map.get(&row, "phone"), None);
        assert!(!map.contains("phone"));
        assert_eq!(map.get(&row, "no such key"), None);
    }

    #[test]
    fn reports_missing_required_columns_by_chinese_header() {
        let error = map_columns(&headers(&["联系电话（手机）"]), COLUMNS).unwrap_err();
        assert_eq!(
            error,
            HeaderError::Missing(headers(&["企业名称", "统一社会信用代码"]))
        );
        assert_eq!(
            error.to_string(),
            "缺少必需的列：「企业名称」、「统一社会信用代码」"
        );
        assert_eq!(
            error.to_english(),
            "required columns are missing: \"企业名称\", \"统一社会信用代码\""
        );
    }

    #[test]
    fn reports_a_column_named_twice() {
        let error =
            map_columns(&headers(&["企业名称", "USCC", "统一社会信用代码"]), COLUMNS).unwrap_err();
        assert_eq!(
            error,
            HeaderError::Duplicate {
                header: "统一社会信用代码".to_owned(),
                first_column: 2,
                second_column: 3
            }
        );
        assert_eq!(
            error.to_string(),
            "「统一社会信用代码」列出现了两次（第 B 列和第 C 列）"
        );
    }

    #[test]
    fn unknown_headers_may_repeat() {
        let map = map_columns(&headers(&["企业名称", "USCC", "备注", "备注"]), COLUMNS).unwrap();
        assert_eq!(map.unknown(), ["备注", "备注"]);
    }
}
