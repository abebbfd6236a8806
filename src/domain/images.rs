//! `POST /v1/images/generations`: the request's checks, `size` → aspect ratio, the
//! `{n:…}` / `{ratio:…}` prompt tags, the upstream bodies of both model kinds (Imagen's
//! `:predict`, Gemini image models' `generateContent`), and the images read back.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::error::GatewayError;
use super::gemini::{Blob, GenerateContentResponse, GenerationConfig, PartData};
use super::quota::Usage;
use super::translate::json_object;

/// The model an images request without `model` goes to.
pub const DEFAULT_IMAGE_MODEL: &str = "imagen-4.0-generate-001";
/// Images per request: Imagen's `sampleCount` takes 1–4.
pub const MAX_IMAGES: u32 = 4;
/// The aspect ratios Imagen and Gemini's image models take.
pub const ASPECT_RATIOS: [&str; 5] = ["1:1", "3:4", "4:3", "9:16", "16:9"];
/// Longest prompt accepted, in characters.
pub const MAX_PROMPT_CHARS: usize = 32_000;

/// `size` values and the aspect ratio each stands for: `OpenAI`'s sizes (3:2 ones go to the
/// nearest ratio Google takes) and Imagen's own output sizes.
const SIZES: &[(&str, &str)] = &[
    ("256x256", "1:1"),
    ("512x512", "1:1"),
    ("1024x1024", "1:1"),
    ("2048x2048", "1:1"),
    ("1792x1024", "16:9"),
    ("1408x768", "16:9"),
    ("1280x720", "16:9"),
    ("1920x1080", "16:9"),
    ("1024x1792", "9:16"),
    ("768x1408", "9:16"),
    ("720x1280", "9:16"),
    ("1080x1920", "9:16"),
    ("1536x1024", "4:3"),
    ("1280x896", "4:3"),
    ("1024x768", "4:3"),
    ("1024x1536", "3:4"),
    ("896x1280", "3:4"),
    ("768x1024", "3:4"),
];

/// How a model makes images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// `imagen-*`: `:predict`, all images in one call.
    Imagen,
    /// Any other model (`gemini-*-image*`): `generateContent` with image output, one call per
    /// image.
    Gemini,
}

impl ModelKind {
    pub fn of(model: &str) -> Self {
        if model.to_ascii_lowercase().starts_with("imagen") {
            Self::Imagen
        } else {
            Self::Gemini
        }
    }
}

/// What the client gets back for each image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    B64Json,
    /// A link to the worker, served from KV until it expires.
    Url,
}

/// A checked images request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRequest {
    pub model: String,
    /// The prompt without its tags.
    pub prompt: String,
    pub n: u32,
    pub aspect_ratio: &'static str,
    pub format: ResponseFormat,
}

/// The aspect ratio a `size` stands for: one of [`SIZES`], `auto`, or a ratio itself (`16:9`).
pub fn size_to_ratio(size: &str) -> Option<&'static str> {
    let size = size.trim().to_ascii_lowercase();
    if size == "auto" {
        return Some("1:1");
    }
    if let Some(ratio) = ASPECT_RATIOS.iter().find(|r| **r == size) {
        return Some(ratio);
    }
    SIZES.iter().find(|(s, _)| *s == size).map(|(_, r)| *r)
}

/// What the prompt's tags asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags {
    pub n: Option<u32>,
    pub ratio: Option<&'static str>,
}

