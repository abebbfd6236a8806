//! The streaming modes and compatibility switches chat apps rely on: fake
//! streaming, anti-truncation, system-as-user, prompt injection, default safety
//! settings, thoughts in `content` and how search citations are shown. The
//! settings (stored flat beside the others), their validation, and the pure
//! decisions that read them: which mode a model name asks for, which injections
//! apply. Reads no clock and does no I/O.

use serde::{Deserialize, Serialize};

use super::config::check;
use super::error::GatewayError;
use super::gemini::SafetySetting;
use super::quota::glob_match;

/// Caps on list sizes and text lengths, so a settings row stays small.
const MAX_GLOBS: usize = 100;
const MAX_INJECTIONS: usize = 50;
const MAX_INJECTION_CHARS: usize = 20_000;
const MAX_PREFIX_CHARS: usize = 64;
const MAX_MARKER_CHARS: usize = 64;

/// The switches, stored flat in the settings document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Compat {
    /// Models (globs) answered by fake streaming: a non-stream upstream call,
    /// heartbeats while it runs, then the answer as a stream (none).
    pub fake_stream_models: Vec<String>,
    /// A model-name prefix that asks for fake streaming (`fake-stream/`).
    pub fake_stream_prefix: String,
    /// The gap between two heartbeat comments of a fake stream (3000 ms; 100–60000).
    pub fake_stream_interval_ms: u64,
    /// Models (globs) whose answers are continued when they end without the marker (none).
    pub anti_truncation_models: Vec<String>,
    /// A model-name prefix that asks for anti-truncation (`anti-trunc/`).
    pub anti_truncation_prefix: String,
    /// What the model is asked to end its answer with (`[done]`).
    pub anti_truncation_marker: String,
    /// Continuation calls at most, after the first call (3; 1–10).
    pub anti_truncation_max_attempts: u32,
    /// Models (globs) that refuse `systemInstruction`: system and developer
    /// messages go as a leading user turn (`gemma-*`).
    pub system_as_user_models: Vec<String>,
    /// Text added to requests, per model glob; every matching row applies, in order.
    pub prompt_injection: Vec<PromptInjection>,
    /// Safety settings sent when a request has none (every category at its least
    /// restrictive threshold).
    pub default_safety_settings: Vec<SafetySetting>,
    /// Send thoughts inside `content` as `<think>…</think>` instead of
    /// `reasoning_content` (false).
    pub thoughts_in_content: bool,
    /// How grounding citations reach the client (`annotations`).
    pub search_citations: SearchCitations,
    /// Models (globs) that always get the code-execution tool (none; or the `-code` suffix).
    pub code_execution_models: Vec<String>,
    /// Models (globs) that always get the URL-context tool (none; or the `-urlcontext` suffix).
    pub url_context_models: Vec<String>,
}

/// Where an injection goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InjectPosition {
    /// Appended to the system instruction (or becomes it).
    System,
    /// Before the text of the last user message that has text, and a blank line.
    Prefix,
    /// After the text of the last user message that has text, after a blank line.
    Suffix,
}

/// One `prompt_injection` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptInjection {
    pub pattern: String,
    pub position: InjectPosition,
    pub text: String,
}

/// `search_citations`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchCitations {
    /// `url_citation` annotations on the message only.
    #[default]
    Annotations,
    /// Annotations, and a numbered source list appended to the text.
    AnnotationsAndList,
}

/// Google's harm categories and our default threshold for each: the least restrictive
/// one every current model accepts. `OFF` turns the filter off (Google's own default
/// for the Gemini 2 models and later); civic integrity takes `BLOCK_NONE`, because
/// some models refuse `OFF` there.
pub const DEFAULT_SAFETY: &[(&str, &str)] = &[
    ("HARM_CATEGORY_HARASSMENT", "OFF"),
    ("HARM_CATEGORY_HATE_SPEECH", "OFF"),
    ("HARM_CATEGORY_SEXUALLY_EXPLICIT", "OFF"),
    ("HARM_CATEGORY_DANGEROUS_CONTENT", "OFF"),
    ("HARM_CATEGORY_CIVIC_INTEGRITY", "BLOCK_NONE"),
];

const THRESHOLDS: &[&str] = &[
    "HARM_BLOCK_THRESHOLD_UNSPECIFIED",
    "BLOCK_LOW_AND_ABOVE",
    "BLOCK_MEDIUM_AND_ABOVE",
    "BLOCK_ONLY_HIGH",
    "BLOCK_NONE",
    "OFF",
];

