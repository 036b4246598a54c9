//! Bytes of a text file to a string, whichever encoding a Chinese Windows
//! machine, Excel or WPS is likely to have written.

use std::borrow::Cow;

use encoding_rs::{GB18030, UTF_16BE, UTF_16LE};

use crate::error::ReadError;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
const UTF16LE_BOM: &[u8] = b"\xFF\xFE";
const UTF16BE_BOM: &[u8] = b"\xFE\xFF";
/// OLE compound file: `.xls` workbooks and password-protected `.xlsx` ones.
const CFB_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

/// Decodes a text file, refusing anything that does not decode cleanly:
/// guessing wrong would import garbled names without any error.
///
/// Order matters: a BOM is trusted first; then UTF-8, because GB18030 would
/// also accept much UTF-8 as (wrong) Chinese; GB18030 last, as a superset of
/// the GBK that Excel on a Chinese Windows writes.
pub(crate) fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, ReadError> {
    if bytes.starts_with(CFB_MAGIC) {
        return Err(ReadError::UnsupportedWorkbook);
    }
    if let Some(rest) = bytes.strip_prefix(UTF8_BOM) {
        return std::str::from_utf8(rest)
            .map(Cow::Borrowed)
            .map_err(|_| ReadError::NotText)
            .and_then(reject_nul);
    }
    for (bom, encoding) in [(UTF16LE_BOM, UTF_16LE), (UTF16BE_BOM, UTF_16BE)] {
        if let Some(rest) = bytes.strip_prefix(bom) {
            return encoding
                .decode_without_bom_handling_and_without_replacement(rest)
                .ok_or(ReadError::NotText)
                .and_then(reject_nul);
        }
    }
    // NUL never occurs in text outside UTF-16, but almost always in binary.
    if bytes.contains(&0) {
        return Err(ReadError::NotText);
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(Cow::Borrowed(text));
    }
    GB18030
        .decode_without_bom_handling_and_without_replacement(bytes)
        .ok_or(ReadError::NotText)
}

fn reject_nul(text: Cow<'_, str>) -> Result<Cow<'_, str>, ReadError> {
    if text.contains('\0') {
        Err(ReadError::NotText)
    } else {
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plain_and_bom_utf8() {
        assert_eq!(decode("名称".as_bytes()).unwrap(), "名称");
        assert_eq!(decode("\u{feff}名称".as_bytes()).unwrap(), "名称");
    }

    #[test]
    fn falls_back_to_gb18030() {
        let (bytes, _, unmappable) = GB18030.encode("厦门某某财税有限公司");
        assert!(!unmappable);
        assert!(std::str::from_utf8(&bytes).is_err());
        assert_eq!(decode(&bytes).unwrap(), "厦门某某财税有限公司");
    }

    #[test]
    fn reads_utf16_by_bom() {
        let text = "名称\t电话\r\n";
        let le: Vec<u8> = UTF16LE_BOM
            .iter()
            .copied()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let be: Vec<u8> = UTF16BE_BOM
            .iter()
            .copied()
            .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(decode(&le).unwrap(), text);
        assert_eq!(decode(&be).unwrap(), text);
    }

    #[test]
    fn refuses_what_is_not_text() {
        assert_eq!(decode(b"a,b\0c"), Err(ReadError::NotText));
        // 0xFF is not a lead byte in UTF-8 nor GB18030.
        assert_eq!(decode(b"a,\xFF\xFF"), Err(ReadError::NotText));
        // An unpaired surrogate in UTF-16.
        assert_eq!(decode(b"\xFF\xFE\x00\xD8"), Err(ReadError::NotText));
        assert_eq!(decode(b"\xEF\xBB\xBF\xC0"), Err(ReadError::NotText));
        assert_eq!(
            decode(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0"),
            Err(ReadError::UnsupportedWorkbook)
        );
    }
}
