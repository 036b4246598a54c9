//! The backup file, version 1: a plaintext header, then a body of typed rows that is
//! zstd-compressed and sealed in authenticated chunks (`zf_crypto::backup`). ARCHITECTURE.md
//! ("Backup format") describes the layout; this module is its only reader and writer.
//!
//! The body is a sequence of records, each starting with a tag byte:
//! `T` a table (name, then its column names), `R` a row of the current table (one tagged value
//! per column), `M` the manifest (JSON), which is last. Lengths are big-endian u32, integers
//! big-endian i64. One value has exactly one encoding, so the bytes of a table's records are
//! canonical, and their SHA-256 is the same whichever store the rows were read from.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zf_store::Value;

use super::BackupError;

pub const MAGIC: &[u8; 8] = b"ZFBACKUP";
pub const FORMAT_VERSION: u16 = 1;
const MAX_HEADER_LEN: u32 = 64 * 1024;
/// Far above the largest value the schema holds (a 20 MiB document, sealed), so only a
/// damaged length reaches it.
const MAX_VALUE_LEN: u32 = 256 << 20;
const MAX_COLUMNS: u16 = 1024;
const MAX_MANIFEST_LEN: u32 = 16 << 20;

const TABLE: u8 = b'T';
const ROW: u8 = b'R';
const MANIFEST: u8 = b'M';
const NULL: u8 = 0;
const INT: u8 = 1;
const TEXT: u8 = 2;
const BYTES: u8 = 3;

/// What a backup says about itself before it is opened. The whole header — magic and version
/// included — is authenticated with every chunk, so none of it can be changed unnoticed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Random, to tell backups apart in the audit log.
    pub backup_id: String,
    pub created_at_ms: i64,
    /// The program and version that wrote it.
    pub producer: String,
    pub cipher_suite: String,
    /// The fingerprint of the backup key, derived from the master key.
    pub key_id: String,
    pub compression: String,
    pub chunk_bytes: u32,
    /// `sqlite` or `postgres`.
    pub source_backend: String,
    pub schema_version: i64,
    /// With a token-held KEK: the backup key wrapped under the KEK (hex of the envelope, whose
    /// header names the KEK version), so the token alone gets the key back for a restore.
    /// Absent where the backup key is derived from the master key, keeping those headers as
    /// they always were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_key_wrapped: Option<String>,
}

impl Header {
    /// The header as written at the start of the file: magic, format version (u16 BE), length
    /// (u32 BE), JSON.
    pub fn encode(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let mut out = Vec::with_capacity(14 + json.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        out.extend_from_slice(&(json.len() as u32).to_be_bytes());
        out.extend_from_slice(&json);
        out
    }

    /// Reads the header at the start of `input`; returns it with its exact bytes, which the
    /// chunks are bound to.
    pub fn read(input: &mut impl Read) -> Result<(Header, Vec<u8>), BackupError> {
        let mut fixed = [0u8; 14];
        input.read_exact(&mut fixed).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => BackupError::NotABackup,
            _ => BackupError::Io(e),
        })?;
        if &fixed[..8] != MAGIC {
            return Err(BackupError::NotABackup);
        }
        let version = u16::from_be_bytes([fixed[8], fixed[9]]);
        if version != FORMAT_VERSION {
            return Err(BackupError::UnsupportedVersion(version));
        }
        let len = u32::from_be_bytes([fixed[10], fixed[11], fixed[12], fixed[13]]);
        if len > MAX_HEADER_LEN {
            return Err(BackupError::BadHeader(format!("{len} bytes long")));
        }
        let mut json = vec![0u8; len as usize];
        input.read_exact(&mut json).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => BackupError::BadHeader("cut short".into()),
            _ => BackupError::Io(e),
        })?;
        let header: Header =
            serde_json::from_slice(&json).map_err(|e| BackupError::BadHeader(e.to_string()))?;
        let mut bytes = fixed.to_vec();
        bytes.extend_from_slice(&json);
        Ok((header, bytes))
    }
}

/// One table as the manifest records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableEntry {
    pub name: String,
    pub rows: u64,
    /// SHA-256 (hex) of the table's record and its rows' records, as encoded.
    pub sha256: String,
}

