//! Backup files: a key of their own, and a stream sealed in authenticated chunks.
//!
//! The backup key is derived from the master key under its own label, so it is neither a KEK nor a DEK: a backup is
//! useless without the master key, carries no key that opens the live database, and losing a backup file exposes
//! nothing a data key protects beyond what the file holds as ciphertext anyway.
//!
//! The stream is cut into chunks of at most [`CHUNK_LEN`] bytes. Each chunk is sealed with AES-256-GCM under a fresh
//! random nonce, with associated data that binds it to the file's plaintext header (by SHA-256), to its position, and to
//! whether it is the last chunk. Reordering, dropping, duplicating or moving chunks between files, cutting the file at a
//! chunk boundary, appending to it, or flipping any bit therefore all fail to open, and the reader says which.
//!
//! On disk a chunk is `[u32 BE: final bit (1 << 31) | plaintext length][nonce 12][ciphertext][tag 16]`; the final bit
//! is authenticated because it is part of the associated data.

use std::fmt;
use std::io::{self, Read, Write};

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit};
use hmac::Mac;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::encoding::length_prefixed;
use crate::error::BackupStreamError;
use crate::mac;
use crate::master_key::MasterKey;
use crate::secret::KeyBytes;
use crate::suite::CipherSuite;

/// Plaintext bytes per chunk. Large enough that the 32 bytes of framing, nonce and tag cost nothing, small enough
/// that a reader holds one chunk in memory.
pub const CHUNK_LEN: usize = 1 << 20;

const FINAL_BIT: u32 = 1 << 31;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const KEY_LABEL: &[u8] = b"zhangfang/backup/v1";
const KEY_ID_LABEL: &[u8] = b"zhangfang/backup/v1/key-id";
const CHUNK_PURPOSE: &[u8] = b"zhangfang/backup/v1/chunk";

/// The key that seals backup files, derived by [`MasterKey::backup_key`]. `Debug` shows only its id.
pub struct BackupKey {
    key: KeyBytes,
}

/// A public fingerprint of a backup key, written in each backup's header so that a file made under another master key
/// is named as such before any chunk is tried. It is an HMAC under the key, so it reveals nothing about the key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BackupKeyId([u8; 16]);

impl BackupKeyId {
    pub fn parse_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }
}

impl fmt::Display for BackupKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for BackupKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BackupKeyId({self})")
    }
}

impl MasterKey {
    /// The backup key: HMAC-SHA256(master key, "zhangfang/backup/v1"), independent of every KEK for the same reason
    /// KEK versions are independent of each other (see [`MasterKey::kek`]).
    pub fn backup_key(&self) -> BackupKey {
        let mut derivation = mac::keyed(self.as_array());
        derivation.update(KEY_LABEL);
        let mut key = KeyBytes::zeroed();
        mac::finalize_into(derivation, key.as_mut_array());
        BackupKey { key }
    }
}

impl BackupKey {
    /// A random backup key, for a deployment without a master key to derive one from (its KEK lives in a token): it is
    /// stored wrapped under the KEK ([`crate::Kek::try_wrap_backup_key`]), and each backup carries that wrapped form so
    /// a restore needs only the token.
    pub fn generate() -> Self {
        Self {
            key: KeyBytes::random(),
        }
    }

    pub(crate) fn from_secret(key: KeyBytes) -> Self {
        Self { key }
    }

    pub(crate) fn secret(&self) -> &KeyBytes {
        &self.key
    }

    /// The only suite backups are sealed with today; the header names it so a reader can refuse others.
    pub const SUITE: CipherSuite = CipherSuite::Aes256Gcm;

    pub fn id(&self) -> BackupKeyId {
        let mut derivation = mac::keyed(self.key.as_array());
        derivation.update(KEY_ID_LABEL);
        let mut tag = Zeroizing::new([0u8; 32]);
        mac::finalize_into(derivation, &mut tag);
        let mut id = [0u8; 16];
        id.copy_from_slice(&tag[..16]);
        BackupKeyId(id)
    }

