//! Model prices and the credit arithmetic: the operator's cost table and its defaults, what a
//! request reserves up front, and what it is finally charged. Plain saturating arithmetic; no
//! ledger state.

use serde::{Deserialize, Serialize};

use super::glob::glob_match;

/// Default request costs when the cost table has nothing for a model.
const PRO_REQUEST_COST: u64 = 10;
const FLASH_REQUEST_COST: u64 = 2;
const OTHER_REQUEST_COST: u64 = 1;
/// Default credits per token, prompt and output alike.
const DEFAULT_TOKEN_PRICE: u64 = 1;

/// What a request costs: a flat price per request, or its tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargingMode {
    #[default]
    Request,
    Token,
}

/// One row of the operator's cost table (first matching `pattern` glob wins).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelCost {
    pub pattern: String,
    #[serde(default)]
    pub request_cost: Option<u64>,
    /// Credits per prompt token.
    #[serde(default)]
    pub prompt_price: Option<u64>,
    /// Credits per output token (candidates + thoughts).
    #[serde(default)]
    pub completion_price: Option<u64>,
}

/// The resolved price of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    pub request: u64,
    pub prompt: u64,
    pub completion: u64,
}

/// The price of `model`: the first row of `table` whose pattern matches it,
/// with every field the row leaves out (or all of them, when no row matches)
/// taken from the defaults: a request costs 10 for Pro-class models (the id
/// contains `pro`), 2 for Flash-class ones (`flash`) and 1 otherwise; a token
/// costs 1 either way.
pub fn price_for(model: &str, table: &[ModelCost]) -> Price {
    let row = table.iter().find(|row| glob_match(&row.pattern, model));
    let id = model.to_ascii_lowercase();
    let default_request = if id.contains("pro") {
        PRO_REQUEST_COST
    } else if id.contains("flash") {
        FLASH_REQUEST_COST
    } else {
        OTHER_REQUEST_COST
    };
    Price {
        request: row.and_then(|r| r.request_cost).unwrap_or(default_request),
        prompt: row
            .and_then(|r| r.prompt_price)
            .unwrap_or(DEFAULT_TOKEN_PRICE),
        completion: row
            .and_then(|r| r.completion_price)
            .unwrap_or(DEFAULT_TOKEN_PRICE),
    }
}

/// Worst-case token estimate for a request, from the edge: the prompt estimate
/// (`ceil(prompt bytes / 4)`, the edge's job), the most output it allows
/// (`max_tokens`, or the configured default) and the thinking budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimate {
    pub prompt_tokens: u64,
    pub max_output_tokens: u64,
    pub thinking_tokens: u64,
}

/// What a request reserves: credits, and tokens (which count against TPM).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub credits: u64,
    pub tokens: u64,
}

/// The worst case a request may cost. `multiplier` is 1 normally and 2 for
/// anti-truncation requests; it scales the credits only. The tokens stay the
/// estimate of what Gemini will count, since TPM limits real token traffic
/// and each request settles with its real tokens anyway.
pub fn reservation(
    mode: ChargingMode,
    price: Price,
    estimate: Estimate,
    multiplier: u64,
) -> Reservation {
    let output = estimate
        .max_output_tokens
        .saturating_add(estimate.thinking_tokens);
    let tokens = estimate.prompt_tokens.saturating_add(output);
    let credits = match mode {
        ChargingMode::Request => price.request,
        ChargingMode::Token => token_cost(price, estimate.prompt_tokens, output),
    };
    Reservation {
        credits: credits.saturating_mul(multiplier),
        tokens,
    }
}

/// Real usage, from Gemini's `usageMetadata` (the last one seen, for a cut stream).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    /// `candidatesTokenCount`.
    pub completion_tokens: u64,
    /// `thoughtsTokenCount`.
    pub reasoning_tokens: u64,
}

/// The final charge. Request mode: the request cost × `multiplier` if the
/// request was `served` (the upstream answered with success, even if the
/// stream was cut later), else 0. Token mode: prompt × prompt price +
/// (completion + reasoning) × completion price, × `multiplier`, whatever
/// `served` says, because Google bills the tokens it reported.
pub fn charge(
    mode: ChargingMode,
    price: Price,
    usage: Usage,
    served: bool,
    multiplier: u64,
) -> u64 {
    let cost = match mode {
        ChargingMode::Request if served => price.request,
        ChargingMode::Request => 0,
        ChargingMode::Token => token_cost(
            price,
            usage.prompt_tokens,
            usage
                .completion_tokens
                .saturating_add(usage.reasoning_tokens),
        ),
    };
    cost.saturating_mul(multiplier)
}

fn token_cost(price: Price, prompt_tokens: u64, output_tokens: u64) -> u64 {
    prompt_tokens
        .saturating_mul(price.prompt)
        .saturating_add(output_tokens.saturating_mul(price.completion))
}
