//! User keys: `sk-` plus 43 URL-safe base64 characters (32 random bytes), shown once and
//! stored only as their SHA-256. The randomness comes from the edge; this module only formats,
//! hashes and masks.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::mask::mask_secret;
use super::sha256::sha256_hex;

pub const PREFIX: &str = "sk-";

/// A new secret from 32 random bytes.
pub fn new_secret(random: &[u8; 32]) -> String {
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(random))
}

/// A new user id from 8 random bytes: `u_` and 16 hex digits.
pub fn new_user_id(random: &[u8; 8]) -> String {
    format!("u_{}", super::sha256::to_hex(random))
}

/// What D1 stores and lookups use: the lowercase hex SHA-256 of the secret.
pub fn hash(secret: &str) -> String {
    sha256_hex(secret.as_bytes())
}

/// The listing form, e.g. `sk-Ab…wxyz`.
pub fn hint(secret: &str) -> String {
    mask_secret(secret)
}

/// Whether a token could be a user key at all; anything else skips the D1 lookup.
pub fn plausible(token: &str) -> bool {
    token.starts_with(PREFIX)
        && (20..=200).contains(&token.len())
        && token[PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_url_safe_and_long_enough() {
        let secret = new_secret(&[0xfb; 32]);
        assert!(secret.starts_with("sk-"));
        assert_eq!(secret.len(), 3 + 43);
        assert!(plausible(&secret));
        assert_ne!(new_secret(&[1; 32]), new_secret(&[2; 32]));
        assert!(!secret[3..].contains(['+', '/', '=']));
    }

    #[test]
    fn hashes_are_sha256_hex_and_hints_never_show_the_secret() {
        let secret = new_secret(&[7; 32]);
        assert_eq!(hash(&secret), sha256_hex(secret.as_bytes()));
        assert_eq!(hash(&secret).len(), 64);
        let shown = hint(&secret);
        assert!(shown.starts_with("sk-"));
        assert!(!shown.contains(&secret[5..secret.len() - 4]));
    }

    #[test]
    fn ids_are_hex() {
        assert_eq!(
            new_user_id(&[0, 1, 0xab, 0xff, 2, 3, 4, 5]),
            "u_0001abff02030405"
        );
    }

    #[test]
    fn implausible_tokens_skip_the_lookup() {
        for token in [
            "",
            "sk-",
            "abc",
            "sk-short",
            "sk-has space in it here",
            "Bearer sk-x",
        ] {
            assert!(!plausible(token), "{token}");
        }
    }
}
