//! Reading files as the programs firms use write them, made here byte by byte.

use encoding_rs::GB18030;
use rust_xlsxwriter::{ExcelDateTime, Format as CellFormat, Formula, Workbook};
use zf_tabular::{read, read_csv, read_xlsx, Limit, Limits, Malformation, ReadError, Row, Table};

fn rows(table: &Table) -> Vec<(usize, Vec<&str>)> {
    table
        .rows
        .iter()
        .map(|Row { number, cells }| (*number, cells.iter().map(String::as_str).collect()))
        .collect()
}

#[test]
fn gbk_csv_from_excel_on_chinese_windows() {
    let text = "客户名称,统一社会信用代码,联系人\r\n\
                厦门鹭江财税咨询有限公司,91350200MA2XXXXX0X,张三\r\n\
                福州榕城商贸有限公司（分公司）,91350100M000100Y43,李四\r\n";
    let (bytes, _, unmappable) = GB18030.encode(text);
    assert!(!unmappable);
    assert!(std::str::from_utf8(&bytes).is_err(), "must really be GBK");
    let table = read(&bytes, &Limits::default()).unwrap();
    assert_eq!(table.headers, ["客户名称", "统一社会信用代码", "联系人"]);
    assert_eq!(
        rows(&table),
        [
            (
                2,
                vec!["厦门鹭江财税咨询有限公司", "91350200MA2XXXXX0X", "张三"]
            ),
            (
                3,
                vec![
                    "福州榕城商贸有限公司（分公司）",
                    "91350100M000100Y43",
                    "李四"
                ]
            ),
        ]
    );
}

#[test]
fn gb18030_four_byte_characters() {
    // 𠀀 (U+20000) has no GBK code and takes four bytes in GB18030.
    let (bytes, _, unmappable) = GB18030.encode("名称\r\n𠀀记商行\r\n");
    assert!(!unmappable);
    let table = read_csv(&bytes, &Limits::default()).unwrap();
    assert_eq!(table.rows[0].cells, ["𠀀记商行"]);
}

#[test]
fn utf8_with_bom() {
    let bytes = "\u{feff}名称,电话\r\n甲公司,13800000000\r\n".as_bytes();
    let table = read(bytes, &Limits::default()).unwrap();
    assert_eq!(table.headers, ["名称", "电话"]);
    assert_eq!(rows(&table), [(2, vec!["甲公司", "13800000000"])]);
}

#[test]
fn utf16le_tab_separated_unicode_text() {
    // Excel's "Unicode text": UTF-16LE with BOM, tabs, CRLF, and quotes
    // around cells that contain a line break.
    let text = "名称\t地址\t备注\r\n甲公司\t\"厦门市\n思明区\"\t含,逗号\r\n";
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let table = read(&bytes, &Limits::default()).unwrap();
    assert_eq!(table.headers, ["名称", "地址", "备注"]);
    assert_eq!(
        rows(&table),
        [(2, vec!["甲公司", "厦门市\n思明区", "含,逗号"])]
    );
}

#[test]
fn broken_quoting_names_the_row() {
    let bytes = "名称,备注\r\n甲,1\r\n乙,\"没有结束\r\n丙,3\r\n".as_bytes();
    assert_eq!(
        read(bytes, &Limits::default()).unwrap_err(),
        ReadError::Malformed {
            row: Some(3),
            reason: Malformation::UnclosedQuote { line: 3 }
        }
    );
}

