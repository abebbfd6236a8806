//! Client credentials: where a token may come from, and constant-time checks.
//! The edge hands in the raw header and query values; nothing here touches a
//! request object.

/// The places a client may put its token, in the order they are consulted.
#[derive(Debug, Default, Clone)]
pub struct Credentials<'a> {
    pub authorization: Option<&'a str>,
    pub goog_api_key: Option<&'a str>,
    pub x_api_key: Option<&'a str>,
    /// `anthropic-auth-token`, as some Anthropic clients send it.
    pub anthropic_auth_token: Option<&'a str>,
    pub query_key: Option<&'a str>,
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, rest) = authorization.trim().split_once(' ')?;
    Some(rest.trim()).filter(|token| scheme.eq_ignore_ascii_case("bearer") && !token.is_empty())
}

impl Credentials<'_> {
    /// The first token present: `Authorization: Bearer`, `x-goog-api-key`,
    /// `x-api-key`, `anthropic-auth-token`, then `?key=`.
    pub fn token(&self) -> Option<&str> {
        let bearer = self.authorization.and_then(bearer);
        [
            bearer,
            self.goog_api_key,
            self.x_api_key,
            self.anthropic_auth_token,
            self.query_key,
        ]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|t| !t.is_empty())
    }
}

/// Compares two secrets in time that depends only on their lengths.
pub fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = u8::from(a.len() != b.len());
    // Walk the longer input fully so a prefix match takes no less time.
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= x ^ y;
    }
    diff == 0
}

/// True when `token` equals any of `allowed`. Every entry is compared, so the
/// time does not reveal which one matched.
pub fn matches_any(token: &str, allowed: &[String]) -> bool {
    allowed
        .iter()
        .fold(false, |found, t| ct_eq(token, t) | found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_wins_over_other_places() {
        let c = Credentials {
            authorization: Some("Bearer  tok-1 "),
            goog_api_key: Some("tok-2"),
            x_api_key: None,
            anthropic_auth_token: Some("tok-4"),
            query_key: Some("tok-3"),
        };
        assert_eq!(c.token(), Some("tok-1"));
    }

    #[test]
    fn every_place_is_accepted() {
        let g = Credentials {
            goog_api_key: Some("g"),
            ..Default::default()
        };
        let x = Credentials {
            x_api_key: Some("x"),
            ..Default::default()
        };
        let q = Credentials {
            query_key: Some("q"),
            ..Default::default()
        };
        let a = Credentials {
            anthropic_auth_token: Some("a"),
            ..Default::default()
        };
        assert_eq!(a.token(), Some("a"));
        assert_eq!(
            (g.token(), x.token(), q.token()),
            (Some("g"), Some("x"), Some("q"))
        );
    }

    #[test]
    fn non_bearer_schemes_and_empty_values_are_ignored() {
        let c = Credentials {
            authorization: Some("Basic abc"),
            goog_api_key: Some("  "),
            ..Default::default()
        };
        assert_eq!(c.token(), None);
    }

    #[test]
    fn ct_eq_is_exact() {
        assert!(ct_eq("secret", "secret"));
        assert!(!ct_eq("secret", "secreT"));
        assert!(!ct_eq("secret", "secret2"));
        assert!(!ct_eq("", "x"));
        assert!(ct_eq("", ""));
        assert!(matches_any("b", &["a".into(), "b".into()]));
        assert!(!matches_any("c", &["a".into(), "b".into()]));
    }
}
