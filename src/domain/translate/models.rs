//! Gemini model listings → `OpenAI` `model` objects.
//!
//! Must not do I/O or read a clock: `created` is passed in, since Gemini reports no dates.

use crate::domain::translate::thinking::{self, Family, ModelVariant};
use crate::domain::{gemini, openai};

/// The `OpenAI` `list` of models, in upstream order. Each model that thinks (Gemini 2.5, 3 and
/// the `-latest` aliases) and generates content is followed by its configured suffix variants
/// (`-search`, `-nothinking`, …), so chat apps that pick models from the list can offer them.
pub fn model_list(
    models: &[gemini::Model],
    created: u64,
    variants: &[String],
) -> openai::ModelList {
    let mut data = Vec::with_capacity(models.len() * (1 + variants.len()));
    for model in models {
        let object = model_object(model, created);
        let generates = model
            .supported_generation_methods
            .iter()
            .any(|m| m == "generateContent");
        let with_variants = generates && thinking::family(&object.id) != Family::None;
        let id = object.id.clone();
        data.push(object);
        if with_variants {
            data.extend(variants.iter().map(|suffix| openai::Model {
                id: format!("{id}{suffix}"),
                object: openai::Object::Model,
                created,
                owned_by: "google".to_owned(),
            }));
        }
    }
    openai::ModelList {
        object: openai::Object::List,
        data,
    }
}

/// Whether `suffix` is a combination of the gateway's model suffixes, and nothing else.
pub fn is_variant_suffix(suffix: &str) -> bool {
    let base = "gemini-2.5-flash";
    let variant = ModelVariant::parse(&format!("{base}{suffix}"));
    !suffix.is_empty() && variant.base == base
}

/// One `OpenAI` `model`: the bare id (`models/` stripped), owned by `google`.
pub fn model_object(model: &gemini::Model, created: u64) -> openai::Model {
    openai::Model {
        id: model.name.as_str().to_owned(),
        object: openai::Object::Model,
        created,
        owned_by: "google".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gemini_listing_becomes_openai_model_list() {
        let listing: gemini::ListModelsResponse = serde_json::from_value(json!({"models": [
            {"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash",
             "supportedGenerationMethods": ["generateContent"]},
            {"name": "models/gemini-embedding-001"}
        ]}))
        .unwrap();
        assert_eq!(
            serde_json::to_value(model_list(&listing.models, 1_700_000_000, &[])).unwrap(),
            json!({"object": "list", "data": [
                {"id": "gemini-2.5-flash", "object": "model", "created": 1_700_000_000, "owned_by": "google"},
                {"id": "gemini-embedding-001", "object": "model", "created": 1_700_000_000, "owned_by": "google"}
            ]})
        );
    }

    #[test]
    fn configured_variants_follow_each_model_that_thinks() {
        let listing: gemini::ListModelsResponse = serde_json::from_value(json!({"models": [
            {"name": "models/gemini-2.5-flash", "supportedGenerationMethods": ["generateContent"]},
            {"name": "models/gemini-2.0-flash", "supportedGenerationMethods": ["generateContent"]},
            {"name": "models/gemini-embedding-001", "supportedGenerationMethods": ["embedContent"]},
            {"name": "models/gemini-3-pro-preview", "supportedGenerationMethods": ["generateContent"]}
        ]}))
        .unwrap();
        let variants = vec!["-search".to_owned(), "-nothinking".to_owned()];
        let ids: Vec<String> = model_list(&listing.models, 1, &variants)
            .data
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(
            ids,
            [
                "gemini-2.5-flash",
                "gemini-2.5-flash-search",
                "gemini-2.5-flash-nothinking",
                "gemini-2.0-flash",
                "gemini-embedding-001",
                "gemini-3-pro-preview",
                "gemini-3-pro-preview-search",
                "gemini-3-pro-preview-nothinking",
            ]
        );
    }

    #[test]
    fn only_gateway_suffixes_are_variants() {
        for good in [
            "-search",
            "-nothinking",
            "-maxthinking",
            "-thinking-4096",
            "-thinking-4096-search",
            "-non-thinking",
            "-max",
            "-high",
            "-medium",
            "-low",
            "-minimal",
            "-code",
            "-urlcontext",
            "-high-search-code",
        ] {
            assert!(is_variant_suffix(good), "{good}");
        }
        for bad in [
            "",
            "-pro",
            "search",
            "-search-x",
            "-thinking-",
            "/x",
            "-low-high",
            "-code-code",
            "-xhigh",
        ] {
            assert!(!is_variant_suffix(bad), "{bad}");
        }
    }
}
