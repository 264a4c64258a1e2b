//! Comparison expressions, `NAME OP NUMBER[UNIT]`, as `--slo` and `--threshold` write them: the
//! operators, the split of an expression into its parts, and numbers with units. Part of the plan's
//! vocabulary (an SLO rule is in the `Plan`); the run-level thresholds are parsed with it too.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmpOp {
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `==`
    #[serde(rename = "==")]
    Eq,
}

impl CmpOp {
    /// Whether `measured OP limit` holds.
    pub fn holds(self, measured: f64, limit: f64) -> bool {
        match self {
            CmpOp::Lt => measured < limit,
            CmpOp::Le => measured <= limit,
            CmpOp::Gt => measured > limit,
            CmpOp::Ge => measured >= limit,
            // Figures are floats computed from counts and histograms: compare with a small tolerance.
            CmpOp::Eq => (measured - limit).abs() <= 1e-9 * limit.abs().max(1.0),
        }
    }

    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Eq => "==",
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An expression split into its three parts: `name`, operator, and the value text (number + unit).
#[derive(Debug, PartialEq)]
pub struct Parts<'a> {
    /// The name before the operator.
    pub name: &'a str,
    /// The operator.
    pub op: CmpOp,
    /// The value text after it (number and unit).
    pub value: &'a str,
}

/// Splits `name OP value` at the first `<`, `>` or `=`. Whitespace must already be removed.
pub fn split(expr: &str) -> Result<Parts<'_>, String> {
    let at = expr
        .find(['<', '>', '='])
        .ok_or("no comparison operator: use one of <, <=, >, >=, ==")?;
    let (name, rest) = expr.split_at(at);
    let (op, value) = if let Some(v) = rest.strip_prefix("<=") {
        (CmpOp::Le, v)
    } else if let Some(v) = rest.strip_prefix(">=") {
        (CmpOp::Ge, v)
    } else if let Some(v) = rest.strip_prefix("==") {
        (CmpOp::Eq, v)
    } else if let Some(v) = rest.strip_prefix('<') {
        (CmpOp::Lt, v)
    } else if let Some(v) = rest.strip_prefix('>') {
        (CmpOp::Gt, v)
    } else {
        return Err("'=' alone is not an operator: use ==, <= or >=".into());
    };
    if name.is_empty() {
        return Err("no metric name before the operator".into());
    }
    if value.is_empty() {
        return Err("no value after the operator".into());
    }
    if value.contains(['<', '>', '=']) {
        return Err("more than one operator".into());
    }
    Ok(Parts { name, op, value })
}

/// Splits a value into its number and unit suffix (`"1.5s"` → `(1.5, "s")`).
pub fn number_and_unit(value: &str) -> Result<(f64, &str), String> {
    let end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .unwrap_or(value.len());
    // 'e' belongs to the number only when an exponent follows; "5e" is not a number.
    let (mut num, mut unit) = value.split_at(end);
    while num.ends_with('e') {
        num = &num[..num.len() - 1];
        unit = &value[num.len()..];
    }
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{value}' does not start with a number"))?;
    if !n.is_finite() || n < 0.0 {
        return Err(format!(
            "'{value}': the number must be finite and not negative"
        ));
    }
    Ok((n, unit))
}

/// Parses a duration limit into milliseconds: `500ms`, `0.5s`, `800us` (or `µs`); a bare number is ms.
pub fn time_ms(value: &str) -> Result<f64, String> {
    let (n, unit) = number_and_unit(value)?;
    match unit {
        "" | "ms" => Ok(n),
        "s" => Ok(n * 1000.0),
        "us" | "µs" => Ok(n / 1000.0),
        other => Err(format!(
            "unknown time unit '{other}' in '{value}': use ms, s or us"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_every_operator() {
        for (text, op) in [
            ("a<1", CmpOp::Lt),
            ("a<=1", CmpOp::Le),
            ("a>1", CmpOp::Gt),
            ("a>=1", CmpOp::Ge),
            ("a==1", CmpOp::Eq),
        ] {
            let p = split(text).unwrap();
            assert_eq!((p.name, p.op, p.value), ("a", op, "1"), "{text}");
        }
        for bad in ["a", "a=1", "<1", "a<", "a<1<2", "a=<1"] {
            assert!(split(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn operators_hold() {
        assert!(CmpOp::Lt.holds(1.0, 2.0) && !CmpOp::Lt.holds(2.0, 2.0));
        assert!(CmpOp::Le.holds(2.0, 2.0) && !CmpOp::Le.holds(2.1, 2.0));
        assert!(CmpOp::Gt.holds(3.0, 2.0) && !CmpOp::Gt.holds(2.0, 2.0));
        assert!(CmpOp::Ge.holds(2.0, 2.0) && !CmpOp::Ge.holds(1.9, 2.0));
        assert!(CmpOp::Eq.holds(0.1 + 0.2, 0.3) && !CmpOp::Eq.holds(1.0, 2.0));
    }

    #[test]
    fn time_units() {
        assert_eq!(time_ms("800ms").unwrap(), 800.0);
        assert_eq!(time_ms("800").unwrap(), 800.0);
        assert_eq!(time_ms("1.5s").unwrap(), 1500.0);
        assert_eq!(time_ms("250us").unwrap(), 0.25);
        assert_eq!(time_ms("250µs").unwrap(), 0.25);
        assert_eq!(time_ms("1e3ms").unwrap(), 1000.0);
        assert!(time_ms("5h").unwrap_err().contains("unknown time unit"));
        assert!(time_ms("ms").is_err());
        assert!(time_ms("-5ms").is_err());
    }
}
