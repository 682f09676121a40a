//! `jobcache log [-F FUNCTION] [--since 1h] [-f]`.

use crate::cache::{function_matches, short, Cache};
use crate::error::{CliError, Result};
use crate::style::{clip, clock, emit, table, Align, Style};
use crate::units::parse_duration;
use jobcache_trace::report::{human_bytes, human_duration};
use jobcache_trace::{Event, EventKind, Filter, Follower, Timestamp};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `log`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this function (its full name, or the last part of it)
    #[arg(long, short = 'F', value_name = "FUNCTION")]
    function: Option<String>,
    /// Only events since this long ago (90m, 12h, 7d) or this time (2024-05-01, 2024-05-01T12:00:00Z)
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    since: Option<Timestamp>,
    /// Only events of this kind (calling, hit, computed, failed, corrupt, evicted, cleared, storage_error); repeatable
    #[arg(long, value_name = "KIND", value_parser = parse_kind)]
    kind: Vec<EventKind>,
    /// Keep printing events as they are appended, as `tail -f` (stop with Ctrl-C)
    #[arg(long, short = 'f')]
    follow: bool,
    /// Print the events as JSON Lines, one journal event per line
    #[arg(long)]
    json: bool,
}

/// `--since`: a duration back from now, or an RFC 3339 time or date.
pub(crate) fn parse_since(text: &str) -> std::result::Result<Timestamp, String> {
    if let Ok(d) = parse_duration(text) {
        return Ok(Timestamp::now().saturating_sub(d));
    }
    Timestamp::parse(text).map_err(|_| {
        format!("invalid time {text:?}: expected a duration back from now (90m, 12h, 7d) or a date or time (2024-05-01, 2024-05-01T12:00:00Z)")
    })
}

fn parse_kind(text: &str) -> std::result::Result<EventKind, String> {
    serde_json::from_value::<EventKind>(serde_json::Value::String(text.to_ascii_lowercase()))
        .ok()
        .filter(|k| *k != EventKind::Other)
        .ok_or_else(|| {
            format!("unknown event kind {text:?}: expected calling, hit, computed, failed, corrupt, evicted, cleared or storage_error")
        })
}

/// The filter of `log` and `report`.
pub(crate) fn selection(
    function: Option<&str>,
    since: Option<Timestamp>,
    kinds: &[EventKind],
) -> impl Fn(&Event) -> bool {
    let function = function.map(str::to_string);
    let kinds = kinds.to_vec();
    move |e: &Event| {
        function
            .as_ref()
            .is_none_or(|f| function_matches(f, &e.function))
            && since.is_none_or(|t| e.time >= t)
            && (kinds.is_empty() || kinds.contains(&e.kind))
    }
}

fn kind_cell(style: Style, k: EventKind) -> String {
    let s = k.as_str();
    match k {
        EventKind::Hit => style.green(s),
        EventKind::Failed | EventKind::Corrupt | EventKind::StorageError => style.red(s),
        EventKind::Evicted | EventKind::Cleared => style.yellow(s),
        EventKind::Calling => style.dim(s),
        _ => s.to_string(),
    }
}

fn cells(e: &Event) -> Vec<String> {
    let timed = matches!(
        e.kind,
        EventKind::Hit | EventKind::Computed | EventKind::Failed
    );
    let mut detail = match &e.message {
        Some(m) => m.clone(),
        None => e.args_summary.clone(),
    };
    if e.calls > 1 {
        // A line that counts repeated hits of one call.
        detail = format!("{} calls, {detail}", e.calls);
    }
    vec![
        clock(e.time),
        e.kind.as_str().to_string(),
        e.function.clone(),
        if timed {
            human_duration(e.duration)
        } else {
            String::new()
        },
        if e.output_bytes > 0 {
            human_bytes(e.output_bytes)
        } else {
            String::new()
        },
        short(&e.args_digest).to_string(),
        clip(&detail, 70),
    ]
}

