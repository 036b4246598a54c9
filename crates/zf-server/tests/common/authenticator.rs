//! A software WebAuthn authenticator for tests: a P-256 key, "none" attestation, authenticator
//! data built byte by byte (RP ID hash, flags, counter, attested credential with its COSE key),
//! and ES256 assertions — what a security key does, with every part a test may want to get
//! wrong on purpose (origin, RP ID, counter, key, user verification) in the open.
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{DerSignature, SigningKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

/// Minimal canonical CBOR: what attestation objects and COSE keys need.
mod cbor {
    fn head(major: u8, n: u64, out: &mut Vec<u8>) {
        let m = major << 5;
        match n {
            0..=23 => out.push(m | n as u8),
            24..=0xff => out.extend([m | 24, n as u8]),
            0x100..=0xffff => {
                out.push(m | 25);
                out.extend((n as u16).to_be_bytes());
            }
            _ => {
                out.push(m | 26);
                out.extend((n as u32).to_be_bytes());
            }
        }
    }
    pub fn int(v: i64, out: &mut Vec<u8>) {
        if v >= 0 {
            head(0, v as u64, out)
        } else {
            head(1, (-1 - v) as u64, out)
        }
    }
    pub fn bytes(b: &[u8], out: &mut Vec<u8>) {
        head(2, b.len() as u64, out);
        out.extend_from_slice(b);
    }
    pub fn text(t: &str, out: &mut Vec<u8>) {
        head(3, t.len() as u64, out);
        out.extend_from_slice(t.as_bytes());
    }
    pub fn map(len: u64, out: &mut Vec<u8>) {
        head(5, len, out)
    }
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).expect("base64url")
}

/// One credential on the software authenticator.
#[derive(Clone)]
pub struct SoftKey {
    pub key: SigningKey,
    pub id: Vec<u8>,
    pub counter: u32,
    pub rp_id: String,
    pub origin: String,
    /// The user handle the RP gave at registration (returned by passkey assertions).
    pub user_handle: Vec<u8>,
    /// Whether assertions carry user verification (a PIN or fingerprint was checked).
    pub verify_user: bool,
}

impl SoftKey {
    pub fn new(rp_id: &str, origin: &str) -> Self {
        SoftKey {
            key: SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng),
            id: zf_crypto::random_bytes::<32>().to_vec(),
            counter: 0,
            rp_id: rp_id.to_owned(),
            origin: origin.to_owned(),
            user_handle: Vec::new(),
            verify_user: true,
        }
    }

    /// The same key material under another key: what a clone would hold.
    pub fn with_other_key(&self) -> Self {
        SoftKey {
            key: SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng),
            ..self.clone()
        }
    }

    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.verifying_key().to_encoded_point(false);
        let mut out = Vec::new();
        cbor::map(5, &mut out);
        cbor::int(1, &mut out); // kty: EC2
        cbor::int(2, &mut out);
        cbor::int(3, &mut out); // alg: ES256
        cbor::int(-7, &mut out);
        cbor::int(-1, &mut out); // crv: P-256
        cbor::int(1, &mut out);
        cbor::int(-2, &mut out);
        cbor::bytes(point.x().expect("x"), &mut out);
        cbor::int(-3, &mut out);
        cbor::bytes(point.y().expect("y"), &mut out);
        out
    }

    fn auth_data(&self, rp_id: &str, flags: u8, attested: bool) -> Vec<u8> {
        let mut out = Sha256::digest(rp_id.as_bytes()).to_vec();
        out.push(flags);
        out.extend(self.counter.to_be_bytes());
        if attested {
            out.extend([0u8; 16]);
            out.extend((self.id.len() as u16).to_be_bytes());
            out.extend(&self.id);
            out.extend(self.cose_key());
        }
        out
    }

    fn client_data(kind: &str, challenge: &str, origin: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": challenge,
            "origin": origin,
            "crossOrigin": false,
        }))
        .expect("json")
    }

    /// `navigator.credentials.create` on `options` (the server's `{"publicKey": …}`).
    pub fn register(&mut self, options: &Value) -> Value {
        let (origin, rp_id) = (self.origin.clone(), self.rp_id.clone());
        self.register_as(options, &origin, &rp_id)
    }

    /// A registration answer claiming `origin` and signed over `rp_id`'s hash.
    pub fn register_as(&mut self, options: &Value, origin: &str, rp_id: &str) -> Value {
        let pk = &options["publicKey"];
        let challenge = pk["challenge"]
            .as_str()
            .unwrap_or_else(|| panic!("no challenge in {options}"));
        self.user_handle = unb64(pk["user"]["id"].as_str().expect("user id"));
        let wants_uv = pk["authenticatorSelection"]["userVerification"] == "required";
        let flags = UP | AT | if wants_uv || self.verify_user { UV } else { 0 };
        let auth_data = self.auth_data(rp_id, flags, true);
        let mut att = Vec::new();
        cbor::map(3, &mut att);
        cbor::text("fmt", &mut att);
        cbor::text("none", &mut att);
        cbor::text("attStmt", &mut att);
        cbor::map(0, &mut att);
        cbor::text("authData", &mut att);
        cbor::bytes(&auth_data, &mut att);
        let client_data = Self::client_data("webauthn.create", challenge, origin);
        json!({
            "id": b64(&self.id),
            "rawId": b64(&self.id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "attestationObject": b64(&att),
                "transports": ["usb"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "cross-platform",
        })
    }

    /// `navigator.credentials.get` on `options`: the counter moves on, and the assertion is
    /// signed with this key.
    pub fn assert(&mut self, options: &Value) -> Value {
        self.counter += 1;
        let (origin, rp_id) = (self.origin.clone(), self.rp_id.clone());
        self.assert_as(options, &origin, &rp_id)
    }

    /// An assertion as `assert` makes it, without moving the counter, claiming `origin` and
    /// signed over `rp_id`'s hash.
    pub fn assert_as(&self, options: &Value, origin: &str, rp_id: &str) -> Value {
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .expect("challenge");
        let flags = UP | if self.verify_user { UV } else { 0 };
        let auth_data = self.auth_data(rp_id, flags, false);
        let client_data = Self::client_data("webauthn.get", challenge, origin);
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(&client_data));
        let signature: DerSignature = self.key.sign(&signed);
        json!({
            "id": b64(&self.id),
            "rawId": b64(&self.id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "authenticatorData": b64(&auth_data),
                "signature": b64(signature.as_bytes()),
                "userHandle": b64(&self.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "cross-platform",
        })
    }
}
