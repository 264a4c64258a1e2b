//! Glue from the exposition-format parser crate (`prom_text_format_parser`, Prometheus text
//! format 0.0.4) to flat samples: one `(name, labels, kind, value)` per line, with a histogram's
//! parts named as on the wire (`NAME_bucket{le=…}`, `NAME_sum`, `NAME_count`).
//!
//! The text comes from a possibly hostile peer: its size is capped before it gets here
//! ([`super::scrape`]), every value is parsed without `unwrap`, and a panic inside the crate is
//! caught and reported as a parse failure.

use prom_text_format_parser::{ScrapeParseError, Type, ValueType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What kind of Prometheus metric a series belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeriesKind {
    /// A monotonic counter.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// No `# TYPE` given.
    Untyped,
    /// A part of a histogram (`_bucket`, `_sum`, `_count`: all cumulative).
    Histogram,
    /// A part of a summary (quantiles, `_sum`, `_count`).
    Summary,
}

impl SeriesKind {
    /// Whether the series only grows (until the server restarts), so that a per-second rate
    /// means something.
    pub fn is_cumulative(self, name: &str) -> bool {
        match self {
            SeriesKind::Counter | SeriesKind::Histogram => true,
            SeriesKind::Summary => name.ends_with("_sum") || name.ends_with("_count"),
            SeriesKind::Gauge | SeriesKind::Untyped => false,
        }
    }
}

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The name as on the wire (with `_bucket`, `_sum`, `_count` for histogram parts).
    pub name: String,
    /// Its labels (`le` and `quantile` included).
    pub labels: BTreeMap<String, String>,
    /// The metric's type.
    pub kind: SeriesKind,
    /// The value.
    pub value: f64,
}

/// Why a response could not be read as metrics.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// The body is not UTF-8 text.
    #[error("the body is not UTF-8 text (is it the Prometheus text format?)")]
    NotText,
    /// The parser refused the text.
    #[error("not the Prometheus text format: {0}")]
    Syntax(String),
}

/// Longest parser message kept (it may quote the peer's text).
const MAX_MESSAGE_CHARS: usize = 200;

