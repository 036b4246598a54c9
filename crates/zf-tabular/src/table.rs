//! The in-memory table both formats are read into and written from, and the
//! rules every reader applies to it.

use crate::error::{Limit, Malformation, ReadError};
use crate::formula::unescape_formula;

/// A sheet of text cells. `headers` is the first row; `rows[i].number` is the
/// 1-based row number as a spreadsheet shows it (header = row 1, so the first
/// data row is 2).
///
/// Read tables are rectangular: every row has exactly `headers.len()` cells.
/// Blank rows are left out but still counted, so numbers can skip; blank
/// rows before the header are counted too, so its row is then not 1.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Row>,
}

/// One data row. `number` is kept through every transformation so that an
/// error about a row can point at the line the user sees in Excel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    pub number: usize,
    pub cells: Vec<String>,
}

impl Table {
    /// A table with no rows yet, for building an export.
    pub fn new(headers: Vec<String>) -> Self {
        Self {
            headers,
            rows: Vec::new(),
        }
    }

    /// Appends a row numbered right after the last one, which is what it will
    /// be when written out.
    pub fn push_row(&mut self, cells: Vec<String>) {
        let number = self.rows.last().map_or(2, |row| row.number + 1);
        self.rows.push(Row { number, cells });
    }
}

/// Bounds on what a reader accepts, so that an upload cannot make the server
/// hold an unbounded table. Rows and columns are counted after blank rows and
/// trailing blank columns are dropped; `max_rows` does not count the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_rows: usize,
    pub max_columns: usize,
    pub max_cell_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_rows: 200_000,
            max_columns: 100,
            max_cell_chars: 10_000,
        }
    }
}

/// Whether a cell counts as empty when deciding if a row is blank or a column
/// unused: a cell of spaces looks empty in a spreadsheet, and a row of them
/// should not become a row of validation errors.
pub(crate) fn is_blank(cell: &str) -> bool {
    cell.trim().is_empty()
}

/// What to do with a row that has fewer cells than the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShortRows {
    /// A CSV line with missing fields is probably misaligned, not short.
    Reject,
    /// A worksheet simply stores no cell for an empty one.
    Pad,
}

/// Turns raw rows, in order, into a [`Table`]: the first non-blank row becomes
/// the header, blank rows are dropped, limits are enforced, and formula
/// escapes are undone. Shared so that CSV and XLSX follow the same rules.
pub(crate) struct TableBuilder<'a> {
    limits: &'a Limits,
    short_rows: ShortRows,
    headers: Option<Vec<String>>,
    rows: Vec<Row>,
}

impl<'a> TableBuilder<'a> {
    pub(crate) fn new(limits: &'a Limits, short_rows: ShortRows) -> Self {
        Self {
            limits,
            short_rows,
            headers: None,
            rows: Vec::new(),
        }
    }

    pub(crate) fn has_headers(&self) -> bool {
        self.headers.is_some()
    }

    pub(crate) fn push(&mut self, number: usize, mut cells: Vec<String>) -> Result<(), ReadError> {
        if cells.iter().all(|cell| is_blank(cell)) {
            return Ok(());
        }
        let Some(headers) = &self.headers else {
            while cells.last().is_some_and(|cell| is_blank(cell)) {
                cells.pop();
            }
            if cells.len() > self.limits.max_columns {
                return Err(ReadError::TooLarge {
                    limit: Limit::Columns,
                    max: self.limits.max_columns,
                    row: Some(number),
                });
            }
            self.headers = Some(self.finish_cells(number, cells)?);
            return Ok(());
        };
        let width = headers.len();
        if self.rows.len() == self.limits.max_rows {
            return Err(ReadError::TooLarge {
                limit: Limit::Rows,
                max: self.limits.max_rows,
                row: Some(number),
            });
        }
        if cells.len() < width {
            if self.short_rows == ShortRows::Reject {
                return Err(ReadError::Malformed {
                    row: Some(number),
                    reason: Malformation::CellCount {
                        expected: width,
                        found: cells.len(),
                    },
                });
            }
            cells.resize(width, String::new());
        }
        if let Some(extra) = cells[width..].iter().position(|cell| !is_blank(cell)) {
            return Err(ReadError::Malformed {
                row: Some(number),
                reason: Malformation::CellWithoutHeader {
                    column: width + extra + 1,
                },
            });
        }
        cells.truncate(width);
        let cells = self.finish_cells(number, cells)?;
        self.rows.push(Row { number, cells });
        Ok(())
    }

    fn finish_cells(&self, number: usize, cells: Vec<String>) -> Result<Vec<String>, ReadError> {
        let max = self.limits.max_cell_chars;
        cells
            .into_iter()
            .map(|mut cell| {
                // Invisible in Excel, so nobody could find and fix it, and not
                // storable in PostgreSQL text. Only XLSX can carry one this far.
                if cell.contains('\0') {
                    cell.retain(|ch| ch != '\0');
                }
                // Byte length bounds the character count, so most cells skip counting.
                if cell.len() > max && cell.chars().count() > max {
                    return Err(ReadError::TooLarge {
                        limit: Limit::CellChars,
                        max,
                        row: Some(number),
                    });
                }
                // Unescaping only ever strips a prefix, so the cell can usually be kept.
                let kept = unescape_formula(&cell).len();
                Ok(if kept == cell.len() {
                    cell
                } else {
                    cell[cell.len() - kept..].to_owned()
                })
            })
            .collect()
    }

