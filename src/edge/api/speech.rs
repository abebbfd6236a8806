//! `POST /v1/audio/speech` on Gemini TTS: one `generateContent` call with audio output, failed
//! over, admitted, charged and logged like a chat completion. Gemini's 16-bit PCM is sent as
//! WAV or raw. Decisions are `domain::speech`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use worker::{Headers, Method, Request, Response};

use crate::domain::error::GatewayError;
use crate::domain::gemini::GenerateContentResponse;
use crate::domain::quota::Estimate;
use crate::domain::route::upstream_model_id;
use crate::domain::speech::{self, AudioFormat};
use crate::domain::translate::thinking::ModelVariant;
use crate::domain::usage;
use crate::edge::access::Caller;
use crate::edge::app::App;
use crate::edge::billing::ticket::{Outcome, metered_send};
use crate::edge::http::body::read_capped;
use crate::edge::snapshot;
use crate::edge::upstream::UpstreamRequest;
use crate::edge::upstream::models;
use crate::edge::upstream::urls::{self, Version};

type HandlerResult = Result<Response, GatewayError>;

/// Output tokens a speech request reserves in token mode: Gemini counts 25 per second of
/// audio, and 4096 characters take a few minutes to say.
const MAX_AUDIO_TOKENS: u64 = 8_192;

pub async fn speech(app: &App, caller: &Caller, mut req: Request) -> HandlerResult {
    let snap = snapshot::snapshot(app).await?;
    let raw = read_capped(&mut req, snap.settings.max_body_bytes).await?;
    let mut request = speech::parse(&raw)?;
    let client_model = request.model.clone();
    request.model = models::resolve(app, &snap, &request.model, ModelVariant::base_of).await?;
    upstream_model_id(&request.model)?;
    let upstream_req = UpstreamRequest {
        method: Method::Post,
        url: urls::action(
            &app.config.env.gemini_api_base,
            Version::V1Beta,
            &request.model,
            "generateContent",
            [],
        )?,
        body: Some(request.upstream_body().to_string()),
        stream: false,
        gate: request.model.clone(),
        code_assist: None,
        pin: None,
        headers: Vec::new(),
    };
    let prompt_tokens = request.prompt_tokens();
    let estimate = || Estimate {
        prompt_tokens,
        max_output_tokens: MAX_AUDIO_TOKENS,
        thinking_tokens: 0,
    };
    let (mut ticket, ok) = metered_send(app, caller, &snap, &upstream_req, estimate)
        .await
        .map_err(|e| e.to_error(&client_model))?;
    let key_id = ok.key_id.clone();
    let answer: GenerateContentResponse = ticket.check(ok.json())?;
    let (chunks, rate, channels) = ticket.check(speech::audio_from_answer(&answer))?;
    let mut pcm = Vec::new();
    for chunk in chunks {
        let bytes = STANDARD.decode(chunk.as_bytes()).map_err(|e| {
            GatewayError::BadGateway(format!("Upstream sent audio that is not base64: {e}"))
        });
        pcm.extend(ticket.check(bytes)?);
    }
    let body = match request.format {
        AudioFormat::Pcm => pcm,
        AudioFormat::Wav => {
            let len = u32::try_from(pcm.len()).map_err(|_| {
                GatewayError::BadGateway("The upstream audio is too long for a WAV file.".into())
            });
            let len = ticket.check(len)?;
            let mut out = Vec::with_capacity(pcm.len() + 44);
            out.extend_from_slice(&speech::wav_header(len, rate, channels));
            out.extend_from_slice(&pcm);
            out
        }
    };
    let used = answer
        .usage_metadata
        .as_ref()
        .map(usage::from_metadata)
        .unwrap_or_default();
    ticket.settle(Outcome::served(used, key_id));
    let headers = Headers::new();
    headers.set("content-type", request.format.content_type())?;
    headers.set("x-gemgate-sample-rate", &rate.to_string())?;
    Ok(Response::from_bytes(body)?.with_headers(headers))
}