/// Parses an exposition. Families the parser could assemble are returned even when others
/// failed (then `Err` only when none could be read at all); the second value says what was
/// skipped, if anything.
pub fn parse(body: &[u8]) -> Result<(Vec<Sample>, Option<String>), ParseError> {
    let text = std::str::from_utf8(body).map_err(|_| ParseError::NotText)?;
    // The crate reads "\n" line ends only.
    let text = if text.contains('\r') {
        std::borrow::Cow::Owned(text.replace("\r\n", "\n"))
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    let parsed = std::panic::catch_unwind(|| prom_text_format_parser::parse_scrape(&text))
        .map_err(|_| {
            ParseError::Syntax("the parser failed on this text (please report it)".into())
        })?;
    let (metrics, problem) = parsed;
    let problem = problem.map(|e| match e {
        ScrapeParseError::Parse(m) => short(&m),
        ScrapeParseError::Collect(errors) => short(&format!(
            "{} metric(s) skipped; first: line {}: {}",
            errors.len(),
            errors.first().map_or(0, |e| e.line_no.start + 1),
            errors.first().map_or("", |e| e.error.as_str())
        )),
    });
    if metrics.is_empty() {
        if let Some(p) = problem {
            return Err(ParseError::Syntax(p));
        }
    }
    let mut out = Vec::new();
    for m in metrics {
        let kind = match m.kind {
            Type::Counter => SeriesKind::Counter,
            Type::Gauge => SeriesKind::Gauge,
            Type::Untyped => SeriesKind::Untyped,
            Type::Histogram => SeriesKind::Histogram,
            Type::Summary => SeriesKind::Summary,
        };
        for s in m.samples {
            // Validated as a float by the parser; parsed here without unwrap all the same.
            let Ok(value) = s.value.value.trim().parse::<f64>() else {
                continue;
            };
            let suffix = match (kind, s.value.value_type) {
                (SeriesKind::Histogram, ValueType::Sample) => "_bucket",
                (SeriesKind::Histogram | SeriesKind::Summary, ValueType::Sum) => "_sum",
                (SeriesKind::Histogram | SeriesKind::Summary, ValueType::Count) => "_count",
                _ => "",
            };
            out.push(Sample {
                name: format!("{}{suffix}", m.name),
                labels: s
                    .labels
                    .iter()
                    .map(|l| (l.key.clone(), l.value.clone()))
                    .collect(),
                kind,
                value,
            });
        }
    }
    Ok((out, problem))
}

fn short(s: &str) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const VLLM: &str = "\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 3.0
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine=\"0\",model_name=\"m\"} 1234.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_sum{engine=\"0\",model_name=\"m\"} 1.5
vllm:time_to_first_token_seconds_bucket{engine=\"0\",le=\"0.1\",model_name=\"m\"} 2.0
vllm:time_to_first_token_seconds_bucket{engine=\"0\",le=\"+Inf\",model_name=\"m\"} 5.0
vllm:time_to_first_token_seconds_count{engine=\"0\",model_name=\"m\"} 5.0
";

    #[test]
    fn reads_vllm_names_with_colons_and_histogram_parts() {
        let (samples, problem) = parse(VLLM.as_bytes()).unwrap();
        assert_eq!(problem, None);
        let find = |name: &str, le: Option<&str>| {
            samples
                .iter()
                .find(|s| s.name == name && s.labels.get("le").map(String::as_str) == le)
                .unwrap_or_else(|| panic!("{name} {le:?} in {samples:?}"))
        };
        let running = find("vllm:num_requests_running", None);
        assert_eq!((running.kind, running.value), (SeriesKind::Gauge, 3.0));
        assert_eq!(running.labels["model_name"], "m");
        assert_eq!(
            find("vllm:prompt_tokens_total", None).kind,
            SeriesKind::Counter
        );
        let inf = find("vllm:time_to_first_token_seconds_bucket", Some("+Inf"));
        assert_eq!((inf.kind, inf.value), (SeriesKind::Histogram, 5.0));
        assert_eq!(
            find("vllm:time_to_first_token_seconds_count", None).value,
            5.0
        );
        assert_eq!(
            find("vllm:time_to_first_token_seconds_sum", None).value,
            1.5
        );
        assert_eq!(samples.len(), 6);
    }

    #[test]
    fn crlf_untyped_and_special_values() {
        let (s, _) = parse(b"up 1\r\nweird NaN\r\nbig +Inf\r\n").unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].kind, SeriesKind::Untyped);
        assert!(s[1].value.is_nan());
        assert_eq!(s[2].value, f64::INFINITY);
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        assert_eq!(parse(&[0xff, 0xfe]), Err(ParseError::NotText));
        let long = format!("<html>{}</html>", "x".repeat(5000));
        match parse(long.as_bytes()) {
            Err(ParseError::Syntax(m)) => assert!(m.chars().count() <= MAX_MESSAGE_CHARS + 1),
            other => panic!("{other:?}"),
        }
        for text in [
            "{",
            "a{b=\"",
            "# TYPE x histogram\nx_bucket{le=\"zz\"} 1\n",
            "\n\n\n",
        ] {
            let _ = parse(text.as_bytes());
        }
    }

    #[test]
    fn cumulative_kinds() {
        assert!(SeriesKind::Counter.is_cumulative("x_total"));
        assert!(SeriesKind::Histogram.is_cumulative("x_bucket"));
        assert!(SeriesKind::Summary.is_cumulative("x_count"));
        assert!(!SeriesKind::Summary.is_cumulative("x"));
        assert!(!SeriesKind::Gauge.is_cumulative("x"));
    }
}
