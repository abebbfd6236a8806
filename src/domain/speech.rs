//! `POST /v1/audio/speech` on Gemini TTS: the request's checks, `OpenAI` voices → Gemini's
//! prebuilt voices, the upstream body, and the PCM Gemini returns wrapped as WAV (or sent raw).
//! No mp3/opus/aac/flac: no encoder for them runs in the worker.

use serde_json::{Map, Value, json};

use super::error::GatewayError;
use super::gemini::{GenerateContentResponse, PartData};
use super::translate::json_object;

/// The Gemini TTS model `OpenAI`'s model names (`tts-1`, …) go to.
pub const DEFAULT_TTS_MODEL: &str = "gemini-2.5-flash-preview-tts";
/// Longest input, in characters (`OpenAI`'s limit).
pub const MAX_INPUT_CHARS: usize = 4_096;
/// Gemini's PCM, when its MIME type names no rate.
pub const DEFAULT_RATE: u32 = 24_000;

/// `OpenAI`'s voices and the Gemini voice each one is served by.
pub const OPENAI_VOICES: &[(&str, &str)] = &[
    ("alloy", "Zephyr"),
    ("ash", "Charon"),
    ("ballad", "Aoede"),
    ("coral", "Leda"),
    ("echo", "Puck"),
    ("fable", "Fenrir"),
    ("nova", "Kore"),
    ("onyx", "Orus"),
    ("sage", "Schedar"),
    ("shimmer", "Callirrhoe"),
    ("verse", "Achird"),
];

/// Gemini's prebuilt voices.
pub const GEMINI_VOICES: &[&str] = &[
    "Zephyr",
    "Puck",
    "Charon",
    "Kore",
    "Fenrir",
    "Leda",
    "Orus",
    "Aoede",
    "Callirrhoe",
    "Autonoe",
    "Enceladus",
    "Iapetus",
    "Umbriel",
    "Algieba",
    "Despina",
    "Erinome",
    "Algenib",
    "Rasalgethi",
    "Laomedeia",
    "Achernar",
    "Alnilam",
    "Schedar",
    "Gacrux",
    "Pulcherrima",
    "Achird",
    "Zubenelgenubi",
    "Vindemiatrix",
    "Sadachbia",
    "Sadaltager",
    "Sulafat",
];

/// `OpenAI` model names served by [`DEFAULT_TTS_MODEL`].
const OPENAI_MODELS: [&str; 3] = ["tts-1", "tts-1-hd", "gpt-4o-mini-tts"];

/// What the client gets: a WAV file, or the raw 16-bit little-endian PCM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    Wav,
    Pcm,
}

impl AudioFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Wav => "audio/wav",
            Self::Pcm => "audio/pcm",
        }
    }
}

/// A checked speech request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeechRequest {
    pub model: String,
    /// The text spoken, with `instructions` (if any) before it as Gemini's style prompt.
    pub text: String,
    pub voice: &'static str,
    pub format: AudioFormat,
}

/// The Gemini voice for an `OpenAI` voice name or a Gemini one, case-insensitively.
pub fn gemini_voice(name: &str) -> Option<&'static str> {
    let name = name.trim();
    OPENAI_VOICES
        .iter()
        .find(|(openai, _)| openai.eq_ignore_ascii_case(name))
        .map(|(_, gemini)| *gemini)
        .or_else(|| {
            GEMINI_VOICES
                .iter()
                .find(|v| v.eq_ignore_ascii_case(name))
                .copied()
        })
}

/// The upstream model for a request's `model`: `OpenAI`'s TTS names go to the default.
pub fn upstream_model(model: &str) -> String {
    if OPENAI_MODELS.contains(&model) {
        DEFAULT_TTS_MODEL.to_owned()
    } else {
        model.to_owned()
    }
}

fn text_field<'a>(
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

fn required<'a>(object: &'a Map<String, Value>, name: &str) -> Result<&'a str, GatewayError> {
    text_field(object, name)?
        .ok_or_else(|| GatewayError::invalid_param(format!("{name}: this field is required"), name))
}

