//! Google OAuth for accounts, without a callback server: the wizard's auth URL
//! (PKCE S256, offline access, forced consent, a signed single-use `state`
//! that expires), reading the localhost URL the operator pastes back, the
//! token endpoint's forms and answers, and how long an access token may be
//! used. Randomness and time come from the edge.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt as _, Claims, Header, UntrustedToken};
use serde::{Deserialize, Serialize};

use super::creds::SCOPES;
use crate::domain::sha256::sha256;
use crate::domain::urlencode::form;

/// How long a wizard's `state` is good for.
pub const STATE_TTL_SECS: i64 = 600;
/// The port of the loopback redirect. Nothing listens there: the browser
/// shows a failed page whose address the operator copies.
pub const REDIRECT_PORT: u16 = 8085;

/// The redirect URI the wizard registers (gemini-cli's installed-app client
/// accepts any loopback port).
pub fn redirect_uri() -> String {
    format!("http://localhost:{REDIRECT_PORT}")
}

/// A PKCE verifier from 32 random bytes: 43 URL-safe characters.
pub fn verifier(random: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(random)
}

/// The S256 challenge of a verifier.
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha256(verifier.as_bytes()))
}

/// Google's consent page for the wizard.
pub fn auth_url(auth_base: &str, client_id: &str, challenge: &str, state: &str) -> String {
    let scope = SCOPES.join(" ");
    let redirect = redirect_uri();
    let query = form([
        ("client_id", client_id),
        ("redirect_uri", &redirect),
        ("response_type", "code"),
        ("scope", &scope),
        ("access_type", "offline"),
        ("prompt", "consent"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("state", state),
    ]);
    let sep = if auth_base.contains('?') { '&' } else { '?' };
    format!("{auth_base}{sep}{query}")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StateClaims {
    /// The wizard row in D1 that holds the verifier and is used once.
    sid: String,
}

/// Why a pasted `state` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateRefused {
    Tampered,
    Expired,
}

/// Signs and checks wizard states. The key is derived from a secret the
/// edge passes (the admin password) under its own label, so a state is not
/// a session and a session is not a state.
pub struct StateKey(Hs256Key);

impl StateKey {
    pub fn derive(secret: &str) -> Self {
        let mut material = b"gemgate oauth state\0".to_vec();
        material.extend_from_slice(secret.as_bytes());
        Self(Hs256Key::new(sha256(&material)))
    }

    pub fn issue(&self, state_id: &str, now_secs: i64) -> Result<String, String> {
        // `Claims`' time fields are chrono types this crate does not name: filled from JSON.
        let claims: Claims<StateClaims> = serde_json::from_value(serde_json::json!({
            "iat": now_secs,
            "exp": now_secs + STATE_TTL_SECS,
            "sid": state_id,
        }))
        .map_err(|e| format!("state claims: {e}"))?;
        Hs256
            .token(&Header::empty(), &claims, &self.0)
            .map_err(|e| format!("signing a state: {e}"))
    }

    /// The wizard row's id, when the state is ours and not expired.
    pub fn verify(&self, token: &str, now_secs: i64) -> Result<String, StateRefused> {
        let untrusted = UntrustedToken::new(token).map_err(|_| StateRefused::Tampered)?;
        let checked = Hs256
            .validator::<StateClaims>(&self.0)
            .validate(&untrusted)
            .map_err(|_| StateRefused::Tampered)?;
        let claims = checked.claims();
        let exp = claims
            .expiration
            .map(|t| t.timestamp())
            .ok_or(StateRefused::Tampered)?;
        if now_secs >= exp {
            return Err(StateRefused::Expired);
        }
        Ok(claims.custom.sid.clone())
    }
}

/// What the pasted localhost address carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    pub code: String,
    pub state: String,
}

