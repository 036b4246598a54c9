//! Which of the two supported file formats a file is in.

/// A file format the crate reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Csv,
    Xlsx,
}

/// Every XLSX file is a zip archive, and a zip archive starts with a local file
/// header. Text never starts with these bytes.
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";

impl Format {
    /// Guesses the format from the content, which unlike a file name cannot
    /// be wrong: zip magic means XLSX, anything else is tried as CSV.
    pub fn sniff(bytes: &[u8]) -> Format {
        if bytes.starts_with(ZIP_MAGIC) {
            Format::Xlsx
        } else {
            Format::Csv
        }
    }

    /// The format a file name's extension (or a bare extension) stands for,
    /// ignoring case. `.txt` and `.tsv` count as CSV because Excel saves
    /// "Unicode text" as tab-separated `.txt`.
    pub fn from_extension(name: &str) -> Option<Format> {
        let extension = name.rsplit_once('.').map_or(name, |(_, ext)| ext);
        match extension.to_ascii_lowercase().as_str() {
            "csv" | "txt" | "tsv" => Some(Format::Csv),
            "xlsx" | "xlsm" => Some(Format::Xlsx),
            _ => None,
        }
    }

    /// The MIME type to send with a file written in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }

    /// The file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_zip_magic_only() {
        assert_eq!(Format::sniff(b"PK\x03\x04rest"), Format::Xlsx);
        assert_eq!(Format::sniff(b"PK"), Format::Csv);
        assert_eq!(Format::sniff("名称,电话".as_bytes()), Format::Csv);
        assert_eq!(Format::sniff(b""), Format::Csv);
    }

    #[test]
    fn maps_extensions_ignoring_case() {
        assert_eq!(Format::from_extension("客户.XLSX"), Some(Format::Xlsx));
        assert_eq!(Format::from_extension("a.b.csv"), Some(Format::Csv));
        assert_eq!(Format::from_extension("csv"), Some(Format::Csv));
        assert_eq!(Format::from_extension("导出.txt"), Some(Format::Csv));
        assert_eq!(Format::from_extension("old.xls"), None);
        assert_eq!(Format::from_extension("noext"), None);
    }

    #[test]
    fn extension_round_trips() {
        for format in [Format::Csv, Format::Xlsx] {
            assert_eq!(Format::from_extension(format.extension()), Some(format));
        }
    }
}
