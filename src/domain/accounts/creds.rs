//! Reading Google OAuth credentials the way operators have them: gemini-cli's
//! `oauth_creds.json` (`access_token`, `refresh_token`, `expiry_date`, …, no
//! client) and google-auth's `authorized_user` file (`client_id`,
//! `client_secret`, `refresh_token`, `type`). One object, an array, or
//! `{"credentials": [..], "project_id"}`. Each credential in a batch is judged
//! alone; the shape of the whole body is judged first.

use serde_json::{Map, Value};

/// gemini-cli's public installed-app OAuth client. Google documents that an
/// installed application's secret is not secret; gemini-cli ships it in its
/// source, and so does every tool that imports its credentials.
pub const GEMINI_CLI_CLIENT_ID: &str =
    "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com";
pub const GEMINI_CLI_CLIENT_SECRET: &str = "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";

/// The scopes the wizard asks for (gemini-cli's).
pub const SCOPES: [&str; 3] = [
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
];

/// One credential, ready to validate by a token refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub refresh_token: String,
    pub client_id: String,
    pub client_secret: String,
    /// A project named in the file itself (`project_id`, `quota_project_id`).
    pub project_id: Option<String>,
}

/// What a body held: its credentials (each parsed or refused, by index), and
/// a project for all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub items: Vec<Result<Credential, String>>,
    pub project_id: Option<String>,
}

/// Most credentials one import takes.
pub const MAX_BATCH: usize = 100;

/// Parses an import body. `Err` (a 400 naming what is wrong) when the body as
/// a whole is not credential-shaped; otherwise every item is judged alone.
pub fn parse_batch(body: &[u8]) -> Result<Batch, String> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the body is not JSON ({e}); send a credential object, an array of them, or {{\"credentials\": [..]}}"))?;
    parse_batch_value(value)
}

/// [`parse_batch`] of a body already read as JSON.
pub fn parse_batch_value(value: Value) -> Result<Batch, String> {
    let (list, project_id) = match value {
        Value::Array(list) => (list, None),
        Value::Object(mut object) if object.contains_key("credentials") => {
            let project_id = match object.remove("project_id") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) => Some(check_project(&p)?),
                Some(_) => return Err("project_id must be a string".into()),
            };
            match object.remove("credentials") {
                Some(Value::Array(list)) => (list, project_id),
                Some(Value::Object(one)) => (vec![Value::Object(one)], project_id),
                _ => return Err("credentials must be an array of credential objects".into()),
            }
        }
        Value::Object(object) => (vec![Value::Object(object)], None),
        _ => {
            return Err(
                "the body must be a credential object, an array of them, or {\"credentials\": [..]}"
                    .into(),
            );
        }
    };
    if list.is_empty() {
        return Err("no credentials: the list is empty".into());
    }
    if list.len() > MAX_BATCH {
        return Err(format!(
            "too many credentials: {} in one import, at most {MAX_BATCH}",
            list.len()
        ));
    }
    Ok(Batch {
        items: list.iter().map(parse_one).collect(),
        project_id,
    })
}

/// One credential object, or why it is not one.
pub fn parse_one(value: &Value) -> Result<Credential, String> {
    let Value::Object(object) = value else {
        return Err("not a JSON object".into());
    };
    match text(object, "type")? {
        None | Some("authorized_user") => {}
        Some("service_account") => {
            return Err(
                "a service account key cannot call Code Assist: import a user's OAuth credentials (oauth_creds.json or an authorized_user file)".into(),
            );
        }
        Some(other) => return Err(format!("type \"{other}\" is not an OAuth user credential")),
    }
    // Some exports nest the token (`{"token": {...}}`); gemini-cli's own file does not.
    let refresh_token = match text(object, "refresh_token")? {
        Some(token) => token.trim().to_owned(),
        None => {
            return Err(if object.contains_key("access_token") {
                "refresh_token is missing: an access token alone expires within the hour"
            } else {
                "refresh_token is missing"
            }
            .into());
        }
    };
    if refresh_token.is_empty()
        || refresh_token
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("refresh_token is empty or malformed".into());
    }
    let client_id = text(object, "client_id")?
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let client_secret = text(object, "client_secret")?
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let (client_id, client_secret) = match (client_id, client_secret) {
        (Some(id), Some(secret)) => (id.to_owned(), secret.to_owned()),
        (None, None) => (
            GEMINI_CLI_CLIENT_ID.to_owned(),
            GEMINI_CLI_CLIENT_SECRET.to_owned(),
        ),
        // An own client without its secret (or the other way round) cannot refresh.
        (Some(id), None) if id == GEMINI_CLI_CLIENT_ID => {
            (id.to_owned(), GEMINI_CLI_CLIENT_SECRET.to_owned())
        }
        (Some(_), None) => return Err("client_secret is missing for this client_id".into()),
        (None, Some(_)) => return Err("client_id is missing for this client_secret".into()),
    };
    let project_id = match text(object, "project_id")?.or(text(object, "quota_project_id")?) {
        Some(p) if !p.trim().is_empty() => Some(check_project(p.trim())?),
        _ => None,
    };
    Ok(Credential {
        refresh_token,
        client_id,
        client_secret,
        project_id,
    })
}