/// Reads the address the browser landed on (`http://localhost:8085/?state=…&code=…`),
/// or just its query. Google's own refusal (`error=access_denied`) is named.
pub fn parse_callback(pasted: &str) -> Result<Callback, String> {
    let pasted = pasted.trim();
    if pasted.is_empty() {
        return Err(
            "callback_url is empty: paste the address the browser showed after signing in".into(),
        );
    }
    let query = match pasted.split_once('?') {
        Some((_, q)) => q,
        None if pasted.contains('=') => pasted,
        None => {
            return Err("callback_url has no query: paste the whole address, starting with http://localhost".into());
        }
    };
    let query = query.split('#').next().unwrap_or_default();
    let mut code = None;
    let mut state = None;
    let mut error = None;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = decode_component(value);
        match name {
            "code" => code = Some(value),
            "state" => state = Some(value),
            "error" => error = Some(value),
            _ => {}
        }
    }
    if let Some(error) = error {
        return Err(format!("Google refused the sign-in: {error}"));
    }
    match (
        code.filter(|c| !c.is_empty()),
        state.filter(|s| !s.is_empty()),
    ) {
        (Some(code), Some(state)) => Ok(Callback { code, state }),
        (None, _) => Err(
            "callback_url has no code: paste the address the browser showed after consenting"
                .into(),
        ),
        (_, None) => Err("callback_url has no state: paste the whole address".into()),
    }
}

fn decode_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(b) = hex {
                    out.push(b);
                    i += 3;
                } else {
                    out.push(b'%');
                    i += 1;
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The token endpoint's form for a refresh.
pub fn refresh_form(refresh_token: &str, client_id: &str, client_secret: &str) -> String {
    form([
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", client_id),
        ("client_secret", client_secret),
    ])
}

/// The token endpoint's form for the wizard's code exchange.
pub fn code_form(code: &str, verifier: &str, client_id: &str, client_secret: &str) -> String {
    let redirect = redirect_uri();
    form([
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", verifier),
        ("redirect_uri", &redirect),
        ("client_id", client_id),
        ("client_secret", client_secret),
    ])
}

/// A token endpoint answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TokenAnswer {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// Why a refresh or exchange failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenFailure {
    /// The grant is gone (revoked, expired, wrong client): re-authorise or re-import.
    Permanent(String),
    /// Google had a problem, or the network did: keep the account, try later.
    Transient(String),
}

/// Classifies a token endpoint answer that was not a token.
pub fn token_failure(status: u16, body: &[u8]) -> TokenFailure {
    #[derive(Deserialize)]
    struct OAuthError {
        error: Option<serde_json::Value>,
        error_description: Option<String>,
    }
    let parsed: Option<OAuthError> = serde_json::from_slice(body).ok();
    let (code, description) = match &parsed {
        Some(OAuthError {
            error: Some(serde_json::Value::String(code)),
            error_description,
        }) => (code.clone(), error_description.clone().unwrap_or_default()),
        _ => (String::new(), String::new()),
    };
    let message = if description.is_empty() {
        format!("token endpoint answered {status} {code}")
            .trim()
            .to_owned()
    } else {
        format!("{code}: {description}")
    };
    match code.as_str() {
        "invalid_grant" | "invalid_client" | "unauthorized_client" | "unsupported_grant_type" => {
            TokenFailure::Permanent(message)
        }
        _ if (400..500).contains(&status) && status != 429 && status != 408 => {
            TokenFailure::Permanent(message)
        }
        _ => TokenFailure::Transient(message),
    }
}

/// How long before Google's expiry an access token stops being used: a
/// minute, or a tenth of a short lifetime.
pub fn safety_margin_ms(lifetime_ms: u64) -> u64 {
    (lifetime_ms / 10).min(60_000)
}

/// Until when a token obtained at `now_ms` with `expires_in` seconds may be used.
/// Google's default lifetime (3599 s) when it gave none.
pub fn usable_until(now_ms: u64, expires_in_secs: Option<u64>) -> u64 {
    let lifetime = expires_in_secs.unwrap_or(3599).saturating_mul(1000);
    now_ms + lifetime - safety_margin_ms(lifetime)
}

