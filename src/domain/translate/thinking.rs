//! What each Gemini family accepts for thinking, and how the `OpenAI` surface's knobs map onto
//! it: `reasoning_effort`, the model-name suffixes, and
//! `extra_body.google.thinking_config`.
//!
//! Precedence, most specific first: `thinking_config` > `reasoning_effort` > model suffix >
//! the configured `include_thoughts` default. A value a model does not accept is moved to the
//! nearest one it does, and every such move is reported as an [`Adjustment`] so the edge can
//! say so in `x-gemgate-adjusted`. Nothing here is silent.

use std::fmt;

use serde::Deserialize;

use crate::domain::catalog::ThinkingDefault;
use crate::domain::gemini::ThinkingConfig;
use crate::domain::openai::ReasoningEffort;

/// Gemini 3 thinking levels, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Minimal,
    Low,
    Medium,
    High,
}

impl Level {
    const ALL: [Level; 4] = [Level::Minimal, Level::Low, Level::Medium, Level::High];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Minimal => "minimal",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(text))
    }
}

/// What a model accepts for thinking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Gemini 2.5 and the `-latest` aliases: a token budget. `min` is the smallest positive
    /// budget; `can_disable` says whether 0 (off) is allowed.
    Budget {
        min: u32,
        max: u32,
        can_disable: bool,
    },
    /// Gemini 3: a level, from the set the model accepts (lowest first).
    Levels(&'static [Level]),
    /// Gemini 2.0, Gemma and anything unknown: no thinking configuration at all.
    None,
}

const PRO_3_0: &[Level] = &[Level::Low, Level::High];
const FLASH_3: &[Level] = &[Level::Minimal, Level::Low, Level::Medium, Level::High];
const OTHER_3: &[Level] = &[Level::Low, Level::Medium, Level::High];

/// The family of a bare model id (suffixes already removed).
pub fn family(model: &str) -> Family {
    let Some(rest) = model.strip_prefix("gemini-") else {
        return Family::None;
    };
    if let Some(version) = rest.strip_prefix("3") {
        // `gemini-3-…`, `gemini-3.1-…`; not `gemini-30…`.
        if version.starts_with(['-', '.']) {
            let minor_zero = version.starts_with('-');
            return Family::Levels(if model.contains("-flash") {
                FLASH_3
            } else if minor_zero && model.contains("-pro") {
                PRO_3_0
            } else {
                OTHER_3
            });
        }
        return Family::None;
    }
    let latest_alias = matches!(rest, "flash-latest" | "flash-lite-latest" | "pro-latest");
    if !(rest.starts_with("2.5-") || latest_alias) {
        return Family::None;
    }
    if model.contains("-pro") {
        Family::Budget {
            min: 128,
            max: 32_768,
            can_disable: false,
        }
    } else if model.contains("-flash-lite") {
        Family::Budget {
            min: 512,
            max: 24_576,
            can_disable: true,
        }
    } else {
        Family::Budget {
            min: 1,
            max: 24_576,
            can_disable: true,
        }
    }
}

/// A requested value the model could not take as asked, and what was sent instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    pub field: &'static str,
    pub requested: String,
    pub applied: String,
}

impl fmt::Display for Adjustment {
    /// `reasoning_effort=medium->high`, the form used in `x-gemgate-adjusted`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}->{}", self.field, self.requested, self.applied)
    }
}

// ---------------------------------------------------------------------------------------------
// model suffixes
// ---------------------------------------------------------------------------------------------

/// Thinking asked for by a model-name suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuffixThinking {
    /// `-nothinking`, `-non-thinking`.
    Off,
    /// `-maxthinking`.
    Max,
    /// `-thinking-<budget>`.
    Budget(u32),
    /// `-max`, `-high`, `-medium`, `-low`, `-minimal`: what the same `reasoning_effort`
    /// asks for (a budget on 2.5, a level on Gemini 3).
    Effort(ReasoningEffort),
}

/// The thinking suffixes spelled as words, longest first so `-maxthinking` is never read
/// as `-max` (it does not end in `-max`, but the order keeps that obvious).
const WORD_SUFFIXES: &[(&str, SuffixThinking)] = &[
    ("-non-thinking", SuffixThinking::Off),
    ("-nothinking", SuffixThinking::Off),
    ("-maxthinking", SuffixThinking::Max),
    ("-minimal", SuffixThinking::Effort(ReasoningEffort::Minimal)),
    ("-medium", SuffixThinking::Effort(ReasoningEffort::Medium)),
    ("-high", SuffixThinking::Effort(ReasoningEffort::High)),
    ("-low", SuffixThinking::Effort(ReasoningEffort::Low)),
    ("-max", SuffixThinking::Effort(ReasoningEffort::Max)),
];

