//! Reading the first worksheet of an XLSX workbook.

use std::io::Cursor;
use std::panic::AssertUnwindSafe;

use calamine::{DataRef, ExcelDateTime, Reader, SheetType, SheetVisible, Xlsx, XlsxError};

use crate::error::{Limit, Malformation, ReadError};
use crate::table::{is_blank, Limits, ShortRows, Table, TableBuilder};

/// Reads the first visible worksheet (the first worksheet if all are hidden),
/// turning every cell into text the way it would read when typed:
///
/// - text as is; integers without `.0`; other numbers in the shortest form
///   that reads back as the same number; booleans as `TRUE`/`FALSE`;
/// - dates as `YYYY-MM-DD`, with ` HH:MM:SS` when there is a time of day,
///   times alone as `HH:MM:SS`, durations as `[h]:MM:SS`;
/// - error values as Excel shows them (`#N/A`); formulas as their cached
///   value, never evaluated.
///
/// A number typed into Excel is a double: an 18-digit ID number or USCC
/// entered as a number has already lost its last digits in the file. It is
/// still rendered (all digits, no exponent), and it is for the caller's
/// validation to reject it.
///
/// Cells are streamed, so a stray cell in row 1,000,000 costs nothing, and
/// limits are checked as rows arrive. Before any of that, a workbook whose
/// parts unpack to more than 64 MiB plus 128 bytes per cell the limits allow
/// (at most 1 GiB) is refused: a few kilobytes of zip can unpack to
/// gigabytes, and the XLSX reader holds all shared strings in memory.
pub fn read_xlsx(bytes: &[u8], limits: &Limits) -> Result<Table, ReadError> {
    // The workbook is untrusted upload and the XLSX reader a large parser: a
    // bug in it should refuse this one file, not take down the request. Only
    // state local to the closure is lost on unwinding.
    std::panic::catch_unwind(AssertUnwindSafe(|| read_worksheet(bytes, limits))).unwrap_or_else(
        |_| {
            Err(ReadError::Malformed {
                row: None,
                reason: Malformation::Corrupt("the XLSX reader failed on this file".to_owned()),
            })
        },
    )
}

fn read_worksheet(bytes: &[u8], limits: &Limits) -> Result<Table, ReadError> {
    check_unpacked_size(bytes, limits)?;
    let mut workbook = Xlsx::new(Cursor::new(bytes)).map_err(workbook_error)?;
    let sheet = first_worksheet(&workbook)?;
    let mut cells = workbook
        .worksheet_cells_reader(&sheet)
        .map_err(workbook_error)?;
    let mut builder = TableBuilder::new(limits, ShortRows::Pad);
    // The row being gathered: its 0-based index and its cells so far.
    let mut current: Option<(u32, Vec<String>)> = None;
    while let Some(cell) = cells.next_cell().map_err(workbook_error)? {
        let (row, column) = cell.get_position();
        let text = render(cell.get_value());
        if text.is_empty() {
            continue;
        }
        let number = row as usize + 1;
        let column = column as usize;
        match &current {
            Some((index, _)) if *index > row => {
                return Err(ReadError::Malformed {
                    row: Some(number),
                    reason: Malformation::RowsOutOfOrder,
                })
            }
            Some((index, _)) if *index == row => {}
            _ => {
                if let Some((index, cells)) = current.take() {
                    builder.push(index as usize + 1, cells)?;
                }
            }
        }
        if column >= limits.max_columns {
            if is_blank(&text) {
                continue;
            }
            // Past the column limit a header is too wide, but a data cell
            // can only be right of a narrower header.
            return Err(if builder.has_headers() {
                ReadError::Malformed {
                    row: Some(number),
                    reason: Malformation::CellWithoutHeader { column: column + 1 },
                }
            } else {
                ReadError::TooLarge {
                    limit: Limit::Columns,
                    max: limits.max_columns,
                    row: Some(number),
                }
            });
        }
        let (_, cells) = current.get_or_insert_with(|| (row, Vec::new()));
        place(cells, column, text);
    }
    if let Some((index, cells)) = current {
        builder.push(index as usize + 1, cells)?;
    }
    builder.finish()
}

/// Refuses zip bombs before the XLSX reader unpacks anything. The sizes
/// checked are the ones the central directory declares, and the zip reader
/// stops any entry that unpacks to more than it declared, so lying does not
/// get past this.
fn check_unpacked_size(bytes: &[u8], limits: &Limits) -> Result<(), ReadError> {
    let max = max_unpacked_bytes(limits);
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|error| ReadError::Malformed {
            row: None,
            reason: Malformation::Corrupt(error.to_string()),
        })?;
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .map_err(|error| ReadError::Malformed {
                row: None,
                reason: Malformation::Corrupt(error.to_string()),
            })?;
        total = total.saturating_add(entry.size());
        if total > max as u64 {
            return Err(ReadError::TooLarge {
                limit: Limit::UnpackedBytes,
                max,
                row: None,
            });
        }
    }
    Ok(())
}

