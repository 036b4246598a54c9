//! Whatever is exported imports again unchanged, cell for cell.

use std::io::{Cursor, Read};

use zf_tabular::{read, read_csv, read_xlsx, write_csv, write_xlsx, Format, Limits, Table};

/// Values that each break a naive writer or reader somewhere.
const AWKWARD: &[&str] = &[
    "=1+1",
    "-5",
    "+86 13800000000",
    "@x",
    "'=x",
    "''+1",
    "'",
    "'plain",
    "0012",
    "110105199001011234",
    "91350100M000100Y43",
    "3.14159265358979323846",
    "1e5",
    "TRUE",
    "2025-01-01",
    "#N/A",
    "厦门鹭江财税咨询有限公司（分公司）",
    "😀👨‍👩‍👧",
    "𠀀",
    "第一行\n第二行",
    "a\r\nb",
    "\rcr",
    " 前后空格 ",
    "\u{3000}全角空格",
    "\t",
    "含,逗号;分号\t制表符",
    "含\"引号\"",
    "\"",
    "_x0041_",
    "<tag>&amp;</tag>",
    "",
    "",
];

const CHARS: &[char] = &[
    'a', 'Z', '0', '9', ' ', ',', ';', '"', '\'', '=', '-', '+', '@', '\t', '\n', '\r', '张', '财',
    '税', '（', '）', '😀', '_', '<', '&',
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn cell(&mut self) -> String {
        if self.below(2) == 0 {
            AWKWARD[self.below(AWKWARD.len())].to_owned()
        } else {
            let length = self.below(12);
            (0..length)
                .map(|_| CHARS[self.below(CHARS.len())])
                .collect()
        }
    }
}

fn big_table(rows: usize) -> Table {
    let headers = [
        "客户编号",
        "企业名称",
        "统一社会信用代码",
        "法人身份证号",
        "联系电话",
        "公式",
        "备注",
        "金额",
        "表情",
        "多行地址",
    ];
    let mut table = Table::new(headers.iter().map(|h| (*h).to_owned()).collect());
    let mut rng = Rng(0x853C_49E6_748F_EA9B);
    for index in 0..rows {
        // A non-blank first cell, since blank rows are skipped on reading.
        let mut cells = vec![format!("KH{index:05}")];
        cells.extend((1..headers.len()).map(|_| rng.cell()));
        table.push_row(cells);
    }
    // Every awkward value at least once in every column.
    for value in AWKWARD {
        let mut cells = vec![(*value).to_owned(); headers.len()];
        cells[0] = format!("固定{value}");
        table.push_row(cells);
    }
    table
}

fn assert_same(read: &Table, written: &Table) {
    assert_eq!(read.headers, written.headers);
    assert_eq!(read.rows.len(), written.rows.len());
    for (read, written) in read.rows.iter().zip(&written.rows) {
        assert_eq!(read, written, "row {}", written.number);
    }
}

#[test]
fn xlsx_round_trip_of_ten_thousand_rows() {
    let table = big_table(10_000);
    let bytes = write_xlsx(&table, "客户名单").unwrap();
    assert_eq!(Format::sniff(&bytes), Format::Xlsx);
    assert_same(&read(&bytes, &Limits::default()).unwrap(), &table);
}

#[test]
fn csv_round_trip_of_ten_thousand_rows() {
    let table = big_table(10_000);
    let bytes = write_csv(&table);
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
    assert_eq!(Format::sniff(&bytes), Format::Csv);
    assert_same(&read(&bytes, &Limits::default()).unwrap(), &table);
}

#[test]
fn formulas_are_neutralised_in_the_files_themselves() {
    let mut table = Table::new(vec!["=HYPERLINK(\"x\")".to_owned()]);
    table.push_row(vec!["=cmd|' /C calc'!A0".to_owned()]);

    let csv = String::from_utf8(write_csv(&table)).unwrap();
    assert!(csv
        .lines()
        .all(|line| !line.trim_start_matches('\u{feff}').starts_with('=')));

    let xlsx = write_xlsx(&table, "Sheet1").unwrap();
    let sheet = entry(&xlsx, "xl/worksheets/sheet1.xml");
    assert!(!sheet.contains("<f>"), "no formula cells: {sheet}");
    let strings = entry(&xlsx, "xl/sharedStrings.xml");
    assert!(strings.contains("<t>'=cmd|' /C calc'!A0</t>"), "{strings}");
}

