//! The at-rest format of upstream secrets in D1 and the decisions of a key
//! rotation. Encryption itself is AES-256-GCM through Web Crypto at the
//! edge; this module owns the pure parts: the stored text format, the key
//! derivation and fingerprint, which key opens a value, which values need
//! sealing again, and where the re-seal job's next batch starts.
//!
//! Stored forms:
//! - `enc:v2:<fingerprint>:` + base64(12-byte IV ‖ ciphertext and tag): what
//!   is written now. The fingerprint names the key that sealed it, so the rows
//!   still under an older key are found with SQL alone (a prefix compare).
//! - `enc:v1:` + base64(IV ‖ ciphertext and tag): written before rotation
//!   existed; it does not say which key sealed it, so each key is tried.
//! - anything else is plaintext, written while no `ENCRYPTION_KEY` was set,
//!   and is read as is.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::sha256::{sha256, to_hex};

const V1: &str = "enc:v1:";
const V2: &str = "enc:v2:";
/// Every prefix of a sealed value, all of one length (`SEALED_PREFIX_LEN`):
/// what is not under one of them is plaintext.
pub const SEALED_PREFIXES: [&str; 2] = [V1, V2];
pub const SEALED_PREFIX_LEN: usize = V1.len();
/// The prefix of a value that names the key that sealed it (`enc:v2:`).
pub const NAMED_PREFIX: &str = V2;
/// AES-GCM's standard nonce length.
pub const IV_LEN: usize = 12;
/// AES-GCM's tag length, appended to the ciphertext by Web Crypto.
const TAG_LEN: usize = 16;
/// Hex characters of a fingerprint: 48 bits, so two keys of one gateway
/// never share one by chance.
pub const FINGERPRINT_LEN: usize = 12;
/// Rows of one table the re-seal job takes per run. Each row is one decrypt,
/// one encrypt per sealed column and one compare-and-set write (the writes
/// go in one D1 batch), well inside a scheduled run's limits.
pub const RESEAL_BATCH: usize = 50;

/// A stored secret, parsed.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored<'a> {
    Plain(&'a str),
    Sealed {
        /// The fingerprint of the key that sealed it (`enc:v2:`), or `None`
        /// for `enc:v1:`, which does not say.
        key: Option<&'a str>,
        iv: Vec<u8>,
        ciphertext: Vec<u8>,
    },
    /// Has a sealed prefix but cannot be an encryption of anything.
    Corrupt,
}

pub fn parse(stored: &str) -> Stored<'_> {
    let (key, body) = if let Some(rest) = stored.strip_prefix(V2) {
        match rest.split_once(':') {
            Some((key, body)) if is_fingerprint(key) => (Some(key), body),
            _ => return Stored::Corrupt,
        }
    } else if let Some(body) = stored.strip_prefix(V1) {
        (None, body)
    } else {
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
        key,
        iv: iv.to_vec(),
        ciphertext: ciphertext.to_vec(),
    }
}

fn is_fingerprint(s: &str) -> bool {
    s.len() == FINGERPRINT_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The stored form of a value sealed by the key with `fingerprint`.
pub fn format(fingerprint: &str, iv: &[u8], ciphertext: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(iv.len() + ciphertext.len());
    bytes.extend_from_slice(iv);
    bytes.extend_from_slice(ciphertext);
    format!("{}{}", sealed_prefix(fingerprint), STANDARD.encode(bytes))
}

/// What every value sealed by the key with `fingerprint` starts with: a
/// value that does not start with the current key's needs re-sealing.
pub fn sealed_prefix(fingerprint: &str) -> String {
    format!("{V2}{fingerprint}:")
}

/// The AES-256 key: SHA-256 of `ENCRYPTION_KEY`, so any string of enough
/// entropy works (`make dev` generates 32 random bytes in base64).
pub fn key_material(encryption_key: &str) -> [u8; 32] {
    sha256(encryption_key.trim().as_bytes())
}

/// A key's public name: the first 48 bits of a SHA-256 over a label and the
/// key material (itself a SHA-256 of the key), in hex. It names the key in
/// stored values and the admin API; it is not the AES key and cannot be
/// turned back into it (and for a random key, no guess can be checked
/// against it any faster than against a ciphertext).
pub fn fingerprint(encryption_key: &str) -> String {
    let mut input = b"gemgate key fingerprint\0".to_vec();
    input.extend_from_slice(&key_material(encryption_key));
    let mut hex = to_hex(&sha256(&input));
    hex.truncate(FINGERPRINT_LEN);
    hex
}

/// One of the isolate's two keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// `ENCRYPTION_KEY`: opens its own values and seals everything new.
    Current,
    /// `ENCRYPTION_KEY_PREVIOUS`: only opens, while a rotation runs.
    Previous,
}

