//! The operator's model catalog: aliases (names clients may use for a model),
//! disabled models (neither listed nor served), per-model thinking defaults,
//! and an optional default model for names the upstream does not know. Stored
//! flat in the runtime settings; applied on the `OpenAI` and native surfaces
//! alike. Pure: the upstream list is passed in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::GatewayError;
use super::gemini::{self, ThinkingConfig};
use super::quota::{ModelCost, Price, glob_match, price_for};
use super::route::check_model_id;
use super::translate::thinking::{Family, family, from_default};

/// A thinking default for the models a glob matches (first matching row wins). It applies
/// when a request sets no thinking of its own; a budget only to models that take budgets,
/// a level only to models that take levels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThinkingDefault {
    pub pattern: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_budget: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_thoughts: Option<bool>,
}

/// The catalog settings (stored flat beside the other settings).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Catalog {
    /// Alias → model. An alias is listed in `/v1/models` and served as its model.
    pub model_aliases: BTreeMap<String, String>,
    /// Globs of models that are neither listed nor served.
    pub disabled_models: Vec<String>,
    pub thinking_defaults: Vec<ThinkingDefault>,
    /// Answers model names the upstream does not know (off by default: an unknown model is a
    /// clear 404).
    pub default_model: Option<String>,
}

const MAX_ALIASES: usize = 500;
const MAX_PATTERNS: usize = 200;
const MAX_PATTERN_LEN: usize = 200;
const LEVELS: [&str; 4] = ["minimal", "low", "medium", "high"];

fn invalid(field: &str, why: impl std::fmt::Display) -> GatewayError {
    GatewayError::invalid_param(format!("`{field}`: {why}"), field)
}

impl Catalog {
    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<(), GatewayError> {
        let aliases = "model_aliases";
        if self.model_aliases.len() > MAX_ALIASES {
            return Err(invalid(aliases, format!("at most {MAX_ALIASES} aliases.")));
        }
        for (alias, model) in &self.model_aliases {
            for name in [alias, model] {
                check_model_id(name).map_err(|why| {
                    invalid(aliases, format!("`{name}` is not a model name ({why})."))
                })?;
            }
            if alias == model {
                return Err(invalid(aliases, format!("`{alias}` names itself.")));
            }
            if self.model_aliases.contains_key(model) {
                return Err(invalid(
                    aliases,
                    format!(
                        "`{alias}` points at `{model}`, which is an alias itself; point it at a model."
                    ),
                ));
            }
        }
        let globs = |field: &str, patterns: &mut dyn Iterator<Item = &String>| {
            let patterns: Vec<&String> = patterns.collect();
            if patterns.len() > MAX_PATTERNS {
                return Err(invalid(field, format!("at most {MAX_PATTERNS} rows.")));
            }
            match patterns
                .into_iter()
                .find(|p| p.trim().is_empty() || p.len() > MAX_PATTERN_LEN)
            {
                Some(bad) => Err(invalid(
                    field,
                    format!(
                        "patterns are non-empty globs of at most {MAX_PATTERN_LEN} characters, not `{bad}`."
                    ),
                )),
                None => Ok(()),
            }
        };
        globs("disabled_models", &mut self.disabled_models.iter())?;
        globs(
            "thinking_defaults",
            &mut self.thinking_defaults.iter().map(|d| &d.pattern),
        )?;
        for row in &self.thinking_defaults {
            let field = "thinking_defaults";
            match (row.thinking_budget, row.thinking_level.as_deref()) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        field,
                        format!("`{}` sets both a budget and a level.", row.pattern),
                    ));
                }
                (Some(budget), None) if !(-1..=32_768).contains(&budget) => {
                    return Err(invalid(
                        field,
                        format!("a budget is -1 (dynamic) to 32768, not {budget}."),
                    ));
                }
                (None, Some(level)) if !LEVELS.contains(&level) => {
                    return Err(invalid(
                        field,
                        format!("a level is minimal, low, medium or high, not `{level}`."),
                    ));
                }
                _ => {}
            }
        }
        if let Some(model) = &self.default_model {
            check_model_id(model).map_err(|why| {
                invalid(
                    "default_model",
                    format!("`{model}` is not a model name ({why})."),
                )
            })?;
        }
        Ok(())
    }

    pub fn is_disabled(&self, model: &str) -> bool {
        self.disabled_models
            .iter()
            .any(|glob| glob_match(glob, model))
    }

    /// The model a client's name stands for. An alias becomes its model; a disabled model
    /// (however it was named) is not found; with a default model set, a name the upstream
    /// does not know (`known` says) becomes the default. `base` strips the gateway's name
    /// suffixes (`-search`, `-nothinking`, …) so a variant of a disabled model is refused too.
    pub fn resolve(
        &self,
        requested: &str,
        base: impl Fn(&str) -> String,
        known: Option<&dyn Fn(&str) -> bool>,
    ) -> Result<String, GatewayError> {
        let not_found = || GatewayError::ModelNotFound(requested.to_owned());
        let mut model = self
            .model_aliases
            .get(requested)
            .cloned()
            .unwrap_or_else(|| requested.to_owned());
        if let (Some(default), Some(known)) = (&self.default_model, known)
            && !known(&base(&model))
        {
            model.clone_from(default);
        }
        if self.is_disabled(&base(&model)) {
            return Err(not_found());
        }
        Ok(model)
    }

    /// The thinking default of `model`, if a row matches it.
    pub fn thinking_default(&self, model: &str) -> Option<&ThinkingDefault> {
        self.thinking_defaults
            .iter()
            .find(|row| glob_match(&row.pattern, model))
    }

    /// The aliases pointing at `model`.
    pub fn aliases_of(&self, model: &str) -> Vec<String> {
        self.model_aliases
            .iter()
            .filter(|(_, target)| *target == model)
            .map(|(alias, _)| alias.clone())
            .collect()
    }

    /// An upstream model list as clients see it: disabled models gone, each alias listed
    /// right after its model (a copy under the alias's name).
    pub fn listing(&self, models: &[gemini::Model]) -> Vec<gemini::Model> {
        let mut out = Vec::with_capacity(models.len() + self.model_aliases.len());
        for model in models {
            let id = model.name.as_str();
            if self.is_disabled(id) {
                continue;
            }
            out.push(model.clone());
            for alias in self.aliases_of(id) {
                if let Ok(name) = gemini::ModelName::parse(&alias) {
                    out.push(gemini::Model {
                        name,
                        ..model.clone()
                    });
                }
            }
        }
        out
    }
}