#[test]
fn xlsx_header_is_bold_and_frozen_and_columns_sized() {
    let mut table = Table::new(vec!["统一社会信用代码".to_owned(), "id".to_owned()]);
    table.push_row(vec!["91350100M000100Y43".to_owned(), "1".to_owned()]);
    let bytes = write_xlsx(&table, "Sheet1").unwrap();

    let sheet = entry(&bytes, "xl/worksheets/sheet1.xml");
    assert!(sheet.contains(r#"state="frozen""#), "{sheet}");
    assert!(sheet.contains(r#"ySplit="1""#), "{sheet}");
    // 16 display columns for 8 CJK characters, plus padding; the short
    // column gets the minimum.
    assert!(
        sheet.contains(r#"<col min="1" max="1" width="20.7"#),
        "{sheet}"
    );
    assert!(
        sheet.contains(r#"<col min="2" max="2" width="8.7"#),
        "{sheet}"
    );

    let mut workbook: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(Cursor::new(bytes)).unwrap();
    let styles = workbook.worksheet_style("Sheet1").unwrap();
    let bold = |row, column| {
        styles
            .get((row, column))
            .and_then(|style| style.font.as_ref())
            .is_some_and(|font| font.is_bold())
    };
    assert!(bold(0, 0) && bold(0, 1));
    assert!(!bold(1, 0));
}

#[test]
fn xlsx_cells_are_text_even_when_they_look_like_numbers() {
    let mut table = Table::new(vec!["号码".to_owned()]);
    table.push_row(vec!["110105199001011234".to_owned()]);
    table.push_row(vec!["0012".to_owned()]);
    let bytes = write_xlsx(&table, "Sheet1").unwrap();
    let sheet = entry(&bytes, "xl/worksheets/sheet1.xml");
    assert_eq!(sheet.matches(r#"t="s""#).count(), 3, "{sheet}");
    let read = read_xlsx(&bytes, &Limits::default()).unwrap();
    assert_eq!(read.rows[0].cells, ["110105199001011234"]);
    assert_eq!(read.rows[1].cells, ["0012"]);
}

#[test]
fn csv_reads_back_with_gaps_in_row_numbers_closed() {
    let mut table = Table::new(vec!["a".to_owned()]);
    table.push_row(vec!["1".to_owned()]);
    table.rows[0].number = 7;
    let read = read_csv(&write_csv(&table), &Limits::default()).unwrap();
    assert_eq!(read.rows[0].number, 2);
}

fn entry(xlsx: &[u8], name: &str) -> String {
    let mut archive = zip::ZipArchive::new(Cursor::new(xlsx)).unwrap();
    let mut text = String::new();
    archive
        .by_name(name)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

mod arbitrary {
    use super::*;
    use proptest::prelude::*;

    fn table() -> impl Strategy<Value = Table> {
        // Without NUL, which neither format carries.
        let cell = prop_oneof![any::<String>(), "[\\x01-\\x1f'=\\-+@ a\"]{0,6}"]
            .prop_map(|cell| cell.replace('\0', ""));
        prop::collection::vec(prop::collection::vec(cell, 3), 1..6).prop_map(|rows| {
            let mut table = Table::new(vec!["甲".to_owned(), "乙".to_owned(), "丙".to_owned()]);
            for (index, mut cells) in rows.into_iter().enumerate() {
                cells[0] = format!("{index}");
                table.push_row(cells);
            }
            table
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn csv_round_trips_any_strings(table in table()) {
            let read = read_csv(&write_csv(&table), &Limits::default()).unwrap();
            prop_assert_eq!(read, table);
        }

        #[test]
        fn xlsx_round_trips_any_strings(table in table()) {
            let read = read_xlsx(&write_xlsx(&table, "S").unwrap(), &Limits::default()).unwrap();
            prop_assert_eq!(read, table);
        }
    }
}