    /// Seals everything written to the returned writer, after the plaintext `header` the caller has already written
    /// to `out`. Call [`ChunkSealer::finish`]: a stream dropped without it has no final chunk and reads as truncated.
    pub fn sealer<W: Write>(&self, header: &[u8], out: W) -> ChunkSealer<W> {
        ChunkSealer {
            key: self.copy(),
            header_digest: Sha256::digest(header).into(),
            out,
            buf: Zeroizing::new(Vec::with_capacity(CHUNK_LEN)),
            index: 0,
        }
    }

    /// Opens a stream sealed by [`BackupKey::sealer`] under the same `header`; `input` is positioned after the header.
    pub fn opener<R: Read>(&self, header: &[u8], input: R) -> ChunkOpener<R> {
        ChunkOpener {
            key: self.copy(),
            header_digest: Sha256::digest(header).into(),
            input,
            buf: Zeroizing::new(Vec::new()),
            pos: 0,
            index: 0,
            done: false,
        }
    }

    fn copy(&self) -> KeyBytes {
        KeyBytes::from_array(*self.key.as_array())
    }
}

impl fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BackupKey({})", self.id())
    }
}

fn chunk_aad(header_digest: &[u8; 32], index: u64, last: bool) -> Vec<u8> {
    length_prefixed(&[
        CHUNK_PURPOSE,
        header_digest,
        &index.to_be_bytes(),
        &[u8::from(last)],
    ])
}

/// Writes a sealed chunk stream; see the module documentation for the layout.
pub struct ChunkSealer<W: Write> {
    key: KeyBytes,
    header_digest: [u8; 32],
    out: W,
    buf: Zeroizing<Vec<u8>>,
    index: u64,
}

impl<W: Write> ChunkSealer<W> {
    /// Seals what is buffered as the final chunk and returns the underlying writer, flushed.
    pub fn finish(mut self) -> io::Result<W> {
        self.seal_buffered(true)?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn seal_buffered(&mut self, last: bool) -> io::Result<()> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let aad = chunk_aad(&self.header_digest, self.index, last);
        // Encrypted in place, so the buffered plaintext is overwritten rather than left behind.
        let tag = Aes256Gcm::new(self.key.as_array().into())
            .encrypt_in_place_detached(&nonce.into(), &aad, self.buf.as_mut_slice())
            .map_err(|_| io::Error::other("chunk exceeds the AES-GCM message limit"))?;
        // The buffer never exceeds CHUNK_LEN, far below the bit the length shares with the final flag.
        let len = self.buf.len() as u32;
        let frame = if last { len | FINAL_BIT } else { len };
        self.out.write_all(&frame.to_be_bytes())?;
        self.out.write_all(&nonce)?;
        self.out.write_all(&self.buf)?;
        self.out.write_all(&tag)?;
        self.buf.clear();
        self.index += 1;
        Ok(())
    }
}

