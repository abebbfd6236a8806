//! One attempt on one key: build the request with the key, fetch it under a
//! deadline, classify the answer. A stream is handed over only once its first
//! chunk arrived, and the rest is guarded against a stalled upstream. Also
//! the types an upstream call takes and gives back.

use std::pin::Pin;
use std::time::Duration;

use futures::future::{Either, select};
use futures::{Stream, stream};
use worker::wasm_bindgen::JsCast;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{AbortController, Headers, Method, js_sys, wasm_bindgen::JsValue, web_sys};

use crate::domain::error::GatewayError;
use crate::domain::failover::client_error;
use crate::domain::outcome::{Outcome, classify};
use crate::edge::http::body::{BodyReader, read_response};
use crate::edge::upstream::quiet::Quiet;

/// What a Code Assist call of one request is: which method, on which model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeAssistMethod {
    Generate,
    Stream,
    CountTokens,
}

impl CodeAssistMethod {
    pub fn path(self) -> &'static str {
        match self {
            Self::Generate => "generateContent",
            Self::Stream => "streamGenerateContent",
            Self::CountTokens => "countTokens",
        }
    }
}

/// How an upstream request can be served by an account.
#[derive(Debug, Clone)]
pub struct CodeAssistCall {
    pub method: CodeAssistMethod,
    pub model: String,
}

/// One logical upstream request, replayable on several keys.
pub struct UpstreamRequest {
    pub method: Method,
    /// The full URL without the key (built by `urls`).
    pub url: String,
    pub body: Option<String>,
    /// Hand the body over as a stream once the first chunk arrived.
    pub stream: bool,
    /// The gate (model) whose keys and health apply.
    pub gate: String,
    /// How a Gemini CLI account can serve this request; `None` when only a
    /// key can (a model list, embeddings).
    pub code_assist: Option<CodeAssistCall>,
    /// The one key this request may go to (it names a file or cache that key
    /// holds): no rotation, no failover to another key.
    pub pin: Option<String>,
    /// Headers sent besides the key and content type (a resumable upload's
    /// `x-goog-upload-*`); when there are any, the answer's
    /// `x-goog-upload-*` headers come back in [`UpstreamOk::upload_headers`].
    pub headers: Vec<(&'static str, String)>,
}

pub enum UpstreamBody {
    Full(Vec<u8>),
    Stream { first: Vec<u8>, rest: BodyStream },
}

pub struct UpstreamOk {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: UpstreamBody,
    pub key_id: String,
    /// The answer's resumable-upload headers, for a request that sent some.
    pub upload_headers: Vec<(&'static str, String)>,
}

/// The resumable-upload headers an upload answer carries.
pub const UPLOAD_ANSWER_HEADERS: [&str; 4] = [
    "x-goog-upload-url",
    "x-goog-upload-control-url",
    "x-goog-upload-status",
    "x-goog-upload-chunk-granularity",
];

impl UpstreamOk {
    /// The whole body of a non-stream answer, parsed as `T`.
    pub fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, GatewayError> {
        let UpstreamBody::Full(bytes) = self.body else {
            return Err(GatewayError::Internal(
                "a non-stream request got a stream".into(),
            ));
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            GatewayError::BadGateway(format!("Upstream sent an unreadable response: {e}"))
        })
    }
}

pub enum UpstreamError {
    /// The request itself was refused upstream (4xx other than key/quota
    /// problems): the client gets it, and the key stays healthy.
    Client {
        status: u16,
        body: Vec<u8>,
    },
    Gateway(GatewayError),
}

impl From<GatewayError> for UpstreamError {
    fn from(e: GatewayError) -> Self {
        Self::Gateway(e)
    }
}

impl UpstreamError {
    /// The error in the gateway's terms, for a client that asked for `model`: a refusal keeps
    /// Google's status and message (`domain::failover::client_error`).
    pub fn to_error(&self, model: &str) -> GatewayError {
        match self {
            Self::Client { status, body } => client_error(*status, body, model),
            Self::Gateway(err) => err.clone(),
        }
    }

