//! Request signature verification for the interactions endpoint: Ed25519 over the
//! `X-Signature-Timestamp` bytes followed by the raw body, with the application's public key.

use ed25519_dalek::{Signature, VerifyingKey};
use krake_core::time::Timestamp;
use std::time::Duration;

/// How far a request's `X-Signature-Timestamp` may be from now by default: 5 minutes.
/// Discord never retries an interaction (it must be answered within 3 s), so an older signed
/// request can only be a replay.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(5 * 60);

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
    /// Signed, but the timestamp is not Unix seconds within the allowed distance of now.
    #[error("the request timestamp is too far from now")]
    Stale,
}

/// Checks that `timestamp` (Unix seconds, as Discord sends `X-Signature-Timestamp`) is within
/// `max_skew` of `now`, either way.
pub fn check_timestamp(
    timestamp: Option<&str>,
    now: Timestamp,
    max_skew: Duration,
) -> Result<(), VerifyError> {
    let secs: i64 = timestamp
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 12 && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
        .ok_or(VerifyError::Stale)?;
    let distance_ms = secs
        .saturating_mul(1000)
        .saturating_sub(now.as_millis())
        .unsigned_abs();
    let max_ms = u64::try_from(max_skew.as_millis()).unwrap_or(u64::MAX);
    if distance_ms > max_ms {
        return Err(VerifyError::Stale);
    }
    Ok(())
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
    fn timestamps_must_be_near_now() {
        let now = Timestamp::from_millis(1_795_503_000_000);
        let skew = DEFAULT_MAX_SKEW;
        for ok in ["1795503000", "1795502700", "1795503300", " 1795503000 "] {
            assert_eq!(check_timestamp(Some(ok), now, skew), Ok(()), "{ok}");
        }
        for bad in [
            None,
            Some(""),
            Some("1795502699"),
            Some("1795503301"),
            Some("1657322079"),
            Some("-1"),
            Some("1795503000.5"),
            Some("99999999999999999999"),
            Some("abc"),
        ] {
            assert_eq!(
                check_timestamp(bad, now, skew),
                Err(VerifyError::Stale),
                "{bad:?}"
            );
        }
        let year = Duration::from_secs(5 * 365 * 86_400);
        assert_eq!(check_timestamp(Some("1657322079"), now, year), Ok(()));
    }

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
