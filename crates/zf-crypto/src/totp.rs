//! One-time passwords for the second factor: HOTP (RFC 4226) over HMAC-SHA1, and TOTP
//! (RFC 6238) on top of it. SHA-1 is what every authenticator app implements for `otpauth://`
//! URIs; HMAC-SHA1 is not weakened by SHA-1's collision attacks.

use std::fmt;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use zeroize::Zeroizing;

use crate::util::constant_time_eq;

/// The shared secret of an authenticator: 160 random bits, as RFC 4226 recommends. Zeroized on
/// drop; `Debug` shows nothing. Stored only sealed (see `zf-app`'s keys).
pub struct TotpSecret(Zeroizing<Vec<u8>>);

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TotpSecretError {
    #[error("a TOTP secret must be between 16 and 64 bytes long")]
    Length,
    #[error("not valid base32 (RFC 4648: the letters A-Z and the digits 2-7)")]
    Base32,
}

/// How codes are made: RFC 6238's defaults are 6 digits and 30-second steps from the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TotpParams {
    pub digits: u32,
    pub step_seconds: i64,
    /// How many steps before and after the current one are still accepted, for clock drift
    /// and the time it takes to type a code.
    pub window: i64,
}

impl TotpParams {
    /// 6 digits, 30-second steps, one step either side: what authenticator apps expect.
    pub const STANDARD: TotpParams = TotpParams {
        digits: 6,
        step_seconds: 30,
        window: 1,
    };

    /// The time step a Unix time in milliseconds falls in.
    pub fn step_at(&self, unix_ms: i64) -> i64 {
        unix_ms.div_euclid(1000).div_euclid(self.step_seconds)
    }
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

impl TotpSecret {
    pub const LEN: usize = 20;

    pub fn generate() -> Self {
        let bytes = Zeroizing::new(crate::random_bytes::<{ Self::LEN }>());
        TotpSecret(Zeroizing::new(bytes.to_vec()))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TotpSecretError> {
        if !(16..=64).contains(&bytes.len()) {
            return Err(TotpSecretError::Length);
        }
        Ok(TotpSecret(Zeroizing::new(bytes.to_vec())))
    }

    /// The raw secret, for sealing. Callers must not log it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// RFC 4648 base32 without padding, the form `otpauth://` URIs and manual entry use.
    pub fn to_base32(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(self.0.len().div_ceil(5) * 8));
        let (mut buffer, mut bits) = (0u32, 0u32);
        for &byte in self.0.iter() {
            buffer = (buffer << 8) | u32::from(byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
            }
        }
        if bits > 0 {
            out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
        }
        out
    }

    /// Reads base32 as people type it: any case, with spaces, dashes or padding.
    pub fn from_base32(text: &str) -> Result<Self, TotpSecretError> {
        let mut out = Zeroizing::new(Vec::with_capacity(text.len() * 5 / 8));
        let (mut buffer, mut bits) = (0u32, 0u32);
        for c in text.bytes().filter(|c| !matches!(c, b' ' | b'-' | b'=')) {
            let value = BASE32
                .iter()
                .position(|&a| a == c.to_ascii_uppercase())
                .ok_or(TotpSecretError::Base32)?;
            buffer = (buffer << 5) | value as u32;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push((buffer >> bits) as u8);
            }
        }
        Self::from_bytes(&out)
    }

    /// The HOTP value for `counter` (RFC 4226 section 5.3), `digits` long.
    pub fn hotp(&self, counter: u64, digits: u32) -> u32 {
        // HMAC accepts keys of any length, so this constructor cannot fail.
        let mut mac =
            Hmac::<Sha1>::new_from_slice(&self.0).expect("HMAC-SHA1 accepts keys of any length");
        mac.update(&counter.to_be_bytes());
        let mut digest = [0u8; 20];
        digest.copy_from_slice(&mac.finalize().into_bytes());
        let digest = Zeroizing::new(digest);
        let offset = usize::from(digest[19] & 0x0f);
        let binary = u32::from_be_bytes([
            digest[offset] & 0x7f,
            digest[offset + 1],
            digest[offset + 2],
            digest[offset + 3],
        ]);
        binary % 10u32.pow(digits)
    }

