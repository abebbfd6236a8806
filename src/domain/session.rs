//! Admin console sessions: an HS256 JWT in an `HttpOnly` cookie, signed with a
//! key derived from `ADMIN_PASSWORD` and a random salt kept in D1 (so a new
//! password, or a new salt on "log out everywhere", ends every session), and
//! a CSRF token bound to the session id. Also the cookie itself and the
//! same-origin rule for state changes.
//!
//! Time is an argument (seconds since the epoch), never read here; randomness
//! (session ids, salts) comes from the edge.

use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt as _, AlgorithmSignature as _, Claims, Header, UntrustedToken};
use serde::{Deserialize, Serialize};

use super::sha256::{sha256, to_hex};

/// The cookie's name (a contract: scripts and tests rely on it).
pub const COOKIE_NAME: &str = "gemgate_admin";
/// The header a cookie-authenticated state change carries its token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What the token carries besides `iat` and `exp`: the session's id, which
/// D1 knows (and revokes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SessionClaims {
    sid: String,
}

/// A session the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub issued_at_secs: i64,
    pub expires_at_secs: i64,
}

/// Why a token was refused. The client only ever learns "not authenticated".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Malformed,
    BadSignature,
    Expired,
    /// Issued in the future (beyond the leeway): not ours, or a broken clock.
    NotYetIssued,
}

/// Clock skew tolerated between isolates, in seconds.
const LEEWAY_SECS: i64 = 60;

/// The signing key: SHA-256 of the salt and the password, so neither alone
/// signs a session.
pub struct SessionKey(Hs256Key);

impl SessionKey {
    pub fn derive(admin_password: &str, salt: &str) -> Self {
        let mut material = Vec::with_capacity(salt.len() + admin_password.len() + 1);
        material.extend_from_slice(salt.as_bytes());
        material.push(0);
        material.extend_from_slice(admin_password.as_bytes());
        Self(Hs256Key::new(sha256(&material)))
    }

    /// A signed token for session `id`, valid `lifetime_secs` from `now_secs`.
    pub fn issue(&self, id: &str, now_secs: i64, lifetime_secs: i64) -> Result<String, String> {
        // `Claims`' time fields are chrono types this crate does not name; they
        // are filled from the JWT's own numeric form instead.
        let claims: Claims<SessionClaims> = serde_json::from_value(serde_json::json!({
            "iat": now_secs,
            "exp": now_secs + lifetime_secs,
            "sid": id,
        }))
        .map_err(|e| format!("session claims: {e}"))?;
        Hs256
            .token(&Header::empty().with_token_type("JWT"), &claims, &self.0)
            .map_err(|e| format!("session token: {e}"))
    }

    /// The session a token stands for, if it is ours and current.
    pub fn verify(&self, token: &str, now_secs: i64) -> Result<Session, Refused> {
        let untrusted = UntrustedToken::new(token).map_err(|_| Refused::Malformed)?;
        let token = Hs256
            .validator::<SessionClaims>(&self.0)
            .validate(&untrusted)
            .map_err(|_| Refused::BadSignature)?;
        let claims = token.claims();
        let (Some(iat), Some(exp)) = (claims.issued_at, claims.expiration) else {
            return Err(Refused::Malformed);
        };
        let (iat, exp) = (iat.timestamp(), exp.timestamp());
        if exp <= now_secs {
            return Err(Refused::Expired);
        }
        if iat > now_secs + LEEWAY_SECS {
            return Err(Refused::NotYetIssued);
        }
        Ok(Session {
            id: claims.custom.sid.clone(),
            issued_at_secs: iat,
            expires_at_secs: exp,
        })
    }

    /// The CSRF token of a session: an HMAC of its id, so the server can check
    /// it without storing it, and it changes with every session.
    pub fn csrf_token(&self, session_id: &str) -> String {
        use jwt_compact::Algorithm as _;
        let signature = Hs256.sign(&self.0, format!("csrf:{session_id}").as_bytes());
        to_hex(&signature.as_bytes())
    }
}

/// The session id a token claims, before its signature is checked: only to
/// find the session's row, which is then verified with the key.
pub fn unverified_id(token: &str) -> Option<String> {
    UntrustedToken::new(token)
        .ok()?
        .deserialize_claims_unchecked::<SessionClaims>()
        .ok()
        .map(|claims| claims.custom.sid)
}

/// The `Set-Cookie` value that stores a session for `max_age_secs`.
pub fn cookie(token: &str, max_age_secs: i64) -> String {
    format!(
        "{COOKIE_NAME}={token}; Path=/admin; Max-Age={max_age_secs}; HttpOnly; Secure; SameSite=Strict"
    )
}

/// The `Set-Cookie` value that deletes the session cookie.
pub fn cleared_cookie() -> String {
    cookie("", 0)
}

