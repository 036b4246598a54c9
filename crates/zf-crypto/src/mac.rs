//! HMAC-SHA256, used for KEK derivation and blind indexes.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroize;

pub(crate) type HmacSha256 = Hmac<Sha256>;

pub(crate) fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC hashes or pads keys of any length, so the only error this constructor can report never happens.
    HmacSha256::new_from_slice(key).expect("HMAC-SHA256 accepts keys of any length")
}

/// Writes the tag straight into `out` and wipes the intermediate copy, because derived KEKs are tags.
pub(crate) fn finalize_into(mac: HmacSha256, out: &mut [u8; 32]) {
    let mut tag = mac.finalize().into_bytes();
    out.copy_from_slice(&tag);
    tag.as_mut_slice().zeroize();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hmac_hex(key: &[u8], data: &[u8]) -> String {
        let mut mac = keyed(key);
        mac.update(data);
        let mut out = [0u8; 32];
        finalize_into(mac, &mut out);
        hex::encode(out)
    }

    /// RFC 4231 section 4.2, test case 1.
    #[test]
    fn rfc4231_test_case_1() {
        assert_eq!(
            hmac_hex(&[0x0b; 20], b"Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    /// RFC 4231 section 4.3, test case 2 (a key shorter than the output).
    #[test]
    fn rfc4231_test_case_2() {
        assert_eq!(
            hmac_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
