//! `--accounts FILE.csv`: the Open WebUI accounts the simulated users sign in with, one
//! `email,password` a line (a first line `email,password` is a header). Errors name the file and
//! line, never the password; an [`Account`]'s `Debug` hides it too.

use super::Secret;
use std::path::{Path, PathBuf};

/// The sign-in path of Open WebUI (relative to the host's base path).
pub const SIGNIN_PATH: &str = "/api/v1/auths/signin";

/// Largest accounts file read (a million short lines).
const MAX_FILE_BYTES: u64 = 64 << 20;

/// One account: an email and its password.
#[derive(Clone, Debug)]
pub struct Account {
    /// The email the account signs in with.
    pub email: String,
    /// Its password (never printed).
    pub password: Secret,
}

/// Why an accounts file is unusable. No variant holds a password.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// The file cannot be read.
    #[error("--accounts {path}: cannot read it: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not `email,password`.
    #[error("--accounts {path}:{line}: {reason} (each line is email,password)")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong (never the password).
        reason: &'static str,
    },
    /// The file holds no account.
    #[error("--accounts {0}: no account in it (each line is email,password)")]
    Empty(PathBuf),
}

/// Reads the accounts of `path`.
pub fn load(path: &Path) -> Result<Vec<Account>, AccountsError> {
    let read = |source| AccountsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read)?.len();
    if len > MAX_FILE_BYTES {
        return Err(read(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_FILE_BYTES >> 20
        ))));
    }
    let bytes = std::fs::read(path).map_err(read)?;
    parse(&String::from_utf8_lossy(&bytes), path)
}

/// The accounts of `text` (the contents of `path`, named in errors).
pub fn parse(text: &str, path: &Path) -> Result<Vec<Account>, AccountsError> {
    let bad = |line, reason| AccountsError::Line {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut accounts = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_start_matches('\u{feff}').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if accounts.is_empty() && i == 0 && line.eq_ignore_ascii_case("email,password") {
            continue;
        }
        let Some((email, password)) = line.split_once(',') else {
            return Err(bad(i + 1, "no comma"));
        };
        let email = email.trim();
        if email.is_empty() {
            return Err(bad(i + 1, "the email is empty"));
        }
        if email.chars().any(|c| c.is_control()) {
            return Err(bad(i + 1, "the email holds a control character"));
        }
        if password.is_empty() {
            return Err(bad(i + 1, "the password is empty"));
        }
        accounts.push(Account {
            email: email.to_string(),
            password: Secret::new(password),
        });
    }
    if accounts.is_empty() {
        return Err(AccountsError::Empty(path.to_path_buf()));
    }
    Ok(accounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_parse_with_header_and_errors_hide_the_password() {
        let p = Path::new("a.csv");
        let a = parse(
            "email,password\nu1@x.org,s3cret,with,commas\n\nu2@x.org,pw2\n",
            p,
        )
        .unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].email, "u1@x.org");
        assert_eq!(a[0].password.expose(), "s3cret,with,commas");
        assert!(!format!("{a:?}").contains("pw2"));
        let e = parse("email,password\nu1@x.org,ok\nhunter2-only\n", p).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("a.csv:3"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        let e = parse("u@x.org,\n", p).unwrap_err().to_string();
        assert!(
            e.contains("a.csv:1") && e.contains("password is empty"),
            "{e}"
        );
        assert!(matches!(
            parse("email,password\n", p),
            Err(AccountsError::Empty(_))
        ));
        assert!(load(Path::new("/nonexistent/accounts.csv")).is_err());
    }
}
