//! Printing: tables (comfy-table, ASCII), key/value views, JSON, and times.

use std::fmt;
use std::io::Write;

use comfy_table::{Table, presets};
use serde::Serialize;
use time::OffsetDateTime;

/// Print one line on stdout; returns `Result<(), String>`. A closed pipe (`| head`) ends
/// the output quietly instead of failing.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::write_line(format_args!($($arg)*))
    };
}

/// Write one line to stdout (see [`outln!`]).
pub fn write_line(args: fmt::Arguments<'_>) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match out.write_fmt(args).and_then(|()| out.write_all(b"\n")).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("cannot write to stdout: {e}")),
    }
}

/// Pretty JSON of a wire value.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<(), String> {
    // The JSON may carry a revealed secret: wipe the buffer after printing.
    let text =
        zeroize::Zeroizing::new(serde_json::to_string_pretty(value).map_err(|e| format!("cannot encode JSON: {e}"))?);
    outln!("{}", text.as_str())
}

/// A table with a header row, or `empty` when there are no rows.
pub fn print_table(header: &[&str], rows: Vec<Vec<String>>, empty: &str) -> Result<(), String> {
    if rows.is_empty() {
        return outln!("{empty}");
    }
    let mut table = new_table();
    table.set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    outln!("{table}")
}

/// One object as a two-column table of fields.
pub fn print_fields(fields: &[(&str, String)]) -> Result<(), String> {
    let mut table = new_table();
    for (name, value) in fields {
        table.add_row(vec![(*name).to_owned(), value.clone()]);
    }
    outln!("{table}")
}

fn new_table() -> Table {
    let mut table = Table::new();
    table.load_preset(presets::ASCII_FULL_CONDENSED);
    table
}

/// A time in UTC to the second: `2026-01-31 12:00:00Z`.
pub fn time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    t.format(&format).unwrap_or_else(|_| t.to_string())
}

/// An optional time, `-` when absent.
pub fn opt_time(t: Option<OffsetDateTime>) -> String {
    t.map(time).unwrap_or_else(|| "-".to_owned())
}

/// An optional text, `-` when absent.
pub fn opt(s: Option<&str>) -> String {
    s.map(str::to_owned).unwrap_or_else(|| "-".to_owned())
}

/// `yes` / `no`.
pub fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}
