//! Onboarding an account in gemini-cli's order (its `code_assist/setup.ts`):
//! `loadCodeAssist` with the client metadata; with a `currentTier` the account
//! is ready (its project from the answer, or the operator's); without one,
//! `onboardUser` with the default allowed tier, then the long-running
//! operation polled until done. Every refusal on the way becomes an
//! [`Attention`]: a state the operator sees and acts on, never retried in a
//! loop. The edge performs the calls; each answer comes back here for the
//! next step.

use serde::Deserialize;
use serde_json::{Value, json};

pub const FREE_TIER: &str = "free-tier";
pub const LEGACY_TIER: &str = "legacy-tier";
pub const STANDARD_TIER: &str = "standard-tier";

/// Most polls of an onboarding operation in one onboarding run (gemini-cli
/// polls every 5 s without a limit; we stop and show the account instead).
pub const MAX_POLLS: u32 = 6;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Tier {
    pub id: Option<String>,
    pub name: Option<String>,
    pub is_default: Option<bool>,
    pub user_defined_cloudaicompanion_project: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IneligibleTier {
    pub reason_code: Option<String>,
    pub reason_message: Option<String>,
    pub tier_id: Option<String>,
    pub tier_name: Option<String>,
    pub validation_url: Option<String>,
    pub validation_learn_more_url: Option<String>,
}

/// The parts of `loadCodeAssist`'s answer onboarding reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LoadResponse {
    pub current_tier: Option<Tier>,
    pub allowed_tiers: Option<Vec<Tier>>,
    pub ineligible_tiers: Option<Vec<IneligibleTier>>,
    pub cloudaicompanion_project: Option<String>,
    pub paid_tier: Option<Tier>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProjectRef {
    pub id: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OnboardResponse {
    pub cloudaicompanion_project: Option<ProjectRef>,
}

/// `onboardUser`'s long-running operation, as first answered or polled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Operation {
    pub name: Option<String>,
    pub done: Option<bool>,
    pub response: Option<OnboardResponse>,
}

/// Why an account cannot serve until the operator acts. `reason()` is the
/// contract's code; `message` is Google's own words where it gave some.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attention {
    /// Google says the account may not use any tier it could onboard to.
    Ineligible { code: String, message: String },
    /// A Workspace or paid tier that needs the operator's Cloud project.
    ProjectRequired,
    /// Google wants the account holder to verify the account at `url`.
    ValidationRequired {
        url: Option<String>,
        message: String,
    },
    /// The tier needs a subscription the account does not have.
    SubscriptionRequired {
        url: Option<String>,
        message: String,
    },
    /// Google refuses this kind of account on this client (free individual accounts).
    ClientUnsupported { message: String },
    /// The refresh token was revoked or expired (`invalid_grant`), or its client is refused.
    Revoked { message: String },
    /// Google refused the account or its project in a way no retry fixes.
    Forbidden { message: String },
}

impl Attention {
    /// The `reason` the admin API gives (stable: the console translates it).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Ineligible { .. } => "ineligible_tier",
            Self::ProjectRequired => "project_required",
            Self::ValidationRequired { .. } => "validation_required",
            Self::SubscriptionRequired { .. } => "subscription_required",
            Self::ClientUnsupported { .. } => "client_unsupported",
            Self::Revoked { .. } => "revoked",
            Self::Forbidden { .. } => "forbidden",
        }
    }

    pub fn url(&self) -> Option<&str> {
        match self {
            Self::ValidationRequired { url, .. } | Self::SubscriptionRequired { url, .. } => {
                url.as_deref()
            }
            _ => None,
        }
    }

    /// Google's words, or ours where Google gave none.
    pub fn message(&self) -> String {
        match self {
            Self::Ineligible { message, .. }
            | Self::ValidationRequired { message, .. }
            | Self::SubscriptionRequired { message, .. }
            | Self::ClientUnsupported { message }
            | Self::Revoked { message }
            | Self::Forbidden { message } => message.clone(),
            Self::ProjectRequired => {
                "This account needs a Google Cloud project: set its project id.".into()
            }
        }
    }

    /// Rebuilds one from what D1 keeps (`reason`, `url`, `message`).
    pub fn from_parts(reason: &str, url: Option<String>, message: String) -> Option<Self> {
        Some(match reason {
            "ineligible_tier" => Self::Ineligible {
                code: String::new(),
                message,
            },
            "project_required" => Self::ProjectRequired,
            "validation_required" => Self::ValidationRequired { url, message },
            "subscription_required" => Self::SubscriptionRequired { url, message },
            "client_unsupported" => Self::ClientUnsupported { message },
            "revoked" => Self::Revoked { message },
            "forbidden" => Self::Forbidden { message },
            _ => return None,
        })
    }
}

