//! Shell line syntax: a command word, then arguments that are numbers,
//! words, or quoted literals with Python escapes ('text', "text",
//! b'\x00\xff'); a trailing DATA argument may also be plain text running to
//! the end of the line.

/// The arguments of one shell line, consumed left to right.
#[derive(Debug)]
pub struct Args<'a> {
    rest: &'a str,
}

/// A parse error, shown with the command's usage.
pub type ParseResult<T> = Result<T, String>;

impl<'a> Args<'a> {
    /// Splits `line` into its command word and the arguments after it.
    pub fn new(line: &'a str) -> (&'a str, Args<'a>) {
        let line = line.trim();
        let (command, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        (command, Args { rest })
    }

    /// The next argument as bytes (a word or a quoted literal), if any.
    pub fn word(&mut self) -> ParseResult<Option<Vec<u8>>> {
        let rest = self.rest.trim_start();
        if rest.is_empty() {
            self.rest = rest;
            return Ok(None);
        }
        if let Some((bytes, after)) = literal(rest)? {
            self.rest = after;
            return Ok(Some(bytes));
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        self.rest = &rest[end..];
        Ok(Some(rest.as_bytes()[..end].to_vec()))
    }

    /// The next argument as bytes; an error naming `what` if missing.
    pub fn required_word(&mut self, what: &str) -> ParseResult<Vec<u8>> {
        self.word()?.ok_or_else(|| format!("missing {what}"))
    }

    /// The next argument as an integer, if any.
    pub fn int(&mut self, what: &str) -> ParseResult<Option<i64>> {
        match self.word()? {
            None => Ok(None),
            Some(word) => parse_int(&word, what).map(Some),
        }
    }

    /// The next argument as an integer; an error if missing.
    pub fn required_int(&mut self, what: &str) -> ParseResult<i64> {
        self.int(what)?.ok_or_else(|| format!("missing {what}"))
    }

    /// A slice bound: an integer, or `None` (Python's None) for `None` or
    /// `_`.
    pub fn bound(&mut self, what: &str) -> ParseResult<Option<i64>> {
        let word = self.required_word(what)?;
        if word == b"None" || word == b"_" {
            return Ok(None);
        }
        parse_int(&word, what).map(Some)
    }

    /// The rest of the line as DATA: one quoted literal spanning all of
    /// it, or else the plain text as it is.
    pub fn data(&mut self) -> ParseResult<Vec<u8>> {
        let rest = self.rest.trim();
        self.rest = "";
        if rest.is_empty() {
            return Err("missing DATA".to_owned());
        }
        // A malformed literal is an error, not text to write as it is.
        match literal(rest)? {
            Some((bytes, after)) if after.trim().is_empty() => Ok(bytes),
            Some(_) | None => Ok(rest.as_bytes().to_vec()),
        }
    }

    /// Fails if arguments are left over.
    pub fn end(self) -> ParseResult<()> {
        match self.rest.trim() {
            "" => Ok(()),
            extra => Err(format!("unexpected {extra:?}")),
        }
    }
}

/// Parses a decimal (or `0x` hex) integer, with an optional sign.
pub fn parse_int(word: &[u8], what: &str) -> ParseResult<i64> {
    let text = String::from_utf8_lossy(word);
    let not_integer = || format!("{what} must be an integer, not {text:?}");
    let out_of_range = || format!("{what} {text} is out of range");
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(unsigned) => (true, unsigned),
        None => (false, text.strip_prefix('+').unwrap_or(&text)),
    };
    let (radix, digits) = match unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        Some(hex) => (16, hex),
        None => (10, unsigned),
    };
    // Only digits after the one sign and prefix: `from_str_radix` would
    // take a second sign itself.
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(not_integer());
    }
    let magnitude = i128::from_str_radix(digits, radix).map_err(|_| out_of_range())?;
    let value = if negative {
        magnitude.checked_neg().ok_or_else(out_of_range)?
    } else {
        magnitude
    };
    i64::try_from(value).map_err(|_| out_of_range())
}

/// A quoted literal at the start of `text`, and what follows it; `None`
/// if `text` does not start with a quote.
fn literal(text: &str) -> ParseResult<Option<(Vec<u8>, &str)>> {
    let (bytes_only, body) = match text.strip_prefix(['b', 'B']) {
        Some(body) if body.starts_with(['\'', '"']) => (true, body),
        Some(_) | None if text.starts_with(['\'', '"']) => (false, text),
        Some(_) | None => return Ok(None),
    };
    let mut chars = body.char_indices();
    let Some((_, quote)) = chars.next() else {
        return Ok(None);
    };
    let mut out = Vec::new();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c == quote => return Ok(Some((out, &body[i + c.len_utf8()..]))),
            '\\' => {
                let Some((_, escaped)) = chars.next() else {
                    break;
                };
                escape(escaped, &mut chars, &mut out)?;
            }
            c if bytes_only && !c.is_ascii() => {
                return Err(format!(
                    "bytes literals can hold only ASCII characters; write {c:?} with \\x escapes"
                ));
            }
            c => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    Err(format!("unterminated literal: {text}"))
}

