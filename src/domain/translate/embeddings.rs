//! `OpenAI` embeddings → Gemini `batchEmbedContents` and back.
//!
//! Must not do I/O or read a clock; the edge sends the prepared body and hands the answer back.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::domain::error::GatewayError;
use crate::domain::gemini::{self, ModelName, Part};
use crate::domain::openai::{
    self, EmbeddingInput, EmbeddingRequest, EmbeddingVector, EncodingFormat,
};
use crate::domain::translate::{
    Check, check, field_error, first_field_error, json_object, required,
};

/// A validated request, ready for `POST /v1beta/models/{upstream_model}:batchEmbedContents`.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedEmbeddings {
    /// Bare model id, without `models/`.
    pub upstream_model: String,
    pub body: gemini::BatchEmbedContentsRequest,
    pub encoding: EncodingFormat,
}

/// Google's cap on requests in one `batchEmbedContents` call.
pub const MAX_UPSTREAM_BATCH: usize = 100;
/// `OpenAI`'s cap on inputs in one embeddings request.
pub const MAX_INPUTS: usize = 2048;

impl PreparedEmbeddings {
    /// The upstream calls this request needs, in input order: Google takes
    /// at most [`MAX_UPSTREAM_BATCH`] requests per call, `OpenAI` clients send
    /// up to [`MAX_INPUTS`].
    pub fn upstream_batches(&self) -> Vec<gemini::BatchEmbedContentsRequest> {
        self.body
            .requests
            .chunks(MAX_UPSTREAM_BATCH)
            .map(|chunk| gemini::BatchEmbedContentsRequest {
                requests: chunk.to_vec(),
            })
            .collect()
    }

    /// `batchEmbedContents` reports no token counts, so usage is estimated as
    /// `ceil(chars / 4)` per input, `OpenAI`'s rule of thumb for English text.
    pub fn prompt_tokens_estimate(&self) -> u64 {
        self.body
            .requests
            .iter()
            .flat_map(|r| &r.content.parts)
            .filter_map(|p| match &p.data {
                gemini::PartData::Text(text) => Some(text.chars().count() as u64),
                _ => None,
            })
            .map(|chars| chars.div_ceil(4))
            .sum()
    }
}

const FIELDS: &[(&str, Check)] = &[
    ("model", check::<String>),
    ("input", check::<EmbeddingInput>),
    ("dimensions", check::<Option<u32>>),
    ("encoding_format", check::<Option<EncodingFormat>>),
    ("user", check::<Option<String>>),
];

/// Parses an embeddings request body; errors name the failing field.
pub fn parse_embeddings_request(body: &[u8]) -> Result<EmbeddingRequest, GatewayError> {
    match serde_json::from_slice(body) {
        Ok(request) => Ok(request),
        Err(err) => {
            let object = json_object(body)?;
            let missing = ["model", "input"]
                .into_iter()
                .find(|name| !object.contains_key(*name))
                .map(required);
            Err(missing
                .or_else(|| first_field_error(&object, FIELDS, ""))
                .unwrap_or_else(|| field_error("", &err)))
        }
    }
}

/// Validates and translates. Unknown fields (`extra`) are ignored.
pub fn prepare_embeddings(req: EmbeddingRequest) -> Result<PreparedEmbeddings, GatewayError> {
    let model = ModelName::parse(&req.model)?;
    if req.dimensions == Some(0) {
        return Err(GatewayError::invalid_param(
            "dimensions must be at least 1",
            "dimensions",
        ));
    }
    let texts = input_texts(req.input)?;
    let requests = texts
        .into_iter()
        .map(|text| gemini::EmbedContentRequest {
            model: Some(model.clone()),
            content: gemini::Content {
                role: None,
                parts: vec![Part::text(text)],
            },
            output_dimensionality: req.dimensions,
            ..gemini::EmbedContentRequest::default()
        })
        .collect();
    Ok(PreparedEmbeddings {
        upstream_model: model.as_str().to_owned(),
        body: gemini::BatchEmbedContentsRequest { requests },
        encoding: req.encoding_format.unwrap_or_default(),
    })
}

