//! How results reach stdout: plain lines for people and shell pipelines, or one JSON object per
//! line with `--json` for programs.

use std::io::{self, Write};
use std::pin::Pin as Pinned;
use std::task::{Context, Poll};

use pinvault::codec::ndjson::encode_pin_json;
use pinvault::{Pin, Receipt, Version};
use serde_json::{json, Value};

use crate::cli::exit::CliError;

/// Where and how a command prints its results.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    /// One JSON object per line instead of plain text.
    pub json: bool,
}

impl Output {
    /// Writes one line to stdout.
    pub fn line(&self, text: &str) -> Result<(), CliError> {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{text}").map_err(CliError::Output)
    }

    /// Writes `value` as one JSON line.
    pub fn json_line(&self, value: &Value) -> Result<(), CliError> {
        self.line(&value.to_string())
    }

    /// A pin and its version: `VERSION<TAB>NDJSON` in text, where the NDJSON is ipfs-cluster's
    /// export line; `{"version": ..., "pin": {export object}}` with `--json`.
    pub fn pin(&self, pin: &Pin, version: &Version) -> Result<(), CliError> {
        let export_line = encode_pin_json(pin);
        let export_line = export_line.trim_end();
        if self.json {
            let version = Value::String(version.to_string());
            self.line(&format!("{{\"version\":{version},\"pin\":{export_line}}}"))
        } else {
            self.line(&format!("{version}\t{export_line}"))
        }
    }
}

/// Tokio's stdout, remembering whether a write found the reader gone. Streaming commands
/// (`state export`) hand it to core, which reports write failures as its own error type; this is
/// how the CLI still tells "the reader closed the pipe" (a quiet stop) from a failed export.
#[derive(Debug)]
pub struct AsyncStdout {
    inner: tokio::io::Stdout,
    reader_gone: bool,
}

impl AsyncStdout {
    /// The process's stdout.
    pub fn new() -> Self {
        AsyncStdout { inner: tokio::io::stdout(), reader_gone: false }
    }

    /// True once a write or flush failed with `EPIPE`.
    pub fn reader_gone(&self) -> bool {
        self.reader_gone
    }

    fn note<T>(&mut self, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Poll::Ready(Err(e)) = &result {
            self.reader_gone |= e.kind() == io::ErrorKind::BrokenPipe;
        }
        result
    }
}

impl tokio::io::AsyncWrite for AsyncStdout {
    fn poll_write(
        self: Pinned<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pinned::new(&mut this.inner).poll_write(cx, buf);
        this.note(result)
    }

    fn poll_flush(self: Pinned<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pinned::new(&mut this.inner).poll_flush(cx);
        this.note(result)
    }

    fn poll_shutdown(self: Pinned<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pinned::new(&mut this.inner).poll_shutdown(cx);
        this.note(result)
    }
}

/// A receipt as a JSON object.
pub fn receipt_json(receipt: &Receipt) -> Value {
    json!({
        "sequence": receipt.sequence,
        "ops": receipt.ops,
        "committed_at": receipt.committed_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "digest": hex(&receipt.digest),
    })
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
