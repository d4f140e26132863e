//! `pinvault exec`: runs a script of command lines against one opened backend.
//!
//! One command per line, written as on the command line without the leading `pinvault` and
//! without `--url` (the backend is the one `exec` opened); `#` starts a comment; blank lines are
//! skipped; a line ending in `\` continues on the next; quoting follows the shell
//! (`shell-words`). The script stops at the first failing command, with `SCRIPT:LINE:` (its
//! first line) before the message and that failure's exit code.
//!
//! The script is read one line at a time and each command runs as soon as it is read, as a shell
//! runs a script: a script of any length (or an endless one on stdin) runs in bounded memory.
//! One command, continuation lines included, is capped at [`MAX_COMMAND_BYTES`].

use clap::Parser;
use pinvault::{Error, Store};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::cli::exit::CliError;
use crate::cli::output::Output;
use crate::cli::state::Stdin;
use crate::cli::StoreCommand;

/// The longest command a script line (with its continuation lines) may hold: an import record's
/// limit, since one `pin add` line carries one pin.
pub const MAX_COMMAND_BYTES: usize = pinvault::transfer::MAX_RECORD_LEN;

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
    if path == "-" {
        let script = Script::new("<stdin>", BufReader::new(tokio::io::stdin()));
        return run_script(store, script, out, Stdin { available: false }).await;
    }
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|source| CliError::File { path: path.to_owned(), source })?;
    run_script(store, Script::new(path, BufReader::new(file)), out, Stdin { available: true }).await
}

async fn run_script<R: AsyncBufRead + Unpin>(
    store: &Store,
    mut script: Script<R>,
    out: Output,
    stdin: Stdin,
) -> Result<(), CliError> {
    while let Some((line_number, command)) = script.next_command().await? {
        run_line(store, &command, out, stdin).await.map_err(|e| script.error_at(line_number, e))?;
    }
    Ok(())
}

/// A script's commands, read from `reader` as they are asked for.
struct Script<R> {
    /// The script's name in messages: its path, or `<stdin>`.
    name: String,
    reader: R,
    /// Physical lines read so far (the number of the last one).
    lines_read: usize,
}

impl<R: AsyncBufRead + Unpin> Script<R> {
    fn new(name: &str, reader: R) -> Self {
        Script { name: name.to_owned(), reader, lines_read: 0 }
    }

    fn error_at(&self, line_number: usize, source: CliError) -> CliError {
        CliError::Script { place: format!("{}:{line_number}", self.name), source: Box::new(source) }
    }

    /// The next command with the line number it starts on, continuation lines joined; `None`
    /// at the end of the script.
    async fn next_command(&mut self) -> Result<Option<(usize, String)>, CliError> {
        let mut pending: Option<(usize, String)> = None;
        loop {
            let pending_len = pending.as_ref().map_or(0, |p| p.1.len());
            let budget = MAX_COMMAND_BYTES.saturating_sub(pending_len);
            let start = pending.as_ref().map_or(self.lines_read + 1, |p| p.0);
            let Some(line) = self.next_line(budget, start).await? else {
                return Ok(pending);
            };
            let (start, mut text) = pending.take().unwrap_or((start, String::new()));
            match line.strip_suffix('\\') {
                Some(continued) => {
                    text.push_str(continued);
                    text.push(' ');
                    pending = Some((start, text));
                }
                None => {
                    text.push_str(&line);
                    return Ok(Some((start, text)));
                }
            }
        }
    }

    /// The next physical line without its line ending, refused when longer than `budget`
    /// bytes (of which at most `budget` + 2 are read); `start` is the line its command starts on.
    async fn next_line(&mut self, budget: usize, start: usize) -> Result<Option<String>, CliError> {
        let mut bytes = Vec::new();
        let read_limit = u64::try_from(budget).unwrap_or(u64::MAX).saturating_add(2);
        (&mut self.reader)
            .take(read_limit)
            .read_until(b'\n', &mut bytes)
            .await
            .map_err(|source| CliError::File { path: self.name.clone(), source })?;
        if bytes.is_empty() {
            return Ok(None);
        }
        self.lines_read += 1;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        if bytes.len() > budget {
            let reason = format!("longer than {MAX_COMMAND_BYTES} bytes, the limit of one command");
            return Err(self.error_at(start, Error::invalid("script command", reason).into()));
        }
        String::from_utf8(bytes).map(Some).map_err(|_| {
            let reason = format!("line {} is not UTF-8", self.lines_read);
            self.error_at(start, Error::invalid("script command", reason).into())
        })
    }
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

    async fn commands(script: &[u8]) -> Result<Vec<(usize, String)>, CliError> {
        let mut script = Script::new("s", script);
        let mut commands = Vec::new();
        while let Some(command) = script.next_command().await? {
            commands.push(command);
        }
        Ok(commands)
    }

    #[tokio::test]
    async fn continuation_lines_join_and_keep_their_first_line_number() {
        let script =
            b"# c\npin add X \\\r\n  --name n \\\n  --if-absent\n\npin get X\nstate export \\";
        let commands = commands(script).await.unwrap();
        let starts: Vec<usize> = commands.iter().map(|(n, _)| *n).collect();
        assert_eq!(starts, [1, 2, 5, 6, 7]);
        let words = shell_words::split(&commands[1].1).unwrap();
        assert_eq!(words, ["pin", "add", "X", "--name", "n", "--if-absent"]);
        assert_eq!(shell_words::split(&commands[4].1).unwrap(), ["state", "export"]);
    }

    #[tokio::test]
    async fn an_endless_or_undecodable_command_is_invalid_input_at_its_first_line() {
        let script = (&b"pin ls\npin add \\\n"[..]).chain(tokio::io::repeat(b'x'));
        let mut endless = Script::new("s", BufReader::new(script));
        assert_eq!(endless.next_command().await.unwrap(), Some((1, "pin ls".to_owned())));
        let err = endless.next_command().await.unwrap_err();
        assert_eq!(err.exit_code(), 5, "{err}");
        assert!(err.to_string().starts_with("s:2: invalid script command: longer than"), "{err}");
        assert!(endless.lines_read <= 3, "stopped reading at the limit");

        let err = commands(b"pin ls\n\xff\n").await.unwrap_err();
        assert_eq!(err.exit_code(), 5, "{err}");
        let expected = "s:2: invalid script command: line 2 is not UTF-8";
        assert!(err.to_string().contains(expected), "{err}");
    }

    #[test]
    fn script_lines_parse_without_binary_name_or_url() {
        let line = ScriptLine::try_parse_from(["pin", "get", "Qm", "--json"]).unwrap();
        assert!(line.json);
        assert!(ScriptLine::try_parse_from(["--url", "memory:", "pin", "get", "Qm"]).is_err());
        assert!(ScriptLine::try_parse_from(["exec", "script"]).is_err());
    }
}
