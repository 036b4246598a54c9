//! Heap-held 32-byte key material shared by every key type.

use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::{Zeroize, ZeroizeOnDrop};

pub(crate) const KEY_LEN: usize = 32;

/// Boxed so that moving a key type moves a pointer, not the key: a moved-from stack copy would escape zeroization.
pub(crate) struct KeyBytes(Box<[u8; KEY_LEN]>);

impl KeyBytes {
    pub(crate) fn random() -> Self {
        let mut key = Self::zeroed();
        OsRng.fill_bytes(key.0.as_mut_slice());
        key
    }

    pub(crate) fn zeroed() -> Self {
        Self(Box::new([0u8; KEY_LEN]))
    }

    /// Takes the array by value and wipes this function's copy; the caller remains responsible for its own.
    pub(crate) fn from_array(mut bytes: [u8; KEY_LEN]) -> Self {
        let mut key = Self::zeroed();
        key.0.copy_from_slice(&bytes);
        bytes.zeroize();
        key
    }

    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != KEY_LEN {
            return None;
        }
        let mut key = Self::zeroed();
        key.0.copy_from_slice(bytes);
        Some(key)
    }

    pub(crate) fn as_array(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    pub(crate) fn as_mut_array(&mut self) -> &mut [u8; KEY_LEN] {
        &mut self.0
    }
}

impl Drop for KeyBytes {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for KeyBytes {}