impl<W: Write> Write for ChunkSealer<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        // A full buffer is sealed only once more data arrives, so the chunk that turns out to be the last can still be
        // marked final by `finish`.
        if self.buf.len() == CHUNK_LEN {
            self.seal_buffered(false)?;
        }
        let n = data.len().min(CHUNK_LEN - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Reads a sealed chunk stream, yielding plaintext only from chunks that authenticated. Failures are
/// `io::ErrorKind::InvalidData` errors carrying a [`BackupStreamError`] (see [`BackupStreamError::in_io`]).
pub struct ChunkOpener<R: Read> {
    key: KeyBytes,
    header_digest: [u8; 32],
    input: R,
    buf: Zeroizing<Vec<u8>>,
    pos: usize,
    index: u64,
    done: bool,
}

impl<R: Read> ChunkOpener<R> {
    /// How many chunks have been opened so far.
    pub fn chunks(&self) -> u64 {
        self.index
    }

    /// Reads and opens the next chunk into the buffer; false once the final chunk has been consumed.
    fn next_chunk(&mut self) -> Result<bool, BackupStreamError> {
        if self.done {
            return Ok(false);
        }
        let mut frame = [0u8; 4];
        read_full(&mut self.input, &mut frame)?;
        let frame = u32::from_be_bytes(frame);
        let last = frame & FINAL_BIT != 0;
        let len = (frame & !FINAL_BIT) as usize;
        if len > CHUNK_LEN {
            return Err(BackupStreamError::Malformed(
                "a chunk is longer than any writer makes",
            ));
        }
        let mut nonce = [0u8; NONCE_LEN];
        read_full(&mut self.input, &mut nonce)?;
        self.buf.clear();
        self.buf.resize(len, 0);
        read_full(&mut self.input, self.buf.as_mut_slice())?;
        let mut tag = [0u8; TAG_LEN];
        read_full(&mut self.input, &mut tag)?;
        let aad = chunk_aad(&self.header_digest, self.index, last);
        Aes256Gcm::new(self.key.as_array().into())
            .decrypt_in_place_detached(&nonce.into(), &aad, self.buf.as_mut_slice(), &tag.into())
            .map_err(|_| BackupStreamError::Tampered { chunk: self.index })?;
        self.pos = 0;
        self.index += 1;
        if last {
            self.done = true;
            let mut probe = [0u8; 1];
            loop {
                match self.input.read(&mut probe) {
                    Ok(0) => break,
                    Ok(_) => return Err(BackupStreamError::TrailingData),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(BackupStreamError::Io(e.to_string())),
                }
            }
        }
        Ok(true)
    }
}

/// `read_exact`, with an early end of input reported as truncation.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> Result<(), BackupStreamError> {
    input.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            BackupStreamError::Truncated
        } else {
            BackupStreamError::Io(e.to_string())
        }
    })
}

