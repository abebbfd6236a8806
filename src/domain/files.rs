//! Files and cached contents pinned to the upstream key that holds them.
//!
//! A file uploaded through Google's Files API (and a context cache made with
//! `cachedContents.create`) lives in the Google Cloud project of the key that
//! made it: any other key gets 403 for it. So the gateway remembers which key
//! holds each one (`pinned_resources` in D1) and sends every later request
//! that names it to that key, whatever the rotation says. Here: which
//! resources a request body names, which key that pins the request to, the
//! upload URL the client is given, expiry and paging. No I/O, no clock.

use std::collections::BTreeSet;

use serde_json::Value;

use super::clock::parse_rfc3339_ms;
use super::error::GatewayError;

/// Google keeps an uploaded file for 48 hours.
pub const FILE_TTL_MS: u64 = 48 * 3600 * 1000;
/// A cache without an expiry of its own lives one hour (Google's default TTL).
pub const CACHE_TTL_MS: u64 = 3600 * 1000;
/// Google keeps an unfinished resumable upload session about a week.
pub const UPLOAD_SESSION_TTL_MS: u64 = 7 * 24 * 3600 * 1000;
/// The gate (health view) upload and file calls are chosen and recorded under.
pub const FILES_GATE: &str = "~files";
/// Pages of a list: Google's default and largest sizes.
pub const DEFAULT_PAGE_SIZE: usize = 10;
pub const MAX_PAGE_SIZE: usize = 100;

/// The two kinds of pinned resources, by their collection name in Google's paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    /// `files/{id}`.
    Files,
    /// `cachedContents/{id}`.
    CachedContents,
}

impl Collection {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Files => "files",
            Self::CachedContents => "cachedContents",
        }
    }

    /// The field a list answer carries its items in (Google names it after the collection).
    pub fn list_field(self) -> &'static str {
        self.as_str()
    }

    /// The resource name of `id` (`files/abc`).
    pub fn name(self, id: &str) -> String {
        format!("{}/{id}", self.as_str())
    }

    /// The field of a resource that says when Google deletes it.
    fn expiry_field(self) -> &'static str {
        match self {
            Self::Files => "expirationTime",
            Self::CachedContents => "expireTime",
        }
    }

    fn default_ttl_ms(self) -> u64 {
        match self {
            Self::Files => FILE_TTL_MS,
            Self::CachedContents => CACHE_TTL_MS,
        }
    }

    /// The collection of a resource name, when it is one of ours.
    pub fn of_name(name: &str) -> Option<Self> {
        let (collection, id) = name.split_once('/')?;
        let collection = match collection {
            "files" => Self::Files,
            "cachedContents" => Self::CachedContents,
            _ => return None,
        };
        valid_id(id).then_some(collection)
    }
}

/// A resource id as it may appear in a path: Google's are lowercase letters,
/// digits and dashes (files: at most 40); ids are checked before anything is
/// built from them.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The resources a request body names: the Files API files of its
/// `fileData` parts and the context cache of its `cachedContent`, anywhere in
/// the body (a `countTokens` wraps them in `generateContentRequest`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct References {
    pub names: BTreeSet<String>,
}

impl References {
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Cheap first look at a raw body: only one that mentions a resource is walked.
/// One pass over the bytes, looking back from each `/` (bodies can be megabytes of
/// base64, where `/` is one byte in 64).
pub fn may_reference(raw: &[u8]) -> bool {
    raw.iter().enumerate().any(|(i, &b)| {
        b == b'/' && {
            let before = &raw[..i];
            before.ends_with(b"files") || before.ends_with(b"cachedContents")
        }
    })
}

/// Walks `body` for the resources it names (see [`References`]). `serde_json`
/// caps nesting at 128, so the walk is bounded.
pub fn references(body: &Value) -> References {
    let mut refs = References::default();
    walk(body, &mut refs);
    refs
}

fn walk(value: &Value, refs: &mut References) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("fileData" | "file_data", Value::Object(data)) => {
                        let uri = data.get("fileUri").or_else(|| data.get("file_uri"));
                        if let Some(name) = uri.and_then(Value::as_str).and_then(file_name_of_uri) {
                            refs.names.insert(name);
                        }
                    }
                    ("cachedContent" | "cached_content", Value::String(name)) => {
                        refs.names.insert(name.clone());
                    }
                    _ => walk(inner, refs),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| walk(item, refs)),
        _ => {}
    }
}

