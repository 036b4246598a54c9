//! Writing an XLSX workbook of one worksheet.

use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook, XlsxError};

use crate::error::WriteError;
use crate::formula::export_cell;
use crate::table::Table;

/// Excel's own limits.
const MAX_ROWS: usize = 1_048_576;
const MAX_COLUMNS: usize = 16_384;
const MAX_CELL_CHARS: usize = 32_767;

/// Column widths in Excel's units (about one Latin character each).
const MIN_WIDTH: f64 = 8.0;
const MAX_WIDTH: f64 = 60.0;

/// Writes `table` as the only worksheet, named `sheet_name`.
///
/// Every cell is a string cell, so ID numbers, USCCs and codes with leading
/// zeros stay text when opened; formula escaping is applied as for CSV,
/// because a user who edits such a cell in Excel turns `=…` into a formula.
/// The header row is bold and frozen, and columns are sized to their widest
/// line, CJK characters counting double. NUL characters are left out, as
/// the readers drop them.
///
/// The output is deterministic: the document's creation time is fixed, so the
/// same table always gives the same bytes and no clock is read here.
pub fn write_xlsx(table: &Table, sheet_name: &str) -> Result<Vec<u8>, WriteError> {
    let width = table
        .rows
        .iter()
        .map(|row| row.cells.len())
        .chain([table.headers.len()])
        .max()
        .unwrap_or(0);
    check_limits(table, width)?;

    let mut workbook = Workbook::new();
    let created = ExcelDateTime::from_ymd(1980, 1, 1).map_err(other)?;
    workbook.set_properties(&DocProperties::new().set_creation_datetime(&created));
    let sheet = workbook.add_worksheet();
    sheet
        .set_name(sheet_name)
        .map_err(|_| WriteError::InvalidSheetName(sheet_name.to_owned()))?;

    let bold = Format::new().set_bold();
    let mut widths = vec![0_usize; width];
    let lines = [&table.headers]
        .into_iter()
        .chain(table.rows.iter().map(|row| &row.cells));
    for (row, cells) in lines.enumerate() {
        // Fits: check_limits bounded both by Excel's maxima.
        let row = row as u32;
        for (column, cell) in cells.iter().enumerate() {
            widths[column] = widths[column].max(display_width(cell));
            if cell.is_empty() {
                continue;
            }
            let cell = export_cell(cell);
            let column = column as u16;
            if row == 0 {
                sheet.write_string_with_format(row, column, cell.as_ref(), &bold)
            } else {
                sheet.write_string(row, column, cell.as_ref())
            }
            .map_err(other)?;
        }
    }
    for (column, width) in widths.into_iter().enumerate() {
        // Room for the filter button and a little padding.
        let width = (width as f64 + 2.0).clamp(MIN_WIDTH, MAX_WIDTH);
        sheet
            .set_column_width(column as u16, width)
            .map_err(other)?;
    }
    sheet.set_freeze_panes(1, 0).map_err(other)?;
    workbook.save_to_buffer().map_err(other)
}

fn check_limits(table: &Table, width: usize) -> Result<(), WriteError> {
    let rows = table.rows.len() + 1;
    if rows > MAX_ROWS {
        return Err(WriteError::TooManyRows {
            rows,
            max: MAX_ROWS,
        });
    }
    if width > MAX_COLUMNS {
        return Err(WriteError::TooManyColumns {
            columns: width,
            max: MAX_COLUMNS,
        });
    }
    let lines = [&table.headers]
        .into_iter()
        .chain(table.rows.iter().map(|row| &row.cells));
    for (row, cells) in lines.enumerate() {
        for (column, cell) in cells.iter().enumerate() {
            // The escape can add a character, and the limit is on what is stored.
            if cell.len() >= MAX_CELL_CHARS && export_cell(cell).chars().count() > MAX_CELL_CHARS {
                return Err(WriteError::CellTooLong {
                    row: row + 1,
                    column: column + 1,
                    max: MAX_CELL_CHARS,
                });
            }
        }
    }
    Ok(())
}

fn other(error: XlsxError) -> WriteError {
    WriteError::Xlsx(error.to_string())
}

/// How wide a cell's longest line is on screen, counting the characters that
/// East Asian typography sets full-width as two.
fn display_width(cell: &str) -> usize {
    cell.lines()
        .map(|line| line.chars().map(char_width).sum())
        .max()
        .unwrap_or(0)
}

fn char_width(ch: char) -> usize {
    let wide = matches!(ch as u32,
        0x1100..=0x115F            // Hangul Jamo
        | 0x2E80..=0x303E          // CJK radicals, punctuation
        | 0x3041..=0x33FF          // Kana, CJK symbols
        | 0x3400..=0x4DBF          // CJK extension A
        | 0x4E00..=0x9FFF          // CJK unified ideographs
        | 0xA000..=0xA4CF          // Yi
        | 0xAC00..=0xD7A3          // Hangul syllables
        | 0xF900..=0xFAFF          // CJK compatibility ideographs
        | 0xFE30..=0xFE4F          // CJK compatibility forms
        | 0xFF00..=0xFF60          // Full-width forms
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1F64F        // Emoji
        | 0x1F900..=0x1F9FF
        | 0x20000..=0x3FFFD        // CJK extensions B and later
    );
    if wide {
        2
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_cjk_as_double_width() {
        assert_eq!(display_width("abc"), 3);
        assert_eq!(display_width("统一社会信用代码"), 16);
        assert_eq!(display_width("（有限）"), 8);
        assert_eq!(display_width("短\n很长的一行"), 10);
        assert_eq!(display_width(""), 0);
    }

    #[test]
    fn rejects_invalid_sheet_names() {
        let table = Table::new(vec!["a".to_owned()]);
        for name in ["", "a/b", "x[1]", "'quoted'", &"长".repeat(32)] {
            assert_eq!(
                write_xlsx(&table, name),
                Err(WriteError::InvalidSheetName(name.to_owned()))
            );
        }
        assert!(write_xlsx(&table, "客户名单").is_ok());
    }

    #[test]
    fn rejects_cells_excel_cannot_hold() {
        let mut table = Table::new(vec!["a".to_owned(), "b".to_owned()]);
        table.push_row(vec![String::new(), "=".repeat(MAX_CELL_CHARS)]);
        assert_eq!(
            write_xlsx(&table, "Sheet1"),
            Err(WriteError::CellTooLong {
                row: 2,
                column: 2,
                max: MAX_CELL_CHARS
            })
        );
    }

    #[test]
    fn same_table_same_bytes() {
        let mut table = Table::new(vec!["名称".to_owned()]);
        table.push_row(vec!["甲".to_owned()]);
        assert_eq!(
            write_xlsx(&table, "Sheet1").unwrap(),
            write_xlsx(&table, "Sheet1").unwrap()
        );
    }
}
