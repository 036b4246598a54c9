//! Uploaded documents: what a file really is, judged by its bytes.
//!
//! A file's name and the browser's Content-Type are chosen by the uploader, so
//! neither is trusted: only the leading bytes decide whether a file is stored,
//! and the stored type is the one served back. Executables and archives are
//! named in the refusal so staff understand why a "scan" was rejected.

use serde::Deserialize;
use thiserror::Error;

use crate::code_enum::code_enum;
use crate::names::is_invisible;
use crate::newtype::{display_as_str, string_newtype};
use crate::schema::StringSchema;

/// Larger than any scan or contract PDF a firm handles, small enough that one
/// upload cannot exhaust memory or storage.
pub const MAX_DOCUMENT_BYTES: usize = 20 * 1024 * 1024;

/// Why a file is not accepted as a document.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DocumentError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is {size} bytes; documents may be at most {max} bytes (20 MiB)")]
    TooLarge { size: usize, max: usize },
    #[error("this file is {what}, not a PDF or image")]
    Refused { what: &'static str },
    #[error("this file is not a PDF, PNG or JPEG image")]
    Unrecognised,
}

code_enum! {
    /// The file formats a document may have.
    pub enum DocumentType / DocumentTypeError ("document type") {
        Pdf = "pdf", "PDF文件", "PDF";
        Png = "png", "PNG图片", "PNG image";
        Jpeg = "jpeg", "JPEG图片", "JPEG image";
    }
}

/// Signatures of formats worth naming when refused; checked before the
/// generic "not recognised". Each is (magic bytes, description).
const REFUSED: &[(&[u8], &str)] = &[
    (b"MZ", "a Windows executable"),
    (b"\x7fELF", "a Linux executable (ELF)"),
    (b"\xfe\xed\xfa\xce", "a macOS executable (Mach-O)"),
    (b"\xfe\xed\xfa\xcf", "a macOS executable (Mach-O)"),
    (b"\xce\xfa\xed\xfe", "a macOS executable (Mach-O)"),
    (b"\xcf\xfa\xed\xfe", "a macOS executable (Mach-O)"),
    (
        b"\xca\xfe\xba\xbe",
        "a macOS universal executable or a Java class file",
    ),
    (
        b"PK\x03\x04",
        "a ZIP archive or an Office document (docx, xlsx)",
    ),
    (
        b"PK\x05\x06",
        "a ZIP archive or an Office document (docx, xlsx)",
    ),
    (
        b"PK\x07\x08",
        "a ZIP archive or an Office document (docx, xlsx)",
    ),
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "an Office document (doc, xls)",
    ),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"#!", "a script"),
];

impl DocumentType {
    /// Identifies a file by its first bytes. Only PDF, PNG and JPEG are
    /// accepted: they are what scans and contracts come as, and browsers
    /// display them without running anything.
    pub fn sniff(bytes: &[u8]) -> Result<Self, DocumentError> {
        if bytes.is_empty() {
            return Err(DocumentError::Empty);
        }
        if bytes.starts_with(b"%PDF-") {
            return Ok(DocumentType::Pdf);
        }
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Ok(DocumentType::Png);
        }
        if bytes.starts_with(b"\xff\xd8\xff") {
            return Ok(DocumentType::Jpeg);
        }
        match REFUSED.iter().find(|(magic, _)| bytes.starts_with(magic)) {
            Some(&(_, what)) => Err(DocumentError::Refused { what }),
            None => Err(DocumentError::Unrecognised),
        }
    }

    /// [`DocumentType::sniff`] after checking the size against
    /// [`MAX_DOCUMENT_BYTES`], for a whole uploaded file.
    pub fn check_upload(bytes: &[u8]) -> Result<Self, DocumentError> {
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(DocumentError::TooLarge {
                size: bytes.len(),
                max: MAX_DOCUMENT_BYTES,
            });
        }
        Self::sniff(bytes)
    }

    /// The media type to serve the stored file with.
    pub const fn content_type(self) -> &'static str {
        match self {
            DocumentType::Pdf => "application/pdf",
            DocumentType::Png => "image/png",
            DocumentType::Jpeg => "image/jpeg",
        }
    }

    /// The file name extension, without the dot, for downloads.
    pub const fn extension(self) -> &'static str {
        match self {
            DocumentType::Pdf => "pdf",
            DocumentType::Png => "png",
            DocumentType::Jpeg => "jpg",
        }
    }
}

