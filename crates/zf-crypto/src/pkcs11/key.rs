//! AES-256-GCM under a key that stays inside the token, writing the same envelope as [`crate::aead`].

use std::sync::Arc;

use cryptoki::context::Function;
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectHandle;
use cryptoki::types::Ulong;
use rand::RngCore;
use zeroize::Zeroizing;

use super::{pkcs11_error, TokenInner};
use crate::envelope::{Envelope, Header, HEADER_LEN, NONCE_LEN, TAG_LEN};
use crate::error::{CryptoError, TokenError};
use crate::suite::CipherSuite;

const TAG_BITS: usize = TAG_LEN * 8;

/// A KEK object on an open token. Holding it keeps the token open.
pub(crate) struct TokenKey {
    token: Arc<TokenInner>,
    handle: ObjectHandle,
    label: String,
}

impl TokenKey {
    pub(super) fn new(token: Arc<TokenInner>, handle: ObjectHandle, label: String) -> Self {
        Self {
            token,
            handle,
            label,
        }
    }

    /// Encrypts inside the token; the envelope is `header ‖ nonce ‖ ciphertext ‖ tag` with the header authenticated
    /// ahead of `aad_body`, exactly as [`crate::aead::seal`] lays it out.
    pub(crate) fn seal(
        &self,
        header: Header,
        plaintext: &[u8],
        aad_body: &[u8],
    ) -> Result<Envelope, CryptoError> {
        require_gcm(header.suite)?;
        let header_bytes = header.to_bytes();
        // The nonce comes from this process's CSPRNG rather than the token's generator so that both paths choose
        // nonces the same way; PKCS#11 hands the IV to the token as a mutable buffer, and whatever it holds after the
        // call is what was used.
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let aad = associated_data(&header_bytes, aad_body);
        let sealed = self
            .token
            .with_session(|session| {
                let params = GcmParams::new(&mut nonce, &aad, Ulong::try_from(TAG_BITS)?)?;
                session.encrypt(&Mechanism::AesGcm(params), self.handle, plaintext)
            })
            .map_err(|error| self.failure("C_Encrypt", &error))?;
        if sealed.len() != plaintext.len() + TAG_LEN {
            return Err(TokenError::Pkcs11 {
                operation: "C_Encrypt",
                detail: format!(
                    "AES-GCM returned {} bytes for {} bytes of plaintext",
                    sealed.len(),
                    plaintext.len()
                ),
            }
            .into());
        }
        let mut bytes = Vec::with_capacity(HEADER_LEN + NONCE_LEN + sealed.len());
        bytes.extend_from_slice(&header_bytes);
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        Ok(Envelope::from_parts(header, bytes))
    }

    /// Decrypts inside the token. A wrong tag, key, header, nonce or associated data is `Authentication`, as in
    /// [`crate::aead::open`]; the plaintext arrives in a zeroizing buffer.
    pub(crate) fn open(
        &self,
        envelope: &Envelope,
        aad_body: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        const TOO_SHORT: CryptoError =
            CryptoError::Malformed("shorter than header, nonce and authentication tag");
        require_gcm(envelope.header().suite)?;
        let (header_bytes, rest) = envelope
            .as_bytes()
            .split_first_chunk::<HEADER_LEN>()
            .ok_or(TOO_SHORT)?;
        let (nonce, sealed) = rest.split_first_chunk::<NONCE_LEN>().ok_or(TOO_SHORT)?;
        if sealed.len() < TAG_LEN {
            return Err(TOO_SHORT);
        }
        let mut nonce = *nonce;
        let aad = associated_data(header_bytes, aad_body);
        self.token
            .with_session(|session| {
                let params = GcmParams::new(&mut nonce, &aad, Ulong::try_from(TAG_BITS)?)?;
                session
                    .decrypt(&Mechanism::AesGcm(params), self.handle, sealed)
                    .map(Zeroizing::new)
            })
            .map_err(|error| match error {
                Error::Pkcs11(
                    RvError::EncryptedDataInvalid | RvError::EncryptedDataLenRange,
                    _,
                ) => CryptoError::Authentication,
                // SoftHSM 2.6 (Debian's) reports a wrong GCM tag as CKR_GENERAL_ERROR from C_Decrypt itself. Once
                // C_DecryptInit has accepted key and parameters, nothing else there fails, and reading a device fault
                // as a failed unwrap still fails closed.
                Error::Pkcs11(RvError::GeneralError, Function::Decrypt) => {
                    CryptoError::Authentication
                }
                other => self.failure("C_Decrypt", &other),
            })
    }

    fn failure(&self, operation: &'static str, error: &Error) -> CryptoError {
        match error {
            // The handle outlived its object: the KEK was destroyed (retired) since it was looked up.
            Error::Pkcs11(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid, _) => {
                TokenError::KeyNotFound {
                    label: self.label.clone(),
                }
            }
            other => pkcs11_error(operation, other),
        }
        .into()
    }
}

fn require_gcm(suite: CipherSuite) -> Result<(), CryptoError> {
    // Token KEKs are AES keys used through CKM_AES_GCM; an envelope of another suite cannot come from one.
    if suite == CipherSuite::Aes256Gcm {
        Ok(())
    } else {
        Err(CryptoError::UnsupportedSuite(suite.id()))
    }
}

fn associated_data(header: &[u8; HEADER_LEN], aad_body: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(HEADER_LEN + aad_body.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(aad_body);
    aad
}