/// Takes the `{n:2}` and `{ratio:16:9}` tags out of a prompt (gemini-balance's syntax; names
/// case-insensitive, spaces allowed). Other braces stay. A tag with a bad value is a 400.
pub fn take_tags(prompt: &str) -> Result<(String, Tags), GatewayError> {
    let mut tags = Tags::default();
    let mut out = String::with_capacity(prompt.len());
    let mut rest = prompt;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let inner = &after[..close];
        match inner.split_once(':') {
            Some((key, value)) if key.trim().eq_ignore_ascii_case("n") => {
                tags.n = Some(count(value.trim(), "prompt")?);
            }
            Some((key, value)) if key.trim().eq_ignore_ascii_case("ratio") => {
                let value = value.trim();
                tags.ratio = Some(ASPECT_RATIOS.iter().find(|r| **r == value).ok_or_else(|| {
                    GatewayError::invalid_param(
                        format!(
                            "prompt: the tag {{ratio:{value}}} names no aspect ratio; use one of {}.",
                            ASPECT_RATIOS.join(", ")
                        ),
                        "prompt",
                    )
                })?);
            }
            _ => out.push_str(&rest[open..=open + close + 1]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok((out.split_whitespace().collect::<Vec<_>>().join(" "), tags))
}

fn count(value: &str, param: &str) -> Result<u32, GatewayError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_IMAGES).contains(n))
        .ok_or_else(|| {
            GatewayError::invalid_param(
                format!("{param}: n must be an integer from 1 to {MAX_IMAGES}, got {value}."),
                param,
            )
        })
}

fn string_field<'a>(
    object: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, GatewayError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(GatewayError::invalid_param(
            format!("{name}: expected a string"),
            name,
        )),
    }
}

/// Parses and checks a request body. Fields `OpenAI` defines but Google has no knob for
/// (`quality`, `style`, `user`, …) are ignored.
pub fn parse(body: &[u8]) -> Result<ImageRequest, GatewayError> {
    let object = json_object(body)?;
    let prompt = string_field(&object, "prompt")?
        .ok_or_else(|| GatewayError::invalid_param("prompt: this field is required", "prompt"))?;
    if prompt.chars().count() > MAX_PROMPT_CHARS {
        return Err(GatewayError::invalid_param(
            format!("prompt: at most {MAX_PROMPT_CHARS} characters"),
            "prompt",
        ));
    }
    let model = match string_field(&object, "model")? {
        None => DEFAULT_IMAGE_MODEL.to_owned(),
        Some(m) if m.trim().is_empty() => {
            return Err(GatewayError::invalid_param(
                "model: must not be empty",
                "model",
            ));
        }
        Some(m) => m.to_owned(),
    };
    let mut n = match object.get("n") {
        None | Some(Value::Null) => 1,
        Some(Value::Number(v)) => count(&v.to_string(), "n")?,
        Some(_) => {
            return Err(GatewayError::invalid_param(
                format!("n: expected an integer from 1 to {MAX_IMAGES}"),
                "n",
            ));
        }
    };
    let mut aspect_ratio = match string_field(&object, "size")? {
        None => "1:1",
        Some(size) => size_to_ratio(size).ok_or_else(|| {
            let sizes: Vec<&str> = SIZES.iter().map(|(s, _)| *s).collect();
            GatewayError::invalid_param(
                format!(
                    "size: `{size}` is not a supported size; use auto, one of {}, or an aspect ratio ({}).",
                    sizes.join(", "),
                    ASPECT_RATIOS.join(", ")
                ),
                "size",
            )
        })?,
    };
    let format = match string_field(&object, "response_format")? {
        None | Some("url") => ResponseFormat::Url,
        Some("b64_json") => ResponseFormat::B64Json,
        Some(other) => {
            return Err(GatewayError::invalid_param(
                format!("response_format: `{other}` is not one of url, b64_json"),
                "response_format",
            ));
        }
    };
    let (prompt, tags) = take_tags(prompt)?;
    if prompt.is_empty() {
        return Err(GatewayError::invalid_param(
            "prompt: must not be empty",
            "prompt",
        ));
    }
    if let Some(tagged) = tags.n {
        n = tagged;
    }
    if let Some(ratio) = tags.ratio {
        aspect_ratio = ratio;
    }
    Ok(ImageRequest {
        model,
        prompt,
        n,
        aspect_ratio,
        format,
    })
}

impl ImageRequest {
    /// Imagen's `:predict` body.
    pub fn predict_body(&self) -> Value {
        json!({
            "instances": [{"prompt": self.prompt}],
            "parameters": {"sampleCount": self.n, "aspectRatio": self.aspect_ratio},
        })
    }

