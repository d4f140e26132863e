//! `pinvault exec`: runs a script of command lines against one opened backend.
//!
//! One command per line, written as on the command line without the leading `pinvault` and
//! without `--url` (the backend is the one `exec` opened); `#` starts a comment; blank lines are
//! skipped; a line ending in `\` continues on the next; quoting follows the shell
//! (`shell-words`). The script stops at the first failing command, with `SCRIPT:LINE:` (its
//! first line) before the message and that failure's exit code.

use clap::Parser;
use pinvault::Store;

use crate::cli::exit::CliError;
use crate::cli::output::Output;
use crate::cli::state::Stdin;
use crate::cli::StoreCommand;

/// One script line, parsed like the command line minus the global `--url`.
#[derive(Debug, Parser)]
#[command(name = "pinvault", no_binary_name = true, disable_version_flag = true)]
struct ScriptLine {
    /// Print this line's results as JSON objects.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: StoreCommand,
}

/// Reads the script at `path` (`-` = stdin) and runs it against `store`.
pub async fn run(store: &Store, path: &str, out: Output) -> Result<(), CliError> {
    let (script, stdin) = if path == "-" {
        let mut text = String::new();
        let mut stdin = tokio::io::stdin();
        tokio::io::AsyncReadExt::read_to_string(&mut stdin, &mut text)
            .await
            .map_err(|source| CliError::File { path: "<stdin>".into(), source })?;
        (text, Stdin { available: false })
    } else {
        let text = tokio::fs::read_to_string(path)
            .await
            .map_err(|source| CliError::File { path: path.to_owned(), source })?;
        (text, Stdin { available: true })
    };
    let name = if path == "-" { "<stdin>" } else { path };
    for (line_number, command) in commands(&script) {
        let at = |source| CliError::Script { place: format!("{name}:{line_number}"), source };
        run_line(store, &command, out, stdin).await.map_err(|e| at(Box::new(e)))?;
    }
    Ok(())
}

/// The script's commands with the line number each starts on, continuation lines joined.
fn commands(script: &str) -> Vec<(usize, String)> {
    let mut commands = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, line) in script.lines().enumerate() {
        let (start, mut text) = pending.take().unwrap_or((index + 1, String::new()));
        match line.strip_suffix('\\') {
            Some(continued) => {
                text.push_str(continued);
                text.push(' ');
                pending = Some((start, text));
            }
            None => {
                text.push_str(line);
                commands.push((start, text));
            }
        }
    }
    commands.extend(pending);
    commands
}

async fn run_line(store: &Store, line: &str, out: Output, stdin: Stdin) -> Result<(), CliError> {
    let words = shell_words::split(line)
        .map_err(|e| CliError::Usage(format!("cannot split {line:?} into words: {e}")))?;
    if words.is_empty() {
        return Ok(());
    }
    let parsed = match ScriptLine::try_parse_from(&words) {
        Ok(parsed) => parsed,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {
            return out.line(e.render().to_string().trim_end());
        }
        Err(e) => return Err(CliError::Usage(e.render().to_string())),
    };
    let out = Output { json: out.json || parsed.json };
    crate::cli::run_store_command(store, parsed.command, out, stdin).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_like_a_shell() {
        let words = shell_words::split("pin add Qm --name 'two words' # a comment").unwrap();
        assert_eq!(words, ["pin", "add", "Qm", "--name", "two words"]);
        assert!(shell_words::split("# only a comment").unwrap().is_empty());
        assert!(shell_words::split("pin add 'unterminated").is_err());
    }

    #[test]
    fn continuation_lines_join_and_keep_their_first_line_number() {
        let script =
            "# c\npin add X \\\n  --name n \\\n  --if-absent\n\npin get X\nstate export \\";
        let commands = commands(script);
        let starts: Vec<usize> = commands.iter().map(|(n, _)| *n).collect();
        assert_eq!(starts, [1, 2, 5, 6, 7]);
        let words = shell_words::split(&commands[1].1).unwrap();
        assert_eq!(words, ["pin", "add", "X", "--name", "n", "--if-absent"]);
        assert_eq!(shell_words::split(&commands[4].1).unwrap(), ["state", "export"]);
    }

    #[test]
    fn script_lines_parse_without_binary_name_or_url() {
        let line = ScriptLine::try_parse_from(["pin", "get", "Qm", "--json"]).unwrap();
        assert!(line.json);
        assert!(ScriptLine::try_parse_from(["--url", "memory:", "pin", "get", "Qm"]).is_err());
        assert!(ScriptLine::try_parse_from(["exec", "script"]).is_err());
    }
}
