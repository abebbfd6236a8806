//! Project groups of upstream keys. Google counts free-tier quota per Cloud
//! project, so keys of one project share it (a quota 429 on one cools its
//! siblings, see `keypool`). This module holds what the admin API needs for
//! them: the checked body of a bulk project assignment, and the per-project
//! capacity assembled from the counts D1 returns. No I/O, no clock.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::clock::next_midnight_los_angeles_ms;
use super::error::GatewayError;

/// Keys one assignment may name.
pub const MAX_IDS: usize = 1_000;
/// The longest project name, in characters (after trimming).
pub const MAX_PROJECT_CHARS: usize = 100;

/// `POST /admin/api/keys/project`, checked: distinct ids in the order given,
/// and the project to set (`None` clears it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub ids: Vec<String>,
    pub project: Option<String>,
}

/// Checks `{"ids": [...], "project": "name" | null}`, naming the bad field.
/// The project is trimmed; `null` clears it. Repeated ids count once.
pub fn parse_assignment(body: &Value) -> Result<Assignment, GatewayError> {
    let Some(obj) = body.as_object() else {
        return Err(GatewayError::invalid_param(
            "Expected {\"ids\": [..], \"project\": \"name\" | null}.",
            "ids",
        ));
    };
    if let Some(unknown) = obj.keys().find(|k| *k != "ids" && *k != "project") {
        return Err(GatewayError::invalid_param(
            format!("Unknown field `{unknown}`: give `ids` and `project`."),
            unknown.clone(),
        ));
    }
    let ids_error = || {
        GatewayError::invalid_param(
            format!("`ids` must be a list of 1 to {MAX_IDS} key ids."),
            "ids",
        )
    };
    let list = obj
        .get("ids")
        .and_then(Value::as_array)
        .ok_or_else(ids_error)?;
    if list.is_empty() || list.len() > MAX_IDS {
        return Err(ids_error());
    }
    let mut seen = BTreeSet::new();
    let mut ids = Vec::with_capacity(list.len());
    for item in list {
        let id = item
            .as_str()
            .filter(|s| !s.trim().is_empty() && s.len() <= 200)
            .ok_or_else(|| {
                GatewayError::invalid_param("Every entry of `ids` must be a key id.", "ids")
            })?;
        if seen.insert(id) {
            ids.push(id.to_owned());
        }
    }
    let project = match obj.get("project") {
        None => {
            return Err(GatewayError::invalid_param(
                "Give `project`: a name, or null to clear it.",
                "project",
            ));
        }
        Some(Value::Null) => None,
        Some(Value::String(name)) => {
            let name = name.trim();
            let chars = name.chars().count();
            if chars == 0 || chars > MAX_PROJECT_CHARS {
                return Err(GatewayError::invalid_param(
                    format!(
                        "`project` must be 1 to {MAX_PROJECT_CHARS} characters, or null to clear it."
                    ),
                    "project",
                ));
            }
            if name.chars().any(char::is_control) {
                return Err(GatewayError::invalid_param(
                    "`project` must not contain control characters.",
                    "project",
                ));
            }
            Some(name.to_owned())
        }
        Some(_) => {
            return Err(GatewayError::invalid_param(
                "`project` must be a string, or null to clear it.",
                "project",
            ));
        }
    };
    Ok(Assignment { ids, project })
}

/// The cooldown end that marks a per-day park now: the next midnight in Los
/// Angeles. A key parked on a per-day 429 cools until exactly then (and a
/// park set earlier today ends at the same instant), while per-minute
/// cooldowns end at other times.
pub fn park_instant(now_ms: u64) -> u64 {
    next_midnight_los_angeles_ms(now_ms)
}

/// Keys of one project, as D1 counts them (`project` already normalised:
/// blank is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCount {
    pub project: Option<String>,
    pub keys: u64,
    pub enabled: u64,
}

