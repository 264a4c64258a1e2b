//! Where a plan's Bearer token may go: the origin (scheme, host, port) it was configured for,
//! and the one rule that decides whether a plan's requests carry it ([`Plan::token_for_host`]).
//!
//! A token is given together with a host: `--host`/`GSAI_HOST` with `--token`/`GSA_AUTH_TOKEN`
//! in one invocation, a host and a token in one web form, a worker's own `GSAI_HOST` with its own
//! token. A test started against any other origin (from the web form, or by a master) runs
//! without an `Authorization` header, so a host typed into a form, or sent by a master, can never
//! collect the operator's token.

use super::{Plan, Secret};
use std::fmt;

/// The origin of a URL, as browsers compare them: scheme, host (lowercase) and port (the
/// scheme's default when the URL has none). The path does not count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// The origin of `url` (`http` or `https` only); `None` when it is not such a URL.
    pub fn of(url: &str) -> Option<Origin> {
        let uri: hyper::Uri = url.trim().parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let authority = uri.authority()?;
        Some(Origin {
            host: authority.host().to_ascii_lowercase(),
            port: authority.port_u16().unwrap_or(default_port),
            scheme,
        })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `host()` keeps an IPv6 address's brackets, so this is a valid URL as it stands.
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// Where a plan's token may be sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TokenScope {
    /// Wherever the plan's host is: for plans built in code with their host and token together.
    /// [`Plan::retarget`] pins it to the old host before pointing the plan elsewhere.
    #[default]
    PlanHost,
    /// Only to this origin (the host the token was configured with).
    Only(Origin),
    /// Nowhere: the token was given without a host (e.g. the web UI started with
    /// `GSA_AUTH_TOKEN` but no `GSAI_HOST`).
    Unbound,
}

/// Why a plan's token is not sent: a notice for the user who then sees `401`s. Never holds the
/// token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("notice: the token (GSA_AUTH_TOKEN / --token) is not sent to {target}: it was given {given}; give a token for this host (GSAI_HOST with GSA_AUTH_TOKEN, --host with --token, or the start form's token field) to send one")]
pub struct TokenWithheld {
    /// The origin the plan targets.
    pub target: String,
    /// "for ORIGIN only" or "without a host (GSAI_HOST / --host)".
    pub given: String,
}

impl Plan {
    /// Gives the plan `token` for the origin of `given_for` (a base URL): the plan's requests
    /// carry it only while its host has that origin. Without `given_for` (or with a URL that has
    /// no origin), the token is sent nowhere.
    pub fn set_token(&mut self, token: Option<Secret>, given_for: Option<&str>) {
        self.token_scope = match given_for.and_then(Origin::of) {
            Some(origin) => TokenScope::Only(origin),
            None => TokenScope::Unbound,
        };
        self.token = token;
    }

    /// Points the plan at `host`. The token stays with the origin it was given for: a plan whose
    /// token followed its host is pinned to the old host first.
    pub fn retarget(&mut self, host: &str) {
        if self.token_scope == TokenScope::PlanHost {
            self.token_scope = match Origin::of(&self.host) {
                Some(origin) => TokenScope::Only(origin),
                None => TokenScope::Unbound,
            };
        }
        self.host = host.to_string();
    }

    /// The token to send to the plan's host: the one rule every test goes through (the engine
    /// attaches nothing else). `None` when there is no token or it was given for another origin.
    pub fn token_for_host(&self) -> Option<&Secret> {
        let token = self.token.as_ref()?;
        match &self.token_scope {
            TokenScope::PlanHost => Some(token),
            TokenScope::Only(origin) => {
                (Origin::of(&self.host).as_ref() == Some(origin)).then_some(token)
            }
            TokenScope::Unbound => None,
        }
    }

    /// Why the plan has a token but does not send it, if so.
    pub fn token_withheld(&self) -> Option<TokenWithheld> {
        if self.token.is_none() || self.token_for_host().is_some() {
            return None;
        }
        let target = Origin::of(&self.host).map_or_else(|| self.host.clone(), |o| o.to_string());
        let given = match &self.token_scope {
            TokenScope::Only(origin) => format!("for {origin} only"),
            _ => "without a host (GSAI_HOST / --host)".to_string(),
        };
        Some(TokenWithheld { target, given })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_scheme_host_and_port_not_the_path() {
        let o = |u: &str| Origin::of(u).unwrap_or_else(|| panic!("{u}"));
        assert_eq!(
            o("https://Chat.Example.com"),
            o("https://chat.example.com:443/api/")
        );
        assert_eq!(o("http://127.0.0.1:8080/x"), o("HTTP://127.0.0.1:8080"));
        assert_ne!(o("http://chat.example.com"), o("https://chat.example.com"));
        assert_ne!(o("http://127.0.0.1:8080"), o("http://127.0.0.1:8081"));
        assert_ne!(o("http://localhost:8080"), o("http://127.0.0.1:8080"));
        assert_eq!(o("http://[::1]:9").to_string(), "http://[::1]:9");
        for bad in ["ftp://x", "not a url", "", "/path", "x:1"] {
            assert_eq!(Origin::of(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_token_goes_only_to_the_origin_it_was_given_for() {
        let mut p = Plan::new("https://api.example.com/v1", "m");
        p.set_token(Some(Secret::new("sk-1")), Some("https://api.example.com"));
        assert_eq!(p.token_for_host().map(Secret::expose), Some("sk-1"));
        assert_eq!(p.token_withheld(), None);

        p.retarget("https://attacker.example");
        assert_eq!(p.token_for_host(), None);
        let notice = p.token_withheld().expect("a notice").to_string();
        assert!(notice.contains("https://attacker.example:443"), "{notice}");
        assert!(
            notice.contains("for https://api.example.com:443 only"),
            "{notice}"
        );
        assert!(!notice.contains("sk-1"), "{notice}");

        p.retarget("https://api.example.com:443/other-prefix");
        assert_eq!(p.token_for_host().map(Secret::expose), Some("sk-1"));
    }

    #[test]
    fn a_token_without_a_host_goes_nowhere_and_a_code_built_plan_is_pinned_on_retarget() {
        let mut p = Plan::new("http://a:1", "m");
        p.set_token(Some(Secret::new("sk-2")), None);
        assert_eq!(p.token_for_host(), None);
        assert!(p
            .token_withheld()
            .unwrap()
            .to_string()
            .contains("without a host"));

        // Built in code: the token follows the host it was built with, and only that one.
        let mut p = Plan::new("http://a:1", "m");
        p.token = Some(Secret::new("sk-3"));
        assert!(p.token_for_host().is_some());
        p.retarget("http://b:1");
        assert_eq!(p.token_for_host(), None);
        p.retarget("http://a:1/");
        assert!(p.token_for_host().is_some());

        // No token: nothing to withhold, nothing to say.
        let p = Plan::new("http://a:1", "m");
        assert_eq!((p.token_for_host(), p.token_withheld()), (None, None));
    }
}
