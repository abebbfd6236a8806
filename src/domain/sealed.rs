//! The at-rest format of upstream secrets in D1. Encryption itself is
//! AES-256-GCM through Web Crypto at the edge; this module owns the pure
//! parts: the stored text format and the key derivation.
//!
//! Stored form: `enc:v1:` + base64(12-byte IV ‖ ciphertext and tag). A value
//! without the prefix is plaintext, written while no `ENCRYPTION_KEY` was
//! set, and is read as is.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::sha256::sha256;

const PREFIX: &str = "enc:v1:";
/// AES-GCM's standard nonce length.
pub const IV_LEN: usize = 12;
/// AES-GCM's tag length, appended to the ciphertext by Web Crypto.
const TAG_LEN: usize = 16;

/// A stored secret, parsed.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored<'a> {
    Plain(&'a str),
    Sealed {
        iv: Vec<u8>,
        ciphertext: Vec<u8>,
    },
    /// Has the prefix but cannot be an encryption of anything.
    Corrupt,
}

pub fn parse(stored: &str) -> Stored<'_> {
    let Some(body) = stored.strip_prefix(PREFIX) else {
        return Stored::Plain(stored);
    };
    let Ok(bytes) = STANDARD.decode(body) else {
        return Stored::Corrupt;
    };
    if bytes.len() < IV_LEN + TAG_LEN {
        return Stored::Corrupt;
    }
    let (iv, ciphertext) = bytes.split_at(IV_LEN);
    Stored::Sealed {
        iv: iv.to_vec(),
        ciphertext: ciphertext.to_vec(),
    }
}

pub fn format(iv: &[u8], ciphertext: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(iv.len() + ciphertext.len());
    bytes.extend_from_slice(iv);
    bytes.extend_from_slice(ciphertext);
    format!("{PREFIX}{}", STANDARD.encode(bytes))
}

/// The AES-256 key: SHA-256 of `ENCRYPTION_KEY`, so any string of enough
/// entropy works (`make dev` generates 32 random bytes in base64).
pub fn key_material(encryption_key: &str) -> [u8; 32] {
    sha256(encryption_key.trim().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_round_trip_through_the_stored_form() {
        let iv = [7u8; IV_LEN];
        let ciphertext = vec![1u8; 40];
        let stored = format(&iv, &ciphertext);
        assert!(stored.starts_with("enc:v1:"));
        assert_eq!(
            parse(&stored),
            Stored::Sealed {
                iv: iv.to_vec(),
                ciphertext
            }
        );
    }

    #[test]
    fn values_without_the_prefix_are_plaintext() {
        assert_eq!(parse("AIzaSyExample"), Stored::Plain("AIzaSyExample"));
    }

    #[test]
    fn a_prefixed_value_that_cannot_be_ciphertext_is_corrupt() {
        assert_eq!(parse("enc:v1:not base64!"), Stored::Corrupt);
        assert_eq!(
            parse(&format!("enc:v1:{}", STANDARD.encode([0u8; 20]))),
            Stored::Corrupt
        );
    }

    #[test]
    fn key_material_ignores_surrounding_whitespace() {
        assert_eq!(key_material(" k \n"), key_material("k"));
        assert_ne!(key_material("k1"), key_material("k2"));
    }
}
