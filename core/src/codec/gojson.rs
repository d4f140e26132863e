//! Go's `encoding/json` reading, as far as ipfs-cluster's `state import` meets it.
//!
//! `state import` reads its input with one `json.Decoder` over the whole stream, so what it
//! takes is what Go's decoder takes, which is not what a strict JSON parser takes: values may be
//! separated by any JSON whitespace or by nothing (`}{`), span lines, and strings keep invalid
//! UTF-8 and lone surrogate escapes as U+FFFD instead of failing. This module gives
//! [`super::ndjson`] those rules:
//!
//! * [`next_value`] finds where the next top-level value of a stream ends, as the decoder's
//!   scanner does (syntax errors included, nesting limited to Go's 10,000 levels).
//! * [`parse`] turns one value into a [`Value`]: objects keep every member in order, duplicates
//!   included (Go's struct decoding lets the last one win, its map decoding merges), numbers keep
//!   their literal text (Go parses them per target type), strings are unquoted as Go unquotes.

use std::fmt;

/// Go's scanner refuses values nested deeper than this.
const MAX_NESTING: usize = 10_000;

/// Values nested deeper than this are kept as [`Value::Nested`]: no pin field reads them.
const MAX_BUILT_DEPTH: usize = 16;

/// A JSON value as Go's decoder sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as its literal text.
    Number(String),
    /// A string, unquoted with Go's replacement of invalid UTF-8 and lone surrogates, and
    /// whether its literal held an escape (Go reads times from the literal, not the string).
    String(String, bool),
    /// An array.
    Array(Vec<Value>),
    /// An object: members in input order, duplicates kept.
    Object(Vec<(String, Value)>),
    /// An array (`'['`) or object (`'{'`) too deep to matter to a pin.
    Nested(u8),
}

impl Value {
    /// What Go's `UnmarshalTypeError` calls this kind of value.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(..) => "string",
            Value::Array(_) | Value::Nested(b'[') => "array",
            Value::Object(_) | Value::Nested(_) => "object",
        }
    }
}

/// Where the next top-level value of a stream is.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// Only whitespace until the end of the input (the decoder's `io.EOF`).
    End,
    /// The value occupies `start..end` of the input.
    Value {
        /// Where the value starts (after the whitespace before it).
        start: usize,
        /// Just past the value's last byte.
        end: usize,
    },
    /// The input ends inside a value; with more input it may complete.
    Incomplete,
    /// A syntax error, as Go's scanner reports it.
    Invalid(String),
}

/// JSON's whitespace, the only bytes Go's decoder skips between values.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Scans `input` for its first value. With `at_eof`, the input is all there is (a number at
/// the very end is then complete); otherwise a value that might go on is [`Scan::Incomplete`].
pub fn next_value(input: &[u8], at_eof: bool) -> Scan {
    let Some(start) = input.iter().position(|&b| !is_space(b)) else {
        return if at_eof { Scan::End } else { Scan::Incomplete };
    };
    match (Scanner { input, at: start, at_eof }).value() {
        Ok(end) => Scan::Value { start, end },
        Err(ScanError::Incomplete) => Scan::Incomplete,
        Err(ScanError::Invalid(why)) => Scan::Invalid(why),
    }
}

enum ScanError {
    Incomplete,
    Invalid(String),
}

/// Go's scanner grammar, iteratively (a stack of open containers), so deep nesting cannot
/// overflow the stack.
struct Scanner<'a> {
    input: &'a [u8],
    at: usize,
    at_eof: bool,
}

