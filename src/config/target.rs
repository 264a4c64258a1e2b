//! The plan's target: a base URL such as `https://chat.example.com` or
//! `http://127.0.0.1:8000/prefix`, checked once here (scheme, host, port range, no credentials)
//! for every way a plan is built. The client turns a [`BaseUrl`] into a connection target.

/// Why a base URL was refused.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Not a URL at all.
    #[error("'{url}' is not a valid URL ({reason}); expected e.g. https://chat.example.com")]
    Invalid {
        /// The URL given.
        url: String,
        /// Parser's complaint.
        reason: String,
    },
    /// Scheme other than http or https.
    #[error("'{url}' must start with http:// or https://")]
    Scheme {
        /// The URL given.
        url: String,
    },
}

/// A checked base URL, in parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl {
    /// `https` (else `http`).
    pub https: bool,
    /// Host name or address (an IPv6 address without its brackets).
    pub host: String,
    /// Port (the scheme's default when the URL has none).
    pub port: u16,
    /// `host[:port]` as the URL gives it: the value of the Host header.
    pub authority: String,
    /// Path prefix without trailing slash (often empty).
    pub base_path: String,
}

impl BaseUrl {
    /// Parses and checks a base URL.
    pub fn parse(url: &str) -> Result<Self, TargetError> {
        let invalid = |reason: String| TargetError::Invalid {
            url: url.to_string(),
            reason,
        };
        let uri: hyper::Uri = url
            .trim()
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| invalid(e.to_string()))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(TargetError::Scheme {
                    url: url.to_string(),
                })
            }
        };
        let authority = uri.authority().ok_or_else(|| invalid("no host".into()))?;
        if authority.as_str().contains('@') {
            return Err(invalid(
                "credentials in the URL are not supported; use --token".into(),
            ));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        // The URI parser reads a port past 65535 as no port at all (so port 80): read it here.
        let text = authority.as_str();
        let after_host = text.rfind(']').unwrap_or(0);
        let port = match text[after_host..]
            .rfind(':')
            .map(|i| &text[after_host + i + 1..])
        {
            None | Some("") => {
                if https {
                    443
                } else {
                    80
                }
            }
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(invalid(format!(
                        "port {p} is out of range; a port is 1 to 65535"
                    )))
                }
            },
        };
        if hyper::header::HeaderValue::from_str(text).is_err() {
            return Err(invalid("the host is not a valid Host header".into()));
        }
        Ok(Self {
            https,
            host,
            port,
            authority: text.to_string(),
            base_path: uri.path().trim_end_matches('/').to_string(),
        })
    }
}