/// The session token in a `Cookie` header, if any.
pub fn token_in(cookie_header: &str) -> Option<&str> {
    cookie_header.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE_NAME && !value.is_empty()).then_some(value)
    })
}

/// Whether a request's `Origin` (when it sent one) is the gateway's own. A
/// missing `Origin` passes: non-browser clients send none, and the CSRF token
/// still has to match.
pub fn same_origin(origin: Option<&str>, own_origin: &str) -> bool {
    origin.is_none_or(|o| o.trim_end_matches('/').eq_ignore_ascii_case(own_origin))
}

/// A random id or salt from 16 random bytes.
pub fn random_id(random: &[u8; 16]) -> String {
    to_hex(random)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_765_000_000;

    fn key() -> SessionKey {
        SessionKey::derive("hunter2", "salt-1")
    }

    #[test]
    fn a_token_round_trips_with_its_times() {
        let token = key().issue("s1", NOW, 3600).unwrap();
        assert_eq!(
            key().verify(&token, NOW + 10),
            Ok(Session {
                id: "s1".into(),
                issued_at_secs: NOW,
                expires_at_secs: NOW + 3600,
            })
        );
        // A standard JWT: three parts, HS256, iat and exp in its claims.
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let untrusted = UntrustedToken::new(&token).unwrap();
        assert_eq!(untrusted.algorithm(), "HS256");
    }

    #[test]
    fn the_session_id_is_readable_before_verification() {
        let token = key().issue("s9", NOW, 60).unwrap();
        assert_eq!(unverified_id(&token).as_deref(), Some("s9"));
        assert_eq!(unverified_id("junk"), None);
    }

    #[test]
    fn expiry_is_checked() {
        let token = key().issue("s1", NOW, 3600).unwrap();
        assert_eq!(key().verify(&token, NOW + 3600), Err(Refused::Expired));
        assert_eq!(key().verify(&token, NOW + 99_999), Err(Refused::Expired));
        assert_eq!(key().verify(&token, NOW - 3600), Err(Refused::NotYetIssued));
    }

    #[test]
    fn another_password_or_salt_refuses_every_token() {
        let token = key().issue("s1", NOW, 3600).unwrap();
        for other in [
            SessionKey::derive("hunter3", "salt-1"),
            SessionKey::derive("hunter2", "salt-2"),
        ] {
            assert_eq!(other.verify(&token, NOW), Err(Refused::BadSignature));
        }
    }

    #[test]
    fn tampered_or_foreign_tokens_are_refused() {
        let token = key().issue("s1", NOW, 3600).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        // Claims swapped for another session's: the signature no longer matches.
        let other = key().issue("s2", NOW, 3600).unwrap();
        parts[1] = other.split('.').nth(1).unwrap().to_owned();
        assert_eq!(
            key().verify(&parts.join("."), NOW),
            Err(Refused::BadSignature)
        );
        assert_eq!(key().verify("not a jwt", NOW), Err(Refused::Malformed));
        // `alg: none` is never accepted.
        let none = "eyJhbGciOiJub25lIn0.eyJzaWQiOiJzMSJ9.";
        assert!(key().verify(none, NOW).is_err());
    }

    #[test]
    fn csrf_tokens_are_per_session_and_per_key() {
        let k = key();
        assert_eq!(k.csrf_token("s1"), k.csrf_token("s1"));
        assert_ne!(k.csrf_token("s1"), k.csrf_token("s2"));
        assert_ne!(
            k.csrf_token("s1"),
            SessionKey::derive("hunter2", "salt-2").csrf_token("s1")
        );
        assert_eq!(k.csrf_token("s1").len(), 64);
    }

    #[test]
    fn the_cookie_carries_every_flag() {
        assert_eq!(
            cookie("abc", 43_200),
            "gemgate_admin=abc; Path=/admin; Max-Age=43200; HttpOnly; Secure; SameSite=Strict"
        );
        assert!(cleared_cookie().contains("Max-Age=0"));
        assert_eq!(
            token_in("theme=dark; gemgate_admin=t.o.k; lang=zh"),
            Some("t.o.k")
        );
        assert_eq!(token_in("gemgate_admin="), None);
        assert_eq!(token_in("other=1"), None);
    }

    #[test]
    fn only_the_gateways_own_origin_may_change_state() {
        let own = "https://gw.example.com";
        assert!(same_origin(None, own));
        assert!(same_origin(Some("https://gw.example.com"), own));
        assert!(same_origin(Some("https://GW.example.com/"), own));
        assert!(!same_origin(Some("https://evil.example.com"), own));
        assert!(!same_origin(Some("http://gw.example.com"), own));
        assert!(!same_origin(Some("null"), own));
    }
}
