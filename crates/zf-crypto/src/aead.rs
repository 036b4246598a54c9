//! Sealing and opening envelopes under a 32-byte key. The one place that dispatches on the cipher suite.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::envelope::{Envelope, Header, HEADER_LEN, NONCE_LEN, TAG_LEN};
use crate::error::CryptoError;
use crate::secret::KeyBytes;

/// Encrypts `plaintext` into a new envelope; the header is authenticated ahead of `aad_body`.
///
/// Nonces are 96 random bits from the thread-local CSPRNG (ChaCha, seeded and periodically reseeded from the OS): keys
/// are per client, so no key comes near the 2^32 random-nonce limit, and a syscall per field would dominate the cost
/// of encrypting small fields.
///
/// # Panics
/// If `plaintext` exceeds AES-GCM's per-message limit of 64 GiB, which no field or document reaches: request bodies are
/// capped far below that before they get here.
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

    let tag = match header.suite {
        crate::CipherSuite::Aes256Gcm => Aes256Gcm::new(key.as_array().into())
            .encrypt_in_place_detached(
                &nonce.into(),
                &associated_data(&header_bytes, aad_body),
                body,
            )
            .expect("plaintext within the AES-GCM message limit"),
    };
    bytes.extend_from_slice(&tag);
    Envelope::from_parts(header, bytes)
}

/// Decrypts and authenticates an envelope; any mismatch of key, header, nonce, ciphertext or AAD is `Authentication`.
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
    match envelope.header().suite {
        crate::CipherSuite::Aes256Gcm => Aes256Gcm::new(key.as_array().into())
            .decrypt_in_place_detached(
                nonce.into(),
                &associated_data(header_bytes, aad_body),
                plaintext.as_mut_slice(),
                tag.into(),
            )
            .map_err(|_| CryptoError::Authentication)?,
    }
    Ok(plaintext)
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

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// Checks the primitive itself against published vectors, so a broken or misconfigured AES-GCM cannot hide behind
    /// round-trip tests that would pass with any self-consistent cipher.
    fn check(key: &str, iv: &str, plaintext: &str, aad: &str, ciphertext_and_tag: &str) {
        let cipher = Aes256Gcm::new_from_slice(&unhex(key)).unwrap();
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
        check(
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
        check(
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
}
