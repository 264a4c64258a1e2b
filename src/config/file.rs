//! Config files: Locust's `locust.conf` format (ConfigArgParse: `key = value` lines, `#`/`;`
//! comments, keys are long flag names without `--`, `true`/`false` for switches, `[a, b]` for
//! a repeated flag) and `gsai-load.toml` (the same keys in TOML). This module reads a file into
//! its entries, with their line numbers; the command line maps the keys onto its flags.
//!
//! No error quotes a value from a file (a `token = ...` line must never be printed).

use std::io;
use std::path::{Path, PathBuf};

/// A key's value as the file gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A key alone on its line (a switch that is on), or `true`/`false` in TOML.
    Switch(bool),
    /// One value.
    One(String),
    /// A list, for a repeated flag: `[a, b]`.
    Many(Vec<String>),
}

/// One `key = value` of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The key as written (a long flag name without `--`).
    pub key: String,
    /// Its value.
    pub value: Value,
    /// 1-based line number (0: not located).
    pub line: usize,
}

/// A config file's entries, in file order.
#[derive(Clone, Debug)]
pub struct ConfigFile {
    /// The file.
    pub path: PathBuf,
    /// Its entries.
    pub entries: Vec<Entry>,
}

/// Why a config file could not be used. Never holds a value from the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file cannot be read.
    #[error("config file {path}: cannot be read ({cause}); fix it or remove it")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: io::Error,
    },
    /// A line is not `key = value`.
    #[error("config file {path}, line {line}: {problem} (the line's value is not shown)")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line (0: unknown).
        line: usize,
        /// What is wrong and what to do.
        problem: String,
    },
}

/// Reads `path`: TOML when it ends in `.toml`, else Locust's format. `Ok(None)` when the file
/// does not exist.
pub fn load(path: &Path) -> Result<Option<ConfigFile>, FileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(cause) => {
            return Err(FileError::Read {
                path: path.to_path_buf(),
                cause,
            })
        }
    };
    let entries = if path.extension().is_some_and(|e| e == "toml") {
        parse_toml(path, &text)?
    } else {
        parse_conf(path, &text)?
    };
    Ok(Some(ConfigFile {
        path: path.to_path_buf(),
        entries,
    }))
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// Parses Locust's `locust.conf` format, as ConfigArgParse does.
pub fn parse_conf(path: &Path, text: &str) -> Result<Vec<Entry>, FileError> {
    let mut entries = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with(['#', ';', '[']) {
            continue;
        }
        let end = line
            .find(|c: char| c.is_whitespace() || matches!(c, ':' | '=' | ';' | '#'))
            .unwrap_or(line.len());
        if end == 0 {
            return Err(FileError::Syntax {
                path: path.to_path_buf(),
                line: i + 1,
                problem: "no key before the value; write key = value, e.g. users = 10".into(),
            });
        }
        let key = line[..end].trim_start_matches("--").to_string();
        let mut rest = line[end..].trim_start();
        if let Some(r) = rest.strip_prefix([':', '=']) {
            rest = r.trim_start();
        }
        // An inline comment starts with whitespace then # or ;.
        let cut = rest
            .char_indices()
            .find(|&(j, c)| {
                matches!(c, '#' | ';') && (j == 0 || rest[..j].ends_with(char::is_whitespace))
            })
            .map_or(rest.len(), |(j, _)| j);
        let value = rest[..cut].trim();
        let value = if value.is_empty() {
            Value::Switch(true)
        } else if value.starts_with('[') && value.ends_with(']') {
            Value::Many(
                value[1..value.len() - 1]
                    .split(',')
                    .map(unquote)
                    .filter(|v| !v.is_empty())
                    .map(String::from)
                    .collect(),
            )
        } else {
            Value::One(unquote(value).to_string())
        };
        entries.push(Entry {
            key,
            value,
            line: i + 1,
        });
    }
    Ok(entries)
}