impl<R: Read> Read for ChunkOpener<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            if !self
                .next_chunk()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            {
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &[u8] = b"{\"format\":\"test\"}";

    fn key() -> BackupKey {
        MasterKey::from_bytes([9; 32]).backup_key()
    }

    fn seal(key: &BackupKey, header: &[u8], data: &[u8]) -> Vec<u8> {
        let mut sealer = key.sealer(header, Vec::new());
        // Odd-sized writes, so chunk boundaries fall inside them.
        for part in data.chunks(77_777) {
            sealer.write_all(part).unwrap();
        }
        sealer.finish().unwrap()
    }

    fn open(key: &BackupKey, header: &[u8], sealed: &[u8]) -> Result<Vec<u8>, BackupStreamError> {
        let mut out = Vec::new();
        key.opener(header, sealed)
            .read_to_end(&mut out)
            .map_err(|e| {
                BackupStreamError::in_io(&e)
                    .cloned()
                    .expect("a stream error")
            })?;
        Ok(out)
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    /// Offsets of each chunk's frame in a sealed stream.
    fn frames(sealed: &[u8]) -> Vec<usize> {
        let mut at = 0;
        let mut out = Vec::new();
        while at < sealed.len() {
            out.push(at);
            let frame = u32::from_be_bytes(sealed[at..at + 4].try_into().unwrap());
            at += 4 + NONCE_LEN + (frame & !FINAL_BIT) as usize + TAG_LEN;
        }
        out
    }

    #[test]
    fn round_trips_across_chunk_boundaries() {
        let key = key();
        for len in [
            0,
            1,
            CHUNK_LEN - 1,
            CHUNK_LEN,
            CHUNK_LEN + 1,
            3 * CHUNK_LEN + 5,
        ] {
            let plain = data(len);
            let sealed = seal(&key, HEADER, &plain);
            assert_eq!(open(&key, HEADER, &sealed).unwrap(), plain, "length {len}");
            let chunks = len.div_ceil(CHUNK_LEN).max(1);
            assert_eq!(frames(&sealed).len(), chunks, "length {len}");
        }
    }

    #[test]
    fn the_key_is_its_own_and_its_id_is_stable_and_distinct() {
        let master = MasterKey::from_bytes([9; 32]);
        let key = master.backup_key();
        assert_eq!(key.id(), master.backup_key().id());
        assert_ne!(key.id(), MasterKey::from_bytes([8; 32]).backup_key().id());
        assert_ne!(
            key.key.as_array(),
            master.kek(crate::KeyVersion(1)).key_array()
        );
        assert_ne!(key.key.as_array(), master.as_array());
        let mut expected = mac::keyed(&[9; 32]);
        expected.update(b"zhangfang/backup/v1");
        let mut out = [0u8; 32];
        mac::finalize_into(expected, &mut out);
        assert_eq!(key.key.as_array(), &out);
        assert_eq!(
            BackupKeyId::parse_hex(&key.id().to_string()),
            Some(key.id())
        );
        assert!(!format!("{key:?}").contains(&hex::encode(out)));
    }

    #[test]
    fn another_key_or_header_fails_on_the_first_chunk() {
        let sealed = seal(&key(), HEADER, &data(1000));
        let other = MasterKey::from_bytes([10; 32]).backup_key();
        assert_eq!(
            open(&other, HEADER, &sealed),
            Err(BackupStreamError::Tampered { chunk: 0 })
        );
        assert_eq!(
            open(&key(), b"{\"format\":\"tesT\"}", &sealed),
            Err(BackupStreamError::Tampered { chunk: 0 })
        );
    }

    #[test]
    fn a_flipped_bit_anywhere_is_detected() {
        let key = key();
        let sealed = seal(&key, HEADER, &data(CHUNK_LEN + 300));
        let second = frames(&sealed)[1];
        let positions = (0..40)
            .chain(second - 20..second + 40)
            .chain(sealed.len() - 20..sealed.len());
        for at in positions {
            let mut bad = sealed.clone();
            bad[at] ^= 0x04;
            assert!(
                open(&key, HEADER, &bad).is_err(),
                "a flipped bit at {at} went unnoticed"
            );
        }
    }

    #[test]
    fn truncation_reordering_and_trailing_data_are_named() {
        let key = key();
        let sealed = seal(&key, HEADER, &data(2 * CHUNK_LEN + 10));
        let at = frames(&sealed);
        // Cut at a chunk boundary: every remaining chunk authenticates, but none is final.
        assert_eq!(
            open(&key, HEADER, &sealed[..at[2]]),
            Err(BackupStreamError::Truncated)
        );
        assert_eq!(
            open(&key, HEADER, &sealed[..sealed.len() - 1]),
            Err(BackupStreamError::Truncated)
        );
        assert_eq!(
            open(&key, HEADER, &sealed[..0]),
            Err(BackupStreamError::Truncated)
        );
        let mut swapped = sealed[at[1]..at[2]].to_vec();
        swapped.extend_from_slice(&sealed[..at[1]]);
        swapped.extend_from_slice(&sealed[at[2]..]);
        assert_eq!(
            open(&key, HEADER, &swapped),
            Err(BackupStreamError::Tampered { chunk: 0 })
        );
        // The final chunk moved up front: its flag and index no longer match its position.
        let mut last_first = sealed[at[2]..].to_vec();
        last_first.extend_from_slice(&sealed[..at[2]]);
        assert!(open(&key, HEADER, &last_first).is_err());
        let mut longer = sealed.clone();
        longer.push(0);
        assert_eq!(
            open(&key, HEADER, &longer),
            Err(BackupStreamError::TrailingData)
        );
        // A final chunk claimed by flipping the flag of a middle one.
        let mut flagged = sealed[..at[2]].to_vec();
        flagged[at[1]] |= 0x80;
        assert_eq!(
            open(&key, HEADER, &flagged),
            Err(BackupStreamError::Tampered { chunk: 1 })
        );
    }

    #[test]
    fn a_stream_dropped_without_finish_reads_as_truncated() {
        let key = key();
        let mut out = Vec::new();
        {
            let mut sealer = key.sealer(HEADER, &mut out);
            sealer.write_all(&data(CHUNK_LEN + 10)).unwrap();
        }
        assert_eq!(open(&key, HEADER, &out), Err(BackupStreamError::Truncated));
    }

    #[test]
    fn an_oversized_frame_is_refused_before_it_is_read() {
        let mut bad = ((CHUNK_LEN as u32 + 1) | FINAL_BIT).to_be_bytes().to_vec();
        bad.extend_from_slice(&[0; 64]);
        assert!(matches!(
            open(&key(), HEADER, &bad),
            Err(BackupStreamError::Malformed(_))
        ));
    }
}
