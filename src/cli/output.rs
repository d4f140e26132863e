//! How results reach stdout: plain lines for people and shell pipelines, or one JSON object per
//! line with `--json` for programs.

use std::io::Write;

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