fn input_texts(input: EmbeddingInput) -> Result<Vec<String>, GatewayError> {
    let texts = match input {
        EmbeddingInput::Text(text) => vec![text],
        EmbeddingInput::Texts(texts) => texts,
        EmbeddingInput::Tokens(_) | EmbeddingInput::TokenBatches(_) => {
            return Err(GatewayError::invalid_param(
                "token arrays are not supported; send input as a string or an array of strings",
                "input",
            ));
        }
    };
    if texts.is_empty() {
        return Err(GatewayError::invalid_param(
            "input must not be empty",
            "input",
        ));
    }
    if texts.len() > MAX_INPUTS {
        return Err(GatewayError::invalid_param(
            format!("input must have at most {MAX_INPUTS} items"),
            "input",
        ));
    }
    if let Some(i) = texts.iter().position(String::is_empty) {
        let param = format!("input[{i}]");
        return Err(GatewayError::invalid_param(
            format!("{param} must not be an empty string"),
            param,
        ));
    }
    Ok(texts)
}

/// Translates Gemini's embeddings, in input order.
pub fn embeddings_response(
    resp: gemini::BatchEmbedContentsResponse,
    client_model: &str,
    encoding: EncodingFormat,
    prompt_tokens_estimate: u64,
) -> openai::EmbeddingResponse {
    let data = resp
        .embeddings
        .into_iter()
        .zip(0u32..)
        .map(|(embedding, index)| openai::Embedding {
            object: openai::Object::Embedding,
            index,
            embedding: vector(embedding.values, encoding),
        })
        .collect();
    openai::EmbeddingResponse {
        object: openai::Object::List,
        data,
        model: client_model.to_owned(),
        usage: openai::EmbeddingUsage {
            prompt_tokens: prompt_tokens_estimate,
            total_tokens: prompt_tokens_estimate,
        },
    }
}