impl Scanner<'_> {
    fn peek(&self) -> Result<u8, ScanError> {
        self.input.get(self.at).copied().ok_or(if self.at_eof {
            ScanError::Invalid("unexpected end of JSON input".into())
        } else {
            ScanError::Incomplete
        })
    }

    fn skip_space(&mut self) -> Result<u8, ScanError> {
        loop {
            let b = self.peek()?;
            if !is_space(b) {
                return Ok(b);
            }
            self.at += 1;
        }
    }

    fn invalid(&self, b: u8, context: &str) -> ScanError {
        ScanError::Invalid(format!("invalid character {} {context}", quote_char(b)))
    }

    /// Scans one value starting at `self.at`; returns the offset just past it.
    fn value(mut self) -> Result<usize, ScanError> {
        // Open containers: `true` for an object.
        let mut stack: Vec<bool> = Vec::new();
        loop {
            // A value is expected here.
            let b = self.skip_space()?;
            match b {
                b'{' | b'[' => {
                    if stack.len() >= MAX_NESTING {
                        return Err(ScanError::Invalid("exceeded max depth".into()));
                    }
                    self.at += 1;
                    let object = b == b'{';
                    stack.push(object);
                    let next = self.skip_space()?;
                    if (object && next == b'}') || (!object && next == b']') {
                        self.at += 1;
                        stack.pop();
                    } else if object {
                        self.key()?;
                        continue;
                    } else {
                        continue;
                    }
                }
                b'"' => self.string()?,
                b'-' | b'0'..=b'9' => self.number()?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                other => return Err(self.invalid(other, "looking for beginning of value")),
            }
            // A value ended: close containers or go on to the next element.
            loop {
                let Some(&object) = stack.last() else { return Ok(self.at) };
                let b = self.skip_space()?;
                match (b, object) {
                    (b',', true) => {
                        self.at += 1;
                        let next = self.skip_space()?;
                        if next != b'"' {
                            return Err(
                                self.invalid(next, "looking for beginning of object key string")
                            );
                        }
                        self.key()?;
                        break;
                    }
                    (b',', false) => {
                        self.at += 1;
                        break;
                    }
                    (b'}', true) | (b']', false) => {
                        self.at += 1;
                        stack.pop();
                    }
                    (other, true) => return Err(self.invalid(other, "after object key:value pair")),
                    (other, false) => return Err(self.invalid(other, "after array element")),
                }
            }
        }
    }

    /// An object key and its colon.
    fn key(&mut self) -> Result<(), ScanError> {
        let b = self.skip_space()?;
        if b != b'"' {
            return Err(self.invalid(b, "looking for beginning of object key string"));
        }
        self.string()?;
        let b = self.skip_space()?;
        if b != b':' {
            return Err(self.invalid(b, "after object key"));
        }
        self.at += 1;
        Ok(())
    }

    fn string(&mut self) -> Result<(), ScanError> {
        self.at += 1;
        loop {
            let b = self.peek()?;
            self.at += 1;
            match b {
                b'"' => return Ok(()),
                b'\\' => {
                    let e = self.peek()?;
                    self.at += 1;
                    match e {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            for _ in 0..4 {
                                let h = self.peek()?;
                                if !h.is_ascii_hexdigit() {
                                    return Err(
                                        self.invalid(h, "in \\u hexadecimal character escape")
                                    );
                                }
                                self.at += 1;
                            }
                        }
                        other => return Err(self.invalid(other, "in string escape code")),
                    }
                }
                b if b < 0x20 => return Err(self.invalid(b, "in string literal")),
                _ => {}
            }
        }
    }

    fn number(&mut self) -> Result<(), ScanError> {
        let digits = |s: &mut Self| -> Result<usize, ScanError> {
            let mut n = 0;
            while let Some(b) = s.input.get(s.at) {
                if !b.is_ascii_digit() {
                    break;
                }
                s.at += 1;
                n += 1;
            }
            Ok(n)
        };
        if self.peek()? == b'-' {
            self.at += 1;
        }
        let first = self.peek()?;
        match first {
            b'0' => self.at += 1,
            b'1'..=b'9' => {
                digits(self)?;
            }
            other => return Err(self.invalid(other, "in numeric literal")),
        }
        if self.input.get(self.at) == Some(&b'.') {
            self.at += 1;
            let b = self.peek()?;
            if !b.is_ascii_digit() {
                return Err(self.invalid(b, "after decimal point in numeric literal"));
            }
            digits(self)?;
        }
        if matches!(self.input.get(self.at), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek()?, b'+' | b'-') {
                self.at += 1;
            }
            let b = self.peek()?;
            if !b.is_ascii_digit() {
                return Err(self.invalid(b, "in exponent of numeric literal"));
            }
            digits(self)?;
        }
        // A number at the end of a partial input might go on.
        if self.at == self.input.len() && !self.at_eof {
            return Err(ScanError::Incomplete);
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), ScanError> {
        for &expected in word {
            let b = self.peek()?;
            if b != expected {
                return Err(
                    self.invalid(b, "in literal (expecting a letter of true, false or null)")
                );
            }
            self.at += 1;
        }
        Ok(())
    }
}