/// Parses and checks a request body.
pub fn parse(body: &[u8]) -> Result<SpeechRequest, GatewayError> {
    let object = json_object(body)?;
    let model = required(&object, "model")?;
    if model.trim().is_empty() {
        return Err(GatewayError::invalid_param(
            "model: must not be empty",
            "model",
        ));
    }
    let input = required(&object, "input")?;
    if input.trim().is_empty() {
        return Err(GatewayError::invalid_param(
            "input: must not be empty",
            "input",
        ));
    }
    if input.chars().count() > MAX_INPUT_CHARS {
        return Err(GatewayError::invalid_param(
            format!("input: at most {MAX_INPUT_CHARS} characters"),
            "input",
        ));
    }
    let voice_name = required(&object, "voice")?;
    let voice = gemini_voice(voice_name).ok_or_else(|| {
        let openai: Vec<&str> = OPENAI_VOICES.iter().map(|(o, _)| *o).collect();
        GatewayError::invalid_param(
            format!(
                "voice: `{voice_name}` is not a voice; use one of {} or a Gemini voice ({}).",
                openai.join(", "),
                GEMINI_VOICES.join(", ")
            ),
            "voice",
        )
    })?;
    let format = match text_field(&object, "response_format")? {
        None | Some("wav") => AudioFormat::Wav,
        Some("pcm") => AudioFormat::Pcm,
        Some(other @ ("mp3" | "opus" | "aac" | "flac")) => {
            return Err(GatewayError::invalid_param(
                format!(
                    "response_format: `{other}` is not supported; this gateway returns wav or pcm (it has no {other} encoder)."
                ),
                "response_format",
            ));
        }
        Some(other) => {
            return Err(GatewayError::invalid_param(
                format!("response_format: `{other}` is not one of wav, pcm"),
                "response_format",
            ));
        }
    };
    match object.get("speed") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_f64() == Some(1.0) => {}
        Some(_) => {
            return Err(GatewayError::invalid_param(
                "speed: Gemini TTS has no speed setting; only 1 is accepted (ask for a pace in `instructions`).",
                "speed",
            ));
        }
    }
    match text_field(&object, "stream_format")? {
        None | Some("audio") => {}
        Some(other) => {
            return Err(GatewayError::invalid_param(
                format!("stream_format: `{other}` is not supported; only audio is"),
                "stream_format",
            ));
        }
    }
    let text = match text_field(&object, "instructions")?.map(str::trim) {
        Some(instructions) if !instructions.is_empty() => format!("{instructions}: {input}"),
        _ => input.to_owned(),
    };
    Ok(SpeechRequest {
        model: upstream_model(model),
        text,
        voice,
        format,
    })
}

impl SpeechRequest {
    /// The `generateContent` body: audio output in the chosen prebuilt voice.
    pub fn upstream_body(&self) -> Value {
        json!({
            "contents": [{"role": "user", "parts": [{"text": self.text}]}],
            "generationConfig": {
                "responseModalities": ["AUDIO"],
                "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": self.voice}}},
            },
        })
    }

    /// Prompt tokens a request is estimated at: a quarter of the text's bytes.
    pub fn prompt_tokens(&self) -> u64 {
        (self.text.len() as u64).div_ceil(4)
    }
}

/// The sample rate and channels of a PCM MIME type (`audio/L16;codec=pcm;rate=24000`,
/// `audio/pcm`); `None` for anything else.
pub fn pcm_format(mime: &str) -> Option<(u32, u16)> {
    let mut params = mime.split(';').map(str::trim);
    let base = params.next()?.to_ascii_lowercase();
    if base != "audio/l16" && base != "audio/pcm" {
        return None;
    }
    let mut rate = DEFAULT_RATE;
    let mut channels = 1;
    for param in params {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "rate" => rate = value.trim().parse().ok().filter(|r| *r > 0)?,
            "channels" => channels = value.trim().parse().ok().filter(|c| *c > 0)?,
            _ => {}
        }
    }
    Some((rate, channels))
}

/// The audio of a TTS answer: its PCM `inlineData` parts, base64 as sent, with their format.
/// Every part must share the first one's format.
pub fn audio_from_answer(
    resp: &GenerateContentResponse,
) -> Result<(Vec<String>, u32, u16), GatewayError> {
    let mut chunks = Vec::new();
    let mut format = None;
    let parts = resp
        .candidates
        .iter()
        .take(1)
        .filter_map(|c| c.content.as_ref())
        .flat_map(|c| c.parts.iter());
    for part in parts {
        let PartData::InlineData(blob) = &part.data else {
            continue;
        };
        let Some(this) = pcm_format(&blob.mime_type) else {
            return Err(GatewayError::BadGateway(format!(
                "The upstream model returned audio as `{}`, which is not PCM.",
                blob.mime_type
            )));
        };
        if *format.get_or_insert(this) != this {
            return Err(GatewayError::BadGateway(
                "The upstream model returned audio parts in different formats.".into(),
            ));
        }
        chunks.push(blob.data.clone());
    }
    let (rate, channels) = format
        .ok_or_else(|| GatewayError::BadGateway("The upstream model returned no audio.".into()))?;
    Ok((chunks, rate, channels))
}