/// A model name split into the upstream id and its gateway suffixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelVariant {
    pub base: String,
    pub thinking: Option<SuffixThinking>,
    /// `-search`: add the `googleSearch` tool.
    pub search: bool,
    /// `-code`: add the `codeExecution` tool.
    pub code: bool,
    /// `-urlcontext`: add the `urlContext` tool.
    pub url_context: bool,
}

impl ModelVariant {
    /// A model name without the gateway's suffixes (`-search`, `-nothinking`, …).
    pub fn base_of(model: &str) -> String {
        Self::parse(model).base
    }

    /// Strips `-search`, `-code`, `-urlcontext` and one thinking suffix (`-nothinking`,
    /// `-non-thinking`, `-maxthinking`, `-thinking-<budget>`, `-max`, `-high`, `-medium`,
    /// `-low`, `-minimal`) from the end, in any order and combination, e.g.
    /// `gemini-2.5-flash-thinking-4096-search` or `gemini-3-flash-preview-low-code`. Names
    /// without suffixes come back unchanged, so real model ids are never rewritten.
    pub fn parse(model: &str) -> Self {
        let mut base = model;
        let mut variant = Self {
            base: String::new(),
            thinking: None,
            search: false,
            code: false,
            url_context: false,
        };
        loop {
            let tools = [
                ("-search", &mut variant.search),
                ("-code", &mut variant.code),
                ("-urlcontext", &mut variant.url_context),
            ];
            let mut stripped = false;
            for (suffix, seen) in tools {
                if !*seen && let Some(rest) = base.strip_suffix(suffix) {
                    *seen = true;
                    base = rest;
                    stripped = true;
                    break;
                }
            }
            if stripped {
                continue;
            }
            if variant.thinking.is_none() {
                if let Some((rest, thinking)) = WORD_SUFFIXES
                    .iter()
                    .find_map(|(suffix, t)| base.strip_suffix(suffix).map(|rest| (rest, *t)))
                {
                    variant.thinking = Some(thinking);
                    base = rest;
                    continue;
                }
                if let Some((rest, budget)) = split_budget_suffix(base) {
                    variant.thinking = Some(SuffixThinking::Budget(budget));
                    base = rest;
                    continue;
                }
            }
            break;
        }
        // A suffix alone is not a model: keep the name whole and let upstream judge it.
        if base.is_empty() || base.ends_with('-') {
            return Self {
                base: model.to_owned(),
                thinking: None,
                search: false,
                code: false,
                url_context: false,
            };
        }
        variant.base = base.to_owned();
        variant
    }
}

/// `…-thinking-4096` → (`…`, 4096).
fn split_budget_suffix(model: &str) -> Option<(&str, u32)> {
    let (rest, digits) = model.rsplit_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = rest.strip_suffix("-thinking")?;
    Some((rest, digits.parse().ok()?))
}

// ---------------------------------------------------------------------------------------------
// the client's explicit thinking_config
// ---------------------------------------------------------------------------------------------

/// `extra_body.google.thinking_config`, in either spelling.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientThinkingConfig {
    #[serde(default, alias = "thinkingBudget")]
    pub thinking_budget: Option<i32>,
    #[serde(default, alias = "thinkingLevel")]
    pub thinking_level: Option<String>,
    #[serde(default, alias = "includeThoughts")]
    pub include_thoughts: Option<bool>,
}

/// Everything that decides one request's thinking.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThinkingRequest<'a> {
    pub effort: Option<ReasoningEffort>,
    pub suffix: Option<SuffixThinking>,
    pub explicit: Option<&'a ClientThinkingConfig>,
    /// The operator's thinking default for this model (`thinking_defaults`), used when the
    /// request says nothing itself.
    pub model_default: Option<&'a ThinkingDefault>,
    /// The configured default for returning thoughts.
    pub include_thoughts_default: bool,
}

/// The `thinkingConfig` to send (if any) and what had to be adjusted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThinkingPlan {
    pub config: Option<ThinkingConfig>,
    pub adjustments: Vec<Adjustment>,
}