/// Adds the operator's thinking default for `model` to a native generate request (its JSON
/// body) that sets no thinking of its own. Returns whether it changed the body.
pub fn apply_native_default(body: &mut Value, model: &str, catalog: &Catalog) -> bool {
    let Some(default) = catalog.thinking_default(model) else {
        return false;
    };
    // A model that does not think refuses any thinkingConfig.
    if family(model) == Family::None {
        return false;
    }
    let Value::Object(request) = body else {
        return false;
    };
    let key = if request.contains_key("generation_config") {
        "generation_config"
    } else {
        "generationConfig"
    };
    let config = request
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(config) = config else {
        return false;
    };
    if config.contains_key("thinkingConfig") || config.contains_key("thinking_config") {
        return false;
    }
    let mut thinking = from_default(family(model), default);
    thinking.include_thoughts = default.include_thoughts;
    if thinking == ThinkingConfig::default() {
        return false;
    }
    match serde_json::to_value(thinking) {
        Ok(value) => {
            config.insert("thinkingConfig".into(), value);
            true
        }
        Err(_) => false,
    }
}

/// The admin console's view of one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelView {
    pub id: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub input_token_limit: Option<u64>,
    pub output_token_limit: Option<u64>,
    pub thinking: bool,
    pub enabled: bool,
    pub aliases: Vec<String>,
    pub cost: CostView,
    pub thinking_default: Option<ThinkingDefaultView>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostView {
    pub request_cost: u64,
    pub prompt_price: u64,
    pub completion_price: u64,
}

impl From<Price> for CostView {
    fn from(p: Price) -> Self {
        Self {
            request_cost: p.request,
            prompt_price: p.prompt,
            completion_price: p.completion,
        }
    }
}

/// A thinking default without its pattern (the model names it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThinkingDefaultView {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_budget: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_thoughts: Option<bool>,
}

/// Every upstream model as the console shows it.
pub fn views(models: &[gemini::Model], catalog: &Catalog, costs: &[ModelCost]) -> Vec<ModelView> {
    models.iter().map(|m| view(m, catalog, costs)).collect()
}

