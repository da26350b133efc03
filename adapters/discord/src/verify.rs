//! Request signature verification for the interactions endpoint: Ed25519 over the
//! `X-Signature-Timestamp` bytes followed by the raw body, with the application's public key.

use ed25519_dalek::{Signature, VerifyingKey};

/// Why a request's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A signature header is missing.
    #[error("missing X-Signature-Ed25519 or X-Signature-Timestamp")]
    Missing,
    /// The signature is not 64 bytes of hex.
    #[error("malformed signature")]
    Malformed,
    /// The signature does not match.
    #[error("invalid request signature")]
    Invalid,
}

/// Why a public key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the Discord public key must be 64 hex characters (an Ed25519 public key)")]
pub struct KeyError;

/// Verifies Discord's request signatures with one public key.
#[derive(Debug, Clone)]
pub struct SignatureVerifier {
    key: VerifyingKey,
}

impl SignatureVerifier {
    /// A verifier for the hex public key shown in the Discord developer portal.
    pub fn from_hex(public_key: &str) -> Result<Self, KeyError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(public_key.trim(), &mut bytes).map_err(|_| KeyError)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError)?;
        Ok(Self { key })
    }

    /// Checks `signature` (hex) over `timestamp` + `body`.
    pub fn verify(
        &self,
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
    ) -> Result<(), VerifyError> {
        let (Some(signature), Some(timestamp)) = (signature, timestamp) else {
            return Err(VerifyError::Missing);
        };
        let mut sig = [0u8; 64];
        hex::decode_to_slice(signature.trim(), &mut sig).map_err(|_| VerifyError::Malformed)?;
        let sig = Signature::from_bytes(&sig);
        let mut message = Vec::with_capacity(timestamp.len() + body.len());
        message.extend_from_slice(timestamp.as_bytes());
        message.extend_from_slice(body);
        // verify_strict refuses small-order keys and malleable signatures.
        self.key
            .verify_strict(&message, &sig)
            .map_err(|_| VerifyError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_keys_and_headers() {
        assert!(SignatureVerifier::from_hex("zz").is_err());
        assert!(SignatureVerifier::from_hex(&"ab".repeat(31)).is_err());
        let v = SignatureVerifier::from_hex(
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        )
        .unwrap();
        assert_eq!(v.verify(None, Some("1"), b"{}"), Err(VerifyError::Missing));
        assert_eq!(
            v.verify(Some("nothex"), Some("1"), b"{}"),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            v.verify(Some(&"00".repeat(64)), Some("1"), b"{}"),
            Err(VerifyError::Invalid)
        );
    }
}
