//! What protects the UI from other web sites the operator's browser visits: actions (start,
//! change, stop, reset) only from the UI's own page or from non-browser clients, a `Host` check
//! against DNS rebinding while the UI listens on loopback, no framing, small request bodies.
//!
//! Browsers attach `Sec-Fetch-Site` (and `Origin` on POSTs) themselves, and a page cannot forge
//! them: a form or `<img>` on another site that targets the UI says `cross-site` (or
//! `same-site`), the UI's own page says `same-origin`. curl and Locust scripts send neither, so
//! they keep working (the same rule as Go's `http.CrossOriginProtection`).

use super::api::failure;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::net::{IpAddr, SocketAddr};

/// Largest request body the UI reads: its forms are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Which `Host` names the UI answers to.
#[derive(Clone, Debug)]
pub struct HostPolicy {
    /// Set when the UI listens on a loopback address (that address): then only loopback names
    /// are accepted, since any other name reaching it is a DNS-rebinding page in a browser.
    loopback: Option<IpAddr>,
}

impl HostPolicy {
    /// The policy for a UI listening on `bound`.
    pub fn for_listener(bound: SocketAddr) -> Self {
        Self {
            loopback: bound.ip().is_loopback().then_some(bound.ip()),
        }
    }

    /// Whether a request with this `Host` (any port) may be served. No `Host` at all (an
    /// HTTP/1.0 script) is no browser, hence no rebinding: allowed.
    fn allows(&self, host: Option<&str>) -> bool {
        let (Some(bound), Some(host)) = (self.loopback, host) else {
            return true;
        };
        let Some((name, _port)) = split_host_port(host) else {
            return false;
        };
        let name = name.to_ascii_lowercase();
        let bound = match bound {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        matches!(name.as_str(), "localhost" | "127.0.0.1" | "[::1]") || name == bound
    }
}

/// Splits `host[:port]` (`[v6]:port` for IPv6); `None` when the port is not a number.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (name, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => (&authority[..i], Some(&authority[i + 1..])),
        _ => (authority, None),
    };
    let port = match port {
        None => None,
        Some(p) => Some(p.parse().ok()?),
    };
    (!name.is_empty()).then_some((name, port))
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Axum middleware: refuses, with 403, requests whose `Host` the policy does not allow.
pub async fn check_host(State(policy): State<HostPolicy>, req: Request, next: Next) -> Response {
    // A Host header that is not text counts as a name we do not serve.
    let host = match req.headers().get(header::HOST) {
        None => None,
        Some(v) => Some(v.to_str().unwrap_or("\u{0}")),
    };
    if policy.allows(host) {
        return next.run(req).await;
    }
    failure(
        StatusCode::FORBIDDEN,
        "403 Forbidden: Host not allowed; bind with --web-host to serve other names (a UI on loopback answers only to localhost, 127.0.0.1 and [::1], so that a web page cannot reach it by DNS rebinding)",
    )
}

/// Whether a request comes from another site, by the headers browsers set: `Sec-Fetch-Site`
/// when present (`same-origin` or `none`, a typed URL or bookmark, are ours), else `Origin`
/// compared with `Host`. Neither header: not a browser, not cross-site.
fn is_cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = header_str(headers, header::HeaderName::from_static("sec-fetch-site")) {
        return !(site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none"));
    }
    let Some(origin) = header_str(headers, header::ORIGIN) else {
        return false;
    };
    let Some(host) = header_str(headers, header::HOST) else {
        return true;
    };
    !same_authority(origin, host)
}

/// Whether `origin` (`scheme://host[:port]`) names the same host and port as a `Host` header
/// (whose port defaults to the origin scheme's, as behind a TLS proxy). `null` never matches.
fn same_authority(origin: &str, host: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    match (split_host_port(rest), split_host_port(host)) {
        (Some((a, a_port)), Some((b, b_port))) => {
            a.eq_ignore_ascii_case(b)
                && a_port.unwrap_or(default_port) == b_port.unwrap_or(default_port)
        }
        _ => false,
    }
}

/// Axum middleware on the routes that change state: refuses cross-site requests with 403.
pub async fn same_site_only(req: Request, next: Next) -> Response {
    if !is_cross_site(req.headers()) {
        return next.run(req).await;
    }
    failure(
        StatusCode::FORBIDDEN,
        "403 Forbidden: a request from another web site may not start, change, stop or reset tests; use this UI's own page, or call the API from a script (without Origin / Sec-Fetch-Site headers)",
    )
}

/// Axum middleware: no page of the UI may be framed by another site (a framed page's buttons
/// would be clicked by a hidden overlay, and its own requests are same-origin).
pub async fn no_framing(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn own_page_and_scripts_pass_other_sites_do_not() {
        let host = ("host", "127.0.0.1:8089");
        for ok in [
            headers(&[host]),
            headers(&[host, ("sec-fetch-site", "same-origin")]),
            headers(&[host, ("sec-fetch-site", "none")]),
            headers(&[host, ("origin", "http://127.0.0.1:8089")]),
            headers(&[("host", "ui.example"), ("origin", "https://UI.example:443")]),
            // A proxy that rewrote Host: the browser's Sec-Fetch-Site decides.
            headers(&[
                host,
                ("origin", "https://ui.example"),
                ("sec-fetch-site", "same-origin"),
            ]),
        ] {
            assert!(!is_cross_site(&ok), "{ok:?}");
        }
        for bad in [
            headers(&[host, ("sec-fetch-site", "cross-site")]),
            headers(&[host, ("sec-fetch-site", "same-site")]),
            headers(&[host, ("origin", "https://evil.example")]),
            headers(&[host, ("origin", "http://127.0.0.1:3000")]),
            headers(&[host, ("origin", "http://localhost:8089")]),
            headers(&[host, ("origin", "null")]),
            headers(&[("origin", "http://127.0.0.1:8089")]),
            headers(&[
                host,
                ("origin", "http://127.0.0.1:8089"),
                ("sec-fetch-site", "cross-site"),
            ]),
        ] {
            assert!(is_cross_site(&bad), "{bad:?}");
        }
    }

    #[test]
    fn a_loopback_ui_answers_only_to_loopback_names() {
        let local = HostPolicy::for_listener("127.0.0.1:8089".parse().unwrap());
        for ok in [
            None,
            Some("localhost"),
            Some("LOCALHOST:8089"),
            Some("127.0.0.1:1"),
            Some("[::1]:8089"),
        ] {
            assert!(local.allows(ok), "{ok:?}");
        }
        for bad in [
            "evil.example",
            "evil.example:8089",
            "localhost.evil.example:8089",
            "127.0.0.1.nip.io:8089",
            "[::2]:8089",
            "localhost:port",
            "",
        ] {
            assert!(!local.allows(Some(bad)), "{bad}");
        }
        let other_loopback = HostPolicy::for_listener("127.0.0.2:0".parse().unwrap());
        assert!(other_loopback.allows(Some("127.0.0.2:8089")));
        let v6 = HostPolicy::for_listener("[::1]:0".parse().unwrap());
        assert!(v6.allows(Some("[::1]:9")) && !v6.allows(Some("evil.example")));
        let everywhere = HostPolicy::for_listener("0.0.0.0:8089".parse().unwrap());
        assert!(everywhere.allows(Some("loadtest.example.com")));
    }
}
