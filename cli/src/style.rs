//! Output helpers: colours (only on a terminal, never with `NO_COLOR`),
//! aligned tables, times, and writing to stdout without panicking when the
//! reader goes away (`jobcache log | head`).

use jobcache_trace::Timestamp;
use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime};

/// Whether to colour output written to stdout.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    color: bool,
}

impl Style {
    /// Colours when stdout is a terminal and `NO_COLOR` is unset or empty
    /// (<https://no-color.org>).
    pub fn detect() -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: !no_color && std::io::stdout().is_terminal(),
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Bold (headers).
    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    /// Red (problems).
    pub fn red(self, text: &str) -> String {
        self.paint("31", text)
    }

    /// Green (all good).
    pub fn green(self, text: &str) -> String {
        self.paint("32", text)
    }

    /// Yellow (warnings, removals).
    pub fn yellow(self, text: &str) -> String {
        self.paint("33", text)
    }

    /// Dim (secondary text).
    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }
}

/// Alignment of a table column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// A plain table: a header row and rows, columns padded to their widest
/// cell; the last column is never padded.
pub fn table(style: Style, header: &[&str], align: &[Align], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String], head: bool| {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let pad = w.saturating_sub(c.chars().count());
            let right = align.get(i) == Some(&Align::Right);
            if right {
                text.push_str(&" ".repeat(pad));
            }
            text.push_str(c);
            if !right && i != last {
                text.push_str(&" ".repeat(pad));
            }
        }
        let text = text.trim_end().to_string();
        out.push_str(&if head { style.bold(&text) } else { text });
        out.push('\n');
    };
    line(
        &header.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
        true,
    );
    for r in rows {
        line(r, false);
    }
    out
}

/// Writes to stdout; a closed pipe ends the program quietly (exit 0), as
/// other command-line tools do.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let r = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    if let Err(e) = r {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("jobcache: error: cannot write to stdout: {e}");
        std::process::exit(2);
    }
}

/// A time as RFC 3339 UTC with seconds: `2024-05-01T12:00:03Z` (JSON).
pub fn rfc3339(t: SystemTime) -> String {
    let s = Timestamp::from_system_time(t).to_string();
    match s.find('.') {
        Some(i) => format!("{}Z", s.get(..i).unwrap_or(&s)),
        None => s,
    }
}

/// A time for a table: `2024-05-01 12:00:03` (UTC).
pub fn clock(t: Timestamp) -> String {
    let s = t.to_string();
    s.get(..19).map_or(s.clone(), |p| p.replace('T', " "))
}

/// How long ago `t` was, for a table: `5m ago`.
pub fn ago(t: SystemTime) -> String {
    let age = SystemTime::now()
        .duration_since(t)
        .unwrap_or(Duration::ZERO);
    format!("{} ago", crate::units::short_age(age))
}

/// Cuts `text` to `max` characters, with an ellipsis.
pub fn clip(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut s: String = one_line.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// `1 entry`, `3 entries`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let style = Style { color: false };
        let t = table(
            style,
            &["name", "n", "note"],
            &[Align::Left, Align::Right, Align::Left],
            &[
                vec!["a".into(), "10".into(), "x".into()],
                vec!["long".into(), "2".into(), "".into()],
            ],
        );
        assert_eq!(t, "name   n  note\na     10  x\nlong   2\n");
    }

    #[test]
    fn times() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_714_564_803_250);
        assert_eq!(rfc3339(t), "2024-05-01T12:00:03Z");
        assert_eq!(clock(Timestamp::from_system_time(t)), "2024-05-01 12:00:03");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("a\nb", 4), "a b");
    }
}
