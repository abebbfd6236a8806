//! The admin console's view of the key pool: a key's status at a glance, and
//! the list filters (status, search, paging) with their validation.

use super::error::GatewayError;

/// Where a key stands: serving, cooling on some model, or disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    Healthy,
    Cooling,
    Disabled,
}

/// `GET /admin/api/keys` filters. Without `limit` every key comes back, as it always did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyQuery {
    pub status: Option<KeyStatus>,
    /// Lower-cased; matched against the id, mask, label and project.
    pub search: Option<String>,
    pub offset: usize,
    pub limit: Option<usize>,
}

const MAX_PAGE: usize = 1_000;

impl KeyQuery {
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, GatewayError> {
        let mut q = Self::default();
        for (name, value) in pairs {
            let bad =
                |why: &str| GatewayError::invalid_param(format!("`{name}` {why}."), name.clone());
            let value = value.trim();
            match name.as_str() {
                "status" => {
                    q.status = match value {
                        "" => None,
                        "healthy" => Some(KeyStatus::Healthy),
                        "cooling" => Some(KeyStatus::Cooling),
                        "disabled" => Some(KeyStatus::Disabled),
                        _ => return Err(bad("must be healthy, cooling or disabled")),
                    };
                }
                "q" => {
                    q.search = (!value.is_empty()).then(|| value.to_lowercase());
                }
                "offset" => {
                    q.offset = value.parse().map_err(|_| bad("must be a whole number"))?;
                }
                "limit" => {
                    q.limit = Some(
                        value
                            .parse()
                            .ok()
                            .filter(|n| (1..=MAX_PAGE).contains(n))
                            .ok_or_else(|| bad("must be a whole number from 1 to 1000"))?,
                    );
                }
                _ => return Err(bad("is not a key filter")),
            }
        }
        Ok(q)
    }

    /// Whether a key with this status and these searchable fields passes.
    pub fn matches(&self, status: KeyStatus, fields: &[Option<&str>]) -> bool {
        if self.status.is_some_and(|wanted| wanted != status) {
            return false;
        }
        self.search.as_deref().is_none_or(|needle| {
            fields
                .iter()
                .flatten()
                .any(|f| f.to_lowercase().contains(needle))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn filters_parse_and_match() {
        let q = KeyQuery::parse(&pairs(&[
            ("status", "cooling"),
            ("q", " Team-A "),
            ("offset", "100"),
            ("limit", "50"),
        ]))
        .unwrap();
        assert_eq!(q.status, Some(KeyStatus::Cooling));
        assert_eq!((q.offset, q.limit), (100, Some(50)));
        assert!(q.matches(KeyStatus::Cooling, &[Some("k1"), Some("project team-a")]));
        assert!(!q.matches(KeyStatus::Healthy, &[Some("team-a")]));
        assert!(!q.matches(KeyStatus::Cooling, &[Some("k1"), None]));
        assert_eq!(KeyQuery::parse(&[]).unwrap(), KeyQuery::default());
        assert!(KeyQuery::default().matches(KeyStatus::Disabled, &[]));
    }

    #[test]
    fn bad_filters_name_their_parameter() {
        for (name, value) in [
            ("status", "sad"),
            ("offset", "-1"),
            ("limit", "0"),
            ("limit", "1001"),
            ("sort", "x"),
        ] {
            let err = KeyQuery::parse(&pairs(&[(name, value)])).unwrap_err();
            assert_eq!(err.openai_param(), Some(name), "{name}={value}");
        }
    }
}