/// The audit chain head at the moment of the snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

/// The last record of the body: what a reader must have seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub tables: Vec<TableEntry>,
    pub rows: u64,
    pub audit_head: ChainHead,
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&(len as u32).to_be_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(NULL),
        Value::Int(i) => {
            out.push(INT);
            out.extend_from_slice(&i.to_be_bytes());
        }
        Value::Text(t) => {
            out.push(TEXT);
            put_len(out, t.len());
            out.extend_from_slice(t.as_bytes());
        }
        Value::Bytes(b) => {
            out.push(BYTES);
            put_len(out, b.len());
            out.extend_from_slice(b);
        }
    }
}

/// Writes the body's records and keeps each table's digest and count for the manifest.
pub struct BodyWriter<W: Write> {
    out: W,
    scratch: Vec<u8>,
    current: Option<(String, Sha256, u64)>,
    done: Vec<TableEntry>,
}

impl<W: Write> BodyWriter<W> {
    pub fn new(out: W) -> Self {
        BodyWriter {
            out,
            scratch: Vec::with_capacity(64 * 1024),
            current: None,
            done: Vec::new(),
        }
    }

    fn end_table(&mut self) {
        if let Some((name, digest, rows)) = self.current.take() {
            self.done.push(TableEntry {
                name,
                rows,
                sha256: hex::encode(digest.finalize()),
            });
        }
    }

    pub fn table(&mut self, name: &str, columns: &[String]) -> io::Result<()> {
        self.end_table();
        self.scratch.clear();
        self.scratch.push(TABLE);
        put_len(&mut self.scratch, name.len());
        self.scratch.extend_from_slice(name.as_bytes());
        self.scratch
            .extend_from_slice(&(columns.len() as u16).to_be_bytes());
        for c in columns {
            put_len(&mut self.scratch, c.len());
            self.scratch.extend_from_slice(c.as_bytes());
        }
        let mut digest = Sha256::new();
        digest.update(&self.scratch);
        self.out.write_all(&self.scratch)?;
        self.current = Some((name.to_owned(), digest, 0));
        Ok(())
    }

    pub fn row(&mut self, row: &[Value]) -> io::Result<()> {
        let Some((_, digest, rows)) = self.current.as_mut() else {
            return Err(io::Error::other("a row before any table"));
        };
        self.scratch.clear();
        self.scratch.push(ROW);
        for v in row {
            put_value(&mut self.scratch, v);
        }
        digest.update(&self.scratch);
        *rows += 1;
        self.out.write_all(&self.scratch)
    }

    /// Ends the last table and writes the manifest; returns the inner writer and the manifest.
    pub fn finish(mut self, audit_head: ChainHead) -> io::Result<(W, Manifest)> {
        self.end_table();
        let manifest = Manifest {
            rows: self.done.iter().map(|t| t.rows).sum(),
            tables: self.done,
            audit_head,
        };
        let json = serde_json::to_vec(&manifest).map_err(io::Error::other)?;
        self.out.write_all(&[MANIFEST])?;
        self.out.write_all(&(json.len() as u32).to_be_bytes())?;
        self.out.write_all(&json)?;
        Ok((self.out, manifest))
    }
}

/// What a [`BodyReader`] yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyItem {
    Table {
        name: String,
        columns: Vec<String>,
    },
    Row(Vec<Value>),
    /// The manifest, after it matched every table read; nothing follows it.
    End(Manifest),
}

/// Where the audit chain's head and last event are within their tables, to check them against
/// the manifest.
#[derive(Default)]
struct ChainWatch {
    in_head: Option<(usize, usize)>,
    in_events: Option<(usize, usize)>,
    head: Option<(i64, Vec<u8>)>,
    last_event: Option<(i64, Vec<u8>)>,
}

impl ChainWatch {
    fn table(&mut self, name: &str, columns: &[String]) {
        let at = |c: &str| columns.iter().position(|x| x == c);
        let pair = at("seq").zip(at("hash"));
        self.in_head = if name == "audit_head" { pair } else { None };
        self.in_events = if name == "audit_events" { pair } else { None };
    }