/// A string field, `None` when absent or null, an error when another type.
fn text<'a>(object: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, String> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{field} must be a string")),
    }
}

/// A Google Cloud project id as the operator gives it: the string id, never
/// the project number (Code Assist refuses numbers, as gemini-cli warns).
pub fn check_project(project: &str) -> Result<String, String> {
    let project = project.trim();
    if project.is_empty() {
        return Err("project_id is empty".into());
    }
    if project.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "project_id \"{project}\" is a project number; give the project's string id (for example my-project-123)"
        ));
    }
    let valid = project.len() <= 63
        && project.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b':' || b == b'.'
        })
        && project.as_bytes()[0].is_ascii_lowercase();
    if !valid {
        return Err(format!(
            "project_id \"{project}\" is not a Google Cloud project id (lowercase letters, digits and hyphens, starting with a letter)"
        ));
    }
    Ok(project.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[allow(clippy::needless_pass_by_value)]
    fn batch(value: Value) -> Result<Batch, String> {
        parse_batch(value.to_string().as_bytes())
    }

    #[test]
    fn gemini_cli_oauth_creds_take_the_public_client() {
        let b = batch(json!({
            "access_token": "ya29.x", "refresh_token": "1//abc", "scope": "s",
            "token_type": "Bearer", "id_token": "e.y.z", "expiry_date": 1_760_000_000_000_u64
        }))
        .unwrap();
        assert_eq!(
            b.items,
            vec![Ok(Credential {
                refresh_token: "1//abc".into(),
                client_id: GEMINI_CLI_CLIENT_ID.into(),
                client_secret: GEMINI_CLI_CLIENT_SECRET.into(),
                project_id: None,
            })]
        );
    }

    #[test]
    fn authorized_user_keeps_its_own_client_and_project() {
        let b = batch(json!({
            "type": "authorized_user", "client_id": "c.apps.googleusercontent.com",
            "client_secret": "s", "refresh_token": "1//r", "quota_project_id": "my-proj-1"
        }))
        .unwrap();
        let c = b.items[0].clone().unwrap();
        assert_eq!(
            (c.client_id.as_str(), c.client_secret.as_str()),
            ("c.apps.googleusercontent.com", "s")
        );
        assert_eq!(c.project_id.as_deref(), Some("my-proj-1"));
    }

    #[test]
    fn arrays_and_the_credentials_wrapper_judge_each_item_alone() {
        let b = batch(json!([{"refresh_token": "1//a"}, 7, {"access_token": "x"}, {"type": "service_account"}])).unwrap();
        assert!(b.items[0].is_ok());
        assert_eq!(b.items[1], Err("not a JSON object".into()));
        assert!(
            b.items[2]
                .as_ref()
                .unwrap_err()
                .contains("refresh_token is missing")
        );
        assert!(b.items[3].as_ref().unwrap_err().contains("service account"));

        let b = batch(json!({"credentials": [{"refresh_token": "1//a"}], "project_id": "proj-a"}))
            .unwrap();
        assert_eq!(b.project_id.as_deref(), Some("proj-a"));
        assert_eq!(b.items.len(), 1);
    }

    #[test]
    fn a_body_that_is_not_credential_shaped_names_the_problem() {
        assert!(parse_batch(b"{oops").unwrap_err().contains("not JSON"));
        assert!(
            batch(json!("1//a"))
                .unwrap_err()
                .contains("credential object")
        );
        assert!(batch(json!([])).unwrap_err().contains("empty"));
        assert!(
            batch(json!({"credentials": 5}))
                .unwrap_err()
                .contains("credentials must be")
        );
        assert!(
            batch(json!({"credentials": [], "project_id": 5}))
                .unwrap_err()
                .contains("project_id")
        );
        let many: Vec<Value> = (0..=MAX_BATCH)
            .map(|i| json!({"refresh_token": format!("1//{i}")}))
            .collect();
        assert!(batch(Value::Array(many)).unwrap_err().contains("too many"));
    }

    #[test]
    fn half_a_client_is_refused_and_wrong_types_are_named() {
        assert!(
            parse_one(&json!({"refresh_token": "1//a", "client_id": "x"}))
                .unwrap_err()
                .contains("client_secret")
        );
        assert!(
            parse_one(&json!({"refresh_token": "1//a", "client_secret": "x"}))
                .unwrap_err()
                .contains("client_id")
        );
        assert!(
            parse_one(&json!({"refresh_token": 5}))
                .unwrap_err()
                .contains("refresh_token must be a string")
        );
        assert!(
            parse_one(&json!({"refresh_token": "1// a"}))
                .unwrap_err()
                .contains("malformed")
        );
        // gemini-cli's own client id without the secret is still the public client.
        assert!(
            parse_one(&json!({"refresh_token": "1//a", "client_id": GEMINI_CLI_CLIENT_ID})).is_ok()
        );
    }

    #[test]
    fn projects_are_string_ids_never_numbers() {
        assert_eq!(check_project(" my-project-123 ").unwrap(), "my-project-123");
        assert!(
            check_project("123456789012")
                .unwrap_err()
                .contains("project number")
        );
        assert!(check_project("My Project").is_err());
        assert!(check_project("").is_err());
        assert!(check_project("example.com:proj-1").is_ok());
    }
}