pub fn view(model: &gemini::Model, catalog: &Catalog, costs: &[ModelCost]) -> ModelView {
    let id = model.name.as_str();
    ModelView {
        id: id.to_owned(),
        display_name: model.display_name.clone(),
        description: model.description.clone(),
        input_token_limit: model.input_token_limit,
        output_token_limit: model.output_token_limit,
        thinking: family(id) != Family::None,
        enabled: !catalog.is_disabled(id),
        aliases: catalog.aliases_of(id),
        cost: price_for(id, costs).into(),
        thinking_default: catalog.thinking_default(id).map(|d| ThinkingDefaultView {
            thinking_budget: d.thinking_budget,
            thinking_level: d.thinking_level.clone(),
            include_thoughts: d.include_thoughts,
        }),
    }
}

/// An admin's edit of one model (`PATCH /admin/api/models/{model}`). `cost` and
/// `thinking_default` set a row for exactly this model, ahead of any pattern; `null` removes
/// that row.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPatch {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub aliases: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pub cost: Option<Option<CostView>>,
    #[serde(default, deserialize_with = "present")]
    pub thinking_default: Option<Option<ThinkingDefaultView>>,
}

/// Tells `null` (Some(None)) from absent (None). A row is a JSON object: serde would also
/// fill a struct from an array, by position (`[]` an empty row), which no client means.
#[expect(
    clippy::option_option,
    reason = "absent keeps a row, null removes it, a value sets it"
)]
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::Error as _;
    match Option::<Value>::deserialize(deserializer)? {
        None => Ok(Some(None)),
        Some(row @ Value::Object(_)) => T::deserialize(row)
            .map(Some)
            .map(Some)
            .map_err(D::Error::custom),
        Some(other) => Err(D::Error::custom(format!(
            "expected an object or null, not {}",
            super::translate::json_kind(&other)
        ))),
    }
}