/// Resolves the knobs for `model` (a bare id). An explicit `thinking_config` is sent as the
/// client wrote it, even to a model that does not think: the client asked for exactly that, and
/// Google's own 400 is the honest answer.
pub fn plan(model: &str, req: &ThinkingRequest<'_>) -> ThinkingPlan {
    let family = family(model);
    let mut plan = ThinkingPlan::default();
    let explicit_knobs = req
        .explicit
        .is_some_and(|e| e.thinking_budget.is_some() || e.thinking_level.is_some());
    let mut config = match (req.effort, req.suffix) {
        (Some(effort), _) => from_effort(family, effort, "reasoning_effort", &mut plan.adjustments),
        (None, Some(suffix)) => from_suffix(family, suffix, &mut plan.adjustments),
        (None, None) if !explicit_knobs => req
            .model_default
            .map(|d| from_default(family, d))
            .unwrap_or_default(),
        (None, None) => ThinkingConfig::default(),
    };
    if config.include_thoughts.is_none() && req.explicit.and_then(|e| e.include_thoughts).is_none()
    {
        config.include_thoughts = req.model_default.and_then(|d| d.include_thoughts);
    }
    if let Some(explicit) = req.explicit {
        if explicit.thinking_budget.is_some() || explicit.thinking_level.is_some() {
            // Gemini rejects a budget and a level together; the client's choice replaces ours.
            config.thinking_budget = explicit.thinking_budget;
            config.thinking_level = explicit
                .thinking_level
                .as_deref()
                .map(|l| Level::parse(l).map_or_else(|| l.to_owned(), |l| l.as_str().to_owned()));
        }
        config.include_thoughts = explicit.include_thoughts.or(config.include_thoughts);
    }
    let thinks = !matches!(family, Family::None);
    if config.include_thoughts.is_none() && req.include_thoughts_default && thinks {
        config.include_thoughts = Some(true);
    }
    plan.config = (config != ThinkingConfig::default()).then_some(config);
    plan
}

/// An operator's default, fitted to what the model takes: a budget only to budget models
/// (clamped into their range; -1 stays dynamic), a level only to level models (moved to the
/// nearest one they accept). A default of the other kind is left out.
pub fn from_default(family: Family, default: &ThinkingDefault) -> ThinkingConfig {
    match (
        family,
        default.thinking_budget,
        default.thinking_level.as_deref(),
    ) {
        (Family::Budget { .. }, Some(-1), _) => ThinkingConfig {
            thinking_budget: Some(-1),
            ..ThinkingConfig::default()
        },
        (Family::Budget { .. }, Some(budget), _) => {
            budget_config(fit_budget(family, u32::try_from(budget).unwrap_or(0)))
        }
        (Family::Levels(accepted), None, Some(level)) => Level::parse(level)
            .map(|l| level_config(nearest_level(accepted, l)))
            .unwrap_or_default(),
        _ => ThinkingConfig::default(),
    }
}

fn budget_config(budget: u32) -> ThinkingConfig {
    ThinkingConfig {
        thinking_budget: Some(i32::try_from(budget).unwrap_or(i32::MAX)),
        ..ThinkingConfig::default()
    }
}

fn level_config(level: Level) -> ThinkingConfig {
    ThinkingConfig {
        thinking_level: Some(level.as_str().to_owned()),
        ..ThinkingConfig::default()
    }
}

fn effort_name(effort: ReasoningEffort) -> &'static str {
    match effort {
        ReasoningEffort::None => "none",
        ReasoningEffort::Minimal => "minimal",
        ReasoningEffort::Low => "low",
        ReasoningEffort::Medium => "medium",
        ReasoningEffort::High => "high",
        ReasoningEffort::Xhigh => "xhigh",
        ReasoningEffort::Max => "max",
    }
}

/// 2.5 budgets none/minimal/low/medium/high → 0/0/1024/8192/24576 (the model's
/// maximum above that); Gemini 3 levels, moved to the nearest level the model accepts.
/// `field` names the knob in adjustments: `reasoning_effort`, or `model_suffix` for the
/// suffixes that spell an effort (`-high`).
fn from_effort(
    family: Family,
    effort: ReasoningEffort,
    field: &'static str,
    adjustments: &mut Vec<Adjustment>,
) -> ThinkingConfig {
    let requested = effort_name(effort);
    match family {
        Family::Budget { max, .. } => {
            let wanted = match effort {
                ReasoningEffort::None | ReasoningEffort::Minimal => 0,
                ReasoningEffort::Low => 1_024,
                ReasoningEffort::Medium => 8_192,
                ReasoningEffort::High => 24_576,
                ReasoningEffort::Xhigh | ReasoningEffort::Max => max,
            };
            let applied = fit_budget(family, wanted);
            if applied != wanted {
                adjustments.push(Adjustment {
                    field,
                    requested: requested.to_owned(),
                    applied: format!("thinking_budget:{applied}"),
                });
            }
            budget_config(applied)
        }
        Family::Levels(accepted) => {
            let wanted = match effort {
                // Gemini 3 cannot stop thinking: the least it does is its lowest level.
                ReasoningEffort::None | ReasoningEffort::Minimal => Level::Minimal,
                ReasoningEffort::Low => Level::Low,
                ReasoningEffort::Medium => Level::Medium,
                ReasoningEffort::High | ReasoningEffort::Xhigh | ReasoningEffort::Max => {
                    Level::High
                }
            };
            let applied = nearest_level(accepted, wanted);
            let exact = applied.as_str() == requested;
            if !exact {
                adjustments.push(Adjustment {
                    field,
                    requested: requested.to_owned(),
                    applied: applied.as_str().to_owned(),
                });
            }
            level_config(applied)
        }
        Family::None => {
            adjustments.push(Adjustment {
                field,
                requested: requested.to_owned(),
                applied: "ignored (model does not think)".to_owned(),
            });
            ThinkingConfig::default()
        }
    }
}

