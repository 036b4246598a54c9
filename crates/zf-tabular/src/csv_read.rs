//! Reading CSV (and tab- or semicolon-separated text).

use csv::{ReaderBuilder, StringRecord};

use crate::decode::decode;
use crate::error::{Malformation, ReadError};
use crate::table::{Limits, ShortRows, Table, TableBuilder};

/// Reads a CSV file: UTF-8 (with or without BOM), GBK/GB18030, or UTF-16
/// with BOM; comma-separated unless the header line has no comma but a tab or
/// semicolon.
///
/// Cells are kept exactly as written, surrounding whitespace included;
/// [`ColumnMap::get`](crate::ColumnMap::get) trims.
pub fn read_csv(bytes: &[u8], limits: &Limits) -> Result<Table, ReadError> {
    let text = decode(bytes)?;
    let delimiter = detect_delimiter(&text);
    let row_numbers = record_rows(text.as_bytes(), delimiter)?;
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        // Field counts are checked against the header by the table builder,
        // which can allow trailing empty cells.
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut builder = TableBuilder::new(limits, ShortRows::Reject);
    let mut record = StringRecord::new();
    for &number in &row_numbers {
        let malformed = |detail: String| ReadError::Malformed {
            row: Some(number),
            reason: Malformation::Corrupt(detail),
        };
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return Err(malformed("fewer records than expected".to_owned())),
            Err(error) => return Err(malformed(error.to_string())),
        }
        builder.push(number, record.iter().map(str::to_owned).collect())?;
    }
    builder.finish()
}

/// Excel writes commas, its "Unicode text" writes tabs, and European locales
/// write semicolons. Only the header line (the first that is not empty) is
/// looked at, because data cells may well contain any of them.
fn detect_delimiter(text: &str) -> u8 {
    let header = text
        .split(['\r', '\n'])
        .find(|line| !line.is_empty())
        .unwrap_or_default();
    if header.contains(',') {
        b','
    } else if header.contains('\t') {
        b'\t'
    } else if header.contains(';') {
        b';'
    } else {
        b','
    }
}

/// Walks the text the way the csv crate parses it (RFC 4180 quoting, any of
/// CRLF, LF or CR ends a record, empty lines are skipped) and returns the
/// spreadsheet row number of each record the csv crate will yield.
///
/// This pass exists because the csv crate is lenient by design: an unclosed
/// quote silently swallows the rest of the file, and text after a closing
/// quote is glued on. Both mean the file is broken, and importing it would
/// put data in the wrong columns without a word. It also counts blank lines,
/// which the csv crate skips but a spreadsheet shows as rows.
fn record_rows(text: &[u8], delimiter: u8) -> Result<Vec<usize>, ReadError> {
    let mut rows = Vec::new();
    let mut at = 0;
    // Spreadsheet row: a line break inside a quoted cell does not start one.
    let mut row = 1;
    // Text line, for messages about quotes: every line break counts.
    let mut line = 1;
    loop {
        while let Some(len) = line_break(&text[at..]) {
            at += len;
            row += 1;
            line += 1;
        }
        if at == text.len() {
            return Ok(rows);
        }
        rows.push(row);
        loop {
            if text[at] == b'"' {
                let opened_on = line;
                at += 1;
                loop {
                    match text.get(at) {
                        None => {
                            return Err(ReadError::Malformed {
                                row: Some(row),
                                reason: Malformation::UnclosedQuote { line: opened_on },
                            })
                        }
                        Some(b'"') if text.get(at + 1) == Some(&b'"') => at += 2,
                        Some(b'"') => {
                            at += 1;
                            break;
                        }
                        Some(_) => {
                            if let Some(len) = line_break(&text[at..]) {
                                at += len;
                                line += 1;
                            } else {
                                at += 1;
                            }
                        }
                    }
                }
                match text.get(at) {
                    None | Some(b'\r' | b'\n') => break,
                    Some(&byte) if byte == delimiter => at += 1,
                    Some(_) => {
                        return Err(ReadError::Malformed {
                            row: Some(row),
                            reason: Malformation::TextAfterQuote { line },
                        })
                    }
                }
            } else {
                while at < text.len() && !matches!(text[at], b'\r' | b'\n') && text[at] != delimiter
                {
                    at += 1;
                }
                if at < text.len() && text[at] == delimiter {
                    at += 1;
                } else {
                    break;
                }
            }
            if at == text.len() {
                // A trailing delimiter: the record ends with an empty field.
                break;
            }
        }
        if let Some(len) = line_break(&text[at..]) {
            at += len;
            row += 1;
            line += 1;
        }
    }
}