#[test]
fn random_binary_is_not_text() {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    for length in [16, 100, 4096] {
        let bytes: Vec<u8> = (0..length)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let error = read(&bytes, &Limits::default()).unwrap_err();
        assert_eq!(error, ReadError::NotText, "{length} random bytes");
    }
    // A PNG header: no zip magic, has NULs.
    assert_eq!(
        read(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", &Limits::default()).unwrap_err(),
        ReadError::NotText
    );
}

#[test]
fn old_xls_is_named_as_such() {
    let mut bytes = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1".to_vec();
    bytes.resize(512, 0);
    assert_eq!(
        read(&bytes, &Limits::default()).unwrap_err(),
        ReadError::UnsupportedWorkbook
    );
}

#[test]
fn csv_row_limit() {
    let limits = Limits {
        max_rows: 2,
        ..Limits::default()
    };
    let bytes = b"a\n1\n\n2\n3\n";
    assert_eq!(
        read_csv(bytes, &limits).unwrap_err(),
        ReadError::TooLarge {
            limit: Limit::Rows,
            max: 2,
            row: Some(5)
        }
    );
}

/// A workbook typed by hand rather than exported by us: numbers, dates,
/// booleans, formulas with cached results, blank formatted cells, a hidden
/// first sheet.
fn hand_made_workbook() -> Vec<u8> {
    let mut workbook = Workbook::new();
    let hidden = workbook.add_worksheet();
    hidden.set_name("下拉选项").unwrap();
    hidden.write_string(0, 0, "不该读到").unwrap();

    let sheet = workbook.add_worksheet();
    sheet.set_name("客户").unwrap();
    // Excel will not hide the active sheet.
    sheet.set_active(true);
    let date = CellFormat::new().set_num_format("yyyy-mm-dd");
    let datetime = CellFormat::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    let yellow = CellFormat::new().set_background_color(rust_xlsxwriter::Color::Yellow);
    for (column, header) in [
        "名称",
        "数量",
        "比例",
        "成立日期",
        "更新时间",
        "有效",
        "合计",
        "身份证号",
    ]
    .into_iter()
    .enumerate()
    {
        sheet.write_string(0, column as u16, header).unwrap();
    }
    sheet.write_string(2, 0, "甲公司").unwrap();
    sheet.write_number(2, 1, 12.0).unwrap();
    sheet.write_number(2, 2, 0.125).unwrap();
    let founded = ExcelDateTime::from_ymd(2015, 3, 9).unwrap();
    sheet
        .write_datetime_with_format(2, 3, &founded, &date)
        .unwrap();
    let updated = ExcelDateTime::parse_from_str("2024-12-31 08:05:09").unwrap();
    sheet
        .write_datetime_with_format(2, 4, &updated, &datetime)
        .unwrap();
    sheet.write_boolean(2, 5, true).unwrap();
    sheet
        .write_formula(2, 6, Formula::new("=B3*2").set_result("24"))
        .unwrap();
    sheet.write_number(2, 7, 350_102_199_001_011_234.0).unwrap();
    // Formatting far away, as when a user colours whole columns.
    sheet.write_blank(500, 0, &yellow).unwrap();
    sheet.write_blank(3, 200, &yellow).unwrap();
    workbook.worksheet_from_index(0).unwrap().set_hidden(true);
    workbook.save_to_buffer().unwrap()
}

#[test]
fn xlsx_cells_read_as_they_were_typed() {
    let table = read(&hand_made_workbook(), &Limits::default()).unwrap();
    assert_eq!(
        table.headers,
        [
            "名称",
            "数量",
            "比例",
            "成立日期",
            "更新时间",
            "有效",
            "合计",
            "身份证号"
        ]
    );
    assert_eq!(
        rows(&table),
        [(
            3,
            vec![
                "甲公司",
                "12",
                "0.125",
                "2015-03-09",
                "2024-12-31 08:05:09",
                "TRUE",
                "24",
                // The last digits were lost when it was typed as a number.
                "350102199001011260",
            ]
        )]
    );
}

#[test]
fn xlsx_data_right_of_the_header_is_refused() {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.write_string(0, 0, "名称").unwrap();
    sheet.write_string(1, 0, "甲").unwrap();
    sheet.write_string(1, 2, "备注无表头").unwrap();
    let bytes = workbook.save_to_buffer().unwrap();
    assert_eq!(
        read_xlsx(&bytes, &Limits::default()).unwrap_err(),
        ReadError::Malformed {
            row: Some(2),
            reason: Malformation::CellWithoutHeader { column: 3 }
        }
    );

    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.write_string(0, 0, "名称").unwrap();
    sheet.write_string(1, 16_000, "很远").unwrap();
    let bytes = workbook.save_to_buffer().unwrap();
    assert_eq!(
        read_xlsx(&bytes, &Limits::default()).unwrap_err(),
        ReadError::Malformed {
            row: Some(2),
            reason: Malformation::CellWithoutHeader { column: 16_001 }
        }
    );
}

#[test]
fn xlsx_limits() {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    for row in 0..10 {
        for column in 0..3 {
            sheet.write_string(row, column, "格").unwrap();
        }
    }
    let bytes = workbook.save_to_buffer().unwrap();
    let limits = |max_rows, max_columns, max_cell_chars| Limits {
        max_rows,
        max_columns,
        max_cell_chars,
    };
    assert_eq!(
        read_xlsx(&bytes, &limits(5, 3, 1)).unwrap_err(),
        ReadError::TooLarge {
            limit: Limit::Rows,
            max: 5,
            row: Some(7)
        }
    );
    assert_eq!(
        read_xlsx(&bytes, &limits(9, 2, 1)).unwrap_err(),
        ReadError::TooLarge {
            limit: Limit::Columns,
            max: 2,
            row: Some(1)
        }
    );
    assert!(read_xlsx(&bytes, &limits(9, 3, 1)).is_ok());
}

#[test]
fn xlsx_without_worksheet_content_is_empty() {
    let mut workbook = Workbook::new();
    workbook.add_worksheet();
    let bytes = workbook.save_to_buffer().unwrap();
    assert_eq!(
        read(&bytes, &Limits::default()).unwrap_err(),
        ReadError::Empty
    );
}

#[test]
fn damaged_xlsx_is_an_error_not_a_panic() {
    let good = hand_made_workbook();
    // Shorter than the zip magic it would be read as text.
    let mut lengths: Vec<usize> = (4..good.len()).step_by(97).collect();
    lengths.extend([5, 30, good.len() - 1, good.len() - 22]);
    for length in lengths {
        let result = read(&good[..length], &Limits::default());
        assert!(result.is_err(), "truncated to {length} bytes");
    }

    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..200 {
        let length = (next() % 2000) as usize;
        let mut bytes = b"PK\x03\x04".to_vec();
        bytes.extend((0..length).map(|_| next() as u8));
        assert!(read(&bytes, &Limits::default()).is_err());
    }

    // Flipped bytes inside an otherwise valid archive.
    for _ in 0..300 {
        let mut bytes = good.clone();
        for _ in 0..4 {
            let at = (next() as usize) % bytes.len();
            bytes[at] = next() as u8;
        }
        // May still read (the flip can land in unused bytes); must not panic.
        let _ = read(&bytes, &Limits::default());
    }
}

#[test]
fn zip_bomb_is_refused_before_unpacking() {
    use std::io::Write;
    // Declared sizes are what the check reads, so a small archive whose one
    // entry claims 100 MiB stands in for a real bomb.
    let mut archive = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    archive.start_file("xl/sharedStrings.xml", stored).unwrap();
    archive.write_all(b"<sst/>").unwrap();
    let mut bytes = archive.finish().unwrap().into_inner();
    let claimed = (100_u32 << 20).to_le_bytes();
    let local = find(&bytes, b"PK\x03\x04") + 22;
    bytes[local..local + 4].copy_from_slice(&claimed);
    let central = find(&bytes, b"PK\x01\x02") + 24;
    bytes[central..central + 4].copy_from_slice(&claimed);

    let limits = Limits {
        max_rows: 1000,
        max_columns: 10,
        ..Limits::default()
    };
    let error = read(&bytes, &limits).unwrap_err();
    assert!(
        matches!(
            error,
            ReadError::TooLarge {
                limit: Limit::UnpackedBytes,
                row: None,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "工作簿解压后超过上限 65 MiB");
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
        .unwrap()
}

#[test]
fn corrupt_xlsx_says_so() {
    let error = read(b"PK\x03\x04 definitely not a zip", &Limits::default()).unwrap_err();
    assert!(
        matches!(
            &error,
            ReadError::Malformed {
                row: None,
                reason: Malformation::Corrupt(_)
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().starts_with("文件格式有误：工作簿已损坏"));
}
