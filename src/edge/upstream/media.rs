//! Server-side fetches of a client's `image_url`: http(s) only, never a private or
//! loopback target unless the operator allowed it, redirects re-checked hop by hop, a size cap
//! enforced while reading, and one deadline for the whole fetch. The rules are
//! `domain::media`; this file is the fetch.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use futures::future::{Either, select, try_join_all};
use worker::{
    AbortController, AbortSignal, Delay, Fetch, Headers, Method, Request, RequestInit,
    RequestRedirect, Url,
};

use crate::domain::config::Settings;
use crate::domain::error::GatewayError;
use crate::domain::gemini::Blob;
use crate::domain::media::{acceptable_image_type, check_url, media_type};
use crate::domain::translate::chat::RemoteMedia;

/// Gemini's documented limit for a request's inline data; remote images together stay under it.
const MAX_TOTAL_BYTES: u64 = 20 * 1024 * 1024;
const MAX_REDIRECTS: usize = 3;

/// Fetches every remote image of a request, concurrently. The first failure fails the request
/// with a 400 naming the content part: the URL is the client's, so is the problem.
pub async fn fetch_all(
    media: &[RemoteMedia],
    settings: &Settings,
    allow: &[String],
) -> Result<Vec<Blob>, GatewayError> {
    let limits = Limits {
        max_bytes: settings.image_fetch_max_bytes,
        timeout: Duration::from_millis(settings.image_fetch_timeout_ms),
    };
    let blobs = try_join_all(media.iter().map(|m| fetch_one(m, limits, allow))).await?;
    let total: u64 = blobs.iter().map(|(_, size)| *size).sum();
    if total > MAX_TOTAL_BYTES {
        return Err(GatewayError::invalid_param(
            format!(
                "remote images total {total} bytes, over the {MAX_TOTAL_BYTES}-byte limit for one request"
            ),
            "messages",
        ));
    }
    Ok(blobs.into_iter().map(|(blob, _)| blob).collect())
}

#[derive(Clone, Copy)]
struct Limits {
    max_bytes: u64,
    timeout: Duration,
}

async fn fetch_one(
    media: &RemoteMedia,
    limits: Limits,
    allow: &[String],
) -> Result<(Blob, u64), GatewayError> {
    let param = media.param.as_str();
    let fail = |why: String| GatewayError::invalid_param(format!("{param}: {why}"), param);
    let controller = AbortController::default();
    let signal = controller.signal();
    let finished = {
        let work = Box::pin(download(&media.url, limits.max_bytes, allow, &signal));
        let timer = Box::pin(Delay::from(limits.timeout));
        match select(work, timer).await {
            Either::Left((result, _)) => Some(result),
            Either::Right(_) => None,
        }
    };
    let Some(result) = finished else {
        controller.abort();
        return Err(fail(format!(
            "fetching the image timed out after {} ms",
            limits.timeout.as_millis()
        )));
    };
    let (bytes, declared) = result.map_err(fail)?;
    let mime = media_type(declared.as_deref(), &bytes)
        .ok_or_else(|| fail("the URL did not return a recognisable image".to_owned()))?;
    if !acceptable_image_type(&mime) {
        return Err(fail(format!("the URL returned `{mime}`, not an image")));
    }
    let size = bytes.len() as u64;
    Ok((
        Blob {
            mime_type: mime,
            data: STANDARD.encode(&bytes),
        },
        size,
    ))
}

/// The body and declared content type, following up to [`MAX_REDIRECTS`] redirects, each
/// target checked like the first.
async fn download(
    url: &str,
    max_bytes: u64,
    allow: &[String],
    signal: &AbortSignal,
) -> Result<(Vec<u8>, Option<String>), String> {
    let mut url = checked(url, allow)?;
    for _ in 0..=MAX_REDIRECTS {
        let mut init = RequestInit::new();
        init.with_method(Method::Get);
        init.redirect = RequestRedirect::Manual;
        let headers = Headers::new();
        let _ = headers.set("accept", "image/*,application/pdf;q=0.9,*/*;q=0.1");
        let _ = headers.set("user-agent", "gemgate-image-fetch");
        init.with_headers(headers);
        let request = Request::new_with_init(url.as_str(), &init)
            .map_err(|_| "the URL could not be requested".to_owned())?;
        let mut resp = Fetch::Request(request)
            .send_with_signal(signal)
            .await
            .map_err(|_| "the image could not be fetched".to_owned())?;
        let status = resp.status_code();
        if (300..400).contains(&status) {
            let location = resp
                .headers()
                .get("location")
                .ok()
                .flatten()
                .ok_or_else(|| format!("the URL answered {status} without a Location"))?;
            let next = url
                .join(&location)
                .map_err(|_| "the URL redirected to an invalid location".to_owned())?;
            url = checked(next.as_str(), allow)?;
            continue;
        }
        if !(200..300).contains(&status) {
            return Err(format!("the URL answered HTTP {status}"));
        }
        let declared = resp.headers().get("content-type").ok().flatten();
        let too_large = || format!("the image is larger than the {max_bytes}-byte limit");
        if let Some(length) = resp
            .headers()
            .get("content-length")
            .ok()
            .flatten()
            .and_then(|l| l.trim().parse::<u64>().ok())
            && length > max_bytes
        {
            // Dropping the response cancels its body.
            return Err(too_large());
        }
        let mut body = resp
            .stream()
            .map_err(|_| "the image body could not be read".to_owned())?;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|_| "the image download broke off".to_owned())?;
            if (bytes.len() + chunk.len()) as u64 > max_bytes {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        return Ok((bytes, declared));
    }
    Err(format!(
        "the URL redirected more than {MAX_REDIRECTS} times"
    ))
}

/// The domain check on the raw URL, then again on the runtime parser's normalised form, so the
/// two parsers can never disagree about which host is fetched.
fn checked(raw: &str, allow: &[String]) -> Result<Url, String> {
    let refuse = |r: crate::domain::media::Refusal| format!("the URL {}", r.message());
    check_url(raw, allow).map_err(refuse)?;
    let url = Url::parse(raw).map_err(|_| "the URL is not valid".to_owned())?;
    check_url(url.as_str(), allow).map_err(refuse)?;
    Ok(url)
}