impl Default for Compat {
    fn default() -> Self {
        Self {
            fake_stream_models: Vec::new(),
            fake_stream_prefix: "fake-stream/".to_owned(),
            fake_stream_interval_ms: 3_000,
            anti_truncation_models: Vec::new(),
            anti_truncation_prefix: "anti-trunc/".to_owned(),
            anti_truncation_marker: "[done]".to_owned(),
            anti_truncation_max_attempts: 3,
            system_as_user_models: vec!["gemma-*".to_owned()],
            prompt_injection: Vec::new(),
            default_safety_settings: DEFAULT_SAFETY
                .iter()
                .map(|(category, threshold)| SafetySetting {
                    category: (*category).to_owned(),
                    threshold: (*threshold).to_owned(),
                })
                .collect(),
            thoughts_in_content: false,
            search_citations: SearchCitations::Annotations,
            code_execution_models: Vec::new(),
            url_context_models: Vec::new(),
        }
    }
}

/// The modes a request asked for through its model name (prefixes) or that the
/// settings give its model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Modes {
    pub fake_stream: bool,
    pub anti_truncation: bool,
}

impl Compat {
    /// Strips the mode prefixes from `model` (in either order, each at most once) and
    /// returns the model name left and the modes the prefixes asked for. The settings'
    /// globs are not applied here: see [`modes_for`](Self::modes_for).
    pub fn strip_prefixes<'a>(&self, model: &'a str) -> (&'a str, Modes) {
        let mut rest = model;
        let mut asked = Modes::default();
        for _ in 0..2 {
            if !asked.fake_stream
                && let Some(tail) = strip(rest, &self.fake_stream_prefix)
            {
                rest = tail;
                asked.fake_stream = true;
            } else if !asked.anti_truncation
                && let Some(tail) = strip(rest, &self.anti_truncation_prefix)
            {
                rest = tail;
                asked.anti_truncation = true;
            }
        }
        (rest, asked)
    }

    /// The modes a request gets: what its prefixes asked (`asked`), plus what the model
    /// globs give to any of `models` (its name as sent without prefixes, and as resolved).
    pub fn modes_for<'a>(&self, asked: Modes, models: impl IntoIterator<Item = &'a str>) -> Modes {
        let mut given = asked;
        for model in models {
            given.fake_stream |= any_glob(&self.fake_stream_models, model);
            given.anti_truncation |= any_glob(&self.anti_truncation_models, model);
        }
        given
    }

    /// Whether `model` takes its system prompt as a leading user turn.
    pub fn system_as_user(&self, model: &str) -> bool {
        any_glob(&self.system_as_user_models, model)
    }

    /// The injection rows that apply to `model`, in their order.
    pub fn injections_for<'a>(
        &'a self,
        model: &'a str,
    ) -> impl Iterator<Item = &'a PromptInjection> + 'a {
        self.prompt_injection
            .iter()
            .filter(move |row| glob_match(&row.pattern, model))
    }

    /// Whether `model` always gets the code-execution tool.
    pub fn code_execution(&self, model: &str) -> bool {
        any_glob(&self.code_execution_models, model)
    }

    /// Whether `model` always gets the URL-context tool.
    pub fn url_context(&self, model: &str) -> bool {
        any_glob(&self.url_context_models, model)
    }

    /// The instruction that asks the model to end with the marker.
    pub fn marker_instruction(&self) -> String {
        format!(
            "When your answer is complete, end it with `{}` on its own, as the very last text. \
             Never write it anywhere else.",
            self.anti_truncation_marker
        )
    }

    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<(), GatewayError> {
        globs("fake_stream_models", &self.fake_stream_models)?;
        globs("anti_truncation_models", &self.anti_truncation_models)?;
        globs("system_as_user_models", &self.system_as_user_models)?;
        globs("code_execution_models", &self.code_execution_models)?;
        globs("url_context_models", &self.url_context_models)?;
        prefix("fake_stream_prefix", &self.fake_stream_prefix)?;
        prefix("anti_truncation_prefix", &self.anti_truncation_prefix)?;
        if self.fake_stream_prefix == self.anti_truncation_prefix {
            return Err(GatewayError::invalid_param(
                "`fake_stream_prefix` and `anti_truncation_prefix` must differ.",
                "anti_truncation_prefix",
            ));
        }
        check(
            "fake_stream_interval_ms",
            self.fake_stream_interval_ms,
            100,
            60_000,
        )?;
        let marker = self.anti_truncation_marker.trim();
        if marker.is_empty()
            || marker.chars().count() > MAX_MARKER_CHARS
            || marker.contains('`')
            || marker != self.anti_truncation_marker
        {
            return Err(GatewayError::invalid_param(
                format!(
                    "`anti_truncation_marker` must be 1 to {MAX_MARKER_CHARS} characters, without backticks or surrounding spaces."
                ),
                "anti_truncation_marker",
            ));
        }
        check(
            "anti_truncation_max_attempts",
            u64::from(self.anti_truncation_max_attempts),
            1,
            10,
        )?;
        self.validate_injections()?;
        validate_safety(&self.default_safety_settings)
    }

    fn validate_injections(&self) -> Result<(), GatewayError> {
        let field = "prompt_injection";
        if self.prompt_injection.len() > MAX_INJECTIONS {
            return Err(GatewayError::invalid_param(
                format!("`{field}` may hold at most {MAX_INJECTIONS} rows."),
                field,
            ));
        }
        for row in &self.prompt_injection {
            glob_ok(field, &row.pattern)?;
            if row.text.trim().is_empty() || row.text.chars().count() > MAX_INJECTION_CHARS {
                return Err(GatewayError::invalid_param(
                    format!(
                        "`{field}` rows need a text of 1 to {MAX_INJECTION_CHARS} characters (pattern `{}`).",
                        row.pattern
                    ),
                    field,
                ));
            }
        }
        Ok(())
    }
}