fn from_suffix(
    family: Family,
    suffix: SuffixThinking,
    adjustments: &mut Vec<Adjustment>,
) -> ThinkingConfig {
    if let SuffixThinking::Effort(effort) = suffix {
        return from_effort(family, effort, "model_suffix", adjustments);
    }
    let mut adjust = |requested: String, applied: String| {
        adjustments.push(Adjustment {
            field: "model_suffix",
            requested,
            applied,
        });
    };
    match (family, suffix) {
        (Family::Budget { max, .. }, SuffixThinking::Max) => budget_config(max),
        (Family::Budget { .. }, SuffixThinking::Off) => {
            let applied = fit_budget(family, 0);
            if applied != 0 {
                adjust(
                    "nothinking".to_owned(),
                    format!("thinking_budget:{applied}"),
                );
            }
            budget_config(applied)
        }
        (Family::Budget { .. }, SuffixThinking::Budget(wanted)) => {
            let applied = fit_budget(family, wanted);
            if applied != wanted {
                adjust(
                    format!("thinking-{wanted}"),
                    format!("thinking_budget:{applied}"),
                );
            }
            budget_config(applied)
        }
        (Family::Levels(accepted), SuffixThinking::Max) => {
            level_config(nearest_level(accepted, Level::High))
        }
        (Family::Levels(accepted), SuffixThinking::Off) => {
            let lowest = accepted.first().copied().unwrap_or(Level::Low);
            adjust("nothinking".to_owned(), lowest.as_str().to_owned());
            level_config(lowest)
        }
        // Gemini 3 still takes a budget, for compatibility with 2.5 clients.
        (Family::Levels(_), SuffixThinking::Budget(wanted)) => budget_config(wanted),
        // Answered by `from_effort` above.
        (_, SuffixThinking::Effort(_)) => ThinkingConfig::default(),
        (Family::None, _) => {
            adjust(
                suffix_name(suffix),
                "ignored (model does not think)".to_owned(),
            );
            ThinkingConfig::default()
        }
    }
}

fn suffix_name(suffix: SuffixThinking) -> String {
    match suffix {
        SuffixThinking::Off => "nothinking".to_owned(),
        SuffixThinking::Max => "maxthinking".to_owned(),
        SuffixThinking::Budget(n) => format!("thinking-{n}"),
        SuffixThinking::Effort(effort) => effort_name(effort).to_owned(),
    }
}

/// The budget a `Budget` model accepts nearest to `wanted`: 0 stays 0 where thinking can be
/// turned off, otherwise budgets are clamped into the model's range.
fn fit_budget(family: Family, wanted: u32) -> u32 {
    match family {
        Family::Budget {
            min,
            max,
            can_disable,
        } => {
            if wanted == 0 && can_disable {
                0
            } else {
                wanted.clamp(min, max)
            }
        }
        _ => wanted,
    }
}

