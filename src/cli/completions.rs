//! `gsai-load completions bash|zsh|fish`: prints a shell completion script (clap_complete).

use clap::{Args, CommandFactory, ValueEnum};
use std::io::Write;

/// Shells a completion script can be printed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// Bash: `gsai-load completions bash > /etc/bash_completion.d/gsai-load`.
    Bash,
    /// Zsh: `gsai-load completions zsh > "${fpath[1]}/_gsai-load"`.
    Zsh,
    /// Fish: `gsai-load completions fish > ~/.config/fish/completions/gsai-load.fish`.
    Fish,
}

/// Flags of `gsai-load completions`.
#[derive(Args, Debug, Clone)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Writes the completion script for `shell` to `out`.
pub fn write(shell: Shell, out: &mut dyn Write) {
    let mut cmd = super::Cli::command();
    let name = cmd.get_name().to_string();
    match shell {
        Shell::Bash => clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, name, out),
        Shell::Zsh => clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, name, out),
        Shell::Fish => clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, name, out),
    }
}

/// Prints the completion script of `args.shell` on stdout. A closed pipe (`| head`) is no error.
pub fn print(args: &CompletionsArgs) -> std::io::Result<()> {
    // Into memory first: clap_complete panics when a write fails.
    let mut script = Vec::new();
    write(args.shell, &mut script);
    match std::io::stdout().lock().write_all(&script) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_shell_gets_a_script_naming_the_flags() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            write(shell, &mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("spawn-rate"), "{shell:?}");
        }
    }
}