    /// A Gemini image model's `generateContent` body, for one image.
    pub fn generate_body(&self) -> Value {
        json!({
            "contents": [{"role": "user", "parts": [{"text": self.prompt}]}],
            "generationConfig": {
                "responseModalities": ["TEXT", "IMAGE"],
                "imageConfig": {"aspectRatio": self.aspect_ratio},
            },
        })
    }

    /// Prompt tokens a request is estimated at: a quarter of the prompt's bytes.
    pub fn prompt_tokens(&self) -> u64 {
        (self.prompt.len() as u64).div_ceil(4)
    }
}

/// One generated image, base64 as Google sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub mime_type: String,
    pub b64: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Prediction {
    #[serde(default)]
    bytes_base64_encoded: Option<String>,
    #[serde(default)]
    mime_type: Option<String>,
}

#[derive(Deserialize)]
struct PredictResponse {
    #[serde(default)]
    predictions: Vec<Prediction>,
}

/// The images of an Imagen `:predict` answer (a filtered sample has no bytes and is skipped).
pub fn images_from_predict(body: &[u8]) -> Result<Vec<Image>, GatewayError> {
    let resp: PredictResponse = serde_json::from_slice(body).map_err(|e| {
        GatewayError::BadGateway(format!("Upstream sent an unreadable response: {e}"))
    })?;
    Ok(resp
        .predictions
        .into_iter()
        .filter_map(|p| {
            Some(Image {
                b64: p.bytes_base64_encoded.filter(|b| !b.is_empty())?,
                mime_type: p
                    .mime_type
                    .filter(|m| m.starts_with("image/"))
                    .unwrap_or_else(|| "image/png".to_owned()),
            })
        })
        .collect())
}