/// Base64 is of the little-endian `f32` bytes, as `OpenAI` encodes it.
fn vector(values: Vec<f32>, encoding: EncodingFormat) -> EmbeddingVector {
    match encoding {
        EncodingFormat::Float => EmbeddingVector::Float(values),
        EncodingFormat::Base64 => {
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            EmbeddingVector::Base64(STANDARD.encode(bytes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[expect(clippy::needless_pass_by_value, reason = "called with json! literals")]
    fn prepare(body: Value) -> Result<PreparedEmbeddings, GatewayError> {
        prepare_embeddings(parse_embeddings_request(body.to_string().as_bytes())?)
    }

    #[test]
    fn string_and_string_array_inputs_become_batch_requests() {
        let cases = [
            (
                json!({"model": "gemini-embedding-001", "input": "hello"}),
                json!({"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "hello"}]}}]}),
            ),
            (
                json!({"model": "models/gemini-embedding-001", "input": ["a", "b"], "dimensions": 256,
                       "encoding_format": "base64", "user": "u", "unknown": 1}),
                json!({"requests": [
                    {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 256},
                    {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}, "outputDimensionality": 256}
                ]}),
            ),
        ];
        for (body, want) in cases {
            let prepared = prepare(body).unwrap();
            assert_eq!(prepared.upstream_model, "gemini-embedding-001");
            assert_eq!(serde_json::to_value(&prepared.body).unwrap(), want);
        }
        assert_eq!(
            prepare(json!({"model": "m", "input": "x", "encoding_format": "base64"}))
                .unwrap()
                .encoding,
            EncodingFormat::Base64
        );
        assert_eq!(
            prepare(json!({"model": "m", "input": "x"}))
                .unwrap()
                .encoding,
            EncodingFormat::Float
        );
    }

    #[test]
    fn invalid_inputs_are_rejected_with_the_param_named() {
        let cases = [
            (
                json!({"model": "m", "input": [1, 2, 3]}),
                "input",
                "token arrays are not supported",
            ),
            (
                json!({"model": "m", "input": [[1], [2]]}),
                "input",
                "token arrays are not supported",
            ),
            (
                json!({"model": "m", "input": []}),
                "input",
                "must not be empty",
            ),
            (
                json!({"model": "m", "input": ""}),
                "input[0]",
                "empty string",
            ),
            (
                json!({"model": "m", "input": ["a", ""]}),
                "input[1]",
                "empty string",
            ),
            (
                json!({"model": "m", "input": "a", "dimensions": 0}),
                "dimensions",
                "at least 1",
            ),
            (json!({"model": "", "input": "a"}), "model", "non-empty"),
            (json!({"input": "a"}), "model", "required"),
            (json!({"model": "m"}), "input", "required"),
            (
                json!({"model": "m", "input": {"text": "a"}}),
                "input",
                "expected a string",
            ),
            (
                json!({"model": "m", "input": ["a", 1]}),
                "input",
                "expected a string",
            ),
            (
                json!({"model": "m", "input": "a", "encoding_format": "int8"}),
                "encoding_format",
                "unknown variant",
            ),
        ];
        for (body, param, message) in cases {
            let err = prepare(body.clone()).unwrap_err();
            assert_eq!(err.openai_param(), Some(param), "{body}: {err:?}");
            assert!(err.client_message().contains(message), "{body}: {err:?}");
        }
        assert!(
            parse_embeddings_request(b"")
                .unwrap_err()
                .client_message()
                .contains("empty")
        );
    }

    #[test]
    fn float_response_matches_openai_shape() {
        let resp: gemini::BatchEmbedContentsResponse = serde_json::from_value(
            json!({"embeddings": [{"values": [0.25, -1.5]}, {"values": [0.002_306_425_5]}]}),
        )
        .unwrap();
        let wire = serde_json::to_string(&embeddings_response(
            resp,
            "text-embedding-3-small",
            EncodingFormat::Float,
            3,
        ))
        .unwrap();
        assert!(
            wire.contains("[0.0023064255]"),
            "f32 values are written in shortest f32 form: {wire}"
        );
        let got: Value = serde_json::from_str(&wire).unwrap();
        assert_eq!(
            got,
            json!({
                "object": "list", "model": "text-embedding-3-small",
                "data": [
                    {"object": "embedding", "index": 0, "embedding": [0.25, -1.5]},
                    {"object": "embedding", "index": 1, "embedding": [0.002_306_425_5]}
                ],
                "usage": {"prompt_tokens": 3, "total_tokens": 3}
            })
        );
    }

    #[test]
    fn base64_response_is_little_endian_f32_bytes() {
        let resp = gemini::BatchEmbedContentsResponse {
            embeddings: vec![gemini::ContentEmbedding {
                values: vec![1.0, -2.5],
            }],
        };
        let got = embeddings_response(resp, "m", EncodingFormat::Base64, 1);
        let openai::EmbeddingVector::Base64(encoded) = &got.data[0].embedding else {
            panic!("base64 expected")
        };
        let bytes = STANDARD.decode(encoded).unwrap();
        let floats: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(floats, [1.0, -2.5]);
        assert_eq!(encoded, "AACAPwAAIMA=");
    }

    #[test]
    fn token_estimate_is_ceil_chars_over_four_per_input() {
        let prepared =
            prepare(json!({"model": "m", "input": ["abcde", "héllo wörld", "a"]})).unwrap();
        assert_eq!(prepared.prompt_tokens_estimate(), 2 + 3 + 1);
    }

    #[test]
    fn large_inputs_are_split_into_upstream_batches_of_100_in_order() {
        let input: Vec<String> = (0..250).map(|i| format!("text {i}")).collect();
        let req: EmbeddingRequest = serde_json::from_value(serde_json::json!({
            "model": "gemini-embedding-001", "input": input,
        }))
        .unwrap();
        let prepared = prepare_embeddings(req).unwrap();
        let batches = prepared.upstream_batches();
        let sizes: Vec<usize> = batches.iter().map(|b| b.requests.len()).collect();
        assert_eq!(sizes, vec![100, 100, 50]);
        let texts: Vec<String> = batches
            .iter()
            .flat_map(|b| &b.requests)
            .map(|r| match &r.content.parts[0].data {
                gemini::PartData::Text(t) => t.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(texts, input);
    }

    #[test]
    fn more_than_2048_inputs_are_refused() {
        let input: Vec<String> = (0..=MAX_INPUTS).map(|i| i.to_string()).collect();
        let req: EmbeddingRequest = serde_json::from_value(serde_json::json!({
            "model": "gemini-embedding-001", "input": input,
        }))
        .unwrap();
        assert_eq!(prepare_embeddings(req).unwrap_err().status(), 400);
    }
}
