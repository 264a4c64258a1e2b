//! Where settings come from, and which wins: defaults < config file < `.env` < environment <
//! flags. Config files are `~/.locust.conf`, then `./locust.conf`, then `./gsai-load.toml`, then
//! `--config FILE`, each over the one before (Locust's order, as ConfigArgParse reads them).
//!
//! A file's keys are long flag names (Locust's among them); each becomes a `--key=value`
//! argument put before the real ones, unless the flag is on the command line (flags win) or
//! its environment variable is set (`GSAI_HOST` beats `host` in a file; `.env` is loaded into
//! the environment first, and so beats the file too). A repeated flag takes its last value, as
//! argparse does (`args_override_self`).

use super::Cli;
use crate::config::file::{self, ConfigFile, Entry, FileError, Value};
use clap::{Arg, ArgAction, CommandFactory, FromArgMatches};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Locust's keys that gsai-load reads and does not use, with why.
const IGNORED: &[(&str, &str)] = &[
    (
        "locustfile",
        "gsai-load needs no locustfile: its workload is built in (see --scenario)",
    ),
    (
        "loglevel",
        "gsai-load has no log levels: it writes notes and errors to stderr",
    ),
    (
        "logfile",
        "gsai-load writes notes and errors to stderr; redirect it to keep them",
    ),
    (
        "reset-stats",
        "not supported; --warmup DURATION leaves the ramp-up out of the statistics",
    ),
];

/// Why the settings could not be read. Never holds a value from a file, nor the token.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file could not be read or parsed.
    #[error(transparent)]
    File(#[from] FileError),
    /// `--config FILE` names no file.
    #[error(
        "--config {0}: no such file; give the path of a locust.conf-style or .toml config file"
    )]
    Missing(PathBuf),
    /// A key or its value is refused.
    #[error("config file {path}, line {line}: {problem}")]
    Key {
        /// The file.
        path: PathBuf,
        /// 1-based line (0: not located).
        line: usize,
        /// What is wrong and what to do.
        problem: String,
    },
}

/// Why the command line could not be parsed.
#[derive(Debug)]
pub enum ParseError {
    /// A config file is unusable.
    Source(SourceError),
    /// clap refused the arguments (or printed help or the version): `.exit()` it.
    Clap(clap::Error),
}

/// The parsed command line and notes to print (keys read and ignored).
#[derive(Debug)]
pub struct Parsed {
    /// The flags, config files applied.
    pub cli: Cli,
    /// One line each, for stderr.
    pub notes: Vec<String>,
}

/// Where config files are looked for.
#[derive(Clone, Debug)]
pub struct Places {
    /// The home directory (`~/.locust.conf`), if known.
    pub home: Option<PathBuf>,
    /// The working directory (`./locust.conf`, `./gsai-load.toml`).
    pub cwd: PathBuf,
}

impl Places {
    /// `$HOME` and the working directory.
    pub fn of_process() -> Self {
        Places {
            home: std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from),
            cwd: PathBuf::from("."),
        }
    }
}

/// Parses the process's arguments with its config files.
pub fn parse_process_args() -> Result<Parsed, ParseError> {
    parse(std::env::args_os().collect(), &Places::of_process())
}

/// Parses `argv` (program name first) with the config files found in `places`.
pub fn parse(argv: Vec<OsString>, places: &Places) -> Result<Parsed, ParseError> {
    let cmd = Cli::command();
    let mut notes = Vec::new();
    let mut from_files = Vec::new();
    let mut injected: Vec<(String, PathBuf, usize)> = Vec::new();
    if reads_config_files(&cmd, &argv) {
        let entries = layered(&argv, places).map_err(ParseError::Source)?;
        for (key, value, path, line) in for_this_role(entries, &argv) {
            let args = to_args(&cmd, &argv, &key, &value, &path, line, &mut notes)
                .map_err(ParseError::Source)?;
            if !args.is_empty() {
                injected.push((key, path, line));
            }
            from_files.extend(args);
        }
    }
    let mut full: Vec<OsString> = Vec::with_capacity(argv.len() + from_files.len());
    full.push(argv.first().cloned().unwrap_or_else(|| "gsai-load".into()));
    full.extend(from_files);
    full.extend(argv.iter().skip(1).cloned());
    let matches = cmd
        .try_get_matches_from(full)
        .map_err(|e| blame_file(e, &injected))?;
    let mut cli = Cli::from_arg_matches(&matches).map_err(ParseError::Clap)?;
    if cli.run.only_summary {
        cli.run.print_every = 0.0;
    }
    Ok(Parsed { cli, notes })
}

