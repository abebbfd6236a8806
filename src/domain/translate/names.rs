//! Reversible function-name normalisation: client tool names → names Gemini accepts, and back.
//!
//! Gemini rejects a function declaration whose name does not match
//! `^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$`, while MCP servers and agents happily emit
//! `github/create_issue`, `mcp__fs__read file`, `2fa-code` or names in other scripts. Valid names
//! pass through untouched; the rest get a deterministic rewrite that carries a hash of the
//! original, and a [`NameMap`] built from the request turns Gemini's calls back into the
//! client's names. Pure: no I/O, no clock, no randomness.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::domain::sha256::sha256_hex;

/// Gemini's longest function name.
pub const MAX_NAME_LEN: usize = 64;
/// `_` and 8 hex digits of the original name's SHA-256.
const SUFFIX_LEN: usize = 9;
const HASH_DIGITS: usize = 8;

/// Whether Gemini accepts `name` as a function name as it is.
pub fn is_valid(name: &str) -> bool {
    let bytes = name.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    bytes.len() <= MAX_NAME_LEN
        && (first.is_ascii_alphabetic() || first == b'_')
        && bytes.iter().all(|&b| is_name_byte(b))
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-')
}

/// Identity for valid names. Otherwise a deterministic valid name: every character Gemini does
/// not allow becomes `_` (one per character, so non-ASCII names keep their length), a `_` goes
/// in front when the name does not start with a letter or `_`, and `_` plus the first 8 hex
/// digits of the SHA-256 of the original name is appended, the readable part truncated so the
/// whole stays within [`MAX_NAME_LEN`].
///
/// The suffix is what keeps the map reversible: `a/b` and `a b` sanitise alike but hash apart,
/// and a rewritten name can only equal a client's own valid name if that name happens to end in
/// the right 32 bits of a hash.
pub fn to_gemini(name: &str) -> Cow<'_, str> {
    if is_valid(name) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(MAX_NAME_LEN);
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.push('_');
    }
    let room = MAX_NAME_LEN - SUFFIX_LEN;
    for c in name.chars() {
        if out.len() >= room {
            break;
        }
        // Every pushed char is ASCII, so byte length is character count.
        out.push(if u8::try_from(c).is_ok_and(is_name_byte) {
            c
        } else {
            '_'
        });
    }
    out.push('_');
    out.push_str(&sha256_hex(name.as_bytes())[..HASH_DIGITS]);
    Cow::Owned(out)
}

/// Gemini names back to the client's, built from the request's tool names. Only names that
/// [`to_gemini`] changed are stored, so the map is empty for the usual well-named tools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameMap {
    to_client: BTreeMap<String, String>,
}

impl NameMap {
    pub fn from_client_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let to_client = names
            .into_iter()
            .filter_map(|name| match to_gemini(name) {
                Cow::Borrowed(_) => None,
                Cow::Owned(gemini) => Some((gemini, name.to_owned())),
            })
            .collect();
        Self { to_client }
    }

    /// The client's name for a function Gemini called; names the map does not know (valid
    /// client names, or a name Gemini made up) come back unchanged.
    pub fn to_client<'a>(&'a self, gemini_name: &'a str) -> &'a str {
        self.to_client
            .get(gemini_name)
            .map_or(gemini_name, String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.to_client.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_follows_geminis_pattern() {
        for valid in [
            "a",
            "_",
            "get_weather",
            "mcp.fs:read-file",
            "A1",
            &"x".repeat(64),
        ] {
            assert!(is_valid(valid), "{valid}");
        }
        for invalid in [
            "",
            "1abc",
            "-x",
            ".x",
            "github/create_issue",
            "read file",
            "café",
            &"x".repeat(65),
        ] {
            assert!(!is_valid(invalid), "{invalid}");
        }
    }

    #[test]
    fn valid_names_pass_through_borrowed() {
        for name in ["get_weather", "mcp__fs__read_file", "ns.tool:v2-beta"] {
            assert!(matches!(to_gemini(name), Cow::Borrowed(n) if n == name));
        }
    }

    #[test]
    fn rewritten_names_are_valid_and_idempotent() {
        for name in [
            "github/create_issue",
            "mcp__fs__read file",
            "2fa-code",
            "",
            "工具",
            "ünïcödé/tool",
            "-leading-dash",
            &"very/long/".repeat(20),
        ] {
            let gemini = to_gemini(name);
            assert!(is_valid(&gemini), "{name} → {gemini}");
            assert!(gemini.len() <= MAX_NAME_LEN);
            assert_eq!(to_gemini(&gemini), gemini, "a rewritten name is stable");
        }
    }

    #[test]
    fn rewrite_keeps_a_readable_prefix_and_a_hash_suffix() {
        let gemini = to_gemini("github/create_issue");
        let (readable, hash) = gemini.rsplit_once('_').unwrap();
        assert_eq!(readable, "github_create_issue");
        assert_eq!(
            hash,
            &sha256_hex(b"github/create_issue")[..HASH_DIGITS],
            "suffix is the hash of the original"
        );
        assert!(to_gemini("2fa-code").starts_with("_2fa-code_"));
        assert!(to_gemini("café").starts_with("caf__"));
    }

    #[test]
    fn rewrite_is_deterministic() {
        assert_eq!(to_gemini("a/b"), to_gemini("a/b"));
    }

    #[test]
    fn near_identical_invalid_names_do_not_collide() {
        let pairs = [
            ("a/b", "a b"),
            ("a/b", "a_b/"),
            ("tool é", "tool è"),
            (
                &format!("{}/one", "x".repeat(70)),
                &format!("{}/two", "x".repeat(70)),
            ),
        ];
        for (left, right) in pairs {
            assert_ne!(to_gemini(left), to_gemini(right), "{left} vs {right}");
        }
    }

    #[test]
    fn long_names_are_truncated_to_the_limit() {
        let long = format!("{}/x", "segment".repeat(20));
        let gemini = to_gemini(&long);
        assert_eq!(gemini.len(), MAX_NAME_LEN);
        assert!(is_valid(&gemini));
        // Too long but otherwise valid: rewritten too.
        assert_eq!(to_gemini(&"y".repeat(65)).len(), MAX_NAME_LEN);
    }

    #[test]
    fn name_map_round_trips_and_stores_only_changed_names() {
        let names = ["get_weather", "github/create_issue", "2fa-code", "工具"];
        let map = NameMap::from_client_names(names);
        assert_eq!(map.to_client.len(), 3);
        for name in names {
            assert_eq!(map.to_client(&to_gemini(name)), name);
        }
        assert_eq!(map.to_client("unknown_tool"), "unknown_tool");
    }

    #[test]
    fn name_map_of_valid_names_is_empty() {
        let map = NameMap::from_client_names(["a", "b_c", "d.e"]);
        assert!(map.is_empty());
        assert_eq!(map, NameMap::default());
        assert_eq!(map.to_client("a"), "a");
    }
}
