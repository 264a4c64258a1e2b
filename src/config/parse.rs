//! Parsing of the values flags, config files and the web form share: durations ("30s", "5m",
//! a bare number of seconds), ratios ("5%" or "0.05") and MEAN,STDDEV pairs; and the humantime
//! form durations take in a serialized plan.

use std::time::Duration;

/// Parses a humantime duration ("30s", "5m", "1h30m"); a bare number means seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.trim().parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            // Past u64 seconds from_secs_f64 would panic: far over any limit anyway.
            return Duration::try_from_secs_f64(secs)
                .map_err(|_| format!("'{s}' seconds is more than any duration allowed"));
        }
    }
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("'{s}' is not a duration ({e}); use e.g. 30s, 5m, 1h30m"))
}

/// Parses a ratio: `5%` or `0.05`.
pub fn parse_ratio(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("'{s}' is not a ratio; use e.g. 5% or 0.05"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("'{s}' must be between 0% and 100%"));
    }
    Ok(v)
}

/// Parses an image size `WxH` in pixels, e.g. `1024x768`.
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("'{s}' is not a size; use WIDTHxHEIGHT in pixels, e.g. 1024x768");
    let (w, h) = s.trim().split_once(['x', 'X']).ok_or_else(bad)?;
    let w = w.trim().parse::<u32>().map_err(|_| bad())?;
    let h = h.trim().parse::<u32>().map_err(|_| bad())?;
    if w == 0 || h == 0 {
        return Err(format!("'{s}': each side must be at least 1 pixel"));
    }
    Ok((w, h))
}

/// Parses `A,B` as two whole numbers.
pub fn parse_pair(s: &str) -> Result<(u32, u32), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("'{s}' must be MEAN,STDDEV, e.g. 512,64"))?;
    let num = |x: &str| {
        x.trim()
            .parse::<u32>()
            .map_err(|_| format!("'{x}' in '{s}' is not a whole number"))
    };
    let (a, b) = (num(a)?, num(b)?);
    if a == 0 {
        return Err(format!("'{s}': the mean must be at least 1 token"));
    }
    Ok((a, b))
}

/// Durations as humantime strings ("1m 30s") in JSON plans.
pub mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Serializes as a humantime string.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    /// Parses a humantime string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_ratios_and_pairs() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(" 2.5 "), Ok(Duration::from_millis(2500)));
        assert!(parse_duration("soon").unwrap_err().contains("'soon'"));
        assert!(parse_duration("1e30").is_err());
        assert_eq!(parse_ratio("5%"), Ok(0.05));
        assert_eq!(parse_ratio("0.25"), Ok(0.25));
        assert!(parse_ratio("120%").is_err());
        assert_eq!(parse_pair("512, 64"), Ok((512, 64)));
        assert!(parse_pair("0,1").is_err());
        assert!(parse_pair("512").is_err());
    }
}