    /// The code of time step `step`, zero-padded to `params.digits`.
    pub fn code(&self, step: i64, params: TotpParams) -> Zeroizing<String> {
        let value = self.hotp(u64::try_from(step).unwrap_or(0), params.digits);
        Zeroizing::new(format!("{value:0width$}", width = params.digits as usize))
    }

    /// The time step within the window around `now_step` whose code is `presented`, skipping
    /// steps at or before `after` (the last one accepted, so a code works once). Every step of
    /// the window is computed and compared in constant time, whichever matches.
    pub fn verify(
        &self,
        presented: &str,
        now_step: i64,
        after: Option<i64>,
        params: TotpParams,
    ) -> Option<i64> {
        let presented = presented.trim();
        if presented.len() != params.digits as usize
            || !presented.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let mut found = None;
        for step in (now_step - params.window)..=(now_step + params.window) {
            let code = self.code(step, params);
            let fresh = after.is_none_or(|last| step > last);
            if constant_time_eq(code.as_bytes(), presented.as_bytes()) && fresh && step >= 0 {
                found = Some(step);
            }
        }
        found
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B: the SHA-1 rows, with the 20-byte ASCII secret "1234…890".
    #[test]
    fn rfc6238_appendix_b_sha1_vectors() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
        let eight = TotpParams {
            digits: 8,
            ..TotpParams::STANDARD
        };
        for (time, expected) in [
            (59i64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let step = eight.step_at(time * 1000);
            assert_eq!(secret.code(step, eight).as_str(), expected, "T = {time}");
        }
    }

    /// RFC 4226 appendix D: HOTP values for counters 0 to 9.
    #[test]
    fn rfc4226_appendix_d_vectors() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, value) in expected.into_iter().enumerate() {
            assert_eq!(secret.hotp(counter as u64, 6), value, "counter {counter}");
        }
    }

    #[test]
    fn the_window_is_one_step_either_side_and_no_more() {
        let p = TotpParams::STANDARD;
        let secret = TotpSecret::generate();
        let now = 1_000_000;
        for offset in -1..=1 {
            let code = secret.code(now + offset, p);
            assert_eq!(secret.verify(&code, now, None, p), Some(now + offset));
        }
        for offset in [-3, -2, 2, 3] {
            let code = secret.code(now + offset, p);
            // A code that happens to equal one inside the window is that step's code.
            let hit = secret.verify(&code, now, None, p);
            assert!(hit.is_none() || hit.is_some_and(|s| (s - now).abs() <= 1));
        }
    }

    #[test]
    fn a_step_at_or_before_the_last_accepted_one_is_refused() {
        let p = TotpParams::STANDARD;
        let secret = TotpSecret::generate();
        let now = 5_000;
        let code = secret.code(now, p);
        assert_eq!(secret.verify(&code, now, Some(now - 1), p), Some(now));
        assert_eq!(secret.verify(&code, now, Some(now), p), None);
        let earlier = secret.code(now - 1, p);
        assert_eq!(secret.verify(&earlier, now, Some(now), p), None);
    }

    #[test]
    fn malformed_codes_never_verify() {
        let p = TotpParams::STANDARD;
        let secret = TotpSecret::generate();
        for code in ["", "12345", "1234567", "12a456", "１２３４５６"] {
            assert_eq!(secret.verify(code, 100, None, p), None, "{code:?}");
        }
    }

    #[test]
    fn base32_round_trips_and_matches_rfc4648() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
        assert_eq!(
            secret.to_base32().as_str(),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        let again = TotpSecret::from_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").unwrap();
        assert_eq!(again.expose(), secret.expose());
        let odd = TotpSecret::from_bytes(&[0xff; 17]).unwrap();
        assert_eq!(
            TotpSecret::from_base32(&odd.to_base32()).unwrap().expose(),
            odd.expose()
        );
        assert_eq!(
            TotpSecret::from_base32("not base32!").unwrap_err(),
            TotpSecretError::Base32
        );
        assert_eq!(
            TotpSecret::from_base32("GEZDGNBV").unwrap_err(),
            TotpSecretError::Length
        );
    }

    #[test]
    fn debug_shows_nothing() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
        assert_eq!(format!("{secret:?}"), "TotpSecret(..)");
    }
}
