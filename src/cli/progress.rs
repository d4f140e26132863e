//! Progress on long work (`state export|import|copy`): an `indicatif` spinner on stderr with
//! the pins and bytes done and the rate, drawn only when stderr is a terminal, so pipelines
//! and logs get results and nothing else.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pinvault::transfer::Progress;

/// A spinner counting pins (its position) and bytes.
pub struct TerminalProgress {
    bar: ProgressBar,
    bytes: std::sync::atomic::AtomicU64,
}

impl TerminalProgress {
    /// A spinner labelled `verb` ("imported"), hidden unless stderr is a terminal.
    pub fn on_terminal(verb: &'static str) -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr_with_hz(10)
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        let style = ProgressStyle::with_template(
            "{spinner} {prefix} {human_pos} pins, {msg} ({per_sec}, {elapsed})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_prefix(verb);
        bar.set_message(HumanBytes(0).to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        TerminalProgress { bar, bytes: std::sync::atomic::AtomicU64::new(0) }
    }

    /// As the `Progress` the transfer functions take.
    pub fn as_progress(&self) -> &dyn Progress {
        self
    }

    /// Leaves the final counts on screen (when drawn at all).
    pub fn finish(&self) {
        self.bar.finish();
    }

    /// Pins counted so far.
    #[cfg(test)]
    fn pins(&self) -> u64 {
        self.bar.position()
    }
}

impl Progress for TerminalProgress {
    fn advance(&self, pins: u64, bytes: u64) {
        self.bar.inc(pins);
        if bytes > 0 {
            let total = self.bytes.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed) + bytes;
            self.bar.set_message(HumanBytes(total).to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_counts_deltas() {
        let progress = TerminalProgress::on_terminal("imported");
        progress.advance(2, 100);
        progress.advance(3, 50);
        assert_eq!(progress.pins(), 5);
        assert_eq!(progress.bytes.load(std::sync::atomic::Ordering::Relaxed), 150);
        progress.finish();
    }
}