/// Why a string is not a usable file name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FileNameError {
    #[error("file name must not be empty")]
    Empty,
    #[error("file name must be at most 200 characters long but has {len}")]
    TooLong { len: usize },
    #[error("file name must not contain '{ch}': it is a name, not a path")]
    PathSeparator { ch: char },
    #[error(
        "file name contains an invisible control or formatting character \
         (U+{code_point:04X}) at position {position}"
    )]
    InvisibleCharacter { position: usize, code_point: u32 },
    #[error("file name must not start with '.'")]
    LeadingDot,
}

/// The name a document was uploaded under, kept for display only: the stored
/// file is found by id and served with its sniffed type, never by this name.
///
/// Invisible characters are refused because a right-to-left override can make
/// `invoice\u{202E}fdp.exe` read as `invoiceexe.pdf`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct FileName(String);

impl FileName {
    const MAX: usize = 200;

    pub fn parse(input: &str) -> Result<Self, FileNameError> {
        let trimmed = input.trim();
        let len = trimmed.chars().count();
        if len == 0 {
            return Err(FileNameError::Empty);
        }
        if len > Self::MAX {
            return Err(FileNameError::TooLong { len });
        }
        if let Some((index, ch)) = trimmed
            .chars()
            .enumerate()
            .find(|&(_, ch)| is_invisible(ch))
        {
            return Err(FileNameError::InvisibleCharacter {
                position: index + 1,
                code_point: u32::from(ch),
            });
        }
        if let Some(ch) = trimmed.chars().find(|ch| matches!(ch, '/' | '\\')) {
            return Err(FileNameError::PathSeparator { ch });
        }
        if trimmed.starts_with('.') {
            return Err(FileNameError::LeadingDot);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype!(FileName, FileNameError);
display_as_str!(FileName);

impl utoipa::PartialSchema for FileName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        StringSchema {
            description: "The name a document was uploaded under, for display: 1-200 \
                          characters, no '/' or '\\', no leading '.', no control or \
                          invisible characters.",
            example: "营业执照扫描件.pdf",
            pattern: None,
            min_length: Some(1),
            max_length: Some(FileName::MAX),
            uuid_format: false,
        }
        .build()
    }
}

impl utoipa::ToSchema for FileName {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn recognises_accepted_formats() {
        let cases: [(&[u8], DocumentType); 3] = [
            (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", DocumentType::Pdf),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", DocumentType::Png),
            (b"\xff\xd8\xff\xe0\0\x10JFIF", DocumentType::Jpeg),
        ];
        for (bytes, expected) in cases {
            assert_eq!(DocumentType::sniff(bytes), Ok(expected));
        }
        assert_eq!(DocumentType::Pdf.content_type(), "application/pdf");
        assert_eq!(DocumentType::Png.content_type(), "image/png");
        assert_eq!(DocumentType::Jpeg.content_type(), "image/jpeg");
        assert_eq!(DocumentType::Jpeg.extension(), "jpg");
        assert_eq!(DocumentType::Pdf.extension(), "pdf");
    }