/// The Files API name a `fileUri` stands for: `files/{id}` itself, or a URL
/// whose path ends in `/v1beta/files/{id}` (Google's `uri` field, on whatever
/// host the client was given). Other URIs (`YouTube`, `gs://`) name no file.
pub fn file_name_of_uri(uri: &str) -> Option<String> {
    let path = match uri.split_once("://") {
        Some((_, rest)) => {
            let path = &rest[rest.find('/')?..];
            let path = path.split(['?', '#']).next().unwrap_or(path);
            path.strip_prefix("/v1beta/")
                .or_else(|| path.strip_prefix("/v1/"))?
        }
        None => uri,
    };
    let id = path.strip_prefix("files/")?;
    valid_id(id).then(|| format!("files/{id}"))
}

/// A pinned resource as the gateway recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub name: String,
    pub key_id: String,
}

/// The key a request naming `refs` must go to, given the pins found for
/// them in the caller's scope and whether a key is still in the pool.
/// `None` when the request names nothing. A name the caller has no pin for is
/// a 404 (it never came through the gateway, or belongs to another user);
/// resources held by two keys cannot meet in one request; a key that left
/// the pool takes its resources with it.
pub fn pinned_key(
    refs: &References,
    pins: &[Pin],
    in_pool: impl Fn(&str) -> bool,
) -> Result<Option<String>, GatewayError> {
    let mut key: Option<&Pin> = None;
    for name in &refs.names {
        let Some(pin) = pins.iter().find(|p| &p.name == name) else {
            return Err(not_found(name));
        };
        match key {
            Some(first) if first.key_id != pin.key_id => {
                return Err(GatewayError::invalid(format!(
                    "`{}` and `{}` were made with different upstream keys, and a request can only use resources of one key; upload them again in one session.",
                    first.name, pin.name
                )));
            }
            _ => key = Some(pin),
        }
    }
    let Some(pin) = key else { return Ok(None) };
    if !in_pool(&pin.key_id) {
        return Err(key_gone(&pin.name));
    }
    Ok(Some(pin.key_id.clone()))
}

/// The key the continuation calls of an answer (anti-truncation) must go to: the
/// one that answered the first piece when the request names a context cache (only
/// that key can read it; it was pinned there), otherwise any key.
pub fn continuation_pin(cached_content: Option<&str>, first_key: &str) -> Option<String> {
    cached_content.map(|_| first_key.to_owned())
}

/// A resource the caller cannot see: never made through the gateway, made by
/// another user, expired or deleted. The same answer for each, so a user
/// learns nothing of another's resources.
pub fn not_found(name: &str) -> GatewayError {
    GatewayError::NotFound(format!(
        "`{name}` was not found: it does not exist for this API key (resources are visible only to the key that made them), or it has expired or been deleted."
    ))
}

/// A resource whose upstream key was deleted, disabled or found invalid.
pub fn key_gone(name: &str) -> GatewayError {
    GatewayError::Upstream {
        status: 400,
        message: format!(
            "`{name}` is held by an upstream key that is no longer in the pool (deleted, disabled or invalid), and no other key can reach it; upload or create it again."
        ),
        google_status: Some("FAILED_PRECONDITION".into()),
    }
}

/// When Google deletes `resource` (its `expirationTime` or `expireTime`), or the
/// collection's default lifetime from `now_ms` when it does not say.
pub fn expiry_ms(collection: Collection, resource: &Value, now_ms: u64) -> u64 {
    resource
        .get(collection.expiry_field())
        .and_then(Value::as_str)
        .and_then(parse_rfc3339_ms)
        .unwrap_or(now_ms + collection.default_ttl_ms())
}

/// The `name` of a resource Google returned, when it is one of `collection`'s.
pub fn resource_name(collection: Collection, resource: &Value) -> Option<String> {
    let name = resource.get("name")?.as_str()?;
    (Collection::of_name(name) == Some(collection)).then(|| name.to_owned())
}

/// The upload URL the client is given in place of Google's: the same
/// resumable protocol, at the worker, under the gateway's own session id.
pub fn upload_url(origin: &str, session: &str) -> String {
    format!("{origin}/upload/v1beta/files?upload_id={session}&upload_protocol=resumable")
}