/// Enabled keys of one project cooling on at least one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoolingCount {
    pub project: Option<String>,
    pub cooling: u64,
}

/// Enabled keys of one project cooling on one model, and how many of them
/// are parked until the per-day reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelCount {
    pub project: Option<String>,
    pub model: String,
    pub cooling: u64,
    pub parked: u64,
}

/// One model's cooling keys within a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelCapacity {
    pub model: String,
    /// Enabled keys of the project cooling on this model (parked ones included).
    pub cooling: u64,
    /// Of those, the ones parked until midnight in Los Angeles (a per-day quota).
    pub parked: u64,
}

/// One project's keys and capacity, as `GET /admin/api/projects` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectCapacity {
    /// `None`: the keys with no project.
    pub project: Option<String>,
    pub keys: u64,
    pub enabled: u64,
    pub disabled: u64,
    /// Enabled keys cooling on at least one model.
    pub cooling: u64,
    /// Models with at least one cooling key, by name.
    pub models: Vec<ModelCapacity>,
}

/// Puts D1's three counts together: one entry per project that has keys,
/// named projects by name and then the keys with no project. Cooling rows of
/// a project with no key row (a race with a delete) are dropped.
pub fn assemble(
    groups: Vec<GroupCount>,
    cooling: &[CoolingCount],
    models: Vec<ModelCount>,
) -> Vec<ProjectCapacity> {
    // `None` sorts first in a BTreeMap; the keys with no project go last.
    let mut by_project: BTreeMap<Option<String>, ProjectCapacity> = BTreeMap::new();
    for g in groups {
        let entry = by_project
            .entry(g.project.clone())
            .or_insert_with(|| ProjectCapacity {
                project: g.project,
                keys: 0,
                enabled: 0,
                disabled: 0,
                cooling: 0,
                models: Vec::new(),
            });
        entry.keys += g.keys;
        entry.enabled += g.enabled.min(g.keys);
        entry.disabled = entry.keys - entry.enabled;
    }
    for c in cooling {
        if let Some(entry) = by_project.get_mut(&c.project) {
            entry.cooling = (entry.cooling + c.cooling).min(entry.enabled);
        }
    }
    for m in models {
        if let Some(entry) = by_project.get_mut(&m.project) {
            match entry.models.iter_mut().find(|x| x.model == m.model) {
                Some(x) => {
                    x.cooling += m.cooling;
                    x.parked += m.parked;
                }
                None => entry.models.push(ModelCapacity {
                    model: m.model,
                    cooling: m.cooling,
                    parked: m.parked.min(m.cooling),
                }),
            }
        }
    }
    let mut out: Vec<ProjectCapacity> = by_project.into_values().collect();
    let unnamed_first = out.first().is_some_and(|p| p.project.is_none());
    out.rotate_left(usize::from(unnamed_first));
    for p in &mut out {
        p.models.sort_by(|a, b| a.model.cmp(&b.model));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn param(e: &GatewayError) -> Option<String> {
        match e {
            GatewayError::InvalidRequest { param, .. } => param.clone(),
            _ => None,
        }
    }

    #[test]
    fn an_assignment_is_trimmed_and_deduplicated() {
        let a = parse_assignment(&json!({"ids": ["a", "b", "a"], "project": "  p1 "})).unwrap();
        assert_eq!(a.ids, vec!["a", "b"]);
        assert_eq!(a.project.as_deref(), Some("p1"));
    }

    #[test]
    fn null_clears_the_project() {
        let a = parse_assignment(&json!({"ids": ["a"], "project": null})).unwrap();
        assert_eq!(a.project, None);
    }

    #[test]
    fn bad_ids_name_the_ids_field() {
        for body in [
            json!({"ids": [], "project": "p"}),
            json!({"ids": "a", "project": "p"}),
            json!({"project": "p"}),
            json!({"ids": [1], "project": "p"}),
            json!({"ids": [" "], "project": "p"}),
            json!({"ids": vec!["k"; MAX_IDS + 1], "project": "p"}),
            json!(["a"]),
        ] {
            let e = parse_assignment(&body).unwrap_err();
            assert_eq!(param(&e).as_deref(), Some("ids"), "{body}");
        }
        let most = vec!["k"; MAX_IDS];
        assert!(parse_assignment(&json!({"ids": most, "project": "p"})).is_ok());
    }

    #[test]
    fn bad_projects_name_the_project_field() {
        let long = "x".repeat(MAX_PROJECT_CHARS + 1);
        for body in [
            json!({"ids": ["a"]}),
            json!({"ids": ["a"], "project": ""}),
            json!({"ids": ["a"], "project": "   "}),
            json!({"ids": ["a"], "project": long}),
            json!({"ids": ["a"], "project": 3}),
            json!({"ids": ["a"], "project": "a\nb"}),
        ] {
            let e = parse_assignment(&body).unwrap_err();
            assert_eq!(param(&e).as_deref(), Some("project"), "{body}");
        }
        // 100 characters, counted as characters rather than bytes.
        let cjk = "项".repeat(MAX_PROJECT_CHARS);
        assert!(parse_assignment(&json!({"ids": ["a"], "project": cjk})).is_ok());
    }

    #[test]
    fn an_unknown_field_is_named() {
        let e = parse_assignment(&json!({"ids": ["a"], "project": "p", "all": true})).unwrap_err();
        assert_eq!(param(&e).as_deref(), Some("all"));
    }

    #[test]
    fn park_instant_is_the_next_los_angeles_midnight() {
        // 2025-01-15T12:00:00Z is 04:00 PST; midnight PST is 08:00Z next day.
        assert_eq!(park_instant(1_736_942_400_000), 1_737_014_400_000);
    }

    fn group(p: Option<&str>, keys: u64, enabled: u64) -> GroupCount {
        GroupCount {
            project: p.map(str::to_owned),
            keys,
            enabled,
        }
    }

    #[test]
    fn projects_are_assembled_named_first_then_the_unnamed() {
        let out = assemble(
            vec![
                group(None, 2, 1),
                group(Some("b"), 3, 3),
                group(Some("a"), 1, 0),
            ],
            &[
                CoolingCount {
                    project: Some("b".into()),
                    cooling: 1,
                },
                CoolingCount {
                    project: Some("gone".into()),
                    cooling: 4,
                },
            ],
            vec![
                ModelCount {
                    project: Some("b".into()),
                    model: "gemini-2.5-pro".into(),
                    cooling: 1,
                    parked: 1,
                },
                ModelCount {
                    project: Some("b".into()),
                    model: "gemini-2.5-flash".into(),
                    cooling: 1,
                    parked: 0,
                },
            ],
        );
        let names: Vec<Option<&str>> = out.iter().map(|p| p.project.as_deref()).collect();
        assert_eq!(names, vec![Some("a"), Some("b"), None]);
        let b = &out[1];
        assert_eq!((b.keys, b.enabled, b.disabled, b.cooling), (3, 3, 0, 1));
        let models: Vec<&str> = b.models.iter().map(|m| m.model.as_str()).collect();
        assert_eq!(models, vec!["gemini-2.5-flash", "gemini-2.5-pro"]);
        assert_eq!(b.models[1].parked, 1);
        assert_eq!((out[0].disabled, out[2].disabled), (1, 1));
        assert!(out[2].models.is_empty());
    }

    #[test]
    fn no_keys_no_projects() {
        assert!(assemble(Vec::new(), &[], Vec::new()).is_empty());
    }

    #[test]
    fn the_json_shape_names_the_unnamed_group_null() {
        let out = assemble(vec![group(None, 1, 1)], &[], Vec::new());
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            json!([{"project": null, "keys": 1, "enabled": 1, "disabled": 0, "cooling": 0, "models": []}])
        );
    }
}
