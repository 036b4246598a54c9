//! Formula escaping against CSV injection (OWASP): a cell that a spreadsheet
//! would take for a formula is written with a leading `'`.

use std::borrow::Cow;

/// Characters that make Excel, WPS or LibreOffice start a formula (tab and
/// carriage return because some of them skip leading whitespace first).
const TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Whether a cell gets a `'` on write: a trigger at the start, or quotes in
/// front of one. Escaping the latter as well is what lets [`unescape_formula`]
/// tell our `'` from one that was already in the data.
fn needs_prefix(cell: &str) -> bool {
    cell.trim_start_matches('\'').starts_with(TRIGGERS)
}

/// Prefixes `'` to a cell that a spreadsheet would evaluate as a formula.
///
/// A cell that already starts with `'`s followed by a trigger character gets
/// one more, so [`unescape_formula`] restores every string exactly.
pub fn escape_formula(cell: &str) -> Cow<'_, str> {
    if needs_prefix(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// Reverses [`escape_formula`]: removes one leading `'` when what follows is
/// zero or more `'` and then a trigger character, and nothing otherwise.
pub fn unescape_formula(cell: &str) -> Cow<'_, str> {
    match cell.strip_prefix('\'') {
        Some(rest) if needs_prefix(rest) => Cow::Borrowed(rest),
        _ => Cow::Borrowed(cell),
    }
}

/// A cell as it goes into a file: formula-escaped, and without NUL, which
/// text files cannot hold (a NUL is how the CSV reader tells binary apart)
/// and which the readers drop anyway.
pub(crate) fn export_cell(cell: &str) -> Cow<'_, str> {
    if cell.contains('\0') {
        Cow::Owned(escape_formula(&cell.replace('\0', "")).into_owned())
    } else {
        escape_formula(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prefixes_trigger_characters() {
        for (input, escaped) in [
            ("=1+1", "'=1+1"),
            ("+86 138", "'+86 138"),
            ("-5", "'-5"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'=x", "''=x"),
            ("''-1", "'''-1"),
        ] {
            assert_eq!(escape_formula(input), escaped);
            assert_eq!(unescape_formula(escaped), input);
        }
    }

    #[test]
    fn leaves_ordinary_cells_alone() {
        for cell in ["", "0012", "张三", "'", "''", "'abc", "a=b", " =1", "1-2"] {
            assert!(matches!(escape_formula(cell), Cow::Borrowed(c) if c == cell));
            assert!(matches!(unescape_formula(cell), Cow::Borrowed(c) if c == cell));
        }
    }

    #[test]
    fn export_drops_nul_before_escaping() {
        assert_eq!(export_cell("\0=1"), "'=1");
        assert_eq!(export_cell("a\0b"), "ab");
        assert_eq!(export_cell("-1"), "'-1");
    }

    fn tricky_string() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just('\''),
                Just('='),
                Just('+'),
                Just('-'),
                Just('@'),
                Just('\t'),
                Just('\r'),
                Just('a'),
                Just('张'),
                any::<char>(),
            ],
            0..8,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        #[test]
        fn round_trips(cell in tricky_string()) {
            let escaped = escape_formula(&cell);
            prop_assert_eq!(unescape_formula(&escaped), cell.as_str());
        }

        #[test]
        fn round_trips_any_string(cell in any::<String>()) {
            let escaped = escape_formula(&cell);
            prop_assert_eq!(unescape_formula(&escaped), cell.as_str());
        }

        #[test]
        fn escaped_cells_never_start_a_formula(cell in tricky_string()) {
            prop_assert!(!escape_formula(&cell).starts_with(TRIGGERS));
        }
    }
}
