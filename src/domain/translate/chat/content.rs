//! User content parts → Gemini parts: text, and data-URL images, audio and files inlined;
//! http(s) images become placeholders the edge fills after fetching them. Must not fetch
//! anything itself.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::messages::{Conversation, part_path, text_part};
use super::{MAX_REMOTE_MEDIA, REMOTE_PLACEHOLDER, RemoteMedia};
use crate::domain::error::GatewayError;
use crate::domain::gemini::{self, Part, PartData};
use crate::domain::openai::{self, ContentPart, MessageContent};

impl Conversation {
    pub(super) fn user_parts(
        &mut self,
        content: MessageContent,
        i: usize,
    ) -> Result<Vec<Part>, GatewayError> {
        match content {
            MessageContent::Text(text) => Ok(text_part(text).into_iter().collect()),
            MessageContent::Parts(parts) => parts
                .into_iter()
                .enumerate()
                .filter_map(|(j, part)| self.user_part(part, &part_path(i, j)).transpose())
                .collect(),
        }
    }

    fn user_part(&mut self, part: ContentPart, path: &str) -> Result<Option<Part>, GatewayError> {
        if let ContentPart::ImageUrl { image_url } = part {
            let param = format!("{path}.image_url");
            return self.image_part(image_url.url, param).map(Some);
        }
        user_part(part, path)
    }

    /// A data URL is inlined now; an http(s) URL becomes a placeholder the edge fills after
    /// fetching it (http(s) only, size cap, timeout, no private targets).
    fn image_part(&mut self, url: String, param: String) -> Result<Part, GatewayError> {
        if !(starts_with_ignore_case(&url, "http://") || starts_with_ignore_case(&url, "https://"))
        {
            if let Some((scheme, _)) = url.split_once("://") {
                return Err(GatewayError::invalid_param(
                    format!(
                        "{param}: the URL scheme `{scheme}` is not supported; send an http(s) URL or a base64 data: URL"
                    ),
                    param,
                ));
            }
            return inline_data(url, &param);
        }
        if self.remote.len() == MAX_REMOTE_MEDIA {
            return Err(GatewayError::invalid_param(
                format!("{param}: at most {MAX_REMOTE_MEDIA} remote image URLs per request"),
                param,
            ));
        }
        self.remote.push(RemoteMedia { url, param });
        Ok(Part::new(PartData::InlineData(gemini::Blob {
            mime_type: REMOTE_PLACEHOLDER.to_owned(),
            data: String::new(),
        })))
    }
}

fn user_part(part: ContentPart, path: &str) -> Result<Option<Part>, GatewayError> {
    match part {
        ContentPart::Text { text } => Ok(text_part(text)),
        ContentPart::ImageUrl { image_url } => {
            inline_data(image_url.url, &format!("{path}.image_url")).map(Some)
        }
        ContentPart::InputAudio { input_audio } => {
            audio_part(input_audio, &format!("{path}.input_audio")).map(Some)
        }
        ContentPart::File { file } => file_part(file, &format!("{path}.file")).map(Some),
        ContentPart::Refusal { .. } => Err(GatewayError::invalid_param(
            format!("{path}: refusal parts are only valid in assistant messages"),
            path,
        )),
    }
}

/// Replaces the remote-image placeholders of `body`, in order, with the fetched media.
/// Extra placeholders (there are none when `media` came from the same request) stay empty.
pub fn fill_remote_media(body: &mut gemini::GenerateContentRequest, media: Vec<gemini::Blob>) {
    let mut media = media.into_iter();
    let placeholders = body
        .contents
        .iter_mut()
        .flat_map(|c| c.parts.iter_mut())
        .filter_map(|p| match &mut p.data {
            PartData::InlineData(blob) if blob.mime_type == REMOTE_PLACEHOLDER => Some(blob),
            _ => None,
        });
    for (slot, blob) in placeholders.zip(&mut media) {
        *slot = blob;
    }
}

fn file_part(file: openai::FileInput, param: &str) -> Result<Part, GatewayError> {
    match (file.file_data, file.file_id) {
        (Some(data), _) => inline_data(data, &format!("{param}.file_data")),
        (None, Some(_)) => Err(GatewayError::invalid_param(
            format!(
                "{param}.file_id: file ids are not supported yet; send file_data as a base64 data: URL"
            ),
            format!("{param}.file_id"),
        )),
        (None, None) => Err(GatewayError::invalid_param(
            format!("{param}: file_data is required"),
            param,
        )),
    }
}

fn audio_part(audio: openai::InputAudio, param: &str) -> Result<Part, GatewayError> {
    let mime_type = match audio.format.as_str() {
        "wav" => "audio/wav",
        "mp3" => "audio/mp3",
        "aiff" => "audio/aiff",
        "aac" => "audio/aac",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        other => {
            return Err(GatewayError::invalid_param(
                format!(
                    "{param}.format: unsupported audio format `{other}`; expected wav, mp3, aiff, aac, ogg or flac"
                ),
                format!("{param}.format"),
            ));
        }
    };
    if !is_strict_base64(&audio.data) {
        return Err(GatewayError::invalid_param(
            format!("{param}.data: is not valid base64"),
            format!("{param}.data"),
        ));
    }
    Ok(Part::new(PartData::InlineData(gemini::Blob {
        mime_type: mime_type.to_owned(),
        data: audio.data,
    })))
}

/// A `data:<mime>;base64,<payload>` URL → `inlineData`. The payload is cut out of the URL's
/// own buffer rather than copied: images can be megabytes and the isolate has 128 MB.
fn inline_data(mut url: String, param: &str) -> Result<Part, GatewayError> {
    let invalid = |why: &str| GatewayError::invalid_param(format!("{param}: {why}"), param);
    let (mime_type, data) = parse_data_url(&url)
        .ok_or_else(|| invalid("expected a base64 data: URL (data:<mime type>;base64,<data>)"))?;
    if !is_strict_base64(data) {
        return Err(invalid("the data URL payload is not valid base64"));
    }
    let mime_type = mime_type.to_owned();
    url.drain(..url.len() - data.len());
    Ok(Part::new(PartData::InlineData(gemini::Blob {
        mime_type,
        data: url,
    })))
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// Splits a base64 data URL into its MIME type and payload. Media-type parameters
/// (`;charset=…`) are dropped, since Gemini takes a bare MIME type.
pub(super) fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    if !starts_with_ignore_case(url, "data:") {
        return None;
    }
    let (meta, data) = url["data:".len()..].split_once(',')?;
    let mut params = meta.split(';');
    let mime_type = params.next().filter(|m| m.contains('/'))?;
    params
        .any(|p| p.eq_ignore_ascii_case("base64"))
        .then_some((mime_type, data))
}

/// Canonical, padded standard base64, checked chunk by chunk so a large image is validated
/// without being decoded into memory.
pub(super) fn is_strict_base64(data: &str) -> bool {
    const CHUNK: usize = 4096; // a multiple of 4
    let bytes = data.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return false;
    }
    // Padding may only close the whole payload, not an inner chunk.
    if bytes[..bytes.len() - 2].contains(&b'=') {
        return false;
    }
    let mut buffer = [0u8; CHUNK / 4 * 3];
    bytes
        .chunks(CHUNK)
        .all(|chunk| STANDARD.decode_slice(chunk, &mut buffer).is_ok())
}