    #[test]
    fn names_dangerous_formats_in_the_refusal() {
        let cases: [(&[u8], &str); 6] = [
            (
                b"MZ\x90\0\x03",
                "this file is a Windows executable, not a PDF or image",
            ),
            (
                b"\x7fELF\x02\x01\x01",
                "this file is a Linux executable (ELF), not a PDF or image",
            ),
            (
                b"\xcf\xfa\xed\xfe\x07",
                "this file is a macOS executable (Mach-O), not a PDF or image",
            ),
            (
                b"PK\x03\x04\x14\0\x06\0",
                "this file is a ZIP archive or an Office document (docx, xlsx), not a PDF or image",
            ),
            (
                b"#!/bin/sh\nrm -rf /",
                "this file is a script, not a PDF or image",
            ),
            (
                b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\0",
                "this file is an Office document (doc, xls), not a PDF or image",
            ),
        ];
        for (bytes, message) in cases {
            assert_eq!(DocumentType::sniff(bytes).unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn refuses_everything_else() {
        for bytes in [
            &b"GIF89a"[..],
            b"RIFF\0\0\0\0WEBPVP8 ",
            b"<html><script>",
            b"<svg xmlns=",
            b" %PDF-1.7",
            b"%PDF",
            b"\x89PNG",
            b"\xff\xd8",
            b"hello",
        ] {
            assert_eq!(
                DocumentType::sniff(bytes),
                Err(DocumentError::Unrecognised),
                "{bytes:?}"
            );
        }
        assert_eq!(DocumentType::sniff(b""), Err(DocumentError::Empty));
        assert_eq!(
            DocumentType::sniff(b"text").unwrap_err().to_string(),
            "this file is not a PDF, PNG or JPEG image"
        );
    }

    #[test]
    fn upload_size_limit() {
        let mut pdf = b"%PDF-1.4\n".to_vec();
        pdf.resize(MAX_DOCUMENT_BYTES, b' ');
        assert_eq!(DocumentType::check_upload(&pdf), Ok(DocumentType::Pdf));
        pdf.push(b' ');
        assert_eq!(
            DocumentType::check_upload(&pdf),
            Err(DocumentError::TooLarge {
                size: MAX_DOCUMENT_BYTES + 1,
                max: MAX_DOCUMENT_BYTES
            })
        );
    }

    #[test]
    fn file_names() {
        assert_eq!(
            FileName::parse(" 营业执照.pdf ").unwrap().as_str(),
            "营业执照.pdf"
        );
        assert_eq!(
            FileName::parse("a/b.pdf"),
            Err(FileNameError::PathSeparator { ch: '/' })
        );
        assert_eq!(
            FileName::parse("..\\..\\boot.ini"),
            Err(FileNameError::PathSeparator { ch: '\\' })
        );
        assert_eq!(FileName::parse(".htaccess"), Err(FileNameError::LeadingDot));
        assert_eq!(FileName::parse(""), Err(FileNameError::Empty));
        assert_eq!(
            FileName::parse("invoice\u{202E}fdp.exe"),
            Err(FileNameError::InvisibleCharacter {
                position: 8,
                code_point: 0x202E
            })
        );
        assert!(FileName::parse("a\0.pdf").is_err());
        assert!(FileName::parse(&"名".repeat(200)).is_ok());
        assert_eq!(
            FileName::parse(&"名".repeat(201)),
            Err(FileNameError::TooLong { len: 201 })
        );
    }

    proptest! {
        #[test]
        fn sniff_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(kind) = DocumentType::sniff(&bytes) {
                let accepted = bytes.starts_with(b"%PDF-")
                    || bytes.starts_with(b"\x89PNG\r\n\x1a\n")
                    || bytes.starts_with(b"\xff\xd8\xff");
                prop_assert!(accepted, "{:?} accepted as {:?}", bytes, kind);
            }
        }

        #[test]
        fn file_names_never_hold_paths(input in any::<String>()) {
            if let Ok(name) = FileName::parse(&input) {
                prop_assert!(!name.as_str().contains(['/', '\\']));
                prop_assert!(!name.as_str().starts_with('.'));
                prop_assert_eq!(FileName::parse(name.as_str()), Ok(name.clone()));
            }
        }
    }
}