/// Appends the byte(s) of the escape `\c` (Python's rules; unknown escapes
/// keep their backslash).
fn escape(c: char, chars: &mut std::str::CharIndices<'_>, out: &mut Vec<u8>) -> ParseResult<()> {
    let byte = match c {
        '\\' => b'\\',
        '\'' => b'\'',
        '"' => b'"',
        'n' => b'\n',
        'r' => b'\r',
        't' => b'\t',
        'a' => 0x07,
        'b' => 0x08,
        'f' => 0x0c,
        'v' => 0x0b,
        'x' => {
            // Exactly two hex digits: `from_str_radix` alone would take a
            // sign, and a closing quote must not be swallowed.
            let mut value = 0;
            for _ in 0..2 {
                let digit = chars.clone().next().and_then(|(_, d)| d.to_digit(16));
                let Some(digit) = digit else {
                    return Err("invalid \\x escape: it needs two hex digits".to_owned());
                };
                chars.next();
                value = value * 16 + digit;
            }
            u8::try_from(value).map_err(|_| "invalid \\x escape".to_owned())?
        }
        '0'..='7' => {
            let mut value = c.to_digit(8).unwrap_or(0);
            let mut lookahead = chars.clone();
            for _ in 0..2 {
                match lookahead.next() {
                    Some((_, d @ '0'..='7')) => {
                        value = value * 8 + d.to_digit(8).unwrap_or(0);
                        chars.next();
                    }
                    Some(_) | None => break,
                }
            }
            u8::try_from(value).map_err(|_| format!("octal escape \\{value:o} is above \\377"))?
        }
        other => {
            out.push(b'\\');
            let mut buf = [0; 4];
            out.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
            return Ok(());
        }
    };
    out.push(byte);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<Vec<u8>> {
        let (_, mut args) = Args::new(line);
        std::iter::from_fn(|| args.word().unwrap()).collect()
    }

    #[test]
    fn words_and_literals() {
        assert_eq!(
            words("find b'\\x00\\xff' 'a b' \"c\\n\" plain"),
            vec![
                vec![0, 255],
                b"a b".to_vec(),
                b"c\n".to_vec(),
                b"plain".to_vec()
            ]
        );
        assert_eq!(words("x 'h\u{e9}'"), vec!["h\u{e9}".as_bytes().to_vec()]);
        assert_eq!(words("x b'\\101\\0z'"), vec![b"A\0z".to_vec()]);
        assert_eq!(words("x 'a\\qb'"), vec![b"a\\qb".to_vec()]);
        let (_, mut args) = Args::new("x 'open");
        assert!(args.word().is_err());
        let (_, mut args) = Args::new("x b'\u{e9}'");
        assert!(args.word().is_err());
    }

    #[test]
    fn data_is_a_literal_or_the_plain_rest() {
        let data = |line| Args::new(line).1.data().unwrap();
        assert_eq!(data("write hello world  "), b"hello world");
        assert_eq!(data("write 'two  spaces '"), b"two  spaces ");
        assert_eq!(data("write b'\\x01\\x02'"), vec![1, 2]);
        assert_eq!(data("write it's 'x"), b"it's 'x");
        assert_eq!(data("write 'a' 'b'"), b"'a' 'b'");
        assert!(Args::new("write").1.data().is_err());
        // A malformed literal is reported, not written as text.
        for line in [
            "write b'\\xZZ'",
            "write '\\xZZ'",
            "write b\"\\x1\"",
            "write 'open",
            "write b'\u{e9}'",
        ] {
            assert!(Args::new(line).1.data().is_err(), "{line}");
        }
    }

    #[test]
    fn hex_escapes_need_exactly_two_hex_digits() {
        let word = |line| Args::new(line).1.word();
        assert_eq!(word("x '\\x41\\xfF'"), Ok(Some(b"A\xff".to_vec())));
        assert_eq!(word("x b'\\x0a1'"), Ok(Some(b"\n1".to_vec())));
        for line in [
            "x '\\x+f'",
            "x '\\x-1'",
            "x '\\x'",
            "x '\\x4'",
            "x '\\x4'z'",
            "x '\\x\u{e9}'",
            "x '\\x4\u{e9}'",
            "x '\\x",
            "x '\\x g'",
        ] {
            assert!(word(line).is_err(), "{line}");
        }
    }

    #[test]
    fn integers_and_bounds() {
        assert_eq!(parse_int(b"-12", "N"), Ok(-12));
        assert_eq!(parse_int(b"0x10", "N"), Ok(16));
        assert!(parse_int(b"ten", "N").is_err());
        assert!(parse_int(b"99999999999999999999", "N").is_err());
        assert_eq!(parse_int(b"+7", "N"), Ok(7));
        assert_eq!(parse_int(b"-0x10", "N"), Ok(-16));
        assert_eq!(parse_int(b"-9223372036854775808", "N"), Ok(i64::MIN));
        assert!(parse_int(b"9223372036854775808", "N").is_err());
        // Used to panic negating i128::MIN.
        assert!(parse_int(b"--170141183460469231731687303715884105728", "N").is_err());
        assert!(parse_int(b"-170141183460469231731687303715884105728", "N").is_err());
        for word in [
            &b"--5"[..],
            b"+-5",
            b"-+5",
            b"++5",
            b"0x-5",
            b"0x+5",
            b"-0x-5",
            b"0x",
            b"-",
            b"",
            b" 5",
            b"5_0",
        ] {
            assert!(parse_int(word, "N").is_err(), "{word:?}");
        }
        let (command, mut args) = Args::new("  slice None 5 _ ");
        assert_eq!(command, "slice");
        assert_eq!(args.bound("START"), Ok(None));
        assert_eq!(args.bound("STOP"), Ok(Some(5)));
        assert_eq!(args.bound("STEP"), Ok(None));
        assert!(args.end().is_ok());
    }
}