fn quote_char(b: u8) -> String {
    match b {
        b'\'' => "'\\''".into(),
        b'"' => "'\"'".into(),
        0x20..=0x7e => format!("'{}'", b as char),
        _ => format!("{:?}", char::from(b)),
    }
}

/// Parses one value that [`next_value`] found (so its syntax is valid).
pub fn parse(value: &[u8]) -> Value {
    let mut p = Parser { input: value, at: 0 };
    p.value(0)
}

struct Parser<'a> {
    input: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn byte(&self) -> u8 {
        self.input.get(self.at).copied().unwrap_or(b' ')
    }

    fn skip_space(&mut self) -> u8 {
        while self.at < self.input.len() && is_space(self.input[self.at]) {
            self.at += 1;
        }
        self.byte()
    }

    fn value(&mut self, depth: usize) -> Value {
        match self.skip_space() {
            open @ (b'{' | b'[') if depth >= MAX_BUILT_DEPTH => {
                self.skip_container();
                Value::Nested(open)
            }
            b'{' => {
                self.at += 1;
                let mut members = Vec::new();
                if self.skip_space() == b'}' {
                    self.at += 1;
                    return Value::Object(members);
                }
                loop {
                    self.skip_space();
                    let (key, _) = self.string();
                    self.skip_space(); // the colon
                    self.at += 1;
                    let value = self.value(depth + 1);
                    members.push((key, value));
                    let sep = self.skip_space();
                    self.at += 1;
                    if sep != b',' {
                        return Value::Object(members);
                    }
                }
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                if self.skip_space() == b']' {
                    self.at += 1;
                    return Value::Array(items);
                }
                loop {
                    items.push(self.value(depth + 1));
                    let sep = self.skip_space();
                    self.at += 1;
                    if sep != b',' {
                        return Value::Array(items);
                    }
                }
            }
            b'"' => {
                let (text, escaped) = self.string();
                Value::String(text, escaped)
            }
            b't' => {
                self.at += 4;
                Value::Bool(true)
            }
            b'f' => {
                self.at += 5;
                Value::Bool(false)
            }
            b'n' => {
                self.at += 4;
                Value::Null
            }
            _ => {
                let start = self.at;
                while self.at < self.input.len()
                    && matches!(self.input[self.at], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    self.at += 1;
                }
                Value::Number(String::from_utf8_lossy(&self.input[start..self.at]).into_owned())
            }
        }
    }

    /// Skips a (valid) array or object without building it.
    fn skip_container(&mut self) {
        let mut depth = 0usize;
        let mut in_string = false;
        while self.at < self.input.len() {
            let b = self.input[self.at];
            self.at += 1;
            if in_string {
                match b {
                    b'\\' => self.at += 1,
                    b'"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    /// A (valid) string at `self.at`, unquoted as Go's `unquote` does, and whether it held an
    /// escape.
    fn string(&mut self) -> (String, bool) {
        self.at += 1;
        let mut out = String::new();
        let mut escaped = false;
        loop {
            let Some(&b) = self.input.get(self.at) else { return (out, escaped) };
            match b {
                b'"' => {
                    self.at += 1;
                    return (out, escaped);
                }
                b'\\' => {
                    escaped = true;
                    let e = self.input.get(self.at + 1).copied().unwrap_or(b'\\');
                    self.at += 2;
                    match e {
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()),
                        other => out.push(char::from(other)),
                    }
                }
                b if b < 0x80 => {
                    out.push(char::from(b));
                    self.at += 1;
                }
                _ => {
                    let (c, len) = decode_rune(&self.input[self.at..]);
                    out.push(c);
                    self.at += len;
                }
            }
        }
    }

    /// The character of a `\uXXXX` escape whose `\u` was consumed: a surrogate pair when the
    /// next escape completes one, else (a lone surrogate) U+FFFD, as Go does.
    fn unicode_escape(&mut self) -> char {
        let first = self.hex4(self.at);
        self.at += 4;
        if !(0xD800..0xE000).contains(&first) {
            return char::from_u32(first).unwrap_or('\u{FFFD}');
        }
        if first < 0xDC00 && self.input.get(self.at..self.at + 2) == Some(b"\\u") {
            let second = self.hex4(self.at + 2);
            if (0xDC00..0xE000).contains(&second) {
                self.at += 6;
                let c = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                return char::from_u32(c).unwrap_or('\u{FFFD}');
            }
        }
        '\u{FFFD}'
    }

    fn hex4(&self, at: usize) -> u32 {
        self.input
            .get(at..at + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .unwrap_or(0xFFFD)
    }
}

/// Go's `utf8.DecodeRune`: one valid UTF-8 character and its length, or U+FFFD and 1 for an
/// invalid byte (so an invalid sequence becomes one U+FFFD per byte, unlike Rust's lossy
/// conversion, which replaces a maximal invalid prefix once).
fn decode_rune(bytes: &[u8]) -> (char, usize) {
    let width = match bytes.first() {
        Some(0xC2..=0xDF) => 2,
        Some(0xE0..=0xEF) => 3,
        Some(0xF0..=0xF4) => 4,
        _ => return ('\u{FFFD}', 1),
    };
    match bytes
        .get(..width)
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|s| s.chars().next())
    {
        Some(c) => (c, width),
        None => ('\u{FFFD}', 1),
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(input: &[u8]) -> Vec<Value> {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            match next_value(&input[at..], true) {
                Scan::End => return out,
                Scan::Value { start, end } => {
                    out.push(parse(&input[at + start..at + end]));
                    at += end;
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn values_follow_each_other_with_or_without_whitespace() {
        assert_eq!(values(b"{}{} \r\n\t[1]").len(), 3);
        assert_eq!(values(b"  \n").len(), 0);
        assert_eq!(values(b"1 2").len(), 2);
        assert_eq!(next_value(b"12", false), Scan::Incomplete);
        assert_eq!(
            next_value(b"{\"a\":", true),
            Scan::Invalid("unexpected end of JSON input".into())
        );
        assert!(matches!(next_value(b"\xef\xbb\xbf{}", true), Scan::Invalid(_)));
        assert!(matches!(next_value(b"{\"a\" 1}", true), Scan::Invalid(_)));
        assert!(matches!(next_value(b"[01]", true), Scan::Invalid(_)));
        assert!(matches!(next_value(b"\"a\nb\"", true), Scan::Invalid(_)));
    }

    #[test]
    fn strings_unquote_as_go_does() {
        let v = parse(b"\"a\\ud800b\\ud83d\\ude00\\u00e9\xff\xe2\x82\"");
        assert_eq!(
            v,
            Value::String("a\u{FFFD}b\u{1F600}\u{e9}\u{FFFD}\u{FFFD}\u{FFFD}".into(), true)
        );
        assert_eq!(parse(b"\"\\ud800\\u0041\""), Value::String("\u{FFFD}A".into(), true));
    }

    #[test]
    fn objects_keep_duplicates_and_numbers_their_text() {
        let v = parse(b"{\"a\":1.50,\"a\":-0,\"b\":[true,null]}");
        assert_eq!(
            v,
            Value::Object(vec![
                ("a".into(), Value::Number("1.50".into())),
                ("a".into(), Value::Number("-0".into())),
                ("b".into(), Value::Array(vec![Value::Bool(true), Value::Null])),
            ])
        );
    }

    #[test]
    fn deep_nesting_is_scanned_without_recursion() {
        let deep = format!("{}{}", "[".repeat(9_999), "]".repeat(9_999));
        assert!(matches!(next_value(deep.as_bytes(), true), Scan::Value { .. }));
        assert_eq!(parse(deep.as_bytes()).kind(), "array");
        let too_deep = format!("{}{}", "[".repeat(10_001), "]".repeat(10_001));
        assert!(matches!(next_value(too_deep.as_bytes(), true), Scan::Invalid(_)));
    }
}