/// Config files apply to a test (headless, web UI, master, worker), not to subcommands, help
/// or the version.
fn reads_config_files(cmd: &clap::Command, argv: &[OsString]) -> bool {
    let first = argv.get(1).and_then(|a| a.to_str()).unwrap_or("");
    let subcommand = first == "help" || cmd.get_subcommands().any(|s| s.get_name() == first);
    let asks_help = argv
        .iter()
        .skip(1)
        .any(|a| matches!(a.to_str(), Some("-h" | "--help" | "-V" | "--version")));
    !subcommand && !asks_help
}

/// `--config FILE` / `--config=FILE` on the command line (the last one wins).
fn explicit_config(argv: &[OsString]) -> Option<PathBuf> {
    let mut found = None;
    let mut args = argv.iter().skip(1);
    while let Some(a) = args.next() {
        let Some(s) = a.to_str() else { continue };
        if s == "--" {
            break;
        }
        if s == "--config" {
            found = args.next().map(PathBuf::from);
        } else if let Some(v) = s.strip_prefix("--config=") {
            found = Some(PathBuf::from(v));
        }
    }
    found
}

/// Every file's entries, later files over earlier ones: (canonical key, value, file, line).
fn layered(
    argv: &[OsString],
    places: &Places,
) -> Result<Vec<(String, Value, PathBuf, usize)>, SourceError> {
    let mut files: Vec<ConfigFile> = Vec::new();
    let mut auto = Vec::new();
    if let Some(home) = &places.home {
        auto.push(home.join(".locust.conf"));
    }
    auto.push(places.cwd.join("locust.conf"));
    auto.push(places.cwd.join("gsai-load.toml"));
    for path in auto {
        files.extend(file::load(&path)?);
    }
    if let Some(path) = explicit_config(argv) {
        files.push(file::load(&path)?.ok_or(SourceError::Missing(path))?);
    }
    let mut merged: Vec<(String, Value, PathBuf, usize)> = Vec::new();
    for f in files {
        for Entry { key, value, line } in f.entries {
            let key = key.trim_start_matches("--").replace('_', "-");
            merged.retain(|m| m.0 != key);
            merged.push((key, value, f.path.clone(), line));
        }
    }
    Ok(merged)
}

/// A file shared by a master and its workers (as with Locust's docker-compose) holds the
/// master's keys: the role given on the command line wins over the file's, and the master-only
/// keys are dropped unless this process is the master.
fn for_this_role(
    mut entries: Vec<(String, Value, PathBuf, usize)>,
    argv: &[OsString],
) -> Vec<(String, Value, PathBuf, usize)> {
    let cli_has = |flag: &str| argv.iter().skip(1).any(|a| a == flag);
    let (cli_master, cli_worker) = (cli_has("--master"), cli_has("--worker"));
    entries.retain(|(k, ..)| !((k == "master" && cli_worker) || (k == "worker" && cli_master)));
    let file_master = entries.iter().any(|(k, v, ..)| {
        k == "master"
            && match v {
                Value::Switch(b) => *b,
                Value::One(s) => switch_value(s) == Some(true),
                Value::Many(_) => false,
            }
    });
    if !(cli_master || file_master) {
        entries.retain(|(k, ..)| !k.starts_with("expect-workers"));
    }
    entries
}

/// Whether the command line itself gives `arg` (then it wins over any file).
fn on_command_line(arg: &Arg, argv: &[OsString]) -> bool {
    let long = arg.get_long().map(|l| format!("--{l}"));
    let short = arg.get_short().map(|c| format!("-{c}"));
    argv.iter().skip(1).filter_map(|a| a.to_str()).any(|a| {
        long.as_deref()
            .is_some_and(|l| a == l || a.starts_with(&format!("{l}=")))
            || short.as_deref().is_some_and(|s| a.starts_with(s))
    })
}