/// Checks `default_safety_settings`: known threshold names, one row per category.
fn validate_safety(rows: &[SafetySetting]) -> Result<(), GatewayError> {
    let field = "default_safety_settings";
    if rows.len() > 20 {
        return Err(GatewayError::invalid_param(
            format!("`{field}` may hold at most 20 rows."),
            field,
        ));
    }
    for (i, row) in rows.iter().enumerate() {
        let category_ok = row.category.starts_with("HARM_CATEGORY_")
            && row
                .category
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'_');
        if !category_ok {
            return Err(GatewayError::invalid_param(
                format!(
                    "`{field}`: `{}` is not a harm category (HARM_CATEGORY_…).",
                    row.category
                ),
                field,
            ));
        }
        if !THRESHOLDS.contains(&row.threshold.as_str()) {
            return Err(GatewayError::invalid_param(
                format!(
                    "`{field}`: threshold `{}` is not one of {}.",
                    row.threshold,
                    THRESHOLDS.join(", ")
                ),
                field,
            ));
        }
        if rows[..i].iter().any(|r| r.category == row.category) {
            return Err(GatewayError::invalid_param(
                format!("`{field}` lists `{}` twice.", row.category),
                field,
            ));
        }
    }
    Ok(())
}

fn strip<'a>(model: &'a str, prefix: &str) -> Option<&'a str> {
    if prefix.is_empty() {
        return None;
    }
    model.strip_prefix(prefix).filter(|rest| !rest.is_empty())
}

fn any_glob(globs: &[String], model: &str) -> bool {
    globs.iter().any(|g| glob_match(g, model))
}

fn globs(field: &str, list: &[String]) -> Result<(), GatewayError> {
    if list.len() > MAX_GLOBS {
        return Err(GatewayError::invalid_param(
            format!("`{field}` may hold at most {MAX_GLOBS} patterns."),
            field,
        ));
    }
    list.iter().try_for_each(|g| glob_ok(field, g))
}

fn glob_ok(field: &str, glob: &str) -> Result<(), GatewayError> {
    if glob.trim().is_empty() || glob.len() > 200 || glob.trim() != glob {
        return Err(GatewayError::invalid_param(
            format!(
                "`{field}` patterns must be non-empty globs of at most 200 characters, got `{glob}`."
            ),
            field,
        ));
    }
    Ok(())
}

