//! Sealing and opening envelopes under a 32-byte key. The one place that dispatches on the cipher suite.

use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::generic_array::sequence::Split;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, AesGcm, KeyInit};
use rand::RngCore;
use sm4::Sm4;
use zeroize::Zeroizing;

use crate::envelope::{Envelope, Header, HEADER_LEN, NONCE_LEN, TAG_LEN};
use crate::error::CryptoError;
use crate::secret::KeyBytes;
use crate::suite::CipherSuite;

/// GCM over SM4 with a 96-bit nonce and 128-bit tag: the construction RFC 8998 names `AEAD_SM4_GCM`, so envelopes
/// sealed here interoperate with other SM4-GCM implementations given the same key, nonce and associated data.
type Sm4Gcm = AesGcm<Sm4, U12>;

/// Encrypts `plaintext` into a new envelope; the header is authenticated ahead of `aad_body`.
///
/// Nonces are 96 random bits from the thread-local CSPRNG (ChaCha, seeded and periodically reseeded from the OS): keys
/// are per client, so no key comes near the 2^32 random-nonce limit, and a syscall per field would dominate the cost
/// of encrypting small fields. Both suites are GCM over a 128-bit block, so the same nonce budget applies to each.
///
/// # Panics
/// If `plaintext` exceeds GCM's per-message limit of 64 GiB (the same for AES and SM4), which no field or document
/// reaches: request bodies are capped far below that before they get here.
pub(crate) fn seal(key: &KeyBytes, header: Header, plaintext: &[u8], aad_body: &[u8]) -> Envelope {
    let header_bytes = header.to_bytes();
    let mut nonce = [0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut nonce);

    // The plaintext is copied into the output buffer and encrypted there, so no plaintext copy outlives this call.
    let mut bytes = Vec::with_capacity(HEADER_LEN + NONCE_LEN + plaintext.len() + TAG_LEN);
    bytes.extend_from_slice(&header_bytes);
    bytes.extend_from_slice(&nonce);
    bytes.extend_from_slice(plaintext);
    let (_, body) = bytes.split_at_mut(HEADER_LEN + NONCE_LEN);

    let aad = associated_data(&header_bytes, aad_body);
    let sealed = match header.suite {
        CipherSuite::Aes256Gcm => Aes256Gcm::new(key.as_array().into()).encrypt_in_place_detached(
            &nonce.into(),
            &aad,
            body,
        ),
        CipherSuite::Sm4Gcm => sm4_gcm(key).encrypt_in_place_detached(&nonce.into(), &aad, body),
    };
    let tag = sealed.expect("plaintext within the GCM message limit");
    bytes.extend_from_slice(&tag);
    Envelope::from_parts(header, bytes)
}

/// Decrypts and authenticates an envelope; any mismatch of key, header, nonce, ciphertext or AAD is `Authentication`.
///
/// The suite comes from the envelope's own header, which is itself authenticated: a header edited to name the other
/// suite runs the other cipher over the bytes and fails its tag check, it never yields plaintext.
pub(crate) fn open(
    key: &KeyBytes,
    envelope: &Envelope,
    aad_body: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    const TOO_SHORT: CryptoError =
        CryptoError::Malformed("shorter than header, nonce and authentication tag");
    let (header_bytes, rest) = envelope
        .as_bytes()
        .split_first_chunk::<HEADER_LEN>()
        .ok_or(TOO_SHORT)?;
    let (nonce, rest) = rest.split_first_chunk::<NONCE_LEN>().ok_or(TOO_SHORT)?;
    let (ciphertext, tag) = rest.split_last_chunk::<TAG_LEN>().ok_or(TOO_SHORT)?;

    // Decrypted in place inside a zeroizing buffer, so the plaintext never sits in memory that is freed unwiped.
    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    let aad = associated_data(header_bytes, aad_body);
    let opened = match envelope.header().suite {
        CipherSuite::Aes256Gcm => Aes256Gcm::new(key.as_array().into()).decrypt_in_place_detached(
            nonce.into(),
            &aad,
            plaintext.as_mut_slice(),
            tag.into(),
        ),
        CipherSuite::Sm4Gcm => sm4_gcm(key).decrypt_in_place_detached(
            nonce.into(),
            &aad,
            plaintext.as_mut_slice(),
            tag.into(),
        ),
    };
    // On failure the buffer holds unauthenticated keystream-XORed bytes; it is dropped (and wiped) here, never
    // returned.
    opened.map_err(|_| CryptoError::Authentication)?;
    Ok(plaintext)
}

