//! Which kinds of upstream may serve a model, and which is tried first: the
//! `upstream_routing` setting (`[{pattern, kinds, prefer}]`, first matching
//! row wins) and `code_assist_models`, the models Code Assist serves. Stored
//! flat in the runtime settings.

use serde::{Deserialize, Serialize};

use crate::domain::error::GatewayError;
use crate::domain::gemini::{Model, ModelName};
use crate::domain::quota::glob_match;
use crate::domain::route::check_model_id;

/// The two kinds of upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Key,
    Account,
}

/// One row of `upstream_routing`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    pub pattern: String,
    pub kinds: Vec<Kind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefer: Option<Kind>,
}

/// The routing settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Routing {
    pub upstream_routing: Vec<RouteRule>,
    pub code_assist_models: Vec<String>,
}

/// The models Code Assist serves, as gemini-cli knows them.
pub const DEFAULT_CODE_ASSIST_MODELS: [&str; 6] = [
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-3-pro-preview",
    "gemini-3-flash-preview",
    "gemini-2.0-flash",
];

impl Default for Routing {
    fn default() -> Self {
        Self {
            upstream_routing: Vec::new(),
            code_assist_models: DEFAULT_CODE_ASSIST_MODELS
                .iter()
                .map(|m| (*m).to_owned())
                .collect(),
        }
    }
}

/// What may serve one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub keys: bool,
    pub accounts: bool,
    /// Tried first while one of its kind is healthy.
    pub prefer: Kind,
}

const MAX_RULES: usize = 100;

fn invalid(field: &str, why: impl std::fmt::Display) -> GatewayError {
    GatewayError::invalid_param(format!("`{field}`: {why}"), field)
}

impl Routing {
    pub fn validate(&self) -> Result<(), GatewayError> {
        let field = "upstream_routing";
        if self.upstream_routing.len() > MAX_RULES {
            return Err(invalid(field, format!("at most {MAX_RULES} rows.")));
        }
        for rule in &self.upstream_routing {
            if rule.pattern.trim().is_empty() || rule.pattern.len() > 200 {
                return Err(invalid(
                    field,
                    "each row needs a non-empty glob `pattern` of at most 200 characters.",
                ));
            }
            if rule.kinds.is_empty() {
                return Err(invalid(
                    field,
                    format!(
                        "`{}` allows no kind; give `kinds`: [\"key\"], [\"account\"] or both.",
                        rule.pattern
                    ),
                ));
            }
            if rule.kinds.len() == 2 && rule.kinds[0] == rule.kinds[1] {
                return Err(invalid(
                    field,
                    format!("`{}` names a kind twice.", rule.pattern),
                ));
            }
            if let Some(prefer) = rule.prefer
                && !rule.kinds.contains(&prefer)
            {
                return Err(invalid(
                    field,
                    format!("`{}` prefers a kind it does not allow.", rule.pattern),
                ));
            }
        }
        let field = "code_assist_models";
        if self.code_assist_models.len() > 200 {
            return Err(invalid(field, "at most 200 models."));
        }
        for model in &self.code_assist_models {
            check_model_id(model)
                .map_err(|why| invalid(field, format!("`{model}` is not a model name ({why}).")))?;
        }
        Ok(())
    }

    /// Whether Code Assist serves `model`.
    pub fn code_assist_serves(&self, model: &str) -> bool {
        self.code_assist_models.iter().any(|m| m == model)
    }

    /// What may serve `model`. `embedding` requests never go to accounts, and
    /// neither does a model Code Assist does not serve. Without a matching
    /// row: keys first, and accounts too for the models Code Assist serves.
    pub fn route(&self, model: &str, embedding: bool) -> Route {
        let account_ok = !embedding && self.code_assist_serves(model);
        let (keys, accounts, prefer) = match self
            .upstream_routing
            .iter()
            .find(|r| glob_match(&r.pattern, model))
        {
            Some(rule) => (
                rule.kinds.contains(&Kind::Key),
                rule.kinds.contains(&Kind::Account),
                rule.prefer.unwrap_or(rule.kinds[0]),
            ),
            None => (true, true, Kind::Key),
        };
        let accounts = accounts && account_ok;
        // Embeddings always have keys, whatever a row says: accounts cannot serve them.
        let keys = keys || embedding || !accounts;
        let prefer = match prefer {
            Kind::Account if accounts => Kind::Account,
            _ if keys => Kind::Key,
            _ => Kind::Account,
        };
        Route {
            keys,
            accounts,
            prefer,
        }
    }
}

