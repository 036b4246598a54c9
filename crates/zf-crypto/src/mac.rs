//! HMAC-SHA256, used for KEK derivation and blind indexes, and HMAC-SM3, used for blind indexes under the SM4-GCM
//! suite.

use hmac::digest::consts::U32;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sm3::Sm3;
use zeroize::Zeroize;

pub(crate) type HmacSha256 = Hmac<Sha256>;
pub(crate) type HmacSm3 = Hmac<Sm3>;

pub(crate) fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC hashes or pads keys of any length, so the only error this constructor can report never happens.
    HmacSha256::new_from_slice(key).expect("HMAC-SHA256 accepts keys of any length")
}

pub(crate) fn keyed_sm3(key: &[u8]) -> HmacSm3 {
    // As for HMAC-SHA256: any key length is valid, so this cannot fail.
    HmacSm3::new_from_slice(key).expect("HMAC-SM3 accepts keys of any length")
}

/// Writes the tag straight into `out` and wipes the intermediate copy, because derived KEKs are tags. Both hashes in
/// use give 32-byte tags, which the bound checks at compile time.
pub(crate) fn finalize_into<M: Mac<OutputSize = U32>>(mac: M, out: &mut [u8; 32]) {
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

    fn hmac_sm3_hex(key: &[u8], data: &[u8]) -> String {
        let mut mac = keyed_sm3(key);
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

    /// GB/T 32905-2016 Appendix A, example 1: the three-byte message "abc", one padded block. Checks SM3 alone, so a
    /// wrong hash is caught before HMAC hides it.
    #[test]
    fn sm3_gb_t_32905_example_1() {
        use sm3::Digest;
        assert_eq!(
            hex::encode(Sm3::digest(b"abc")),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
    }

    /// GB/T 32905-2016 Appendix A, example 2: "abcd" sixteen times, a full 64-byte block plus a padding block.
    #[test]
    fn sm3_gb_t_32905_example_2() {
        use sm3::Digest;
        assert_eq!(
            hex::encode(Sm3::digest("abcd".repeat(16))),
            "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
        );
    }

    /// HMAC-SM3 has no vectors in GB/T 32905 or RFC 2104, so these take RFC 4231's inputs (test cases 1, 2 and 6) and
    /// their expected tags were computed independently with OpenSSL 3.0's SM3, through Python's `hmac` module
    /// (`hmac.new(key, msg, "sm3").hexdigest()`) and cross-checked with `openssl dgst -sm3 -mac HMAC`.
    #[test]
    fn hmac_sm3_matches_openssl_on_rfc4231_inputs() {
        assert_eq!(
            hmac_sm3_hex(&[0x0b; 20], b"Hi There"),
            "51b00d1fb49832bfb01c3ce27848e59f871d9ba938dc563b338ca964755cce70"
        );
        assert_eq!(
            hmac_sm3_hex(b"Jefe", b"what do ya want for nothing?"),
            "2e87f1d16862e6d964b50a5200bf2b10b764faa9680a296a2405f24bec39f882"
        );
        // A key longer than SM3's 64-byte block, which HMAC hashes first.
        assert_eq!(
            hmac_sm3_hex(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "b4fd844e13342002f0b2e0690ea7741f1497d993a70494cea601e657bedf67a0"
        );
    }
}
