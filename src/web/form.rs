//! The fields of the start form (`POST /swarm`, and `POST /users`' subset) and their checks:
//! each error names the field to fix.

use super::state::{Controller, StartRequest, WebError};
use crate::config::{ApiKind, Secret};
use serde::Deserialize;

/// Form fields of `POST /swarm` (Locust's names, plus `model`, `api` and `token`). All optional: a
/// missing value falls back to the command line's.
#[derive(Debug, Default, Deserialize)]
pub struct SwarmForm {
    pub(super) user_count: Option<String>,
    pub(super) spawn_rate: Option<String>,
    host: Option<String>,
    model: Option<String>,
    run_time: Option<String>,
    api: Option<String>,
    /// A token for this test's host only; never echoed, logged or shown (a [`Secret`]).
    token: Option<Secret>,
}

pub(super) fn parse_field<T: std::str::FromStr>(
    field: &'static str,
    value: Option<&str>,
    default: T,
    expected: &str,
) -> Result<T, WebError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| WebError::Invalid {
            field,
            reason: format!("'{v}' is not {expected}"),
        }),
    }
}

impl SwarmForm {
    pub(super) fn to_request(&self, c: &Controller) -> Result<StartRequest, WebError> {
        let d = c.defaults();
        let run_time = match self.run_time.as_deref().map(str::trim) {
            None | Some("") => None,
            // Its range is the plan's rule (Plan::build), named as the form names it.
            Some(v) => {
                Some(
                    crate::config::parse_duration(v).map_err(|reason| WebError::Invalid {
                        field: "run_time",
                        reason,
                    })?,
                )
            }
        };
        let api = match self.api.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(v) => Some(
                <ApiKind as clap::ValueEnum>::from_str(v, true).map_err(|_| WebError::Invalid {
                    field: "api",
                    reason: format!("'{v}' is not one of openwebui, openai"),
                })?,
            ),
        };
        Ok(StartRequest {
            users: parse_field(
                "user_count",
                self.user_count.as_deref(),
                d.users,
                "a whole number",
            )?,
            spawn_rate: parse_field(
                "spawn_rate",
                self.spawn_rate.as_deref(),
                d.spawn_rate,
                "a number",
            )?,
            host: self.host.clone(),
            model: self.model.clone(),
            run_time,
            api,
            token: self
                .token
                .as_ref()
                .filter(|t| !t.expose().trim().is_empty())
                .map(|t| Secret::new(t.expose().trim())),
        })
    }
}