/// A session id the gateway handed out: 32 lowercase hex digits.
pub fn valid_session(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What an upload request asks for, from its `x-goog-upload-command`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadCommand {
    Start,
    /// Bytes, and whether they are the last (`upload, finalize` or `finalize`).
    Upload {
        finalize: bool,
    },
    /// `query`: how much the upstream has (resuming a broken upload).
    Query,
    Cancel,
}

impl UploadCommand {
    pub fn parse(header: Option<&str>) -> Result<Self, GatewayError> {
        let Some(header) = header else {
            return Err(GatewayError::invalid(
                "Only the resumable upload protocol is supported: send `x-goog-upload-protocol: resumable` and `x-goog-upload-command: start`, then upload to the `x-goog-upload-url` you get back.",
            ));
        };
        let words: BTreeSet<String> = header
            .split(',')
            .map(|w| w.trim().to_ascii_lowercase())
            .filter(|w| !w.is_empty())
            .collect();
        let has = |w: &str| words.contains(w);
        Ok(match () {
            () if has("start") && words.len() == 1 => Self::Start,
            () if has("query") && words.len() == 1 => Self::Query,
            () if has("cancel") && words.len() == 1 => Self::Cancel,
            () if words.iter().all(|w| w == "upload" || w == "finalize") && !words.is_empty() => {
                Self::Upload {
                    finalize: has("finalize"),
                }
            }
            () => {
                return Err(GatewayError::invalid(format!(
                    "Unknown x-goog-upload-command `{header}`: use start, upload, `upload, finalize`, query or cancel."
                )));
            }
        })
    }

    pub fn is_start(self) -> bool {
        self == Self::Start
    }
}

/// One page of a list, from the rows after the page token: `limit` rows and
/// whether more follow (the caller asked for `limit + 1`).
pub fn page_size(asked: Option<&str>) -> Result<usize, GatewayError> {
    match asked {
        None | Some("") => Ok(DEFAULT_PAGE_SIZE),
        Some(text) => match text.parse::<usize>() {
            Ok(0) => Ok(DEFAULT_PAGE_SIZE),
            Ok(n) => Ok(n.min(MAX_PAGE_SIZE)),
            Err(_) => Err(GatewayError::invalid_param(
                format!("Invalid pageSize `{text}`: a whole number."),
                "pageSize",
            )),
        },
    }
}

/// A page token is the last name of the previous page; anything else is refused.
pub fn page_token(collection: Collection, asked: Option<&str>) -> Result<String, GatewayError> {
    match asked {
        None | Some("") => Ok(String::new()),
        Some(token) if Collection::of_name(token) == Some(collection) => Ok(token.to_owned()),
        Some(_) => Err(GatewayError::invalid_param(
            "Invalid pageToken: pass the nextPageToken of the previous page.",
            "pageToken",
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pin(name: &str, key: &str) -> Pin {
        Pin {
            name: name.into(),
            key_id: key.into(),
        }
    }

    #[test]
    fn a_body_names_its_files_and_cache_wherever_they_are() {
        let body = json!({
            "cachedContent": "cachedContents/c1",
            "contents": [{"role": "user", "parts": [
                {"text": "files/not-a-reference in text"},
                {"fileData": {"mimeType": "text/plain", "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc123"}},
                {"file_data": {"file_uri": "files/def"}},
                {"fileData": {"fileUri": "https://www.youtube.com/watch?v=x"}},
                {"fileData": {"fileUri": "gs://bucket/files/zzz"}},
            ]}],
        });
        let names: Vec<_> = references(&body).names.into_iter().collect();
        assert_eq!(names, ["cachedContents/c1", "files/abc123", "files/def"]);
        let counting = json!({"generateContentRequest": {"model": "models/m", "contents": [
            {"parts": [{"fileData": {"fileUri": "http://127.0.0.1:9/v1beta/files/q1?alt=x"}}]}
        ]}});
        assert_eq!(
            references(&counting).names.into_iter().collect::<Vec<_>>(),
            ["files/q1"]
        );
        assert!(references(&json!({"contents": []})).is_empty());
        assert!(may_reference(br#"{"fileUri":"x/files/1"}"#));
        assert!(may_reference(br#"{"cachedContent":"cachedContents/c"}"#));
        assert!(!may_reference(
            br#"{"contents":[{"inlineData":{"data":"ab/cd+/="}}]}"#
        ));
        assert!(!may_reference(br#"{"contents":[]}"#));
    }

    #[test]
    fn only_files_api_uris_name_a_file() {
        assert_eq!(file_name_of_uri("files/a-1").as_deref(), Some("files/a-1"));
        assert_eq!(
            file_name_of_uri("https://h/v1beta/files/a1").as_deref(),
            Some("files/a1")
        );
        for other in [
            "https://h/other/files/a1",
            "files/",
            "files/../x",
            "files/a/b",
            "https://h/v1beta/files/a%2F",
            "youtube.com/files/x",
            "",
        ] {
            assert_eq!(file_name_of_uri(other), None, "{other}");
        }
    }

    #[test]
    fn a_request_goes_to_the_one_key_that_holds_what_it_names() {
        let refs = references(&json!({"cachedContent": "cachedContents/c", "contents": [
            {"parts": [{"fileData": {"fileUri": "files/f"}}]}]}));
        let pins = [pin("files/f", "k1"), pin("cachedContents/c", "k1")];
        assert_eq!(pinned_key(&refs, &pins, |_| true), Ok(Some("k1".into())));
        assert_eq!(pinned_key(&References::default(), &[], |_| true), Ok(None));
        // Unknown to this caller: 404, whatever else is there.
        let err = pinned_key(&refs, &pins[..1], |_| true).unwrap_err();
        assert_eq!(err.status(), 404);
        assert!(err.client_message().contains("cachedContents/c"));
        // Two keys cannot meet.
        let split = [pin("files/f", "k1"), pin("cachedContents/c", "k2")];
        let err = pinned_key(&refs, &split, |_| true).unwrap_err();
        assert_eq!(err.status(), 400);
        // A key out of the pool: a clear 400 FAILED_PRECONDITION.
        let err = pinned_key(&refs, &pins, |k| k != "k1").unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.client_message().contains("no longer in the pool"));
    }

    #[test]
    fn a_continuation_stays_on_the_key_of_a_cache() {
        assert_eq!(
            continuation_pin(Some("cachedContents/c"), "k2").as_deref(),
            Some("k2")
        );
        assert_eq!(continuation_pin(None, "k2"), None);
    }

    #[test]
    fn expiry_comes_from_google_or_the_default_lifetime() {
        let now = 1_000;
        let file = json!({"name": "files/a", "expirationTime": "2026-12-09T10:00:00.123456Z"});
        assert_eq!(
            expiry_ms(Collection::Files, &file, now),
            parse_rfc3339_ms("2026-12-09T10:00:00.123Z").unwrap()
        );
        assert_eq!(
            expiry_ms(Collection::Files, &json!({}), now),
            now + FILE_TTL_MS
        );
        assert_eq!(
            expiry_ms(
                Collection::CachedContents,
                &json!({"expireTime": "bad"}),
                now
            ),
            now + CACHE_TTL_MS
        );
        assert_eq!(
            resource_name(Collection::Files, &file).as_deref(),
            Some("files/a")
        );
        assert_eq!(resource_name(Collection::CachedContents, &file), None);
        assert_eq!(
            resource_name(Collection::Files, &json!({"name": "files/../x"})),
            None
        );
    }

    #[test]
    fn upload_commands_parse_as_google_sends_them() {
        use UploadCommand as C;
        assert_eq!(C::parse(Some("start")), Ok(C::Start));
        assert_eq!(
            C::parse(Some("upload, finalize")),
            Ok(C::Upload { finalize: true })
        );
        assert_eq!(C::parse(Some("Upload")), Ok(C::Upload { finalize: false }));
        assert_eq!(C::parse(Some("finalize")), Ok(C::Upload { finalize: true }));
        assert_eq!(C::parse(Some("query")), Ok(C::Query));
        assert_eq!(C::parse(Some("cancel")), Ok(C::Cancel));
        for bad in [None, Some(""), Some("start, upload"), Some("delete")] {
            assert_eq!(C::parse(bad).unwrap_err().status(), 400, "{bad:?}");
        }
    }

    #[test]
    fn sessions_pages_and_names_are_checked() {
        assert!(valid_session("0123456789abcdef0123456789abcdef"));
        assert!(!valid_session("0123456789ABCDEF0123456789abcdef"));
        assert!(!valid_session("short"));
        assert_eq!(
            upload_url("http://127.0.0.1:8787", "ab"),
            "http://127.0.0.1:8787/upload/v1beta/files?upload_id=ab&upload_protocol=resumable"
        );
        assert_eq!(page_size(None), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(Some("500")), Ok(MAX_PAGE_SIZE));
        assert_eq!(page_size(Some("x")).unwrap_err().status(), 400);
        assert_eq!(
            page_token(Collection::Files, Some("files/a")),
            Ok("files/a".into())
        );
        assert!(page_token(Collection::Files, Some("cachedContents/a")).is_err());
        assert_eq!(
            Collection::of_name("cachedContents/x-1"),
            Some(Collection::CachedContents)
        );
        assert_eq!(Collection::of_name("models/x"), None);
        assert_eq!(Collection::Files.name("a"), "files/a");
    }
}