/// A mode prefix: ends with `/`, so it can never be part of a model id; empty turns it off.
fn prefix(field: &str, value: &str) -> Result<(), GatewayError> {
    let ok = value.is_empty()
        || (value.ends_with('/')
            && value.len() <= MAX_PREFIX_CHARS
            && value.len() > 1
            && !value.chars().any(char::is_whitespace));
    if ok {
        return Ok(());
    }
    Err(GatewayError::invalid_param(
        format!(
            "`{field}` must end with `/`, hold no spaces and be at most {MAX_PREFIX_CHARS} characters (or be empty to turn it off), got `{value}`."
        ),
        field,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_combine_in_either_order_and_each_counts_once() {
        let c = Compat::default();
        let both = Modes {
            fake_stream: true,
            anti_truncation: true,
        };
        assert_eq!(
            c.strip_prefixes("fake-stream/anti-trunc/gemini-2.5-pro"),
            ("gemini-2.5-pro", both)
        );
        assert_eq!(
            c.strip_prefixes("anti-trunc/fake-stream/gemini-2.5-pro"),
            ("gemini-2.5-pro", both)
        );
        let (rest, modes) = c.strip_prefixes("anti-trunc/anti-trunc/x");
        assert_eq!(rest, "anti-trunc/x");
        assert!(modes.anti_truncation && !modes.fake_stream);
        assert_eq!(
            c.strip_prefixes("gemini-2.5-pro"),
            ("gemini-2.5-pro", Modes::default())
        );
        // A bare prefix is a model name of its own (and then an invalid one), not a mode.
        assert_eq!(
            c.strip_prefixes("fake-stream/"),
            ("fake-stream/", Modes::default())
        );
    }

    #[test]
    fn renamed_and_disabled_prefixes() {
        let c = Compat {
            fake_stream_prefix: "假流/".to_owned(),
            anti_truncation_prefix: String::new(),
            ..Compat::default()
        };
        assert!(c.validate().is_ok());
        assert_eq!(c.strip_prefixes("假流/m").0, "m");
        assert_eq!(c.strip_prefixes("anti-trunc/m").0, "anti-trunc/m");
    }

    #[test]
    fn globs_add_modes_to_what_the_name_asked() {
        let c = Compat {
            fake_stream_models: vec!["gemini-2.5-pro*".to_owned()],
            ..Compat::default()
        };
        let m = c.modes_for(Modes::default(), ["gemini-2.5-pro"]);
        assert!(m.fake_stream && !m.anti_truncation);
        assert!(
            !c.modes_for(Modes::default(), ["gemini-2.5-flash"])
                .fake_stream
        );
        // An alias that resolves to a matching model counts too.
        assert!(
            c.modes_for(Modes::default(), ["pro-alias", "gemini-2.5-pro"])
                .fake_stream
        );
    }

    #[test]
    fn defaults_validate_and_send_gemma_system_as_user() {
        let c = Compat::default();
        assert!(c.validate().is_ok());
        assert!(c.system_as_user("gemma-3-27b-it"));
        assert!(!c.system_as_user("gemini-2.5-flash"));
        assert_eq!(c.default_safety_settings.len(), DEFAULT_SAFETY.len());
        assert!(c.marker_instruction().contains("`[done]`"));
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases: Vec<(Compat, &str)> = vec![
            (
                Compat {
                    fake_stream_interval_ms: 99,
                    ..Compat::default()
                },
                "fake_stream_interval_ms",
            ),
            (
                Compat {
                    anti_truncation_marker: String::new(),
                    ..Compat::default()
                },
                "anti_truncation_marker",
            ),
            (
                Compat {
                    anti_truncation_marker: " [done]".to_owned(),
                    ..Compat::default()
                },
                "anti_truncation_marker",
            ),
            (
                Compat {
                    anti_truncation_max_attempts: 0,
                    ..Compat::default()
                },
                "anti_truncation_max_attempts",
            ),
            (
                Compat {
                    fake_stream_prefix: "fake".to_owned(),
                    ..Compat::default()
                },
                "fake_stream_prefix",
            ),
            (
                Compat {
                    anti_truncation_prefix: "fake-stream/".to_owned(),
                    ..Compat::default()
                },
                "anti_truncation_prefix",
            ),
            (
                Compat {
                    prompt_injection: vec![PromptInjection {
                        pattern: "*".to_owned(),
                        position: InjectPosition::Prefix,
                        text: "  ".to_owned(),
                    }],
                    ..Compat::default()
                },
                "prompt_injection",
            ),
            (
                Compat {
                    default_safety_settings: vec![SafetySetting {
                        category: "HARM_CATEGORY_HARASSMENT".to_owned(),
                        threshold: "BLOCK_EVERYTHING".to_owned(),
                    }],
                    ..Compat::default()
                },
                "default_safety_settings",
            ),
            (
                Compat {
                    system_as_user_models: vec![String::new()],
                    ..Compat::default()
                },
                "system_as_user_models",
            ),
        ];
        for (compat, field) in cases {
            let err = compat.validate().expect_err(field);
            let GatewayError::InvalidRequest { param, .. } = &err else {
                panic!("{err:?}");
            };
            assert_eq!(param.as_deref(), Some(field), "{err:?}");
        }
    }

    #[test]
    fn injections_apply_in_order_by_glob() {
        let row = |pattern: &str, text: &str| PromptInjection {
            pattern: pattern.to_owned(),
            position: InjectPosition::Suffix,
            text: text.to_owned(),
        };
        let c = Compat {
            prompt_injection: vec![row("*", "a"), row("gemini-2.5-*", "b"), row("gemma-*", "c")],
            ..Compat::default()
        };
        let texts: Vec<&str> = c
            .injections_for("gemini-2.5-pro")
            .map(|r| r.text.as_str())
            .collect();
        assert_eq!(texts, ["a", "b"]);
    }
}
