//! A spinner on stderr while a long store operation runs (a walk of 10⁶
//! entries takes seconds), on a terminal only.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// Shows `{spinner} message (elapsed)` until dropped.
pub(crate) struct Busy(Option<ProgressBar>);

impl Busy {
    /// Starts the spinner, if stderr is a terminal.
    pub(crate) fn start(message: &str) -> Busy {
        if !std::io::stderr().is_terminal() {
            return Busy(None);
        }
        let bar = ProgressBar::new_spinner();
        if let Ok(s) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(s);
        }
        bar.set_message(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Busy(Some(bar))
    }

    /// Changes the message.
    pub(crate) fn say(&self, message: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(message.to_string());
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}