/// The fingerprints of the keys an isolate holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprints {
    pub current: String,
    /// `None` when no previous key is set, or it is the current key again.
    pub previous: Option<String>,
}

impl Fingerprints {
    pub fn new(current: String, previous: Option<String>) -> Self {
        let previous = previous.filter(|p| *p != current);
        Self { current, previous }
    }

    /// The keys to try on a sealed value, in order: the one it names, or for
    /// a `v1` value (which names none) the current key, then the previous.
    /// Empty when it names a key this isolate does not hold.
    pub fn openers(&self, named: Option<&str>) -> Vec<Slot> {
        match named {
            Some(key) if key == self.current => vec![Slot::Current],
            Some(key) if self.previous.as_deref() == Some(key) => vec![Slot::Previous],
            Some(_) => Vec::new(),
            None if self.previous.is_some() => vec![Slot::Current, Slot::Previous],
            None => vec![Slot::Current],
        }
    }

    /// Why a value sealed under `named` (or an unnamed `v1` value) cannot be
    /// opened here. Names fingerprints only, never a secret.
    pub fn unopenable(&self, named: Option<&str>) -> String {
        let previous = self.previous.as_deref().map_or_else(
            || "ENCRYPTION_KEY_PREVIOUS is not set".to_owned(),
            |p| format!("nor ENCRYPTION_KEY_PREVIOUS ({p})"),
        );
        match named {
            Some(key) => format!(
                "sealed under key {key}, which is neither ENCRYPTION_KEY ({}) {previous}",
                self.current
            ),
            None => format!(
                "an enc:v1 value that ENCRYPTION_KEY ({}) does not open, {previous}",
                self.current
            ),
        }
    }

    /// Whether `stored` must be sealed again under the current key:
    /// plaintext, `v1`, or sealed under another key.
    pub fn needs_reseal(&self, stored: &str) -> bool {
        !stored.starts_with(&sealed_prefix(&self.current))
    }
}