fn max_unpacked_bytes(limits: &Limits) -> usize {
    const FLOOR: usize = 64 << 20;
    const CEILING: usize = 1 << 30;
    // Generous for a cell's XML and its shared string together.
    const PER_CELL: usize = 128;
    limits
        .max_rows
        .saturating_mul(limits.max_columns)
        .saturating_mul(PER_CELL)
        .saturating_add(FLOOR)
        .min(CEILING)
}

fn place(cells: &mut Vec<String>, column: usize, text: String) {
    if cells.len() <= column {
        cells.resize(column + 1, String::new());
    }
    cells[column] = text;
}

fn first_worksheet<R: std::io::Read + std::io::Seek>(
    workbook: &Xlsx<R>,
) -> Result<String, ReadError> {
    let sheets = workbook.sheets_metadata();
    let worksheets = || sheets.iter().filter(|s| s.typ == SheetType::WorkSheet);
    worksheets()
        .find(|sheet| sheet.visible == SheetVisible::Visible)
        .or_else(|| worksheets().next())
        .map(|sheet| sheet.name.clone())
        .ok_or(ReadError::Malformed {
            row: None,
            reason: Malformation::NoWorksheet,
        })
}

fn workbook_error(error: XlsxError) -> ReadError {
    match error {
        XlsxError::Password => ReadError::UnsupportedWorkbook,
        other => ReadError::Malformed {
            row: None,
            reason: Malformation::Corrupt(other.to_string()),
        },
    }
}

fn render(value: &DataRef<'_>) -> String {
    match value {
        DataRef::Empty => String::new(),
        DataRef::String(text) => text.clone(),
        DataRef::SharedString(text) => (*text).to_owned(),
        DataRef::Int(int) => int.to_string(),
        DataRef::Float(float) => render_float(*float),
        DataRef::Bool(true) => "TRUE".to_owned(),
        DataRef::Bool(false) => "FALSE".to_owned(),
        DataRef::DateTime(datetime) => render_datetime(datetime),
        DataRef::DateTimeIso(text) => text
            .strip_suffix("T00:00:00")
            .unwrap_or(text)
            .replace('T', " "),
        DataRef::DurationIso(text) => text.clone(),
        DataRef::Error(error) => error.to_string(),
    }
}

/// Rust's `Display` for `f64` is the shortest string that parses back to the
/// same value, without exponent and without `.0` on whole numbers.
fn render_float(float: f64) -> String {
    if float == 0.0 {
        // Excel shows -0 as 0.
        "0".to_owned()
    } else {
        float.to_string()
    }
}

fn render_datetime(datetime: &ExcelDateTime) -> String {
    let serial = datetime.as_f64();
    if datetime.is_duration() {
        let total_seconds = (serial * 86_400.0).round() as i64;
        let sign = if total_seconds < 0 { "-" } else { "" };
        let seconds = total_seconds.abs();
        return format!(
            "{sign}{}:{:02}:{:02}",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        );
    }
    let (year, month, day, hour, minute, second, milli) = datetime.to_ymd_hms_milli();
    let date = format!("{year:04}-{month:02}-{day:02}");
    let time = match milli {
        0 => format!("{hour:02}:{minute:02}:{second:02}"),
        _ => format!("{hour:02}:{minute:02}:{second:02}.{milli:03}"),
    };
    let has_time = (hour, minute, second, milli) != (0, 0, 0, 0);
    if (0.0..1.0).contains(&serial) {
        // A time of day alone: Excel stores it on day zero.
        time
    } else if has_time {
        format!("{date} {time}")
    } else {
        date
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::ExcelDateTimeType;

    #[test]
    fn renders_numbers_as_typed() {
        assert_eq!(render(&DataRef::Int(12)), "12");
        assert_eq!(render(&DataRef::Float(12.0)), "12");
        assert_eq!(render(&DataRef::Float(0.1)), "0.1");
        assert_eq!(render(&DataRef::Float(-0.0)), "0");
        assert_eq!(render(&DataRef::Float(1e-7)), "0.0000001");
        // What remains of an 18-digit ID number typed as a number.
        assert_eq!(
            render(&DataRef::Float(110105199001011234.0)),
            "110105199001011230"
        );
        assert_eq!(render(&DataRef::Bool(true)), "TRUE");
        assert_eq!(render(&DataRef::Error(calamine::CellErrorType::NA)), "#N/A");
    }

    fn datetime(serial: f64, kind: ExcelDateTimeType) -> String {
        render(&DataRef::DateTime(ExcelDateTime::new(serial, kind, false)))
    }

    #[test]
    fn renders_dates_and_times() {
        use ExcelDateTimeType::{DateTime, TimeDelta};
        assert_eq!(datetime(45658.0, DateTime), "2025-01-01");
        assert_eq!(datetime(45658.5, DateTime), "2025-01-01 12:00:00");
        assert_eq!(datetime(0.75, DateTime), "18:00:00");
        assert_eq!(datetime(1.5, TimeDelta), "36:00:00");
    }

    #[test]
    fn renders_iso_dates_like_excel_dates() {
        let iso = |text: &str| render(&DataRef::DateTimeIso(text.to_owned()));
        assert_eq!(iso("2025-01-01T00:00:00"), "2025-01-01");
        assert_eq!(iso("2025-01-01T08:30:00"), "2025-01-01 08:30:00");
    }
}
