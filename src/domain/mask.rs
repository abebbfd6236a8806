//! Masking secrets for responses and logs, and the stable non-secret id of an
//! upstream key. Never stores or logs anything itself.

use super::sha256::sha256;
use super::sha256::to_hex;

/// Characters kept at each end of a long secret.
const EDGE_CHARS: usize = 4;
/// Secrets up to this many characters count as short and keep only a prefix,
/// because 4 + 4 visible characters would give away most of them.
const SHORT_MAX_CHARS: usize = 12;
/// Characters kept at the start of a short secret.
const SHORT_PREFIX_CHARS: usize = 2;
const ELLIPSIS: char = '…';

/// A display form of `s` that keeps at most its first 4 and last 4 characters,
/// e.g. `AIzaSyABCDEFGHIJKLMNOP1234` → `AIza…1234`.
///
/// Secrets of 12 characters or fewer keep only their first 2 characters, and
/// never more than half of themselves, so a tiny secret is not shown whole.
/// An empty string stays empty. Counts characters, not bytes.
pub fn mask_secret(s: &str) -> String {
    let len = s.chars().count();
    if len == 0 {
        return String::new();
    }
    if len <= SHORT_MAX_CHARS {
        let keep = SHORT_PREFIX_CHARS.min(len / 2);
        let mut out: String = s.chars().take(keep).collect();
        out.push(ELLIPSIS);
        return out;
    }
    let mut out: String = s.chars().take(EDGE_CHARS).collect();
    out.push(ELLIPSIS);
    out.extend(s.chars().skip(len - EDGE_CHARS));
    out
}

/// A stable, non-secret id for an upstream key: the first 16 hex characters
/// (64 bits) of the SHA-256 of the secret. Safe to log, store in DO state and
/// show in the admin page.
pub fn key_id(secret: &str) -> String {
    to_hex(&sha256(secret.as_bytes())[..8])
}

/// Where Google quotes a key in a message.
const API_KEY_MARKER: &str = "api_key:";

/// Removes a secret from text that came from upstream before it is logged
/// or shown: Google quotes the key in some messages (`Consumer
/// 'api_key:AIza…' has been suspended`). Every occurrence of `secret`, and
/// any token after `api_key:`, is masked.
pub fn scrub(text: &str, secret: &str) -> String {
    let text = if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, &mask_secret(secret))
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find(API_KEY_MARKER) {
        let (head, tail) = rest.split_at(at + API_KEY_MARKER.len());
        out.push_str(head);
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ELLIPSIS)))
            .unwrap_or(tail.len());
        let token = &tail[..end];
        // Already masked (the first pass) or empty: keep as is.
        if token.contains(ELLIPSIS) || token.is_empty() {
            out.push_str(token);
        } else {
            out.push_str(&mask_secret(token));
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_masks_the_secret_and_quoted_api_keys() {
        let secret = "AIzaSyABCDEFGHIJKLMNOP1234";
        let msg = format!("Permission denied: Consumer 'api_key:{secret}' has been suspended.");
        let clean = scrub(&msg, secret);
        assert!(!clean.contains(secret));
        assert_eq!(
            clean,
            "Permission denied: Consumer 'api_key:AIza…1234' has been suspended."
        );
        let other = scrub(
            "Consumer 'api_key:AIzaOTHERKEYOTHERKEY9999' suspended",
            secret,
        );
        assert_eq!(other, "Consumer 'api_key:AIza…9999' suspended");
        assert_eq!(scrub("nothing here", secret), "nothing here");
        assert_eq!(scrub("api_key:", ""), "api_key:");
    }
    use crate::domain::sha256::sha256_hex;

    #[test]
    fn long_secret_keeps_first_and_last_four() {
        assert_eq!(mask_secret("AIzaSyABCDEFGHIJKLMNOP1234"), "AIza…1234");
    }

    #[test]
    fn thirteen_chars_is_already_long() {
        assert_eq!(mask_secret("abcdefghijklm"), "abcd…jklm");
    }

    #[test]
    fn short_secret_keeps_only_two_chars() {
        assert_eq!(mask_secret("abcdefghijkl"), "ab…");
        assert_eq!(mask_secret("sk-1234"), "sk…");
    }

    #[test]
    fn tiny_secret_is_never_shown_whole() {
        assert_eq!(mask_secret("a"), "…");
        assert_eq!(mask_secret("ab"), "a…");
        assert_eq!(mask_secret("abc"), "a…");
        assert_eq!(mask_secret("abcd"), "ab…");
    }

    #[test]
    fn empty_secret_masks_to_empty() {
        assert_eq!(mask_secret(""), "");
    }

    #[test]
    fn multibyte_secret_is_cut_on_char_boundaries() {
        assert_eq!(mask_secret("ééééééééééééé"), "éééé…éééé");
    }

    #[test]
    fn key_id_is_first_16_hex_of_sha256() {
        let secret = "AIzaSyABCDEFGHIJKLMNOP1234";
        let id = key_id(secret);
        assert_eq!(id.len(), 16);
        assert_eq!(id, sha256_hex(secret.as_bytes())[..16]);
        assert_eq!(key_id("abc"), "ba7816bf8f01cfea");
    }

    #[test]
    fn key_id_is_stable_and_distinct() {
        assert_eq!(key_id("k1"), key_id("k1"));
        assert_ne!(key_id("k1"), key_id("k2"));
        assert!(!key_id("AIzaSyABCDEFGHIJKLMNOP1234").contains("AIza"));
    }
}