/// An account ready to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub project_id: String,
    pub tier: String,
    pub tier_name: Option<String>,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Ready(Ready),
    /// Call `onboardUser` with this body.
    Onboard {
        body: Value,
        tier: Tier,
    },
    /// Poll this operation (`GET {base}/v1internal/{name}`).
    Poll {
        operation: String,
    },
    Attention(Attention),
}

/// gemini-cli's client metadata.
fn metadata(project: Option<&str>) -> Value {
    let mut m = json!({
        "ideType": "IDE_UNSPECIFIED",
        "platform": "PLATFORM_UNSPECIFIED",
        "pluginType": "GEMINI",
    });
    if let Some(p) = project {
        m["duetProject"] = json!(p);
    }
    m
}

/// The `loadCodeAssist` body for an account, with the operator's project if any.
pub fn load_request(project: Option<&str>) -> Value {
    let mut body = json!({ "metadata": metadata(project) });
    if let Some(p) = project {
        body["cloudaicompanionProject"] = json!(p);
    }
    body
}

/// The step after `loadCodeAssist` answered.
pub fn after_load(load: &LoadResponse, project: Option<&str>) -> Next {
    if load.current_tier.is_none()
        && let Some(attention) = unsupported_client(load).or_else(|| validation(load))
    {
        return Next::Attention(attention);
    }
    if let Some(current) = &load.current_tier {
        let tier = load
            .paid_tier
            .as_ref()
            .and_then(|t| t.id.clone())
            .or_else(|| current.id.clone())
            .unwrap_or_else(|| STANDARD_TIER.into());
        let tier_name = load
            .paid_tier
            .as_ref()
            .and_then(|t| t.name.clone())
            .or_else(|| current.name.clone());
        return match load.cloudaicompanion_project.as_deref().or(project) {
            Some(p) if !p.is_empty() => Next::Ready(Ready {
                project_id: p.to_owned(),
                tier,
                tier_name,
            }),
            _ => Next::Attention(ineligible_or_project(load)),
        };
    }
    let tier = load
        .allowed_tiers
        .iter()
        .flatten()
        .find(|t| t.is_default == Some(true))
        .cloned()
        .unwrap_or(Tier {
            id: Some(LEGACY_TIER.into()),
            name: None,
            is_default: None,
            user_defined_cloudaicompanion_project: Some(true),
        });
    // The free tier runs in a managed project; naming one fails its precondition.
    let body = if tier.id.as_deref() == Some(FREE_TIER) {
        json!({ "tierId": FREE_TIER, "metadata": metadata(None) })
    } else {
        let mut body = json!({ "tierId": tier.id.clone().unwrap_or_else(|| LEGACY_TIER.into()), "metadata": metadata(project) });
        if let Some(p) = project {
            body["cloudaicompanionProject"] = json!(p);
        }
        body
    };
    Next::Onboard { body, tier }
}

/// The step after `onboardUser` (or a poll of its operation) answered. `polls`
/// counts the polls made so far.
pub fn after_operation(
    op: &Operation,
    load: &LoadResponse,
    tier: &Tier,
    project: Option<&str>,
    polls: u32,
) -> Next {
    if op.done != Some(true) {
        return match &op.name {
            Some(name) if polls < MAX_POLLS && valid_operation(name) => Next::Poll {
                operation: name.clone(),
            },
            Some(_) => Next::Attention(Attention::Forbidden {
                message: format!(
                    "Onboarding did not finish after {polls} checks; run re-check later."
                ),
            }),
            None => Next::Attention(Attention::Forbidden {
                message: "Onboarding answered an unfinished operation without a name.".into(),
            }),
        };
    }
    let from_answer = op
        .response
        .as_ref()
        .and_then(|r| r.cloudaicompanion_project.as_ref())
        .and_then(|p| p.id.clone())
        .filter(|p| !p.is_empty());
    match from_answer.or_else(|| project.map(str::to_owned)) {
        Some(project_id) => Next::Ready(Ready {
            project_id,
            tier: tier.id.clone().unwrap_or_else(|| STANDARD_TIER.into()),
            tier_name: tier.name.clone(),
        }),
        None => Next::Attention(ineligible_or_project(load)),
    }
}