impl ModelPatch {
    /// Applies the edit to the catalog and the cost table; the caller validates the result.
    pub fn apply(
        self,
        model: &str,
        catalog: &mut Catalog,
        costs: &mut Vec<ModelCost>,
    ) -> Result<(), GatewayError> {
        if let Some(enabled) = self.enabled {
            catalog.disabled_models.retain(|glob| glob != model);
            if enabled {
                if let Some(glob) = catalog
                    .disabled_models
                    .iter()
                    .find(|g| glob_match(g, model))
                {
                    return Err(invalid(
                        "enabled",
                        format!(
                            "`{model}` is disabled by the pattern `{glob}`; edit `disabled_models`."
                        ),
                    ));
                }
            } else {
                catalog.disabled_models.push(model.to_owned());
            }
        }
        if let Some(aliases) = self.aliases {
            for alias in &aliases {
                if let Some(other) = catalog.model_aliases.get(alias).filter(|t| *t != model) {
                    return Err(invalid(
                        "aliases",
                        format!("`{alias}` already names `{other}`."),
                    ));
                }
            }
            catalog.model_aliases.retain(|_, target| target != model);
            for alias in aliases {
                catalog.model_aliases.insert(alias, model.to_owned());
            }
        }
        if let Some(cost) = self.cost {
            costs.retain(|row| row.pattern != model);
            if let Some(cost) = cost {
                costs.insert(
                    0,
                    ModelCost {
                        pattern: model.to_owned(),
                        request_cost: Some(cost.request_cost),
                        prompt_price: Some(cost.prompt_price),
                        completion_price: Some(cost.completion_price),
                    },
                );
            }
        }
        if let Some(thinking) = self.thinking_default {
            catalog.thinking_defaults.retain(|row| row.pattern != model);
            if let Some(t) = thinking {
                catalog.thinking_defaults.insert(
                    0,
                    ThinkingDefault {
                        pattern: model.to_owned(),
                        thinking_budget: t.thinking_budget,
                        thinking_level: t.thinking_level,
                        include_thoughts: t.include_thoughts,
                    },
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn catalog() -> Catalog {
        Catalog {
            model_aliases: [
                ("gpt-4o".to_owned(), "gemini-2.5-pro".to_owned()),
                ("fast".to_owned(), "gemini-2.5-flash".to_owned()),
            ]
            .into(),
            disabled_models: vec!["gemini-1.5-*".into(), "gemini-2.0-flash".into()],
            thinking_defaults: vec![ThinkingDefault {
                pattern: "gemini-2.5-*".into(),
                thinking_budget: Some(512),
                thinking_level: None,
                include_thoughts: Some(true),
            }],
            default_model: None,
        }
    }

    fn base(name: &str) -> String {
        name.trim_end_matches("-nothinking").to_owned()
    }

    fn model(id: &str) -> gemini::Model {
        serde_json::from_value(json!({"name": format!("models/{id}"), "displayName": id})).unwrap()
    }

    #[test]
    fn aliases_resolve_and_disabled_models_are_not_found() {
        let c = catalog();
        assert_eq!(c.resolve("gpt-4o", base, None).unwrap(), "gemini-2.5-pro");
        assert_eq!(
            c.resolve("gemini-2.5-flash", base, None).unwrap(),
            "gemini-2.5-flash"
        );
        for name in [
            "gemini-1.5-pro",
            "gemini-2.0-flash",
            "gemini-2.0-flash-nothinking",
        ] {
            assert_eq!(
                c.resolve(name, base, None),
                Err(GatewayError::ModelNotFound(name.into())),
                "{name}"
            );
        }
        // An alias of a disabled model is not served either.
        let mut c = catalog();
        c.model_aliases
            .insert("old".into(), "gemini-1.5-pro".into());
        assert!(c.resolve("old", base, None).is_err());
    }

    #[test]
    fn the_default_model_answers_only_unknown_names() {
        let mut c = catalog();
        let known = |id: &str| id.starts_with("gemini-");
        assert_eq!(
            c.resolve("mystery", base, Some(&known)).unwrap(),
            "mystery",
            "off by default"
        );
        c.default_model = Some("gemini-2.5-flash".into());
        assert_eq!(
            c.resolve("mystery", base, Some(&known)).unwrap(),
            "gemini-2.5-flash"
        );
        assert_eq!(
            c.resolve("gemini-2.5-pro", base, Some(&known)).unwrap(),
            "gemini-2.5-pro"
        );
        assert_eq!(
            c.resolve("gpt-4o", base, Some(&known)).unwrap(),
            "gemini-2.5-pro"
        );
    }

    #[test]
    fn listing_hides_disabled_models_and_adds_aliases_after_their_model() {
        let list = catalog().listing(&[
            model("gemini-2.5-pro"),
            model("gemini-2.0-flash"),
            model("gemini-2.5-flash"),
        ]);
        let names: Vec<&str> = list.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            ["gemini-2.5-pro", "gpt-4o", "gemini-2.5-flash", "fast"]
        );
        assert_eq!(list[1].display_name.as_deref(), Some("gemini-2.5-pro"));
    }

    #[test]
    fn validation_names_the_field() {
        let bad = |c: Catalog, field: &str| {
            assert_eq!(
                c.validate().unwrap_err().openai_param(),
                Some(field),
                "{c:?}"
            );
        };
        let mut c = catalog();
        c.model_aliases.insert("x".into(), "fast".into());
        bad(c, "model_aliases");
        let mut c = catalog();
        c.model_aliases.insert("same".into(), "same".into());
        bad(c, "model_aliases");
        let mut c = catalog();
        c.model_aliases
            .insert("../etc".into(), "gemini-2.5-pro".into());
        bad(c, "model_aliases");
        let mut c = catalog();
        c.disabled_models.push(" ".into());
        bad(c, "disabled_models");
        let mut c = catalog();
        c.thinking_defaults[0].thinking_level = Some("low".into());
        bad(c, "thinking_defaults");
        let mut c = catalog();
        c.thinking_defaults[0].thinking_budget = Some(99_999);
        bad(c, "thinking_defaults");
        let mut c = catalog();
        c.thinking_defaults[0].thinking_budget = None;
        c.thinking_defaults[0].thinking_level = Some("extreme".into());
        bad(c, "thinking_defaults");
        let mut c = catalog();
        c.default_model = Some("a b".into());
        bad(c, "default_model");
        assert!(catalog().validate().is_ok());
    }

    #[test]
    fn a_model_patch_edits_its_own_rows_only() {
        let mut c = catalog();
        let mut costs = vec![ModelCost {
            pattern: "*pro*".into(),
            request_cost: Some(9),
            ..ModelCost::default()
        }];
        let patch: ModelPatch = serde_json::from_value(json!({
            "enabled": false,
            "aliases": ["gpt-4o-mini", "fast2"],
            "cost": {"request_cost": 3, "prompt_price": 1, "completion_price": 4},
            "thinking_default": {"thinking_budget": 0, "include_thoughts": false}
        }))
        .unwrap();
        patch.apply("gemini-2.5-flash", &mut c, &mut costs).unwrap();
        assert!(c.is_disabled("gemini-2.5-flash"));
        assert_eq!(c.aliases_of("gemini-2.5-flash"), ["fast2", "gpt-4o-mini"]);
        assert!(
            !c.model_aliases.contains_key("fast"),
            "its old alias is gone"
        );
        assert_eq!(price_for("gemini-2.5-flash", &costs).request, 3);
        assert_eq!(
            price_for("gemini-2.5-pro", &costs).request,
            9,
            "other rows stay"
        );
        assert_eq!(
            c.thinking_default("gemini-2.5-flash")
                .unwrap()
                .thinking_budget,
            Some(0)
        );
        assert_eq!(
            c.thinking_default("gemini-2.5-pro")
                .unwrap()
                .thinking_budget,
            Some(512)
        );

        let undo: ModelPatch = serde_json::from_value(json!({
            "enabled": true, "cost": null, "thinking_default": null
        }))
        .unwrap();
        undo.apply("gemini-2.5-flash", &mut c, &mut costs).unwrap();
        assert!(!c.is_disabled("gemini-2.5-flash"));
        assert_eq!(costs.len(), 1);
        assert_eq!(
            c.thinking_default("gemini-2.5-flash")
                .unwrap()
                .thinking_budget,
            Some(512)
        );
        assert_eq!(
            c.aliases_of("gemini-2.5-flash").len(),
            2,
            "absent fields are kept"
        );

        // A glob keeps it disabled; an alias of another model cannot be taken.
        let enable: ModelPatch = serde_json::from_value(json!({"enabled": true})).unwrap();
        let err = enable
            .apply("gemini-1.5-pro", &mut c, &mut costs)
            .unwrap_err();
        assert_eq!(err.openai_param(), Some("enabled"));
        let steal: ModelPatch = serde_json::from_value(json!({"aliases": ["gpt-4o"]})).unwrap();
        let err = steal
            .apply("gemini-2.5-flash", &mut c, &mut costs)
            .unwrap_err();
        assert_eq!(err.openai_param(), Some("aliases"));
        assert!(serde_json::from_value::<ModelPatch>(json!({"colour": 1})).is_err());
    }

    /// Found by the hostile e2e table: `{"thinking_default": []}` was read as an empty row
    /// (serde fills a struct from an array by position) and stored.
    #[test]
    fn a_row_written_as_an_array_is_refused() {
        for patch in [
            json!({"thinking_default": []}),
            json!({"thinking_default": [1024]}),
            json!({"cost": []}),
            json!({"cost": [1, 2, 3]}),
            json!({"thinking_default": "high"}),
        ] {
            let err = serde_json::from_value::<ModelPatch>(patch.clone()).unwrap_err();
            assert!(
                err.to_string().contains("expected an object or null"),
                "{patch}: {err}"
            );
        }
        let patch: ModelPatch =
            serde_json::from_value(json!({"thinking_default": {"thinking_budget": 8}})).unwrap();
        assert!(matches!(patch.thinking_default, Some(Some(_))));
        let patch: ModelPatch = serde_json::from_value(json!({"cost": null})).unwrap();
        assert!(matches!(patch.cost, Some(None)));
    }

    #[test]
    fn a_native_request_gets_the_default_only_when_it_sets_no_thinking() {
        let c = catalog();
        let mut body = json!({"contents": [], "generationConfig": {"temperature": 0.5}});
        assert!(apply_native_default(&mut body, "gemini-2.5-flash", &c));
        assert_eq!(
            body["generationConfig"],
            json!({"temperature": 0.5, "thinkingConfig": {"thinkingBudget": 512, "includeThoughts": true}})
        );
        let mut own = json!({"generation_config": {"thinking_config": {"thinking_budget": 0}}});
        let before = own.clone();
        assert!(!apply_native_default(&mut own, "gemini-2.5-flash", &c));
        assert_eq!(own, before);
        let mut bare = json!({"contents": []});
        assert!(apply_native_default(&mut bare, "gemini-2.5-pro", &c));
        assert_eq!(
            bare["generationConfig"]["thinkingConfig"]["thinkingBudget"],
            512
        );
        let mut none = json!({"contents": []});
        assert!(
            !apply_native_default(&mut none, "gemma-3", &c),
            "no row matches"
        );
    }

    #[test]
    fn a_view_shows_what_applies_to_the_model() {
        let c = catalog();
        let v = view(&model("gemini-2.5-pro"), &c, &[]);
        assert_eq!(v.aliases, ["gpt-4o"]);
        assert!(v.enabled && v.thinking);
        assert_eq!(v.cost.request_cost, 10);
        assert_eq!(v.thinking_default.unwrap().thinking_budget, Some(512));
        let v = view(&model("gemini-2.0-flash"), &c, &[]);
        assert!(!v.enabled && !v.thinking);
    }
}