/// The accepted level nearest to `wanted`; on a tie the higher one, favouring quality.
fn nearest_level(accepted: &[Level], wanted: Level) -> Level {
    let rank = |l: Level| Level::ALL.iter().position(|x| *x == l).unwrap_or(0);
    let target = rank(wanted);
    accepted
        .iter()
        .copied()
        .min_by_key(|l| (rank(*l).abs_diff(target), std::cmp::Reverse(rank(*l))))
        .unwrap_or(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn effort(model: &str, effort: ReasoningEffort) -> (Option<ThinkingConfig>, Vec<String>) {
        let plan = plan(
            model,
            &ThinkingRequest {
                effort: Some(effort),
                ..ThinkingRequest::default()
            },
        );
        (
            plan.config,
            plan.adjustments.iter().map(ToString::to_string).collect(),
        )
    }

    #[expect(clippy::unnecessary_wraps, reason = "compared with Option results")]
    fn budget(n: i32) -> Option<ThinkingConfig> {
        Some(ThinkingConfig {
            thinking_budget: Some(n),
            ..ThinkingConfig::default()
        })
    }

    #[expect(clippy::unnecessary_wraps, reason = "compared with Option results")]
    fn level(l: &str) -> Option<ThinkingConfig> {
        Some(ThinkingConfig {
            thinking_level: Some(l.to_owned()),
            ..ThinkingConfig::default()
        })
    }

    #[test]
    fn families_follow_the_model_id() {
        assert_eq!(family("gemini-3-pro-preview"), Family::Levels(PRO_3_0));
        assert_eq!(family("gemini-3.1-pro-preview"), Family::Levels(OTHER_3));
        assert_eq!(family("gemini-3-flash-preview"), Family::Levels(FLASH_3));
        assert_eq!(family("gemini-3.1-flash-lite"), Family::Levels(FLASH_3));
        assert_eq!(family("gemini-3.5-ultra"), Family::Levels(OTHER_3));
        assert!(matches!(
            family("gemini-2.5-pro"),
            Family::Budget { min: 128, .. }
        ));
        assert!(matches!(
            family("gemini-2.5-flash-lite"),
            Family::Budget { min: 512, .. }
        ));
        assert!(matches!(
            family("gemini-flash-latest"),
            Family::Budget { .. }
        ));
        for none in [
            "gemini-2.0-flash",
            "gemma-3-27b-it",
            "gemini-30-x",
            "text-embedding-004",
        ] {
            assert_eq!(family(none), Family::None, "{none}");
        }
    }

    /// The `reasoning_effort` × family table.
    #[test]
    fn effort_table() {
        use ReasoningEffort as E;
        let rows: &[(&str, E, Option<ThinkingConfig>, &[&str])] = &[
            ("gemini-2.5-flash", E::None, budget(0), &[]),
            ("gemini-2.5-flash", E::Minimal, budget(0), &[]),
            ("gemini-2.5-flash", E::Low, budget(1024), &[]),
            ("gemini-2.5-flash", E::Medium, budget(8192), &[]),
            ("gemini-2.5-flash", E::High, budget(24576), &[]),
            ("gemini-2.5-flash", E::Xhigh, budget(24576), &[]),
            (
                "gemini-2.5-pro",
                E::None,
                budget(128),
                &["reasoning_effort=none->thinking_budget:128"],
            ),
            (
                "gemini-2.5-pro",
                E::Minimal,
                budget(128),
                &["reasoning_effort=minimal->thinking_budget:128"],
            ),
            ("gemini-2.5-pro", E::Low, budget(1024), &[]),
            ("gemini-2.5-pro", E::High, budget(24576), &[]),
            ("gemini-2.5-pro", E::Max, budget(32768), &[]),
            ("gemini-2.5-flash-lite", E::Minimal, budget(0), &[]),
            ("gemini-2.5-flash-lite", E::Low, budget(1024), &[]),
            (
                "gemini-3-pro-preview",
                E::None,
                level("low"),
                &["reasoning_effort=none->low"],
            ),
            (
                "gemini-3-pro-preview",
                E::Minimal,
                level("low"),
                &["reasoning_effort=minimal->low"],
            ),
            ("gemini-3-pro-preview", E::Low, level("low"), &[]),
            (
                "gemini-3-pro-preview",
                E::Medium,
                level("high"),
                &["reasoning_effort=medium->high"],
            ),
            ("gemini-3-pro-preview", E::High, level("high"), &[]),
            (
                "gemini-3-pro-preview",
                E::Xhigh,
                level("high"),
                &["reasoning_effort=xhigh->high"],
            ),
            (
                "gemini-3-flash-preview",
                E::None,
                level("minimal"),
                &["reasoning_effort=none->minimal"],
            ),
            ("gemini-3-flash-preview", E::Minimal, level("minimal"), &[]),
            ("gemini-3-flash-preview", E::Medium, level("medium"), &[]),
            ("gemini-3.1-pro-preview", E::Medium, level("medium"), &[]),
            (
                "gemini-3.1-pro-preview",
                E::Minimal,
                level("low"),
                &["reasoning_effort=minimal->low"],
            ),
            (
                "gemini-2.0-flash",
                E::High,
                None,
                &["reasoning_effort=high->ignored (model does not think)"],
            ),
        ];
        for (model, e, want, adjusted) in rows {
            let (config, adjustments) = effort(model, *e);
            assert_eq!(&config, want, "{model} {e:?}");
            assert_eq!(&adjustments, adjusted, "{model} {e:?}");
        }
    }

    #[test]
    fn suffixes_parse_in_any_combination() {
        let v = ModelVariant::parse("gemini-2.5-flash-thinking-4096-search");
        assert_eq!(v.base, "gemini-2.5-flash");
        assert_eq!(v.thinking, Some(SuffixThinking::Budget(4096)));
        assert!(v.search);
        let v = ModelVariant::parse("gemini-2.5-pro-search-maxthinking");
        assert_eq!(
            (v.base.as_str(), v.thinking, v.search),
            ("gemini-2.5-pro", Some(SuffixThinking::Max), true)
        );
        let v = ModelVariant::parse("gemini-2.5-flash-nothinking");
        assert_eq!(v.thinking, Some(SuffixThinking::Off));
        for plain in [
            "gemini-2.5-flash",
            "gemini-2.0-flash-thinking-exp-01-21",
            "gemini-2.0-flash-thinking-exp",
            "-search",
            "search",
        ] {
            let v = ModelVariant::parse(plain);
            assert_eq!(v.base, plain);
            assert_eq!((v.thinking, v.search), (None, false), "{plain}");
        }
    }

    /// A name → (base, thinking, search, code, url context).
    type VariantRow<'a> = (&'a str, &'a str, Option<SuffixThinking>, bool, bool, bool);

    #[test]
    #[expect(clippy::too_many_lines, reason = "one table")]
    fn the_seed_spellings_parse_and_combine_with_the_tool_suffixes() {
        let e = |effort| Some(SuffixThinking::Effort(effort));
        let rows: &[VariantRow<'_>] = &[
            (
                "gemini-2.5-flash-non-thinking",
                "gemini-2.5-flash",
                Some(SuffixThinking::Off),
                false,
                false,
                false,
            ),
            (
                "gemini-2.5-flash-max",
                "gemini-2.5-flash",
                e(ReasoningEffort::Max),
                false,
                false,
                false,
            ),
            (
                "gemini-2.5-flash-high",
                "gemini-2.5-flash",
                e(ReasoningEffort::High),
                false,
                false,
                false,
            ),
            (
                "gemini-2.5-flash-medium",
                "gemini-2.5-flash",
                e(ReasoningEffort::Medium),
                false,
                false,
                false,
            ),
            (
                "gemini-2.5-flash-low",
                "gemini-2.5-flash",
                e(ReasoningEffort::Low),
                false,
                false,
                false,
            ),
            (
                "gemini-2.5-flash-minimal",
                "gemini-2.5-flash",
                e(ReasoningEffort::Minimal),
                false,
                false,
                false,
            ),
            (
                "gemini-3-flash-preview-low-search",
                "gemini-3-flash-preview",
                e(ReasoningEffort::Low),
                true,
                false,
                false,
            ),
            (
                "gemini-2.5-pro-search-high-code",
                "gemini-2.5-pro",
                e(ReasoningEffort::High),
                true,
                true,
                false,
            ),
            (
                "gemini-2.5-flash-urlcontext-non-thinking",
                "gemini-2.5-flash",
                Some(SuffixThinking::Off),
                false,
                false,
                true,
            ),
            (
                "gemini-2.5-flash-code-urlcontext-search",
                "gemini-2.5-flash",
                None,
                true,
                true,
                true,
            ),
            (
                "gemini-2.5-pro-maxthinking",
                "gemini-2.5-pro",
                Some(SuffixThinking::Max),
                false,
                false,
                false,
            ),
            // One thinking suffix only: the second is part of the name.
            (
                "gemini-2.5-flash-low-high",
                "gemini-2.5-flash-low",
                e(ReasoningEffort::High),
                false,
                false,
                false,
            ),
            // Bare suffixes are not models.
            ("-high", "-high", None, false, false, false),
            ("-code-search", "-code-search", None, false, false, false),
        ];
        for (name, base, thinking, search, code, url_context) in rows {
            let v = ModelVariant::parse(name);
            assert_eq!(
                (v.base.as_str(), v.thinking, v.search, v.code, v.url_context),
                (*base, *thinking, *search, *code, *url_context),
                "{name}"
            );
        }
    }

    /// The effort suffixes give what the same `reasoning_effort` gives, reported as
    /// `model_suffix` adjustments.
    #[test]
    fn effort_suffixes_map_like_reasoning_effort() {
        use ReasoningEffort as E;
        let suffix = |model: &str, effort| {
            let p = plan(
                model,
                &ThinkingRequest {
                    suffix: Some(SuffixThinking::Effort(effort)),
                    ..ThinkingRequest::default()
                },
            );
            let adjusted: Vec<String> = p.adjustments.iter().map(ToString::to_string).collect();
            (p.config, adjusted)
        };
        let rows: &[(&str, E, Option<ThinkingConfig>, &[&str])] = &[
            ("gemini-2.5-flash", E::Max, budget(24576), &[]),
            ("gemini-2.5-flash", E::High, budget(24576), &[]),
            ("gemini-2.5-flash", E::Medium, budget(8192), &[]),
            ("gemini-2.5-flash", E::Low, budget(1024), &[]),
            ("gemini-2.5-flash", E::Minimal, budget(0), &[]),
            ("gemini-2.5-pro", E::Max, budget(32768), &[]),
            (
                "gemini-2.5-pro",
                E::Minimal,
                budget(128),
                &["model_suffix=minimal->thinking_budget:128"],
            ),
            ("gemini-3-flash-preview", E::Minimal, level("minimal"), &[]),
            ("gemini-3-flash-preview", E::Low, level("low"), &[]),
            ("gemini-3-flash-preview", E::Medium, level("medium"), &[]),
            ("gemini-3-flash-preview", E::High, level("high"), &[]),
            (
                "gemini-3-flash-preview",
                E::Max,
                level("high"),
                &["model_suffix=max->high"],
            ),
            (
                "gemini-3-pro-preview",
                E::Medium,
                level("high"),
                &["model_suffix=medium->high"],
            ),
            (
                "gemini-2.0-flash",
                E::High,
                None,
                &["model_suffix=high->ignored (model does not think)"],
            ),
        ];
        for (model, e, want, adjusted) in rows {
            assert_eq!(
                suffix(model, *e),
                (
                    want.clone(),
                    adjusted.iter().map(|s| (*s).to_owned()).collect()
                ),
                "{model} {e:?}"
            );
        }
        // A request's own reasoning_effort still beats the suffix.
        let p = plan(
            "gemini-2.5-flash",
            &ThinkingRequest {
                effort: Some(E::Low),
                suffix: Some(SuffixThinking::Effort(E::High)),
                ..ThinkingRequest::default()
            },
        );
        assert_eq!(p.config, budget(1024));
    }

    #[test]
    fn suffix_thinking_fits_the_model() {
        let suffix = |model: &str, s| {
            let p = plan(
                model,
                &ThinkingRequest {
                    suffix: Some(s),
                    ..ThinkingRequest::default()
                },
            );
            let adjusted: Vec<String> = p.adjustments.iter().map(ToString::to_string).collect();
            (p.config, adjusted)
        };
        assert_eq!(
            suffix("gemini-2.5-flash", SuffixThinking::Off),
            (budget(0), vec![])
        );
        assert_eq!(
            suffix("gemini-2.5-pro", SuffixThinking::Off),
            (
                budget(128),
                vec!["model_suffix=nothinking->thinking_budget:128".to_owned()]
            )
        );
        assert_eq!(
            suffix("gemini-2.5-flash", SuffixThinking::Max),
            (budget(24576), vec![])
        );
        assert_eq!(
            suffix("gemini-2.5-flash", SuffixThinking::Budget(100_000)),
            (
                budget(24576),
                vec!["model_suffix=thinking-100000->thinking_budget:24576".to_owned()]
            )
        );
        assert_eq!(
            suffix("gemini-2.5-flash-lite", SuffixThinking::Budget(100)),
            (
                budget(512),
                vec!["model_suffix=thinking-100->thinking_budget:512".to_owned()]
            )
        );
        assert_eq!(
            suffix("gemini-3-pro-preview", SuffixThinking::Max),
            (level("high"), vec![])
        );
        assert_eq!(
            suffix("gemini-3-flash-preview", SuffixThinking::Off),
            (
                level("minimal"),
                vec!["model_suffix=nothinking->minimal".to_owned()]
            )
        );
        assert_eq!(
            suffix("gemini-3-pro-preview", SuffixThinking::Budget(2048)),
            (budget(2048), vec![])
        );
    }

    #[test]
    fn explicit_thinking_config_wins_and_include_thoughts_defaults_apply() {
        let explicit = ClientThinkingConfig {
            thinking_budget: Some(2048),
            include_thoughts: Some(true),
            ..ClientThinkingConfig::default()
        };
        let p = plan(
            "gemini-2.5-flash",
            &ThinkingRequest {
                effort: Some(ReasoningEffort::High),
                suffix: Some(SuffixThinking::Off),
                explicit: Some(&explicit),
                model_default: None,
                include_thoughts_default: false,
            },
        );
        assert_eq!(
            p.config,
            Some(ThinkingConfig {
                thinking_budget: Some(2048),
                include_thoughts: Some(true),
                thinking_level: None,
            })
        );
        // A level replaces the effort's budget: Gemini rejects both together.
        let explicit = ClientThinkingConfig {
            thinking_level: Some("LOW".to_owned()),
            ..ClientThinkingConfig::default()
        };
        let p = plan(
            "gemini-3-flash-preview",
            &ThinkingRequest {
                effort: Some(ReasoningEffort::High),
                explicit: Some(&explicit),
                ..ThinkingRequest::default()
            },
        );
        assert_eq!(p.config, level("low"));
        // include_thoughts alone keeps the effort's budget.
        let explicit = ClientThinkingConfig {
            include_thoughts: Some(true),
            ..ClientThinkingConfig::default()
        };
        let p = plan(
            "gemini-2.5-flash",
            &ThinkingRequest {
                effort: Some(ReasoningEffort::Low),
                explicit: Some(&explicit),
                ..ThinkingRequest::default()
            },
        );
        assert_eq!(
            p.config,
            Some(ThinkingConfig {
                thinking_budget: Some(1024),
                include_thoughts: Some(true),
                thinking_level: None,
            })
        );
        // The configured default asks for thoughts only from models that think.
        let default_on = ThinkingRequest {
            include_thoughts_default: true,
            ..ThinkingRequest::default()
        };
        assert_eq!(
            plan("gemini-2.5-flash", &default_on).config,
            Some(ThinkingConfig {
                include_thoughts: Some(true),
                ..ThinkingConfig::default()
            })
        );
        assert_eq!(plan("gemini-2.0-flash", &default_on).config, None);
        // An explicit `include_thoughts: false` beats the default.
        let off = ClientThinkingConfig {
            include_thoughts: Some(false),
            ..ClientThinkingConfig::default()
        };
        let p = plan(
            "gemini-2.5-flash",
            &ThinkingRequest {
                explicit: Some(&off),
                include_thoughts_default: true,
                ..ThinkingRequest::default()
            },
        );
        assert_eq!(
            p.config,
            Some(ThinkingConfig {
                include_thoughts: Some(false),
                ..ThinkingConfig::default()
            })
        );
    }

    #[test]
    fn an_operator_default_applies_only_when_the_request_sets_nothing() {
        let budget = ThinkingDefault {
            pattern: "*".into(),
            thinking_budget: Some(0),
            include_thoughts: Some(true),
            ..ThinkingDefault::default()
        };
        let ask = |model: &str, effort, default: &ThinkingDefault, global| {
            plan(
                model,
                &ThinkingRequest {
                    effort,
                    model_default: Some(default),
                    include_thoughts_default: global,
                    ..ThinkingRequest::default()
                },
            )
            .config
        };
        assert_eq!(
            ask("gemini-2.5-flash", None, &budget, false),
            Some(ThinkingConfig {
                thinking_budget: Some(0),
                include_thoughts: Some(true),
                ..ThinkingConfig::default()
            })
        );
        // Fitted to the model: 2.5 Pro cannot turn thinking off.
        assert_eq!(
            ask("gemini-2.5-pro", None, &budget, false)
                .unwrap()
                .thinking_budget,
            Some(128)
        );
        // The request's own effort wins; the default's include_thoughts still applies.
        let high = ask(
            "gemini-2.5-flash",
            Some(ReasoningEffort::High),
            &budget,
            false,
        )
        .unwrap();
        assert_eq!(
            (high.thinking_budget, high.include_thoughts),
            (Some(24_576), Some(true))
        );
        // A level default goes only to level models, moved to a level they accept.
        let level = ThinkingDefault {
            pattern: "*".into(),
            thinking_level: Some("medium".into()),
            include_thoughts: Some(false),
            ..ThinkingDefault::default()
        };
        assert_eq!(
            ask("gemini-3-pro-preview", None, &level, true)
                .unwrap()
                .thinking_level
                .as_deref(),
            Some("high")
        );
        // Its include_thoughts beats the global setting; a budget model gets no level.
        assert_eq!(
            ask("gemini-2.5-flash", None, &level, true),
            Some(ThinkingConfig {
                include_thoughts: Some(false),
                ..ThinkingConfig::default()
            })
        );
        // An explicit thinking_config replaces the default's knobs.
        let explicit = ClientThinkingConfig {
            thinking_budget: Some(2048),
            ..ClientThinkingConfig::default()
        };
        let p = plan(
            "gemini-2.5-flash",
            &ThinkingRequest {
                explicit: Some(&explicit),
                model_default: Some(&budget),
                ..ThinkingRequest::default()
            },
        );
        assert_eq!(p.config.unwrap().thinking_budget, Some(2048));
    }
}