/// An operation name we put into a URL path: `operations/…`, no traversal.
fn valid_operation(name: &str) -> bool {
    name.starts_with("operations/")
        && name.len() < 512
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'))
        && !name.contains("..")
}

/// Free individual accounts: `loadCodeAssist` lists the tier as ineligible
/// with `UNSUPPORTED_CLIENT` ("This client is no longer supported …").
fn unsupported_client(load: &LoadResponse) -> Option<Attention> {
    let tier = load.ineligible_tiers.iter().flatten().find(|t| {
        t.reason_code.as_deref() == Some("UNSUPPORTED_CLIENT")
            || t.reason_message
                .as_deref()
                .is_some_and(|m| m.to_ascii_lowercase().contains("no longer supported"))
    })?;
    Some(Attention::ClientUnsupported {
        message: tier.reason_message.clone().unwrap_or_else(|| {
            "Google no longer serves this kind of account on this client.".into()
        }),
    })
}

fn validation(load: &LoadResponse) -> Option<Attention> {
    let tier = load.ineligible_tiers.iter().flatten().find(|t| {
        t.reason_code.as_deref() == Some("VALIDATION_REQUIRED") && t.validation_url.is_some()
    })?;
    Some(Attention::ValidationRequired {
        url: tier.validation_url.clone(),
        message: tier
            .reason_message
            .clone()
            .unwrap_or_else(|| "Google asks the account holder to verify the account.".into()),
    })
}

/// gemini-cli's `throwIneligibleOrProjectIdError`, with the subscription case told apart.
fn ineligible_or_project(load: &LoadResponse) -> Attention {
    let tiers: Vec<&IneligibleTier> = load.ineligible_tiers.iter().flatten().collect();
    if tiers.is_empty() {
        return Attention::ProjectRequired;
    }
    if let Some(t) = tiers
        .iter()
        .find(|t| t.reason_code.as_deref() == Some("SUBSCRIPTION_REQUIRED"))
    {
        return Attention::SubscriptionRequired {
            url: t
                .validation_url
                .clone()
                .or(t.validation_learn_more_url.clone()),
            message: t.reason_message.clone().unwrap_or_default(),
        };
    }
    if let Some(v) = validation(load) {
        return v;
    }
    let message = tiers
        .iter()
        .filter_map(|t| t.reason_message.as_deref())
        .collect::<Vec<_>>()
        .join(", ");
    Attention::Ineligible {
        code: tiers[0]
            .reason_code
            .clone()
            .unwrap_or_else(|| "UNKNOWN".into()),
        message,
    }
}