/// Parses `gsai-load.toml`: top-level `key = value` with the same keys.
pub fn parse_toml(path: &Path, text: &str) -> Result<Vec<Entry>, FileError> {
    let syntax = |line: usize, problem: String| FileError::Syntax {
        path: path.to_path_buf(),
        line,
        problem,
    };
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(0, |s| {
            text[..s.start.min(text.len())].matches('\n').count() + 1
        });
        syntax(line, format!("not valid TOML: {}", e.message().trim()))
    })?;
    let scalar = |v: &toml::Value| -> Option<String> {
        match v {
            toml::Value::String(s) => Some(s.clone()),
            toml::Value::Integer(n) => Some(n.to_string()),
            toml::Value::Float(f) => Some(f.to_string()),
            toml::Value::Boolean(b) => Some(b.to_string()),
            _ => None,
        }
    };
    let mut entries = Vec::new();
    for (key, v) in &table {
        let line = toml_line(text, key);
        let value = match v {
            toml::Value::Boolean(b) => Value::Switch(*b),
            toml::Value::Array(items) => Value::Many(
                items
                    .iter()
                    .map(|i| scalar(i).ok_or(()))
                    .collect::<Result<_, _>>()
                    .map_err(|()| syntax(line, format!("{key}: a list holds plain values only")))?,
            ),
            other => Value::One(scalar(other).ok_or_else(|| {
                syntax(
                    line,
                    format!("{key}: tables are not settings; write top-level key = value lines"),
                )
            })?),
        };
        entries.push(Entry {
            key: key.clone(),
            value,
            line,
        });
    }
    entries.sort_by_key(|e| e.line);
    Ok(entries)
}

/// The line where `key` is set in TOML `text` (0 when not found).
fn toml_line(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            let rest = l
                .strip_prefix(key)
                .or_else(|| l.strip_prefix(&format!("\"{key}\"")));
            rest.is_some_and(|r| r.trim_start().starts_with('='))
        })
        .map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_locust_conf_as_configargparse_does() {
        let text = "# a comment\n; another\n[section]\nlocustfile = locustfile.py\nheadless\nusers = 10  # inline\nspawn-rate: 2\nrun-time 30s\nhost = \"http://h:1\"\nthreshold = [ttft.p95<800ms, 'rps>1']\n";
        let e = parse_conf(Path::new("locust.conf"), text).unwrap();
        let kv: Vec<_> = e
            .iter()
            .map(|e| (e.key.as_str(), &e.value, e.line))
            .collect();
        assert_eq!(
            kv,
            [
                ("locustfile", &Value::One("locustfile.py".into()), 4),
                ("headless", &Value::Switch(true), 5),
                ("users", &Value::One("10".into()), 6),
                ("spawn-rate", &Value::One("2".into()), 7),
                ("run-time", &Value::One("30s".into()), 8),
                ("host", &Value::One("http://h:1".into()), 9),
                (
                    "threshold",
                    &Value::Many(vec!["ttft.p95<800ms".into(), "rps>1".into()]),
                    10
                ),
            ]
        );
        let err = parse_conf(Path::new("x.conf"), "users = 1\n= sk-secret\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.conf, line 2"), "{err}");
        assert!(!err.contains("sk-secret"), "{err}");
    }

    #[test]
    fn reads_toml_and_never_quotes_a_value_in_errors() {
        let text = "users = 3\nheadless = true\nrun-time = \"5s\"\nspawn_rate = 1.5\nthreshold = [\"rps>1\"]\n";
        let e = parse_toml(Path::new("gsai-load.toml"), text).unwrap();
        assert_eq!(e[0].key, "users");
        assert_eq!(e[0].value, Value::One("3".into()));
        assert_eq!(e[1].value, Value::Switch(true));
        assert_eq!((e[3].key.as_str(), e[3].line), ("spawn_rate", 4));
        assert_eq!(e[4].value, Value::Many(vec!["rps>1".into()]));
        let err = parse_toml(Path::new("g.toml"), "users = 1\ntoken = \"sk-secret\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("g.toml, line 2"), "{err}");
        assert!(!err.contains("sk-secret"), "{err}");
    }
}