/// The images of a `generateContent` answer: its `inlineData` parts of an image type.
pub fn images_from_answer(resp: &GenerateContentResponse) -> Vec<Image> {
    resp.candidates
        .iter()
        .filter_map(|c| c.content.as_ref())
        .flat_map(|c| c.parts.iter())
        .filter_map(|p| match &p.data {
            PartData::InlineData(blob) if blob.mime_type.starts_with("image/") => Some(Image {
                mime_type: blob.mime_type.clone(),
                b64: blob.data.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// The 400 for an answer without any image (Google's filters refused the prompt).
pub fn no_image() -> GatewayError {
    GatewayError::invalid_param(
        "The model returned no image; its safety filters may have refused the prompt.",
        "prompt",
    )
}

/// What a user key is charged for: the model's request cost per image (the ticket's
/// multiplier is `n`), and in token mode the tokens of one image. Imagen reports no tokens,
/// so its prompt estimate stands in; Gemini's reported usage, summed over its `n` calls, is
/// divided back per image (rounded up).
pub fn usage_per_image(kind: ModelKind, reported: Usage, prompt_tokens: u64, n: u32) -> Usage {
    let n = u64::from(n.max(1));
    match kind {
        ModelKind::Imagen => Usage {
            prompt_tokens,
            ..Usage::default()
        },
        ModelKind::Gemini => Usage {
            prompt_tokens: reported.prompt_tokens.div_ceil(n),
            completion_tokens: reported.completion_tokens.div_ceil(n),
            reasoning_tokens: reported.reasoning_tokens.div_ceil(n),
        },
    }
}

/// How a chat completion returns the images an image model drew (`chat_image_output`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatImageOutput {
    /// `![image](data:image/png;base64,…)` in `content`.
    #[default]
    Markdown,
    /// `image_url` content parts in the message's `images` (`content` keeps the text).
    Parts,
}

/// Whether a model draws images in chat (`gemini-2.5-flash-image`,
/// `gemini-2.0-flash-preview-image-generation`, …).
pub fn draws_images(model: &str) -> bool {
    model.to_ascii_lowercase().contains("-image")
}

/// Shapes a chat request to an image model: asks for text and image output unless the
/// client chose its modalities. Returns whether the reply carries images as parts.
pub fn shape_chat(
    mode: ChatImageOutput,
    model: &str,
    config: &mut Option<GenerationConfig>,
) -> bool {
    if !draws_images(model) {
        return false;
    }
    let config = config.get_or_insert_with(GenerationConfig::default);
    if config.response_modalities.is_empty() {
        config.response_modalities = vec!["TEXT".to_owned(), "IMAGE".to_owned()];
    }
    mode == ChatImageOutput::Parts
}

/// An image as an `OpenAI` `image_url` content part with a data URL.
pub fn image_part(blob: &Blob) -> Value {
    json!({
        "type": "image_url",
        "image_url": {"url": format!("data:{};base64,{}", blob.mime_type, blob.data)},
    })
}

/// What a stored image's KV entry carries beside its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredImage {
    pub mime_type: String,
    /// Unix ms after which the URL answers 404.
    pub expires_at_ms: u64,
}

impl StoredImage {
    pub fn expired(&self, now_ms: u64) -> bool {
        now_ms >= self.expires_at_ms
    }
}

/// KV expires entries no sooner than 60 s after their write: a shorter TTL is enforced by
/// [`StoredImage::expired`], and the entry itself goes a little later.
pub fn kv_ttl_secs(ttl_secs: u64) -> u64 {
    ttl_secs.max(60)
}

/// The KV key of a stored image.
pub fn kv_key(id: &str) -> String {
    format!("image:{id}")
}

/// An image id in a URL: 32 lower-case hex digits.
pub fn valid_image_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The path a stored image is served under.
pub fn image_path(id: &str) -> String {
    format!("/v1/images/files/{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_map_to_ratios() {
        assert_eq!(size_to_ratio("1024x1024"), Some("1:1"));
        assert_eq!(size_to_ratio("1792x1024"), Some("16:9"));
        assert_eq!(size_to_ratio("1024x1792"), Some("9:16"));
        assert_eq!(size_to_ratio("1536x1024"), Some("4:3"));
        assert_eq!(size_to_ratio("1024x1536"), Some("3:4"));
        assert_eq!(size_to_ratio("auto"), Some("1:1"));
        assert_eq!(size_to_ratio("16:9"), Some("16:9"));
        assert_eq!(size_to_ratio("999x1"), None);
        assert_eq!(size_to_ratio("big"), None);
    }

    #[test]
    fn tags_are_taken_out_and_override() {
        let (prompt, tags) = take_tags("a cat {n:3} on a mat {ratio: 16:9}").unwrap();
        assert_eq!(prompt, "a cat on a mat");
        assert_eq!(tags.n, Some(3));
        assert_eq!(tags.ratio, Some("16:9"));
        let (prompt, tags) = take_tags("json {\"a\":1} stays {unclosed").unwrap();
        assert_eq!(prompt, "json {\"a\":1} stays {unclosed");
        assert_eq!(tags, Tags::default());
        assert!(take_tags("x {n:9}").is_err());
        assert!(take_tags("x {ratio:2:1}").is_err());
        let req =
            parse(br#"{"prompt":"a dog {N:2} {Ratio:9:16}","n":1,"size":"1024x1024"}"#).unwrap();
        assert_eq!((req.n, req.aspect_ratio), (2, "9:16"));
        assert_eq!(req.prompt, "a dog");
    }

    #[test]
    fn bad_requests_are_400_naming_the_field() {
        let param = |body: &[u8]| match parse(body) {
            Err(GatewayError::InvalidRequest { param, .. }) => param,
            other => panic!("{other:?}"),
        };
        assert_eq!(param(br#"{"n":1}"#).as_deref(), Some("prompt"));
        assert_eq!(param(br#"{"prompt":"  "}"#).as_deref(), Some("prompt"));
        assert_eq!(param(br#"{"prompt":"x","n":0}"#).as_deref(), Some("n"));
        assert_eq!(param(br#"{"prompt":"x","n":5}"#).as_deref(), Some("n"));
        assert_eq!(param(br#"{"prompt":"x","n":1.5}"#).as_deref(), Some("n"));
        assert_eq!(param(br#"{"prompt":"x","n":"2"}"#).as_deref(), Some("n"));
        assert_eq!(
            param(br#"{"prompt":"x","size":"7x7"}"#).as_deref(),
            Some("size")
        );
        assert_eq!(
            param(br#"{"prompt":"x","response_format":"png"}"#).as_deref(),
            Some("response_format")
        );
        assert_eq!(param(br#"{"prompt":42}"#).as_deref(), Some("prompt"));
        assert!(parse(b"[]").is_err());
    }

    #[test]
    fn defaults_and_bodies() {
        let req = parse(br#"{"prompt":"a fox"}"#).unwrap();
        assert_eq!(req.model, DEFAULT_IMAGE_MODEL);
        assert_eq!((req.n, req.aspect_ratio), (1, "1:1"));
        assert_eq!(req.format, ResponseFormat::Url);
        assert_eq!(ModelKind::of(&req.model), ModelKind::Imagen);
        assert_eq!(ModelKind::of("gemini-2.5-flash-image"), ModelKind::Gemini);
        let req =
            parse(br#"{"prompt":"a fox","n":2,"size":"1792x1024","response_format":"b64_json"}"#)
                .unwrap();
        assert_eq!(
            req.predict_body(),
            json!({"instances":[{"prompt":"a fox"}],"parameters":{"sampleCount":2,"aspectRatio":"16:9"}})
        );
        assert_eq!(
            req.generate_body()["generationConfig"],
            json!({"responseModalities":["TEXT","IMAGE"],"imageConfig":{"aspectRatio":"16:9"}})
        );
    }

    #[test]
    fn images_are_read_from_both_answers() {
        let got = images_from_predict(
            br#"{"predictions":[{"bytesBase64Encoded":"AAAA","mimeType":"image/png"},{"raiFilteredReason":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].b64, "AAAA");
        let resp: GenerateContentResponse =
            serde_json::from_value(json!({"candidates":[{"content":{"role":"model","parts":[
            {"text":"here"},{"inlineData":{"mimeType":"image/png","data":"BBBB"}}]}}]}))
            .unwrap();
        assert_eq!(images_from_answer(&resp)[0].b64, "BBBB");
    }

    #[test]
    fn chat_with_an_image_model_asks_for_images() {
        let mut config = None;
        assert!(!shape_chat(
            ChatImageOutput::Parts,
            "gemini-2.5-flash",
            &mut config
        ));
        assert!(config.is_none());
        assert!(!shape_chat(
            ChatImageOutput::Markdown,
            "gemini-2.5-flash-image",
            &mut config
        ));
        assert_eq!(
            config.as_ref().map(|c| c.response_modalities.clone()),
            Some(vec!["TEXT".to_owned(), "IMAGE".to_owned()])
        );
        let mut chosen = Some(GenerationConfig {
            response_modalities: vec!["IMAGE".to_owned()],
            ..GenerationConfig::default()
        });
        assert!(shape_chat(
            ChatImageOutput::Parts,
            "gemini-2.5-flash-image",
            &mut chosen
        ));
        assert_eq!(
            chosen.map(|c| c.response_modalities),
            Some(vec!["IMAGE".to_owned()])
        );
        let part = image_part(&Blob {
            mime_type: "image/png".into(),
            data: "AAAA".into(),
        });
        assert_eq!(part["image_url"]["url"], "data:image/png;base64,AAAA");
    }

    #[test]
    fn usage_and_storage_rules() {
        let reported = Usage {
            prompt_tokens: 10,
            completion_tokens: 2581,
            reasoning_tokens: 0,
        };
        let per = usage_per_image(ModelKind::Gemini, reported, 3, 2);
        assert_eq!((per.prompt_tokens, per.completion_tokens), (5, 1291));
        let per = usage_per_image(ModelKind::Imagen, Usage::default(), 3, 2);
        assert_eq!(per.prompt_tokens, 3);
        let stored = StoredImage {
            mime_type: "image/png".into(),
            expires_at_ms: 1_000,
        };
        assert!(!stored.expired(999));
        assert!(stored.expired(1_000));
        assert_eq!(kv_ttl_secs(1), 60);
        assert_eq!(kv_ttl_secs(3_600), 3_600);
        assert!(valid_image_id("0123456789abcdef0123456789abcdef"));
        assert!(!valid_image_id("0123456789ABCDEF0123456789abcdef"));
        assert!(!valid_image_id("../x"));
    }
}
