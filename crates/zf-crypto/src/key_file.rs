//! The master key file: `zhangfang-master-key v1 <64 hex digits>\n`, mode 0600.

#[cfg(test)]
mod tests;

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::KeyFileError;
use crate::master_key::MasterKey;
use crate::secret::KeyBytes;

const PREFIX: &[u8] = b"zhangfang-master-key v1 ";
const HEX_LEN: usize = 64;
const LINE_LEN: usize = PREFIX.len() + HEX_LEN + 1;

enum Created {
    New(MasterKey),
    AlreadyExists,
}

impl MasterKey {
    /// Loads the key file, or creates it when absent (mode 0600, `create_new` so an existing key is never overwritten;
    /// a missing parent directory is created with mode 0700). Returns the key and whether it was just created.
    ///
    /// If another process creates the file between our load and create, its key wins and is loaded.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyFileError> {
        match Self::load(path) {
            Err(KeyFileError::NotFound { .. }) => {}
            loaded => return loaded.map(|key| (key, false)),
        }
        match create(path)? {
            Created::New(key) => Ok((key, true)),
            Created::AlreadyExists => Self::load(path).map(|key| (key, false)),
        }
    }

    /// Loads an existing key file, refusing one that group or others could read or write.
    pub fn load(path: &Path) -> Result<Self, KeyFileError> {
        // Checked before opening so that a FIFO or device at the path cannot block or feed the read.
        let metadata = fs::metadata(path).map_err(|source| not_found_or_io(path, source))?;
        if !metadata.is_file() {
            return Err(malformed(path));
        }
        let mut file = File::open(path).map_err(|source| not_found_or_io(path, source))?;
        // The mode is taken from the open file, so a swap after the first check cannot slip past it.
        let metadata = file.metadata().map_err(|source| io_error(path, source))?;
        let mode = metadata.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        let mut line = Zeroizing::new([0u8; LINE_LEN + 1]);
        let len =
            read_up_to(&mut file, line.as_mut_slice()).map_err(|source| io_error(path, source))?;
        parse(line.get(..len).unwrap_or_default())
            .map(Self::from_secret)
            .ok_or_else(|| malformed(path))
    }
}

fn create(path: &Path) -> Result<Created, KeyFileError> {
    let parent = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty());
    if let Some(parent) = parent {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|source| io_error(path, source))?;
    }
    let file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            return Ok(Created::AlreadyExists)
        }
        Err(source) => return Err(io_error(path, source)),
    };
    let key = MasterKey::generate();
    if let Err(source) = write_line(file, &key) {
        // A half-written key file would make every later start fail as malformed; better to leave no file at all.
        let _ = fs::remove_file(path);
        return Err(io_error(path, source));
    }
    // The key must survive a crash right after start-up, or every value sealed under it is lost.
    if let Some(parent) = parent {
        File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(|source| io_error(path, source))?;
    }
    Ok(Created::New(key))
}

fn write_line(mut file: File, key: &MasterKey) -> io::Result<()> {
    let mut line = Zeroizing::new([0u8; LINE_LEN]);
    let (prefix, rest) = line.split_at_mut(PREFIX.len());
    prefix.copy_from_slice(PREFIX);
    let (hex_digits, newline) = rest.split_at_mut(HEX_LEN);
    hex::encode_to_slice(key.as_array(), hex_digits).map_err(io::Error::other)?;
    newline.copy_from_slice(b"\n");
    file.write_all(line.as_slice())?;
    file.sync_all()
}

/// Reads until `buf` is full or the file ends; `buf` is one byte longer than a valid file so trailing data is noticed.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|rest| !rest.is_empty()) {
        match file.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

impl MasterKey {
    /// The master key from an environment variable (`variable` names it in the error), for
    /// deployments that hand secrets to the process that way instead of a file: 64 hex digits,
    /// or the key file's line. The caller reads the variable; its value is never echoed.
    pub fn from_env_value(variable: &'static str, value: &str) -> Result<Self, KeyFileError> {
        let value = value.trim();
        let digits = value
            .as_bytes()
            .strip_prefix(PREFIX)
            .unwrap_or(value.as_bytes());
        let mut line = Zeroizing::new(Vec::with_capacity(PREFIX.len() + HEX_LEN + 1));
        line.extend_from_slice(PREFIX);
        line.extend_from_slice(digits);
        line.push(b'\n');
        parse(&line)
            .map(MasterKey::from_secret)
            .ok_or(KeyFileError::Environment { variable })
    }
}

fn parse(line: &[u8]) -> Option<KeyBytes> {
    let hex_digits = line.strip_prefix(PREFIX)?.strip_suffix(b"\n")?;
    if hex_digits.len() != HEX_LEN {
        return None;
    }
    let mut key = KeyBytes::zeroed();
    hex::decode_to_slice(hex_digits, key.as_mut_array()).ok()?;
    Some(key)
}

/// Errors name the key file even when the failing call was on its directory: that is the path the operator configured.
fn io_error(path: &Path, source: io::Error) -> KeyFileError {
    KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn not_found_or_io(path: &Path, source: io::Error) -> KeyFileError {
    if source.kind() == io::ErrorKind::NotFound {
        KeyFileError::NotFound {
            path: path.to_path_buf(),
        }
    } else {
        io_error(path, source)
    }
}

fn malformed(path: &Path) -> KeyFileError {
    KeyFileError::Malformed {
        path: path.to_path_buf(),
    }
}