fn switch_value(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// The arguments one file entry stands for (none when a flag or variable wins over it).
fn to_args(
    cmd: &clap::Command,
    argv: &[OsString],
    key: &str,
    value: &Value,
    path: &Path,
    line: usize,
    notes: &mut Vec<String>,
) -> Result<Vec<OsString>, SourceError> {
    let refuse = |problem: String| SourceError::Key {
        path: path.to_path_buf(),
        line,
        problem,
    };
    let at = format!("{}, line {line}", path.display());
    if let Some((_, why)) = IGNORED.iter().find(|(k, _)| *k == key) {
        notes.push(format!("{at}: {key} ignored: {why}"));
        return Ok(Vec::new());
    }
    if key == "config" {
        notes.push(format!(
            "{at}: config ignored: a config file cannot name another; pass --config FILE"
        ));
        return Ok(Vec::new());
    }
    let is_switch_text = |v: &Value| match v {
        Value::Switch(_) => true,
        Value::One(s) => switch_value(s).is_some(),
        Value::Many(_) => false,
    };
    if key == "json" && is_switch_text(value) {
        notes.push(format!("{at}: json ignored: Locust's json = true (stats as JSON on stdout) is not supported; write json = FILE to save the whole result"));
        return Ok(Vec::new());
    }
    let Some(arg) = cmd
        .get_arguments()
        .find(|a| a.get_long() == Some(key) && !a.is_positional())
    else {
        return Err(refuse(unknown_key(cmd, key)));
    };
    if on_command_line(arg, argv) {
        return Ok(Vec::new());
    }
    if let Some(var) = arg.get_env() {
        if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
            return Ok(Vec::new());
        }
    }
    let flag = format!("--{key}");
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        let on = match value {
            Value::Switch(b) => Some(*b),
            Value::One(s) => switch_value(s),
            Value::Many(_) => None,
        }
        .ok_or_else(|| {
            refuse(format!(
                "{key} is a switch: write {key} = true or {key} = false"
            ))
        })?;
        return Ok(if on { vec![flag.into()] } else { Vec::new() });
    }
    let values: Vec<&str> = match value {
        Value::One(s) => vec![s.as_str()],
        Value::Many(v) => v.iter().map(String::as_str).collect(),
        Value::Switch(_) => {
            return Err(refuse(format!("{key} needs a value: write {key} = VALUE")))
        }
    };
    Ok(values
        .into_iter()
        .map(|v| OsString::from(format!("{flag}={v}")))
        .collect())
}

/// "unknown key K" (K only when it cannot be a pasted secret), with the nearest flag name.
fn unknown_key(cmd: &clap::Command, key: &str) -> String {
    let token = std::env::var("GSA_AUTH_TOKEN").unwrap_or_default();
    let flag_like = key.len() <= 40
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !key.starts_with("sk-")
        && (token.trim().is_empty() || !key.contains(token.trim()));
    let nearest = cmd
        .get_arguments()
        .filter_map(Arg::get_long)
        .map(|l| (distance(l, key), l))
        .filter(|(d, _)| *d <= 2)
        .min();
    let shown = if flag_like {
        format!("unknown key '{key}'")
    } else {
        "a key that is no flag name (not shown)".to_string()
    };
    match nearest.filter(|_| flag_like) {
        Some((_, l)) => format!("{shown}; did you mean '{l}'? (keys are long flag names without --; see gsai-load --help)"),
        None => format!("{shown}; keys are long flag names without -- (see gsai-load --help), e.g. users = 10"),
    }
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// A value refused by clap that came from a file is reported with the file and line (and,
/// for a secret, without the value).
fn blame_file(e: clap::Error, injected: &[(String, PathBuf, usize)]) -> ParseError {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return ParseError::Clap(e);
    }
    let long = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s
            .split("--")
            .nth(1)
            .and_then(|r| r.split([' ', '=', '<']).next())
            .unwrap_or("")
            .to_string(),
        _ => return ParseError::Clap(e),
    };
    let Some((key, path, line)) = injected.iter().find(|(k, _, _)| *k == long) else {
        return ParseError::Clap(e);
    };
    let problem = if matches!(key.as_str(), "token" | "web-login") {
        format!("{key}: the value is not valid (not shown)")
    } else {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or("").trim();
        format!("{key}: {}", first.strip_prefix("error: ").unwrap_or(first))
    };
    ParseError::Source(SourceError::Key {
        path: path.clone(),
        line: *line,
        problem,
    })
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Source(e) => e.fmt(f),
            ParseError::Clap(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ParseError {}

/// For tests: the args of `argv` after the files in `places`, as `OsStr`s.
#[cfg(test)]
pub(crate) fn parse_strs(argv: &[&str], places: &Places) -> Result<Parsed, ParseError> {
    parse(argv.iter().map(OsString::from).collect(), places)
}