    /// [`Self::to_error`], without a copy of a gateway error.
    pub fn into_error(self, model: &str) -> GatewayError {
        match self {
            Self::Gateway(err) => err,
            client @ Self::Client { .. } => client.to_error(model),
        }
    }
}

/// Why an upstream stream ended early.
#[derive(Debug)]
pub enum StreamBreak {
    /// No chunk arrived within the upstream timeout.
    Idle,
    /// The connection failed.
    Failed(String),
}

impl From<StreamBreak> for worker::Error {
    fn from(b: StreamBreak) -> Self {
        match b {
            StreamBreak::Idle => Self::RustError("upstream stream went idle".into()),
            StreamBreak::Failed(e) => Self::RustError(e),
        }
    }
}

/// The rest of an upstream stream, guarded so a stalled upstream cannot hold
/// a client forever: a gap longer than the timeout ends it with `Idle`.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>, StreamBreak>>>>;

fn idle_guarded(body: BodyReader, quiet: Quiet) -> BodyStream {
    Box::pin(stream::unfold(Some((body, quiet)), |state| async move {
        let (mut body, mut quiet) = state?;
        match next_within(&mut body, &mut quiet).await {
            Some(Some(Ok(bytes))) => Some((Ok(bytes), Some((body, quiet)))),
            Some(Some(Err(e))) => Some((Err(StreamBreak::Failed(e.to_string())), None)),
            Some(None) => None,
            None => Some((Err(StreamBreak::Idle), None)),
        }
    }))
}

/// The body's next chunk (`None` inside: its end), or `None` when `quiet`'s deadline came
/// first. A chunk is a sign of life: it moves the deadline.
async fn next_within(
    body: &mut BodyReader,
    quiet: &mut Quiet,
) -> Option<Option<worker::Result<Vec<u8>>>> {
    let chunk = match select(Box::pin(body.next()), Box::pin(quiet.elapsed())).await {
        Either::Left((chunk, _)) => chunk,
        Either::Right(_) => return None,
    };
    if matches!(chunk, Some(Ok(_))) {
        quiet.touch();
    }
    Some(chunk)
}

/// A whole body (a non-stream answer, an error's body), read before `quiet`
/// rings: `None` when it did not. Headers alone do not make an answer: a
/// body that stalls after them would otherwise hold the request for as long
/// as the connection stays open.
async fn whole_within(
    resp: &worker::Response,
    quiet: &mut Quiet,
) -> Option<worker::Result<Vec<u8>>> {
    match select(Box::pin(read_response(resp)), Box::pin(quiet.elapsed())).await {
        Either::Left((body, _)) => Some(body),
        Either::Right(_) => None,
    }
}

/// What one attempt came to: the outcome, and the answer (`Ok`) or the
/// error body (`Err`, empty when none arrived).
pub struct Attempt {
    pub outcome: Outcome,
    pub answer: Result<UpstreamOk, Vec<u8>>,
    /// The upstream's status, when an answer came.
    pub status: Option<u16>,
}

impl Attempt {
    pub fn failed(outcome: Outcome) -> Self {
        Self {
            outcome,
            answer: Err(Vec::new()),
            status: None,
        }
    }
}

/// How an attempt authenticates: an API key, or an account's access token
/// (with gemini-cli's headers).
pub enum Auth<'a> {
    Key(&'a str),
    Bearer(&'a str),
}

/// One attempt on one key.
pub async fn attempt(
    req: &UpstreamRequest,
    key_id: &str,
    secret: &str,
    timeout: Duration,
) -> Attempt {
    attempt_with(req, key_id, &Auth::Key(secret), timeout).await
}

/// One attempt on one upstream, authenticated as `auth` says.
pub async fn attempt_with(
    req: &UpstreamRequest,
    key_id: &str,
    auth: &Auth<'_>,
    timeout: Duration,
) -> Attempt {
    let controller = AbortController::default();
    let signal = controller.signal();
    let sent = Box::pin(send(req, auth, &signal));
    let mut quiet = Quiet::new(timeout);
    let resp = match select(sent, Box::pin(quiet.elapsed())).await {
        Either::Left((Ok(resp), _)) => resp,
        Either::Left((Err(_), _)) => return Attempt::failed(Outcome::Network),
        Either::Right(_) => {
            controller.abort();
            return Attempt::failed(Outcome::Timeout);
        }
    };
    let status = resp.status_code();
    let content_type = resp.headers().get("content-type").ok().flatten();
    let upload_headers = if req.headers.is_empty() {
        Vec::new()
    } else {
        UPLOAD_ANSWER_HEADERS
            .iter()
            .filter_map(|&name| Some((name, resp.headers().get(name).ok().flatten()?)))
            .collect()
    };
    // The answer came: what follows of it (its whole body, or a stream's
    // first chunk) has the whole limit from now.
    quiet.touch();
    if !(200..300).contains(&status) {
        let Some(body) = whole_within(&resp, &mut quiet).await else {
            controller.abort();
            return Attempt::failed(Outcome::Timeout);
        };
        let body = body.unwrap_or_default();
        return Attempt {
            outcome: classify(status, &body),
            answer: Err(body),
            status: Some(status),
        };
    }
    let body = if req.stream {
        let worker::ResponseBody::Stream(raw) = resp.body() else {
            return Attempt::failed(Outcome::Network);
        };
        let mut body_stream = BodyReader::new(raw);
        match next_within(&mut body_stream, &mut quiet).await {
            Some(Some(Ok(first))) => UpstreamBody::Stream {
                first,
                rest: idle_guarded(body_stream, quiet),
            },
            // An empty 200 stream is handed over as is; the translator
            // reports the truncation in the surface's own way.
            Some(None) => UpstreamBody::Full(Vec::new()),
            Some(Some(Err(_))) => return Attempt::failed(Outcome::Network),
            None => {
                controller.abort();
                return Attempt::failed(Outcome::Timeout);
            }
        }
    } else {
        match whole_within(&resp, &mut quiet).await {
            Some(Ok(bytes)) => UpstreamBody::Full(bytes),
            Some(Err(_)) => return Attempt::failed(Outcome::Network),
            None => {
                controller.abort();
                return Attempt::failed(Outcome::Timeout);
            }
        }
    };
    Attempt {
        outcome: Outcome::Ok,
        answer: Ok(UpstreamOk {
            status,
            content_type,
            body,
            key_id: key_id.to_owned(),
            upload_headers,
        }),
        status: Some(status),
    }
}

/// Sends the upstream request with the key (or token) as Google takes it:
/// one `fetch(url, init)`, without building a `Request` object first (the
/// worker crate's `Request` parses the URL again and reads `cf`, a visible
/// share of a small request's cost).
async fn send(
    req: &UpstreamRequest,
    auth: &Auth<'_>,
    signal: &worker::AbortSignal,
) -> worker::Result<worker::Response> {
    let headers = match auth {
        Auth::Key(secret) => {
            let headers = Headers::new();
            headers.set("x-goog-api-key", secret)?;
            if req.body.is_some() {
                headers.set("content-type", "application/json")?;
            }
            for (name, value) in &req.headers {
                headers.set(name, value)?;
            }
            headers
        }
        Auth::Bearer(token) => crate::edge::google::code_assist_headers(token)?,
    };
    let init = web_sys::RequestInit::new();
    init.set_method(req.method.as_ref());
    init.set_headers(&headers.0);
    if let Some(body) = &req.body {
        init.set_body(&JsValue::from_str(body));
    }
    init.set_signal(Some(signal));
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let answer = JsFuture::from(global.fetch_with_str_and_init(&req.url, &init)).await?;
    let answer: web_sys::Response = answer.dyn_into()?;
    Ok(answer.into())
}