    fn row(&mut self, row: &[Value]) {
        let pick = |(s, h): (usize, usize)| match (row.get(s), row.get(h)) {
            (Some(Value::Int(seq)), Some(Value::Bytes(hash))) => Some((*seq, hash.clone())),
            _ => None,
        };
        if let Some(cols) = self.in_head {
            self.head = pick(cols);
        }
        if let Some(cols) = self.in_events {
            self.last_event = pick(cols);
        }
    }

    fn check(&self, manifest: &ChainHead) -> Result<(), BackupError> {
        let claimed = (manifest.seq, manifest.hash.clone());
        let head = self
            .head
            .as_ref()
            .map(|(s, h)| (*s, hex::encode(h)))
            .ok_or_else(|| {
                BackupError::ManifestMismatch("the audit chain head is missing".into())
            })?;
        if head != claimed {
            return Err(BackupError::ManifestMismatch(
                "the audit chain head differs from the manifest's".into(),
            ));
        }
        if let Some((seq, hash)) = &self.last_event {
            if (*seq, hex::encode(hash)) != claimed {
                return Err(BackupError::ManifestMismatch(
                    "the last audit event is not the chain head".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Reads the body record by record, hashing each table as it goes, and checks the manifest
/// against what it read: the tables in order, their row counts and digests, the chain head.
pub struct BodyReader<R: Read> {
    input: R,
    scratch: Vec<u8>,
    current: Option<(String, Sha256, u64, usize)>,
    seen: Vec<TableEntry>,
    chain: ChainWatch,
    finished: bool,
}

impl<R: Read> BodyReader<R> {
    pub fn new(input: R) -> Self {
        BodyReader {
            input,
            scratch: Vec::new(),
            current: None,
            seen: Vec::new(),
            chain: ChainWatch::default(),
            finished: false,
        }
    }

    /// Reads exactly `n` bytes into the scratch buffer and adds them to the current table's
    /// digest when `hashed`.
    fn take(&mut self, n: usize, hashed: bool) -> Result<&[u8], BackupError> {
        self.scratch.clear();
        self.scratch.resize(n, 0);
        self.input
            .read_exact(&mut self.scratch)
            .map_err(BackupError::from_read)?;
        if hashed {
            if let Some((_, digest, _, _)) = self.current.as_mut() {
                digest.update(&self.scratch);
            }
        }
        Ok(&self.scratch)
    }

    fn len(&mut self, limit: u32, what: &str, hashed: bool) -> Result<usize, BackupError> {
        let b = self.take(4, hashed)?;
        let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if n > limit {
            return Err(BackupError::Malformed(format!("{what} of {n} bytes")));
        }
        Ok(n as usize)
    }

    fn text(&mut self, limit: u32, what: &str) -> Result<String, BackupError> {
        let n = self.len(limit, what, true)?;
        let b = self.take(n, true)?;
        String::from_utf8(b.to_vec())
            .map_err(|_| BackupError::Malformed(format!("{what} is not UTF-8")))
    }

    fn end_table(&mut self) {
        if let Some((name, digest, rows, _)) = self.current.take() {
            self.seen.push(TableEntry {
                name,
                rows,
                sha256: hex::encode(digest.finalize()),
            });
        }
    }

    /// The next item; `End` once, after which the body is exhausted.
    pub fn next_item(&mut self) -> Result<BodyItem, BackupError> {
        if self.finished {
            return Err(BackupError::Malformed("read past the manifest".into()));
        }
        let mut tag = [0u8; 1];
        self.input.read_exact(&mut tag).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                BackupError::Malformed("the body ends before its manifest".into())
            } else {
                BackupError::from_read(e)
            }
        })?;
        match tag[0] {
            TABLE => {
                self.end_table();
                self.current = Some((String::new(), Sha256::new(), 0, 0));
                if let Some((_, digest, _, _)) = self.current.as_mut() {
                    digest.update([TABLE]);
                }
                let name = self.text(1024, "a table name")?;
                let b = self.take(2, true)?;
                let count = u16::from_be_bytes([b[0], b[1]]);
                if count > MAX_COLUMNS {
                    return Err(BackupError::Malformed(format!("{count} columns")));
                }
                let mut columns = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    columns.push(self.text(1024, "a column name")?);
                }
                if self.seen.iter().any(|t| t.name == name) {
                    return Err(BackupError::Malformed(format!("table {name} twice")));
                }
                self.chain.table(&name, &columns);
                if let Some(current) = self.current.as_mut() {
                    current.0 = name.clone();
                    current.3 = columns.len();
                }
                Ok(BodyItem::Table { name, columns })
            }
            ROW => {
                let width = match self.current.as_mut() {
                    Some((_, digest, rows, width)) => {
                        digest.update([ROW]);
                        *rows += 1;
                        *width
                    }
                    None => return Err(BackupError::Malformed("a row before any table".into())),
                };
                let mut row = Vec::with_capacity(width);
                for _ in 0..width {
                    let kind = self.take(1, true)?[0];
                    row.push(match kind {
                        NULL => Value::Null,
                        INT => {
                            let b = self.take(8, true)?;
                            let mut n = [0u8; 8];
                            n.copy_from_slice(b);
                            Value::Int(i64::from_be_bytes(n))
                        }
                        TEXT => Value::Text(self.text(MAX_VALUE_LEN, "a text value")?),
                        BYTES => {
                            let n = self.len(MAX_VALUE_LEN, "a bytes value", true)?;
                            Value::Bytes(self.take(n, true)?.to_vec())
                        }
                        other => return Err(BackupError::Malformed(format!("value tag {other}"))),
                    });
                }
                self.chain.row(&row);
                Ok(BodyItem::Row(row))
            }
            MANIFEST => {
                self.end_table();
                let n = self.len(MAX_MANIFEST_LEN, "the manifest", false)?;
                let json = self.take(n, false)?.to_vec();
                let manifest: Manifest = serde_json::from_slice(&json)
                    .map_err(|e| BackupError::Malformed(format!("the manifest: {e}")))?;
                let mut probe = [0u8; 1];
                loop {
                    match self.input.read(&mut probe) {
                        Ok(0) => break,
                        Ok(_) => {
                            return Err(BackupError::Malformed("records after the manifest".into()))
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(BackupError::from_read(e)),
                    }
                }
                self.check(&manifest)?;
                self.finished = true;
                Ok(BodyItem::End(manifest))
            }
            other => Err(BackupError::Malformed(format!("record tag {other}"))),
        }
    }

    fn check(&self, manifest: &Manifest) -> Result<(), BackupError> {
        if manifest.tables.len() != self.seen.len() {
            return Err(BackupError::ManifestMismatch(format!(
                "{} tables listed, {} present",
                manifest.tables.len(),
                self.seen.len()
            )));
        }
        for (listed, read) in manifest.tables.iter().zip(&self.seen) {
            if listed.name != read.name {
                return Err(BackupError::ManifestMismatch(format!(
                    "table {} listed where {} is",
                    listed.name, read.name
                )));
            }
            if listed.rows != read.rows {
                return Err(BackupError::ManifestMismatch(format!(
                    "{}: {} rows listed, {} present",
                    listed.name, listed.rows, read.rows
                )));
            }
            if listed.sha256 != read.sha256 {
                return Err(BackupError::ManifestMismatch(format!(
                    "{}: the rows' SHA-256 differs",
                    listed.name
                )));
            }
        }
        let total: u64 = self.seen.iter().map(|t| t.rows).sum();
        if manifest.rows != total {
            return Err(BackupError::ManifestMismatch(format!(
                "{} rows listed in all, {total} present",
                manifest.rows
            )));
        }
        self.chain.check(&manifest.audit_head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(seq: i64, hash: &[u8]) -> ChainHead {
        ChainHead {
            seq,
            hash: hex::encode(hash),
        }
    }

    /// A small body: two tables, the second the audit head.
    fn body() -> (Vec<u8>, Manifest) {
        let mut w = BodyWriter::new(Vec::new());
        w.table("users", &["id".into(), "name".into(), "key".into()])
            .unwrap();
        w.row(&[
            Value::Int(-7),
            Value::Text("王芳".into()),
            Value::Bytes(vec![0, 1, 2]),
        ])
        .unwrap();
        w.row(&[Value::Int(i64::MAX), Value::Null, Value::Bytes(vec![])])
            .unwrap();
        w.table("audit_head", &["id".into(), "seq".into(), "hash".into()])
            .unwrap();
        w.row(&[Value::Int(1), Value::Int(42), Value::Bytes(vec![9; 32])])
            .unwrap();
        w.finish(head(42, &[9; 32])).unwrap()
    }

    fn read_all(bytes: &[u8]) -> Result<(Vec<BodyItem>, Manifest), BackupError> {
        let mut r = BodyReader::new(bytes);
        let mut items = Vec::new();
        loop {
            match r.next_item()? {
                BodyItem::End(m) => return Ok((items, m)),
                item => items.push(item),
            }
        }
    }

    #[test]
    fn a_body_round_trips_with_its_manifest() {
        let (bytes, manifest) = body();
        let (items, read) = read_all(&bytes).unwrap();
        assert_eq!(read, manifest);
        assert_eq!(manifest.rows, 3);
        assert_eq!(manifest.tables[0].rows, 2);
        assert_eq!(items.len(), 5);
        assert_eq!(
            items[2],
            BodyItem::Row(vec![
                Value::Int(i64::MAX),
                Value::Null,
                Value::Bytes(vec![])
            ])
        );
        // The same rows give the same digests: the encoding is canonical.
        assert_eq!(body().1, manifest);
    }

    #[test]
    fn a_changed_row_count_or_digest_is_named() {
        let (bytes, manifest) = body();
        let json = serde_json::to_vec(&manifest).unwrap();
        let at = bytes.len() - json.len();
        let rewrite = |m: Manifest| {
            let mut b = bytes[..at - 5].to_vec();
            let j = serde_json::to_vec(&m).unwrap();
            b.push(MANIFEST);
            b.extend_from_slice(&(j.len() as u32).to_be_bytes());
            b.extend_from_slice(&j);
            read_all(&b).unwrap_err().to_string()
        };
        let mut m = manifest.clone();
        m.tables[0].rows = 3;
        assert!(rewrite(m).contains("3 rows listed, 2 present"));
        let mut m = manifest.clone();
        m.tables[1].sha256 = manifest.tables[0].sha256.clone();
        assert!(rewrite(m).contains("audit_head: the rows' SHA-256 differs"));
        let mut m = manifest.clone();
        m.audit_head.seq = 41;
        assert!(rewrite(m).contains("chain head"));
        let mut m = manifest.clone();
        m.tables.pop();
        assert!(rewrite(m).contains("1 tables listed, 2 present"));
    }

    #[test]
    fn a_body_cut_short_or_with_junk_is_refused() {
        let (bytes, _) = body();
        for len in [0, 1, 10, bytes.len() - 1] {
            assert!(read_all(&bytes[..len]).is_err(), "cut to {len}");
        }
        let mut longer = bytes.clone();
        longer.push(ROW);
        assert!(read_all(&longer)
            .unwrap_err()
            .to_string()
            .contains("after the manifest"));
        let mut bad_tag = bytes.clone();
        bad_tag[0] = b'X';
        assert!(read_all(&bad_tag).is_err());
    }

    #[test]
    fn the_header_round_trips_and_names_what_is_wrong() {
        let header = Header {
            backup_id: "b".into(),
            created_at_ms: 1,
            producer: "zhangfang test".into(),
            cipher_suite: "aes-256-gcm".into(),
            key_id: "00".into(),
            compression: "zstd".into(),
            chunk_bytes: 1 << 20,
            source_backend: "sqlite".into(),
            schema_version: 7,
            backup_key_wrapped: None,
        };
        let bytes = header.encode();
        let mut input = bytes.as_slice();
        let (read, raw) = Header::read(&mut input).unwrap();
        assert_eq!((read, raw), (header, bytes.clone()));
        assert!(matches!(
            Header::read(&mut &b"PK\x03\x04 not a backup"[..]),
            Err(BackupError::NotABackup)
        ));
        let mut newer = bytes.clone();
        newer[9] = 2;
        assert!(matches!(
            Header::read(&mut newer.as_slice()),
            Err(BackupError::UnsupportedVersion(2))
        ));
        assert!(matches!(
            Header::read(&mut &bytes[..bytes.len() - 1]),
            Err(BackupError::BadHeader(_))
        ));
    }
}