/// SM4 takes a 128-bit key and every key in this crate is 32 bytes, so SM4 uses the first 16. The 32 bytes are
/// uniformly random (from the OS, or an HMAC output), so any 16 of them are a uniformly random SM4 key; keeping one
/// 32-byte key type means generation, wrapping, zeroizing and storage are the same whichever suite a key is used with.
/// The split borrows the key in place rather than copying half of it into an unwiped temporary.
fn sm4_gcm(key: &KeyBytes) -> Sm4Gcm {
    let whole: &GenericArray<u8, _> = key.as_array().into();
    let (sm4_key, _): (&GenericArray<u8, U16>, _) = Split::<u8, U16>::split(whole);
    Sm4Gcm::new(sm4_key)
}

fn associated_data(header: &[u8; HEADER_LEN], aad_body: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(HEADER_LEN + aad_body.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(aad_body);
    aad
}

#[cfg(test)]
mod tests {
    use aes_gcm::aead::{Aead, Payload};
    use aes_gcm::{Aes256Gcm, KeyInit};
    use sm4::cipher::BlockEncrypt;
    use sm4::Sm4;

    use super::*;
    use crate::master_key::KeyVersion;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// Checks the primitive itself against published vectors, so a broken or misconfigured cipher cannot hide behind
    /// round-trip tests that would pass with any self-consistent cipher.
    fn check<C: KeyInit + Aead>(
        key: &str,
        iv: &str,
        plaintext: &str,
        aad: &str,
        ciphertext_and_tag: &str,
    ) {
        let cipher = C::new_from_slice(&unhex(key)).unwrap();
        let (iv, plaintext, aad) = (unhex(iv), unhex(plaintext), unhex(aad));
        let payload = Payload {
            msg: &plaintext,
            aad: &aad,
        };
        let sealed = cipher.encrypt(iv.as_slice().into(), payload).unwrap();
        assert_eq!(hex::encode(&sealed), ciphertext_and_tag);
        let payload = Payload {
            msg: &sealed,
            aad: &aad,
        };
        assert_eq!(
            cipher.decrypt(iv.as_slice().into(), payload).unwrap(),
            plaintext
        );
    }

    /// McGrew & Viega, "The Galois/Counter Mode of Operation", test case 14 (AES-256, zero key and IV).
    #[test]
    fn gcm_spec_test_case_14() {
        check::<Aes256Gcm>(
            &"00".repeat(32),
            &"00".repeat(12),
            &"00".repeat(16),
            "",
            "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919",
        );
    }

    /// McGrew & Viega, "The Galois/Counter Mode of Operation", test case 16 (AES-256 with associated data).
    #[test]
    fn gcm_spec_test_case_16() {
        check::<Aes256Gcm>(
            "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
            "cafebabefacedbaddecaf888",
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
             1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
            "feedfacedeadbeeffeedfacedeadbeefabaddad2",
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
             8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662\
             76fc6ece0f4e1768cddf8853bb2d551b",
        );
    }

    const GB_T_32907_KEY_AND_PLAINTEXT: &str = "0123456789abcdeffedcba9876543210";

    fn sm4_encrypt_times(times: u32) -> String {
        let cipher = Sm4::new_from_slice(&unhex(GB_T_32907_KEY_AND_PLAINTEXT)).unwrap();
        let mut block = GenericArray::clone_from_slice(&unhex(GB_T_32907_KEY_AND_PLAINTEXT));
        for _ in 0..times {
            cipher.encrypt_block(&mut block);
        }
        hex::encode(block)
    }

    /// GB/T 32907-2016 Appendix A, example 1: the SM4 block cipher alone, so a wrong SM4 is caught before GCM mixes it
    /// into every output byte.
    #[test]
    fn sm4_block_gb_t_32907_example_1() {
        assert_eq!(sm4_encrypt_times(1), "681edf34d206965e86b3e94f536e4246");
    }

    /// GB/T 32907-2016 Appendix A, example 2: the same key and block encrypted 1,000,000 times, which catches an error
    /// that one block could leave unseen. About 0.2 s in a test build, because the workspace compiles this crate (where
    /// the SM4 calls are instantiated) with the optimiser even in the dev profile.
    #[test]
    fn sm4_block_gb_t_32907_example_2_one_million_iterations() {
        assert_eq!(
            sm4_encrypt_times(1_000_000),
            "595298c7c6fd271f0402f804c33d3f66"
        );
    }

    /// RFC 8998 Appendix A.1, the SM4-GCM example (key and IV as in GB/T 32907's examples, 20 bytes of AAD, four
    /// blocks of plaintext), checked through the same `AesGcm<Sm4, U12>` type the envelopes use.
    #[test]
    fn sm4_gcm_rfc_8998_appendix_a_1() {
        check::<Sm4Gcm>(
            "0123456789abcdeffedcba9876543210",
            "00001234567800000000abcd",
            "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccdddddddddddddddd\
             eeeeeeeeeeeeeeeeffffffffffffffffeeeeeeeeeeeeeeeeaaaaaaaaaaaaaaaa",
            "feedfacedeadbeeffeedfacedeadbeefabaddad2",
            "17f399f08c67d5ee19d0dc9969c4bb7d5fd46fd3756489069157b282bb200735\
             d82710ca5c22f0ccfa7cbf93d496ac15a56834cbcf98c397b4024a2691233b8d\
             83de3541e4c2b58177e065a9bf7b62ec",
        );
    }

    /// The envelope's SM4 key is the first half of the 32-byte key: with the RFC 8998 key there and anything in the
    /// second half, `open` must accept a body sealed by the reference construction under the RFC key alone.
    #[test]
    fn sm4_envelopes_use_the_first_sixteen_bytes_of_the_key() {
        let mut key = [0xA5u8; 32];
        key[..16].copy_from_slice(&unhex("0123456789abcdeffedcba9876543210"));
        let key = KeyBytes::from_array(key);
        let header = Header {
            suite: CipherSuite::Sm4Gcm,
            key_version: KeyVersion(7),
        };
        let header_bytes = header.to_bytes();
        let nonce = unhex("00001234567800000000abcd");
        let reference = Sm4Gcm::new_from_slice(&unhex("0123456789abcdeffedcba9876543210"))
            .unwrap()
            .encrypt(
                nonce.as_slice().into(),
                Payload {
                    msg: b"field value",
                    aad: &associated_data(&header_bytes, b"row binding"),
                },
            )
            .unwrap();
        let mut bytes = header_bytes.to_vec();
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&reference);
        let envelope = Envelope::from_parts(header, bytes);
        assert_eq!(
            open(&key, &envelope, b"row binding").unwrap().as_slice(),
            b"field value"
        );
    }

    #[test]
    fn both_suites_round_trip_and_lay_out_the_same_envelope() {
        let key = KeyBytes::random();
        for suite in CipherSuite::ALL {
            let header = Header {
                suite,
                key_version: KeyVersion(2),
            };
            let envelope = seal(&key, header, b"plaintext", b"aad");
            assert_eq!(envelope.header().suite, suite);
            assert_eq!(&envelope.as_bytes()[..HEADER_LEN], header.to_bytes());
            assert_eq!(
                envelope.as_bytes().len(),
                HEADER_LEN + NONCE_LEN + 9 + TAG_LEN
            );
            assert_eq!(
                open(&key, &envelope, b"aad").unwrap().as_slice(),
                b"plaintext"
            );
        }
    }
}