/// The model list the pool can serve: the keys' upstream list, plus the
/// Code Assist models it lacks (listed when accounts exist), described as
/// gemini-cli's models are: generation and counting, thinking from 2.5 on.
pub fn with_code_assist(from_keys: &[Model], code_assist: &[String]) -> Vec<Model> {
    let mut out = from_keys.to_vec();
    for id in code_assist {
        if out.iter().any(|m| m.name.as_str() == id) {
            continue;
        }
        let Ok(name) = ModelName::parse(id) else {
            continue;
        };
        let thinks = id.starts_with("gemini-2.5") || id.starts_with("gemini-3");
        out.push(Model {
            name,
            display_name: Some(format!("{id} (Gemini CLI)")),
            description: Some("Served by Gemini CLI (Code Assist) accounts.".into()),
            input_token_limit: Some(1_048_576),
            output_token_limit: Some(65_536),
            supported_generation_methods: vec![
                "generateContent".into(),
                "streamGenerateContent".into(),
                "countTokens".into(),
            ],
            thinking: thinks.then_some(true),
            base_model_id: None,
            version: None,
            temperature: None,
            max_temperature: None,
            top_p: None,
            top_k: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_assist_models_are_added_once_after_the_keys_list() {
        let keys = with_code_assist(&[], &["gemini-2.5-pro".to_owned()]);
        let ca = [
            "gemini-2.5-pro".to_owned(),
            "gemini-3-pro-preview".to_owned(),
            "gemini-2.0-flash".to_owned(),
        ];
        let list = with_code_assist(&keys, &ca);
        let names: Vec<&str> = list.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            ["gemini-2.5-pro", "gemini-3-pro-preview", "gemini-2.0-flash"]
        );
        assert_eq!(list[1].thinking, Some(true));
        assert_eq!(list[2].thinking, None);
        assert!(
            list[1]
                .supported_generation_methods
                .contains(&"generateContent".to_owned())
        );
    }
    use serde_json::json;

    fn routing(rules: serde_json::Value) -> Routing {
        Routing {
            upstream_routing: serde_json::from_value(rules).unwrap(),
            ..Routing::default()
        }
    }

    #[test]
    fn by_default_keys_come_first_and_accounts_serve_code_assist_models() {
        let r = Routing::default();
        assert_eq!(
            r.route("gemini-2.5-pro", false),
            Route {
                keys: true,
                accounts: true,
                prefer: Kind::Key
            }
        );
        assert_eq!(
            r.route("gemini-1.5-flash", false),
            Route {
                keys: true,
                accounts: false,
                prefer: Kind::Key
            }
        );
        assert_eq!(
            r.route("gemini-2.5-flash", true),
            Route {
                keys: true,
                accounts: false,
                prefer: Kind::Key
            }
        );
    }

    #[test]
    fn rows_choose_kinds_and_preference_first_match_wins() {
        let r = routing(json!([
            {"pattern": "gemini-*-pro*", "kinds": ["key", "account"], "prefer": "account"},
            {"pattern": "gemini-2.5-flash", "kinds": ["account"]},
            {"pattern": "*", "kinds": ["key"]}
        ]));
        assert_eq!(
            r.route("gemini-2.5-pro", false),
            Route {
                keys: true,
                accounts: true,
                prefer: Kind::Account
            }
        );
        assert_eq!(
            r.route("gemini-2.5-flash", false),
            Route {
                keys: false,
                accounts: true,
                prefer: Kind::Account
            }
        );
        assert_eq!(
            r.route("gemini-2.0-flash", false),
            Route {
                keys: true,
                accounts: false,
                prefer: Kind::Key
            }
        );
        // An accounts-only row cannot take embeddings, nor a model Code Assist lacks.
        assert_eq!(
            r.route("gemini-2.5-flash", true),
            Route {
                keys: true,
                accounts: false,
                prefer: Kind::Key
            }
        );
        let only = routing(json!([{"pattern": "*", "kinds": ["account"]}]));
        assert_eq!(
            only.route("gemma-3-27b-it", false),
            Route {
                keys: true,
                accounts: false,
                prefer: Kind::Key
            }
        );
    }

    #[test]
    fn bad_rows_name_the_field() {
        for bad in [
            json!([{"pattern": "", "kinds": ["key"]}]),
            json!([{"pattern": "*", "kinds": []}]),
            json!([{"pattern": "*", "kinds": ["key", "key"]}]),
            json!([{"pattern": "*", "kinds": ["key"], "prefer": "account"}]),
        ] {
            let err = routing(bad).validate().unwrap_err();
            assert!(
                err.client_message().contains("upstream_routing"),
                "{}",
                err.client_message()
            );
        }
        assert!(
            serde_json::from_value::<Vec<RouteRule>>(json!([{"pattern": "*", "kinds": ["cli"]}]))
                .is_err()
        );
        assert!(
            serde_json::from_value::<Vec<RouteRule>>(
                json!([{"pattern": "*", "kinds": ["key"], "x": 1}])
            )
            .is_err()
        );
        let r = Routing {
            code_assist_models: vec!["bad name".into()],
            ..Routing::default()
        };
        assert!(
            r.validate()
                .unwrap_err()
                .client_message()
                .contains("code_assist_models")
        );
    }
}
