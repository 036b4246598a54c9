//! Spreadsheet files as tables of text, for importing and exporting client
//! lists that firms keep in Excel.
//!
//! Reading turns CSV (UTF-8, GBK/GB18030 or UTF-16, as Excel and WPS write
//! them) or the first visible worksheet of an XLSX workbook into a [`Table`] of
//! strings whose rows keep the numbers the user sees in Excel, so that later
//! errors can point at them. Writing turns a [`Table`] into CSV or XLSX that
//! opens correctly in Excel on a Chinese Windows. Both directions neutralise
//! formulas (CSV injection) and undo that on the way back in, so an export
//! imports again unchanged. [`map_columns`] finds expected columns by their
//! Chinese headers or aliases.
//!
//! Deliberately absent: any notion of clients or what a valid cell is (the
//! layer above validates each cell and reports [`RowError`]s), file and
//! network I/O, the clock, formula evaluation, styles, other sheets, and
//! title rows above the header (the first non-blank row is the header).

mod columns;
mod csv_read;
mod csv_write;
mod decode;
mod error;
mod format;
mod formula;
mod row_error;
mod table;
mod xlsx_read;
mod xlsx_write;

pub use columns::{map_columns, Column, ColumnMap, HeaderError};
pub use csv_read::read_csv;
pub use csv_write::write_csv;
pub use error::{column_letters, Limit, Malformation, ReadError, WriteError};
pub use format::Format;
pub use formula::{escape_formula, unescape_formula};
pub use row_error::RowError;
pub use table::{Limits, Row, Table};
pub use xlsx_read::read_xlsx;
pub use xlsx_write::write_xlsx;

/// Reads a CSV or XLSX file, telling which from its content rather than its
/// name.
pub fn read(bytes: &[u8], limits: &Limits) -> Result<Table, ReadError> {
    match Format::sniff(bytes) {
        Format::Csv => read_csv(bytes, limits),
        Format::Xlsx => read_xlsx(bytes, limits),
    }
}