/// Where the re-seal job's next run starts in a table, after a run that
/// took `taken` rows (ordered by id, `last_id` the last of them) with a
/// batch size of `batch`: after that row when the batch was full (more may
/// follow), else from the start again, so rows that failed this time (or
/// came back under an old key meanwhile) are retried, without ever keeping
/// a run from reaching the rows behind them.
pub fn next_cursor(taken: usize, batch: usize, last_id: Option<&str>) -> String {
    match last_id {
        Some(last) if taken >= batch => last.to_owned(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "0123456789ab";

    fn fps(current: &str, previous: Option<&str>) -> Fingerprints {
        Fingerprints::new(current.to_owned(), previous.map(str::to_owned))
    }

    #[test]
    fn sealed_values_round_trip_through_the_stored_form_with_their_key() {
        let iv = [7u8; IV_LEN];
        let ciphertext = vec![1u8; 40];
        let stored = format(FP, &iv, &ciphertext);
        assert!(stored.starts_with("enc:v2:0123456789ab:"));
        assert_eq!(
            parse(&stored),
            Stored::Sealed {
                key: Some(FP),
                iv: iv.to_vec(),
                ciphertext
            }
        );
    }

    #[test]
    fn v1_values_still_parse_and_name_no_key() {
        let mut bytes = vec![3u8; IV_LEN];
        bytes.extend_from_slice(&[9u8; 20]);
        let stored = format!("enc:v1:{}", STANDARD.encode(&bytes));
        assert_eq!(
            parse(&stored),
            Stored::Sealed {
                key: None,
                iv: vec![3u8; IV_LEN],
                ciphertext: vec![9u8; 20]
            }
        );
    }

    #[test]
    fn values_without_a_sealed_prefix_are_plaintext() {
        assert_eq!(parse("AIzaSyExample"), Stored::Plain("AIzaSyExample"));
        assert_eq!(parse("enc:v3:x"), Stored::Plain("enc:v3:x"));
    }

    #[test]
    fn a_prefixed_value_that_cannot_be_ciphertext_is_corrupt() {
        assert_eq!(parse("enc:v1:not base64!"), Stored::Corrupt);
        assert_eq!(
            parse(&format!("enc:v1:{}", STANDARD.encode([0u8; 20]))),
            Stored::Corrupt
        );
        let body = STANDARD.encode([0u8; 40]);
        assert_eq!(parse(&format!("enc:v2:{body}")), Stored::Corrupt);
        assert_eq!(parse(&format!("enc:v2:XYZ:{body}")), Stored::Corrupt);
        assert_eq!(
            parse(&format!("enc:v2:0123456789AB:{body}")),
            Stored::Corrupt
        );
        assert_eq!(parse(&format!("enc:v2:{FP}:short")), Stored::Corrupt);
    }

    #[test]
    fn every_sealed_prefix_has_the_length_the_sql_compares() {
        for prefix in SEALED_PREFIXES {
            assert_eq!(prefix.len(), SEALED_PREFIX_LEN);
        }
        assert!(sealed_prefix(FP).starts_with(NAMED_PREFIX));
    }

    #[test]
    fn key_material_ignores_surrounding_whitespace() {
        assert_eq!(key_material(" k \n"), key_material("k"));
        assert_ne!(key_material("k1"), key_material("k2"));
    }

    #[test]
    fn a_fingerprint_is_short_hex_that_differs_per_key_and_shows_neither_key_nor_material() {
        let a = fingerprint("key-a");
        assert_eq!(a.len(), FINGERPRINT_LEN);
        assert!(is_fingerprint(&a));
        assert_eq!(a, fingerprint(" key-a\n"));
        assert_ne!(a, fingerprint("key-b"));
        // Not a prefix of the AES key itself (the material).
        assert!(!to_hex(&key_material("key-a")).starts_with(&a));
        assert!(!a.contains("key"));
    }

    #[test]
    fn a_value_is_opened_by_the_key_it_names_and_v1_by_each_key_in_turn() {
        let both = fps("aaaaaaaaaaaa", Some("bbbbbbbbbbbb"));
        assert_eq!(both.openers(Some("aaaaaaaaaaaa")), [Slot::Current]);
        assert_eq!(both.openers(Some("bbbbbbbbbbbb")), [Slot::Previous]);
        assert_eq!(both.openers(Some("cccccccccccc")), []);
        assert_eq!(both.openers(None), [Slot::Current, Slot::Previous]);
        let alone = fps("aaaaaaaaaaaa", None);
        assert_eq!(alone.openers(Some("bbbbbbbbbbbb")), []);
        assert_eq!(alone.openers(None), [Slot::Current]);
    }

    #[test]
    fn a_previous_key_equal_to_the_current_one_is_no_previous_key() {
        let same = fps("aaaaaaaaaaaa", Some("aaaaaaaaaaaa"));
        assert_eq!(same.previous, None);
        assert_eq!(same.openers(None), [Slot::Current]);
    }

    #[test]
    fn why_a_value_cannot_be_opened_names_fingerprints_and_the_missing_setting() {
        let alone = fps("aaaaaaaaaaaa", None);
        let why = alone.unopenable(Some("cccccccccccc"));
        assert!(
            why.contains("cccccccccccc") && why.contains("aaaaaaaaaaaa"),
            "{why}"
        );
        assert!(why.contains("ENCRYPTION_KEY_PREVIOUS is not set"), "{why}");
        let both = fps("aaaaaaaaaaaa", Some("bbbbbbbbbbbb"));
        assert!(both.unopenable(None).contains("bbbbbbbbbbbb"));
    }

    #[test]
    fn everything_but_values_sealed_under_the_current_key_needs_resealing() {
        let both = fps(FP, Some("bbbbbbbbbbbb"));
        assert!(!both.needs_reseal(&format(FP, &[0; IV_LEN], &[0; 20])));
        assert!(both.needs_reseal(&format("bbbbbbbbbbbb", &[0; IV_LEN], &[0; 20])));
        assert!(both.needs_reseal(&format!("enc:v1:{}", STANDARD.encode([0u8; 40]))));
        assert!(both.needs_reseal("AIzaSyPlain"));
        // A fingerprint that merely starts like the current one is another key.
        assert!(both.needs_reseal("enc:v2:0123456789abc:xx"));
    }

    #[test]
    fn a_full_batch_continues_after_its_last_row_and_a_short_one_starts_over() {
        assert_eq!(next_cursor(50, 50, Some("k50")), "k50");
        assert_eq!(next_cursor(49, 50, Some("k49")), "");
        assert_eq!(next_cursor(0, 50, None), "");
        // A run that fails on every row of a full batch still moves on.
        assert_eq!(next_cursor(RESEAL_BATCH, RESEAL_BATCH, Some("z")), "z");
    }
}