fn line_break(text: &[u8]) -> Option<usize> {
    match text {
        [b'\r', b'\n', ..] => Some(2),
        [b'\r' | b'\n', ..] => Some(1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read(text: &str) -> Result<Table, ReadError> {
        read_csv(text.as_bytes(), &Limits::default())
    }

    fn cells(table: &Table) -> Vec<(usize, Vec<&str>)> {
        table
            .rows
            .iter()
            .map(|row| (row.number, row.cells.iter().map(String::as_str).collect()))
            .collect()
    }

    #[test]
    fn reads_quoted_cells_and_numbers_rows_like_a_spreadsheet() {
        let table =
            read("名称,备注\r\n\"甲,乙\",\"说\"\"好\"\"\"\r\n\r\n\"多\r\n行\",x\r\n丙, 空格 \r\n")
                .unwrap();
        assert_eq!(table.headers, ["名称", "备注"]);
        assert_eq!(
            cells(&table),
            [
                (2, vec!["甲,乙", "说\"好\""]),
                (4, vec!["多\r\n行", "x"]),
                (5, vec!["丙", " 空格 "]),
            ]
        );
    }

    #[test]
    fn accepts_lf_cr_and_no_final_line_break() {
        for text in ["a,b\n1,2", "a,b\r1,2\r", "a,b\n1,2\n"] {
            assert_eq!(cells(&read(text).unwrap()), [(2, vec!["1", "2"])]);
        }
    }

    #[test]
    fn detects_tab_and_semicolon_from_the_header() {
        assert_eq!(read("a\tb\n1,5\t2").unwrap().rows[0].cells, ["1,5", "2"]);
        assert_eq!(read("a;b\n1;2").unwrap().rows[0].cells, ["1", "2"]);
        assert_eq!(read("a,b;c\n1,2;3").unwrap().rows[0].cells, ["1", "2;3"]);
        assert_eq!(
            read("\r\n\r\na\tb\n1\t2").unwrap().rows[0].cells,
            ["1", "2"]
        );
    }

    #[test]
    fn unclosed_quote_names_its_row() {
        let error = read("a,b\n1,2\n3,\"oops\n4,5\n").unwrap_err();
        assert_eq!(
            error,
            ReadError::Malformed {
                row: Some(3),
                reason: Malformation::UnclosedQuote { line: 3 }
            }
        );
    }

    #[test]
    fn text_after_a_closing_quote_is_malformed() {
        let error = read("a,b\n\"x\ny\",1\n\"ab\"cd,2\n").unwrap_err();
        assert_eq!(
            error,
            ReadError::Malformed {
                row: Some(3),
                reason: Malformation::TextAfterQuote { line: 4 }
            }
        );
    }

    #[test]
    fn quotes_inside_unquoted_cells_are_literal() {
        let table = read("a,b\n他说\"好\",1\n").unwrap();
        assert_eq!(table.rows[0].cells, ["他说\"好\"", "1"]);
    }

    #[test]
    fn extra_cells_must_be_empty() {
        assert_eq!(read("a,b\n1,2,,\n").unwrap().rows[0].cells, ["1", "2"]);
        assert_eq!(
            read("a,b\n1,2\n3,4,5\n").unwrap_err(),
            ReadError::Malformed {
                row: Some(3),
                reason: Malformation::CellWithoutHeader { column: 3 }
            }
        );
        assert_eq!(
            read("a,b\n1\n").unwrap_err(),
            ReadError::Malformed {
                row: Some(2),
                reason: Malformation::CellCount {
                    expected: 2,
                    found: 1
                }
            }
        );
    }

    #[test]
    fn empty_input_has_no_header() {
        assert_eq!(read("").unwrap_err(), ReadError::Empty);
        assert_eq!(read("\r\n,,\r\n").unwrap_err(), ReadError::Empty);
    }

    fn csv_like() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just("\""),
                Just(","),
                Just("\r"),
                Just("\n"),
                Just("\r\n"),
                Just("a"),
                Just("甲"),
                Just(" "),
            ],
            0..40,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        /// The pre-pass must agree with the csv crate on where records are,
        /// or row numbers would be attached to the wrong rows.
        #[test]
        fn pre_pass_counts_the_records_the_csv_crate_yields(text in csv_like()) {
            if let Ok(rows) = record_rows(text.as_bytes(), b',') {
                let records = ReaderBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .from_reader(text.as_bytes())
                    .records()
                    .count();
                prop_assert_eq!(rows.len(), records);
                prop_assert!(rows.windows(2).all(|pair| pair[0] < pair[1]));
            }
        }
    }
}