/// An error answer of Code Assist (any method) that is about the account, not
/// the request: the "no longer supported" refusal, a validation or
/// subscription demand, or a refused project. `None` for everything else
/// (quota, server errors, a bad request), which the pool handles as usual.
pub fn attention_from_error(status: u16, body: &[u8]) -> Option<Attention> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error")?;
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let details = error.get("details").and_then(Value::as_array);
    let info = details.and_then(|d| {
        d.iter().find(|x| {
            x.get("@type").and_then(Value::as_str)
                == Some("type.googleapis.com/google.rpc.ErrorInfo")
        })
    });
    let reason = info
        .and_then(|i| i.get("reason"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let help_url = details
        .and_then(|d| {
            d.iter().find(|x| {
                x.get("@type").and_then(Value::as_str)
                    == Some("type.googleapis.com/google.rpc.Help")
            })
        })
        .and_then(|h| h.pointer("/links/0/url"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let meta_url = |key: &str| {
        info.and_then(|i| i.pointer(&format!("/metadata/{key}")))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if message.to_ascii_lowercase().contains("no longer supported") {
        return Some(Attention::ClientUnsupported { message });
    }
    match reason {
        "VALIDATION_REQUIRED" => {
            return Some(Attention::ValidationRequired {
                url: help_url.or_else(|| meta_url("validation_link")),
                message,
            });
        }
        "SUBSCRIPTION_REQUIRED" => {
            return Some(Attention::SubscriptionRequired {
                url: help_url.or_else(|| meta_url("subscription_link")),
                message,
            });
        }
        _ => {}
    }
    // A 403 that is not a quota: the account or its project is refused.
    let quota = matches!(
        reason,
        "RATE_LIMIT_EXCEEDED"
            | "QUOTA_EXHAUSTED"
            | "MODEL_CAPACITY_EXHAUSTED"
            | "RESOURCE_EXHAUSTED"
    );
    (status == 403 && !quota).then_some(Attention::Forbidden { message })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(v: Value) -> LoadResponse {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_free_account_listed_as_unsupported_needs_attention() {
        let l = load(
            json!({"allowedTiers": [{"id": "free-tier", "isDefault": true}], "ineligibleTiers": [{"reasonCode": "UNSUPPORTED_CLIENT", "reasonMessage": "This client is no longer supported for Gemini Code Assist for individuals.", "tierId": "free-tier"}]}),
        );
        let Next::Attention(a) = after_load(&l, None) else {
            panic!()
        };
        assert_eq!(a.reason(), "client_unsupported");
    }

    #[test]
    fn an_onboarded_account_is_ready_with_googles_project_or_the_operators() {
        let l = load(
            json!({"currentTier": {"id": "standard-tier", "name": "Gemini Code Assist"}, "cloudaicompanionProject": "p-1"}),
        );
        assert_eq!(
            after_load(&l, None),
            Next::Ready(Ready {
                project_id: "p-1".into(),
                tier: "standard-tier".into(),
                tier_name: Some("Gemini Code Assist".into())
            })
        );
        let l = load(
            json!({"currentTier": {"id": "standard-tier"}, "paidTier": {"id": "g1-pro-tier", "name": "Pro"}}),
        );
        let Next::Ready(r) = after_load(&l, Some("mine")) else {
            panic!()
        };
        assert_eq!(
            (r.project_id.as_str(), r.tier.as_str()),
            ("mine", "g1-pro-tier")
        );
        assert_eq!(
            after_load(&l, None),
            Next::Attention(Attention::ProjectRequired)
        );
    }

    #[test]
    fn without_a_tier_the_default_allowed_one_is_onboarded() {
        let l = load(
            json!({"allowedTiers": [{"id": "free-tier", "isDefault": true}, {"id": "standard-tier"}]}),
        );
        let Next::Onboard { body, tier } = after_load(&l, Some("p")) else {
            panic!()
        };
        assert_eq!(tier.id.as_deref(), Some("free-tier"));
        assert_eq!(
            body,
            json!({"tierId": "free-tier", "metadata": {"ideType": "IDE_UNSPECIFIED", "platform": "PLATFORM_UNSPECIFIED", "pluginType": "GEMINI"}})
        );
        let l = load(json!({"allowedTiers": [{"id": "standard-tier", "isDefault": true}]}));
        let Next::Onboard { body, .. } = after_load(&l, Some("p")) else {
            panic!()
        };
        assert_eq!(body["cloudaicompanionProject"], "p");
        assert_eq!(body["metadata"]["duetProject"], "p");
        let Next::Onboard { tier, .. } = after_load(&LoadResponse::default(), None) else {
            panic!()
        };
        assert_eq!(tier.id.as_deref(), Some(LEGACY_TIER));
    }

    #[test]
    fn validation_required_keeps_its_url() {
        let l = load(
            json!({"ineligibleTiers": [{"reasonCode": "VALIDATION_REQUIRED", "reasonMessage": "Verify", "validationUrl": "https://accounts.google.com/v"}]}),
        );
        let Next::Attention(a) = after_load(&l, None) else {
            panic!()
        };
        assert_eq!(a.reason(), "validation_required");
        assert_eq!(a.url(), Some("https://accounts.google.com/v"));
    }

    #[test]
    fn an_operation_is_polled_a_bounded_number_of_times() {
        let l = LoadResponse::default();
        let tier = Tier {
            id: Some("standard-tier".into()),
            ..Tier::default()
        };
        let pending = Operation {
            name: Some("operations/abc".into()),
            done: Some(false),
            response: None,
        };
        assert_eq!(
            after_operation(&pending, &l, &tier, None, 0),
            Next::Poll {
                operation: "operations/abc".into()
            }
        );
        assert!(matches!(
            after_operation(&pending, &l, &tier, None, MAX_POLLS),
            Next::Attention(Attention::Forbidden { .. })
        ));
        let odd = Operation {
            name: Some("operations/../x".into()),
            ..pending.clone()
        };
        assert!(matches!(
            after_operation(&odd, &l, &tier, None, 0),
            Next::Attention(_)
        ));
        let done: Operation = serde_json::from_value(json!({"name": "operations/abc", "done": true, "response": {"cloudaicompanionProject": {"id": "proj-9"}}})).unwrap();
        let Next::Ready(r) = after_operation(&done, &l, &tier, None, 2) else {
            panic!()
        };
        assert_eq!(r.project_id, "proj-9");
    }

    #[test]
    fn a_done_operation_without_a_project_says_why() {
        let tier = Tier::default();
        let done = Operation {
            name: None,
            done: Some(true),
            response: None,
        };
        let l = load(
            json!({"ineligibleTiers": [{"reasonCode": "INELIGIBLE_ACCOUNT", "reasonMessage": "Not eligible"}, {"reasonCode": "RESTRICTED_AGE", "reasonMessage": "Too young"}]}),
        );
        assert_eq!(
            after_operation(&done, &l, &tier, None, 0),
            Next::Attention(Attention::Ineligible {
                code: "INELIGIBLE_ACCOUNT".into(),
                message: "Not eligible, Too young".into()
            })
        );
        let l = load(
            json!({"ineligibleTiers": [{"reasonCode": "SUBSCRIPTION_REQUIRED", "reasonMessage": "Subscribe", "validationLearnMoreUrl": "https://x/learn"}]}),
        );
        let Next::Attention(a) = after_operation(&done, &l, &tier, None, 0) else {
            panic!()
        };
        assert_eq!(
            (a.reason(), a.url()),
            ("subscription_required", Some("https://x/learn"))
        );
        assert_eq!(
            after_operation(&done, &LoadResponse::default(), &tier, None, 0),
            Next::Attention(Attention::ProjectRequired)
        );
        assert!(matches!(
            after_operation(&done, &LoadResponse::default(), &tier, Some("p"), 0),
            Next::Ready(_)
        ));
    }

    #[test]
    fn account_refusals_in_error_answers_are_recognised() {
        let body = |v: Value| serde_json::to_vec(&v).unwrap();
        let a = attention_from_error(403, &body(json!({"error": {"code": 403, "message": "This client is no longer supported for free accounts.", "status": "PERMISSION_DENIED"}}))).unwrap();
        assert_eq!(a.reason(), "client_unsupported");
        let a = attention_from_error(403, &body(json!({"error": {"code": 403, "message": "Verify your account", "status": "PERMISSION_DENIED", "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "VALIDATION_REQUIRED", "domain": "cloudcode-pa.googleapis.com"},
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Verify", "url": "https://accounts.google.com/verify"}]}
        ]}}))).unwrap();
        assert_eq!(
            (a.reason(), a.url()),
            (
                "validation_required",
                Some("https://accounts.google.com/verify")
            )
        );
        let quota = body(
            json!({"error": {"code": 429, "message": "Quota", "status": "RESOURCE_EXHAUSTED", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "QUOTA_EXHAUSTED"}]}}),
        );
        assert_eq!(attention_from_error(429, &quota), None);
        assert_eq!(attention_from_error(500, b"not json"), None);
        let denied = body(
            json!({"error": {"code": 403, "message": "Permission denied on resource project p.", "status": "PERMISSION_DENIED"}}),
        );
        assert_eq!(
            attention_from_error(403, &denied).unwrap().reason(),
            "forbidden"
        );
    }

    #[test]
    fn attention_round_trips_through_d1s_columns() {
        for a in [
            Attention::ProjectRequired,
            Attention::ValidationRequired {
                url: Some("u".into()),
                message: "m".into(),
            },
            Attention::ClientUnsupported {
                message: "m".into(),
            },
            Attention::Revoked {
                message: "m".into(),
            },
        ] {
            let back =
                Attention::from_parts(a.reason(), a.url().map(str::to_owned), a.message()).unwrap();
            assert_eq!((back.reason(), back.url()), (a.reason(), a.url()));
        }
        assert_eq!(Attention::from_parts("nope", None, String::new()), None);
    }
}