/// The 44-byte header of a 16-bit PCM WAV file holding `data_len` bytes of samples.
pub fn wav_header(data_len: u32, rate: u32, channels: u16) -> [u8; 44] {
    const BITS: u16 = 16;
    let block_align = channels * (BITS / 8);
    let byte_rate = rate * u32::from(block_align);
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&data_len.saturating_add(36).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes());
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&rate.to_le_bytes());
    h[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    h[32..34].copy_from_slice(&block_align.to_le_bytes());
    h[34..36].copy_from_slice(&BITS.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_len.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voices_map_from_openai_and_gemini_names() {
        assert_eq!(gemini_voice("alloy"), Some("Zephyr"));
        assert_eq!(gemini_voice("NOVA"), Some("Kore"));
        assert_eq!(gemini_voice("puck"), Some("Puck"));
        assert_eq!(gemini_voice("Sulafat"), Some("Sulafat"));
        assert_eq!(gemini_voice("bob"), None);
        for (_, gemini) in OPENAI_VOICES {
            assert!(GEMINI_VOICES.contains(gemini), "{gemini}");
        }
    }

    #[test]
    fn requests_are_checked() {
        let req = parse(br#"{"model":"tts-1","input":"hi","voice":"alloy"}"#).unwrap();
        assert_eq!(req.model, DEFAULT_TTS_MODEL);
        assert_eq!((req.voice, req.format), ("Zephyr", AudioFormat::Wav));
        assert_eq!(
            req.upstream_body()["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]
                ["voiceName"],
            "Zephyr"
        );
        let req = parse(
            br#"{"model":"gemini-2.5-pro-preview-tts","input":"hi","voice":"Kore","response_format":"pcm","instructions":"Say cheerfully"}"#,
        )
        .unwrap();
        assert_eq!(req.model, "gemini-2.5-pro-preview-tts");
        assert_eq!(req.format, AudioFormat::Pcm);
        assert_eq!(req.text, "Say cheerfully: hi");
        let param = |body: &[u8]| match parse(body) {
            Err(GatewayError::InvalidRequest { param, message }) => (param, message),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            param(br#"{"model":"tts-1","voice":"alloy"}"#).0.as_deref(),
            Some("input")
        );
        assert_eq!(
            param(br#"{"model":"tts-1","input":" ","voice":"alloy"}"#)
                .0
                .as_deref(),
            Some("input")
        );
        assert_eq!(
            param(br#"{"model":"tts-1","input":"x","voice":"bob"}"#)
                .0
                .as_deref(),
            Some("voice")
        );
        assert_eq!(
            param(br#"{"model":"tts-1","input":"x"}"#).0.as_deref(),
            Some("voice")
        );
        assert_eq!(
            param(br#"{"input":"x","voice":"alloy"}"#).0.as_deref(),
            Some("model")
        );
        let (p, message) =
            param(br#"{"model":"tts-1","input":"x","voice":"alloy","response_format":"mp3"}"#);
        assert_eq!(p.as_deref(), Some("response_format"));
        assert!(
            message.contains("wav") && message.contains("pcm"),
            "{message}"
        );
        assert_eq!(
            param(br#"{"model":"tts-1","input":"x","voice":"alloy","speed":2}"#)
                .0
                .as_deref(),
            Some("speed")
        );
        assert!(parse(br#"{"model":"tts-1","input":"x","voice":"alloy","speed":1}"#).is_ok());
    }

    #[test]
    fn pcm_formats_are_read_from_the_mime_type() {
        assert_eq!(
            pcm_format("audio/L16;codec=pcm;rate=24000"),
            Some((24_000, 1))
        );
        assert_eq!(
            pcm_format("audio/l16; rate=16000; channels=2"),
            Some((16_000, 2))
        );
        assert_eq!(pcm_format("audio/pcm"), Some((DEFAULT_RATE, 1)));
        assert_eq!(pcm_format("audio/mpeg"), None);
        assert_eq!(pcm_format("audio/L16;rate=0"), None);
    }

    #[test]
    fn wav_header_describes_the_pcm() {
        let h = wav_header(48_000, 24_000, 1);
        assert_eq!(&h[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes([h[4], h[5], h[6], h[7]]), 48_036);
        assert_eq!(&h[8..16], b"WAVEfmt ");
        assert_eq!(u16::from_le_bytes([h[20], h[21]]), 1);
        assert_eq!(u16::from_le_bytes([h[22], h[23]]), 1);
        assert_eq!(u32::from_le_bytes([h[24], h[25], h[26], h[27]]), 24_000);
        assert_eq!(u32::from_le_bytes([h[28], h[29], h[30], h[31]]), 48_000);
        assert_eq!(u16::from_le_bytes([h[32], h[33]]), 2);
        assert_eq!(u16::from_le_bytes([h[34], h[35]]), 16);
        assert_eq!(&h[36..40], b"data");
        assert_eq!(u32::from_le_bytes([h[40], h[41], h[42], h[43]]), 48_000);
    }

    #[test]
    fn audio_is_read_from_the_answer() {
        let resp: GenerateContentResponse =
            serde_json::from_value(json!({"candidates":[{"content":{"role":"model","parts":[
            {"inlineData":{"mimeType":"audio/L16;codec=pcm;rate=24000","data":"AAAA"}}]}}]}))
            .unwrap();
        let (chunks, rate, channels) = audio_from_answer(&resp).unwrap();
        assert_eq!(
            (chunks, rate, channels),
            (vec!["AAAA".to_owned()], 24_000, 1)
        );
        let empty: GenerateContentResponse =
            serde_json::from_value(json!({"candidates":[]})).unwrap();
        assert!(audio_from_answer(&empty).is_err());
    }
}
