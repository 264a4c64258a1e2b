//! Loading `.env` from the working directory (the seed's `GSAI_HOST`, `GSA_AUTH_TOKEN`,
//! `CHAT_MODEL`), with errors that name the file, the line and the key, and never the value: a
//! malformed `GSA_AUTH_TOKEN sk-…` line must not print the token (dotenvy's own error quotes the
//! whole line).
//!
//! dotenvy does the parsing (quotes, `export`, comments, `${VAR}`), so the accepted syntax is
//! unchanged; only what an error says is ours.

use std::io;
use std::path::{Path, PathBuf};

/// Why `.env` could not be used. No variant holds or prints a value from the file.
#[derive(Debug, thiserror::Error)]
pub enum DotenvError {
    /// The file exists but cannot be read (permissions, not UTF-8, ...).
    #[error("{path}: cannot be read ({cause}); fix the file or remove it")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error (it never quotes the file's content).
        cause: io::Error,
    },
    /// A line is not `KEY=VALUE`.
    #[error("{path}: {where_}: {problem}; expected KEY=VALUE, e.g. GSA_AUTH_TOKEN=your-token (the line's value is not shown)")]
    Line {
        /// The file.
        path: PathBuf,
        /// "line N, key K", "line N" or "a line" (when it cannot be located).
        where_: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// Loads `path` into the environment, keeping variables that are already set (the environment
/// overrides `.env`, as with dotenvy). A missing file is no error: returns `false`.
pub fn load(path: &Path) -> Result<bool, DotenvError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(cause) => {
            return Err(DotenvError::Read {
                path: path.to_path_buf(),
                cause,
            })
        }
    };
    let pairs = parse(path, &text)?;
    for (key, value) in pairs {
        // The first occurrence wins and the environment wins over the file, as dotenvy's
        // `dotenv()` does.
        if std::env::var_os(&key).is_none() {
            std::env::set_var(key, value);
        }
    }
    Ok(true)
}

/// The `KEY=VALUE` pairs of `.env` text, or the first line that is not one.
pub fn parse(path: &Path, text: &str) -> Result<Vec<(String, String)>, DotenvError> {
    dotenvy::from_read_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| match e {
            dotenvy::Error::LineParse(line, _) => DotenvError::Line {
                path: path.to_path_buf(),
                where_: locate(text, &line),
                problem: problem(&line),
            },
            other => DotenvError::Read {
                path: path.to_path_buf(),
                // dotenvy's other errors carry no file content; keep only their kind.
                cause: io::Error::new(io::ErrorKind::InvalidData, kind_only(&other)),
            },
        })
}

fn kind_only(e: &dotenvy::Error) -> &'static str {
    match e {
        dotenvy::Error::Io(_) => "I/O error",
        dotenvy::Error::EnvVar(_) => "a variable it refers to is not valid Unicode",
        _ => "not a valid .env file",
    }
}

/// "line N, key K" for the bad logical line `line`, found in `text`.
fn locate(text: &str, line: &str) -> String {
    let number = text
        .find(line.trim_end())
        .filter(|_| !line.trim().is_empty())
        .map(|at| text[..at].matches('\n').count() + 1);
    let key = split_key(line).map(|(k, _)| k).filter(|k| shown(k));
    match (number, key) {
        (Some(n), Some(k)) => format!("line {n}, key {k}"),
        (Some(n), None) => format!("line {n}"),
        (None, Some(k)) => format!("key {k}"),
        (None, None) => "a line".to_string(),
    }
}

/// A line's key (the text before the first space or `=`, after an `export ` prefix, in
/// dotenvy's key characters) and what follows it.
fn split_key(line: &str) -> Option<(&str, &str)> {
    let line = line.trim_start();
    let line = line.strip_prefix("export ").map_or(line, str::trim_start);
    let end = line.find(|c: char| c.is_whitespace() || c == '=')?;
    let key = &line[..end];
    let name_like = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    name_like.then(|| (key, &line[end..]))
}

/// Whether a key may be printed: only a conventional variable name (`GSA_AUTH_TOKEN`), so that
/// a token pasted where the key belongs (`eyJhbGciOi... value`) is never taken for one.
fn shown(key: &str) -> bool {
    key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// What is wrong with a line dotenvy refused.
fn problem(line: &str) -> &'static str {
    match split_key(line) {
        None => "it does not start with a variable name (letters, digits, _)",
        Some((_, rest)) if !rest.trim_start().starts_with('=') => "no '=' after the key",
        Some(_) if line.contains('\n') || line.matches(['"', '\'']).count() % 2 == 1 => {
            "a quote is not closed"
        }
        Some(_) => "the value cannot be read (check its quotes, backslashes and ${...})",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sk-abc123SECRETvalue";

    fn error(text: &str) -> String {
        parse(Path::new(".env"), text)
            .expect_err("a bad line")
            .to_string()
    }

    #[test]
    fn reads_what_dotenvy_reads() {
        let pairs = parse(
            Path::new(".env"),
            "# comment\nGSAI_HOST=http://x\nexport CHAT_MODEL = \"m 1\"\n\nGSA_AUTH_TOKEN='sk-1'\n",
        )
        .unwrap();
        assert_eq!(
            pairs,
            [
                ("GSAI_HOST".to_string(), "http://x".to_string()),
                ("CHAT_MODEL".into(), "m 1".into()),
                ("GSA_AUTH_TOKEN".into(), "sk-1".into()),
            ]
        );
    }

    #[test]
    fn a_bad_line_is_named_by_line_and_key_never_by_value() {
        let e = error(&format!("GSAI_HOST=http://x\n\nGSA_AUTH_TOKEN {SECRET}\n"));
        assert_eq!(
            e,
            ".env: line 3, key GSA_AUTH_TOKEN: no '=' after the key; expected KEY=VALUE, e.g. GSA_AUTH_TOKEN=your-token (the line's value is not shown)"
        );
        for (text, needle) in [
            (
                format!("GSA_AUTH_TOKEN=\"{SECRET}\n"),
                "line 1, key GSA_AUTH_TOKEN: a quote is not closed",
            ),
            (format!("A=1\n{SECRET}\n"), "line 2: it does not start"),
            (
                format!("A=1\n  eyJhbGciOiJIUzI1NiJ9 {SECRET}\n"),
                "line 2: no '='",
            ),
            (
                format!("export GSA_AUTH_TOKEN {SECRET}\n"),
                "line 1, key GSA_AUTH_TOKEN: no '='",
            ),
        ] {
            let e = error(&text);
            assert!(e.contains(needle), "{text:?}: {e}");
            assert!(!e.contains(SECRET) && !e.contains("sk-"), "{e}");
        }
    }

    #[test]
    fn a_missing_file_is_no_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!load(&dir.path().join(".env")).unwrap());
    }
}
