//! Writing CSV that Excel on a Chinese Windows opens correctly.

use csv::{Terminator, WriterBuilder};

use crate::formula::export_cell;
use crate::table::Table;

/// Without a BOM, Excel reads a UTF-8 CSV as the ANSI code page (GBK on a
/// Chinese Windows) and shows every Chinese character garbled.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Writes UTF-8 with BOM, CRLF line endings, quotes only where needed, and
/// formula escaping on every cell (headers included). NUL characters are
/// left out: the reader takes a NUL for a sign of binary.
///
/// Every line gets as many cells as the widest of the header and the rows,
/// short ones padded with empty cells, so the file is rectangular.
pub fn write_csv(table: &Table) -> Vec<u8> {
    let width = table
        .rows
        .iter()
        .map(|row| row.cells.len())
        .chain([table.headers.len()])
        .max()
        .unwrap_or(0);
    let mut writer = WriterBuilder::new()
        .terminator(Terminator::CRLF)
        .from_writer(UTF8_BOM.to_vec());
    let lines = [&table.headers]
        .into_iter()
        .chain(table.rows.iter().map(|row| &row.cells));
    for cells in lines {
        for index in 0..width {
            let cell = cells.get(index).map_or("", String::as_str);
            write(writer.write_field(export_cell(cell).as_bytes()));
        }
        write(writer.write_record(None::<&[u8]>));
    }
    match writer.into_inner() {
        Ok(bytes) => bytes,
        Err(_) => unreachable!("flushing into a Vec cannot fail"),
    }
}

fn write(result: csv::Result<()>) {
    // Writing into a Vec has no I/O to fail, and every record has the same
    // length, so the csv crate has nothing to report.
    if let Err(error) = result {
        unreachable!("writing CSV into memory failed: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{read_csv, Limits};

    fn table(headers: &[&str], rows: &[&[&str]]) -> Table {
        let mut table = Table::new(headers.iter().map(|h| (*h).to_owned()).collect());
        for cells in rows {
            table.push_row(cells.iter().map(|c| (*c).to_owned()).collect());
        }
        table
    }

    #[test]
    fn writes_bom_crlf_quotes_and_escapes() {
        let bytes = write_csv(&table(
            &["名称", "备注"],
            &[&["甲,乙", "=1+1"], &["\"引\"", "两\n行"]],
        ));
        let text = std::str::from_utf8(&bytes).unwrap();
        assert_eq!(
            text,
            "\u{feff}名称,备注\r\n\"甲,乙\",'=1+1\r\n\"\"\"引\"\"\",\"两\n行\"\r\n"
        );
    }

    #[test]
    fn pads_short_rows() {
        let bytes = write_csv(&table(&["a", "b", "c"], &[&["1"]]));
        assert!(bytes.ends_with(b"\r\n1,,\r\n"));
    }

    #[test]
    fn reads_back_what_it_writes() {
        let original = table(
            &["名称", "'=h"],
            &[&["0012", "-5"], &[" 空格 ", "@x"], &["'=x", "\t"]],
        );
        let read = read_csv(&write_csv(&original), &Limits::default()).unwrap();
        assert_eq!(read, original);
    }
}
