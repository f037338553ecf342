//! Rendering results: JSON (one object per line, per result) or text
//! (aligned tables and `key  value` lists), and the byte renderings shared
//! by the commands and the shell: hex dumps, Python `bytes` reprs, sizes.

use std::io::{self, Write};

use serde::Serialize;

use crate::{
    cli::Format,
    error::{CliError, Result},
};

/// Writes results to stdout in the chosen format.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// The chosen format.
    pub format: Format,
}

impl Printer {
    /// Whether results are JSON.
    pub fn json(self) -> bool {
        self.format == Format::Json
    }

    /// Prints one result: as a JSON line, or as the text `text` renders.
    pub fn result<T: Serialize>(self, value: &T, text: impl FnOnce() -> String) -> Result<()> {
        match self.format {
            Format::Json => print_json(value),
            Format::Text => {
                let mut text = text();
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                stdout_write(text.as_bytes())
            }
        }
    }

    /// Prints a list: one JSON line per item, or an aligned table with a
    /// header (or `empty` when there are no items).
    pub fn table<T: Serialize>(
        self,
        items: &[T],
        header: &[&str],
        row: impl Fn(&T) -> Vec<String>,
        empty: &str,
    ) -> Result<()> {
        match self.format {
            Format::Json => items.iter().try_for_each(print_json),
            Format::Text if items.is_empty() => stdout_write(format!("{empty}\n").as_bytes()),
            Format::Text => {
                let mut rows = vec![header.iter().map(|h| (*h).to_owned()).collect()];
                rows.extend(items.iter().map(row));
                stdout_write(align(&rows).as_bytes())
            }
        }
    }
}

/// Prints one JSON object on its own line.
fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let mut line = serde_json::to_vec(value)
        .map_err(|err| CliError::Failed(format!("cannot encode JSON: {err}")))?;
    line.push(b'\n');
    stdout_write(&line)
}

/// Writes to stdout and flushes, reporting failures (a broken pipe
/// included) as errors instead of panicking like `print!`.
pub fn stdout_write(bytes: &[u8]) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|err| CliError::local("cannot write to stdout", err))
}

/// Left-aligns columns two spaces apart; the last column is not padded.
pub fn align(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                // Only our own padding is trimmed: a last cell's own
                // trailing spaces (a file name's) are part of it.
                if cell.is_empty() {
                    line.truncate(line.trim_end().len());
                }
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[c]));
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `1048576` → `1 MiB`, `100000000` → `100000000 bytes (95.4 MiB)`,
/// `24` → `24 bytes`.
pub fn human_bytes(n: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n >= size && n.is_multiple_of(size) {
            return format!("{} {unit}", n / size);
        }
        if n >= size {
            return format!("{n} bytes ({:.1} {unit})", n as f64 / size as f64);
        }
    }
    bytes(n)
}

/// `1 byte`, `2 bytes`, `-1 bytes`.
pub fn bytes(n: impl Into<i128>) -> String {
    match n.into() {
        1 => "1 byte".to_owned(),
        n => format!("{n} bytes"),
    }
}

/// Whether `data` is text that is safe to print on a terminal: UTF-8 with
/// no control characters other than newline, tab and carriage return.
pub fn is_printable_text(data: &[u8]) -> bool {
    std::str::from_utf8(data).is_ok_and(|text| {
        text.chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\t' | '\r'))
    })
}

/// A `hexdump -C` style dump, 16 bytes a line, offsets starting at `base`.
pub fn hexdump(data: &[u8], base: u64) -> String {
    let mut out = String::new();
    for (i, line) in data.chunks(16).enumerate() {
        let offset = base + (i as u64) * 16;
        let mut hex = String::new();
        for (j, byte) in line.iter().enumerate() {
            if j == 8 {
                hex.push(' ');
            }
            hex.push_str(&format!("{byte:02x} "));
        }
        let ascii: String = line
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    char::from(b)
                } else {
                    '.'
                }
            })
            .collect();
        out.push_str(&format!("{offset:08x}  {hex:<49} |{ascii}|\n"));
    }
    out
}

/// Python's `repr(bytes)`: `b'hello\n'`, `b"it's"`, `b'\x00\xff'`.
pub fn bytes_repr(data: &[u8]) -> String {
    let quote = if data.contains(&b'\'') && !data.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::from("b");
    out.push(char::from(quote));
    for &b in data {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ if b == quote => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push(char::from(quote));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_matches_python() {
        assert_eq!(bytes_repr(b"hello\n"), r"b'hello\n'");
        assert_eq!(bytes_repr(b"it's"), r#"b"it's""#);
        assert_eq!(bytes_repr(b"'\""), r#"b'\'"'"#);
        assert_eq!(bytes_repr(b"\x00\xff\\"), r"b'\x00\xff\\'");
        assert_eq!(bytes_repr(b""), "b''");
    }

    #[test]
    fn hexdump_lines() {
        let dump = hexdump(b"hello, world!\n\x00\x01\x02", 16);
        assert_eq!(
            dump,
            "00000010  68 65 6c 6c 6f 2c 20 77  6f 72 6c 64 21 0a 00 01  |hello, world!...|\n\
             00000020  02                                                |.|\n"
        );
    }

    #[test]
    fn printable_text() {
        assert!(is_printable_text("héllo\n\tx".as_bytes()));
        assert!(!is_printable_text(b"\x00abc"));
        assert!(!is_printable_text(b"\x1b[31mred"));
        assert!(!is_printable_text(b"\xff"));
    }

    #[test]
    fn tables_align() {
        let rows = vec![
            vec!["NAME".to_owned(), "LEN".to_owned()],
            vec!["a-long-name".to_owned(), "1".to_owned()],
        ];
        assert_eq!(align(&rows), "NAME         LEN\na-long-name  1\n");
        // A last cell keeps its own trailing space; an empty one leaves no
        // padding behind.
        let rows = vec![
            vec!["a".to_owned(), "name ".to_owned()],
            vec!["bbb".to_owned(), String::new()],
        ];
        assert_eq!(align(&rows), "a    name \nbbb\n");
        assert_eq!(human_bytes(4 << 20), "4 MiB");
        assert_eq!(human_bytes(4097), "4097 bytes (4.0 KiB)");
        assert_eq!(human_bytes(100_000_000), "100000000 bytes (95.4 MiB)");
        assert_eq!(human_bytes(24), "24 bytes");
        assert_eq!(human_bytes(1), "1 byte");
        assert_eq!(bytes(-1i64), "-1 bytes");
    }
}