const HEADER: [&str; 7] = [
    "TIME (UTC)",
    "KIND",
    "FUNCTION",
    "DURATION",
    "SIZE",
    "DIGEST",
    "ARGUMENTS / MESSAGE",
];
const ALIGN: [Align; 7] = [
    Align::Left,
    Align::Left,
    Align::Left,
    Align::Right,
    Align::Right,
    Align::Left,
    Align::Left,
];

/// Runs `log`.
pub fn run(dir: &Path, args: Args) -> Result<ExitCode> {
    let cache = Cache::open(dir)?;
    // `calling` lines duplicate the `computed` that follows; shown only when
    // following (what runs now) or asked for.
    let hide_calling = !args.follow && args.kind.is_empty();
    let keep = selection(args.function.as_deref(), args.since, &args.kind);
    let keep = move |e: &Event| keep(e) && !(hide_calling && e.kind == EventKind::Calling);
    let style = Style::detect();
    if args.follow {
        return follow(&cache, &keep, args.json, style);
    }
    let events: Vec<Event> = super::journal_events(&cache, &Filter::new())?
        .into_iter()
        .filter(|e| keep(e))
        .collect();
    if args.json {
        emit(&json_lines(&events));
        return Ok(ExitCode::SUCCESS);
    }
    if events.is_empty() {
        let why = if jobcache_trace::journal_files(cache.journal()).is_empty() {
            format!(
                "no journal at {} yet: nothing has run with this cache",
                cache.journal().display()
            )
        } else {
            "no events match".to_string()
        };
        emit(&format!("{why}\n"));
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = events.iter().map(cells).collect();
    let mut out = table(style, &HEADER, &ALIGN, &rows);
    if style_is_colored(style) {
        // Colour the kind column after alignment.
        out = out
            .lines()
            .map(|l| colour_kind(style, l))
            .collect::<Vec<_>>()
            .join("\n");
        out.push('\n');
    }
    emit(&out);
    Ok(ExitCode::SUCCESS)
}

fn style_is_colored(style: Style) -> bool {
    style.bold("x") != "x"
}

fn colour_kind(style: Style, line: &str) -> String {
    // The kind is the second column, starting after "YYYY-MM-DD HH:MM:SS  ".
    let Some(rest) = line.get(21..) else {
        return line.to_string();
    };
    let end = rest.find(' ').unwrap_or(rest.len());
    let word = rest.get(..end).unwrap_or_default();
    match parse_kind(word) {
        Ok(k) => format!(
            "{}{}{}",
            line.get(..21).unwrap_or_default(),
            kind_cell(style, k),
            rest.get(end..).unwrap_or_default()
        ),
        Err(_) => line.to_string(),
    }
}

fn json_lines(events: &[Event]) -> String {
    let mut out = String::new();
    for e in events {
        if let Ok(line) = serde_json::to_string(e) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

fn follow(
    cache: &Cache,
    keep: &dyn Fn(&Event) -> bool,
    as_json: bool,
    style: Style,
) -> Result<ExitCode> {
    let path = cache.journal();
    let mut follower = Follower::new(&path, true);
    if !as_json {
        emit(&format!(
            "{}\n",
            style.dim(&format!("following {} (Ctrl-C to stop)", path.display()))
        ));
    }
    loop {
        let events: Vec<Event> = follower
            .poll()
            .map_err(CliError::from)?
            .into_iter()
            .filter(|e| keep(e))
            .collect();
        if !events.is_empty() {
            if as_json {
                emit(&json_lines(&events));
            } else {
                let mut out = String::new();
                for e in &events {
                    let [time, kind, function, duration, size, digest, detail] =
                        <[String; 7]>::try_from(cells(e)).unwrap_or_default();
                    let pad = " ".repeat(13usize.saturating_sub(kind.len()));
                    let kind = kind_cell(style, e.kind);
                    out.push_str(&format!(
                        "{time}  {kind}{pad}  {function:<28}  {duration:>8}  {size:>9}  {digest:<12}  {detail}\n"
                    ));
                }
                emit(&out);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