/// Cron refreshes a token this long before it stops being usable.
pub const REFRESH_AHEAD_MS: u64 = 10 * 60_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_base64url_sha256_of_the_verifier() {
        // Expected value from `openssl dgst -sha256 -binary | base64`, made URL-safe.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW-gFWFOEjXk"),
            "90EpwHQr_xi9uDtjYyz5mq9Z4RekugHRqg5ijpXC3FQ"
        );
        assert_eq!(verifier(&[0; 32]).len(), 43);
    }

    #[test]
    fn the_auth_url_asks_for_offline_consent_with_pkce() {
        let url = auth_url(
            "https://accounts.google.com/o/oauth2/v2/auth",
            "cid",
            "chal",
            "st.a.b",
        );
        assert!(url.starts_with("https://accounts.google.com/o/oauth2/v2/auth?client_id=cid&redirect_uri=http%3A%2F%2Flocalhost%3A8085&response_type=code&scope=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform%20"));
        for part in [
            "access_type=offline",
            "prompt=consent",
            "code_challenge=chal",
            "code_challenge_method=S256",
            "state=st.a.b",
        ] {
            assert!(url.contains(part), "{part} in {url}");
        }
    }

    #[test]
    fn states_are_signed_and_expire() {
        let key = StateKey::derive("pw");
        let token = key.issue("w1", 1_000).unwrap();
        assert_eq!(
            key.verify(&token, 1_000 + STATE_TTL_SECS - 1),
            Ok("w1".into())
        );
        assert_eq!(
            key.verify(&token, 1_000 + STATE_TTL_SECS),
            Err(StateRefused::Expired)
        );
        assert_eq!(
            StateKey::derive("other").verify(&token, 1_000),
            Err(StateRefused::Tampered)
        );
        let mut tampered = token.clone();
        tampered.insert(token.find('.').unwrap() + 2, 'x');
        assert_eq!(key.verify(&tampered, 1_000), Err(StateRefused::Tampered));
        assert_eq!(key.verify("junk", 1_000), Err(StateRefused::Tampered));
    }

    #[test]
    fn a_pasted_address_gives_its_code_and_state() {
        let cb = parse_callback(
            " http://localhost:8085/?state=a.b.c&code=4%2F0Axx&scope=email%20profile ",
        )
        .unwrap();
        assert_eq!(
            cb,
            Callback {
                code: "4/0Axx".into(),
                state: "a.b.c".into()
            }
        );
        assert_eq!(parse_callback("code=c&state=s").unwrap().code, "c");
        assert!(
            parse_callback("http://localhost:8085/?error=access_denied&state=s")
                .unwrap_err()
                .contains("access_denied")
        );
        assert!(
            parse_callback("http://localhost:8085/")
                .unwrap_err()
                .contains("no query")
        );
        assert!(
            parse_callback("http://localhost:8085/?state=s")
                .unwrap_err()
                .contains("no code")
        );
        assert!(
            parse_callback("http://localhost:8085/?code=c")
                .unwrap_err()
                .contains("no state")
        );
        assert!(parse_callback("").is_err());
    }

    #[test]
    fn forms_are_encoded() {
        assert!(
            code_form("4/0A", "v", "c", "s")
                .contains("code=4%2F0A&code_verifier=v&redirect_uri=http%3A%2F%2Flocalhost%3A8085")
        );
    }

    #[test]
    fn a_revoked_grant_is_permanent_and_a_5xx_is_not() {
        let revoked = br#"{"error": "invalid_grant", "error_description": "Token has been expired or revoked."}"#;
        assert_eq!(
            token_failure(400, revoked),
            TokenFailure::Permanent("invalid_grant: Token has been expired or revoked.".into())
        );
        assert!(matches!(
            token_failure(401, br#"{"error": "invalid_client"}"#),
            TokenFailure::Permanent(_)
        ));
        assert!(matches!(
            token_failure(503, b"<html>"),
            TokenFailure::Transient(_)
        ));
        assert!(matches!(
            token_failure(429, b"{}"),
            TokenFailure::Transient(_)
        ));
    }

    #[test]
    fn tokens_stop_being_used_before_google_says() {
        assert_eq!(usable_until(0, Some(3599)), 3_599_000 - 60_000);
        // Shorter than any KV TTL: still cached, with a tenth as margin.
        assert_eq!(usable_until(1_000, Some(30)), 1_000 + 27_000);
        assert_eq!(usable_until(0, None), 3_539_000);
        assert_eq!(usable_until(5, Some(0)), 5);
    }
}