    pub(crate) fn finish(self) -> Result<Table, ReadError> {
        let headers = self.headers.ok_or(ReadError::Empty)?;
        Ok(Table {
            headers,
            rows: self.rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|cell| (*cell).to_owned()).collect()
    }

    fn build(short_rows: ShortRows, limits: &Limits, rows: &[&[&str]]) -> Result<Table, ReadError> {
        let mut builder = TableBuilder::new(limits, short_rows);
        for (index, cells) in rows.iter().enumerate() {
            builder.push(index + 1, strings(cells))?;
        }
        builder.finish()
    }

    #[test]
    fn skips_blank_rows_but_keeps_their_numbers() {
        let table = build(
            ShortRows::Reject,
            &Limits::default(),
            &[&["", ""], &["名称", "电话"], &[" ", ""], &["甲", "1"]],
        )
        .unwrap();
        assert_eq!(table.headers, strings(&["名称", "电话"]));
        assert_eq!(
            table.rows,
            vec![Row {
                number: 4,
                cells: strings(&["甲", "1"])
            }]
        );
    }

    #[test]
    fn drops_trailing_blank_header_columns_and_their_empty_cells() {
        let table = build(
            ShortRows::Reject,
            &Limits::default(),
            &[&["a", "b", "", " "], &["1", "2", "", ""], &["3", "4"]],
        )
        .unwrap();
        assert_eq!(table.headers, strings(&["a", "b"]));
        assert_eq!(table.rows[0].cells, strings(&["1", "2"]));
        assert_eq!(table.rows[1].cells, strings(&["3", "4"]));
    }

    #[test]
    fn rejects_content_right_of_the_header() {
        let error = build(
            ShortRows::Pad,
            &Limits::default(),
            &[&["a", "b", ""], &["1", "2", "x"]],
        )
        .unwrap_err();
        assert_eq!(
            error,
            ReadError::Malformed {
                row: Some(2),
                reason: Malformation::CellWithoutHeader { column: 3 }
            }
        );
    }

    #[test]
    fn short_rows_are_rejected_or_padded() {
        let rows: &[&[&str]] = &[&["a", "b"], &["1"]];
        assert_eq!(
            build(ShortRows::Reject, &Limits::default(), rows).unwrap_err(),
            ReadError::Malformed {
                row: Some(2),
                reason: Malformation::CellCount {
                    expected: 2,
                    found: 1
                }
            }
        );
        let table = build(ShortRows::Pad, &Limits::default(), rows).unwrap();
        assert_eq!(table.rows[0].cells, strings(&["1", ""]));
    }

    #[test]
    fn enforces_limits() {
        let limits = Limits {
            max_rows: 1,
            max_columns: 2,
            max_cell_chars: 3,
        };
        let too_many_rows = build(ShortRows::Reject, &limits, &[&["a"], &["1"], &["2"]]);
        assert_eq!(
            too_many_rows.unwrap_err(),
            ReadError::TooLarge {
                limit: Limit::Rows,
                max: 1,
                row: Some(3)
            }
        );
        let too_wide = build(ShortRows::Reject, &limits, &[&["a", "b", "c"]]);
        assert!(matches!(
            too_wide,
            Err(ReadError::TooLarge {
                limit: Limit::Columns,
                ..
            })
        ));
        // Counted in characters: three Chinese characters are nine bytes.
        assert!(build(ShortRows::Reject, &limits, &[&["a"], &["张三丰"]]).is_ok());
        assert!(matches!(
            build(ShortRows::Reject, &limits, &[&["a"], &["abcd"]]),
            Err(ReadError::TooLarge {
                limit: Limit::CellChars,
                row: Some(2),
                ..
            })
        ));
    }

    #[test]
    fn undoes_formula_escapes() {
        let table = build(
            ShortRows::Reject,
            &Limits::default(),
            &[&["'=h"], &["'-5"], &["''=x"], &["'plain"]],
        )
        .unwrap();
        assert_eq!(table.headers, strings(&["=h"]));
        let cells: Vec<&str> = table.rows.iter().map(|row| row.cells[0].as_str()).collect();
        assert_eq!(cells, ["-5", "'=x", "'plain"]);
    }

    #[test]
    fn drops_nul_characters() {
        let table = build(
            ShortRows::Reject,
            &Limits::default(),
            &[&["a\0b"], &["\0c"]],
        )
        .unwrap();
        assert_eq!(table.headers, strings(&["ab"]));
        assert_eq!(table.rows[0].cells, strings(&["c"]));
    }

    #[test]
    fn all_blank_input_is_empty() {
        assert_eq!(
            build(ShortRows::Reject, &Limits::default(), &[&[""], &[" "]]).unwrap_err(),
            ReadError::Empty
        );
    }

    #[test]
    fn push_row_numbers_after_the_last_row() {
        let mut table = Table::new(strings(&["a"]));
        table.push_row(strings(&["1"]));
        table.push_row(strings(&["2"]));
        let numbers: Vec<usize> = table.rows.iter().map(|row| row.number).collect();
        assert_eq!(numbers, [2, 3]);
    }
}
