//! Java `.properties` syntax, as `java.util.Properties.load` reads it, so an operator's Kafka
//! `server.properties` means the same thing here:
//!
//! - `key=value`, `key: value` and `key value` (the key ends at the first unescaped `=`, `:` or
//!   whitespace; whitespace around the separator is skipped);
//! - lines whose first non-blank character is `#` or `!` are comments (a comment never
//!   continues onto the next line);
//! - a line ending in an odd number of backslashes continues on the next one, whose leading
//!   whitespace is dropped;
//! - escapes `\t`, `\n`, `\r`, `\f`, `\uXXXX`, and `\` before any other character stands for
//!   that character (so `\=`, `\:`, `\ ` and `\\` work in keys);
//! - `\n`, `\r` and `\r\n` all end a line; a later duplicate key replaces an earlier one.
//!
//! Trailing whitespace of a value is kept (as Java does); typed configuration values are
//! trimmed when they are parsed.

/// One `key = value` entry with the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The unescaped key.
    pub key: String,
    /// The unescaped value.
    pub value: String,
    /// The line the entry starts on.
    pub line: usize,
}

/// A syntax error (only a malformed `\uXXXX` escape can fail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// The 1-based line of the entry.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\x0c'
}

/// Split `text` into natural lines (terminated by `\n`, `\r` or `\r\n`).
fn natural_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                i += 1;
                start = i;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                i += 1;
                if i < bytes.len() && bytes[i] == b'\n' {
                    i += 1;
                }
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < bytes.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// Parse properties text into its entries, in file order (duplicates included).
pub fn parse(text: &str) -> Result<Vec<Entry>, SyntaxError> {
    let lines = natural_lines(text);
    let mut entries = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let first = lines[i].trim_start_matches(is_blank);
        let start_line = i + 1;
        i += 1;
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        // Join continuation lines into one logical line.
        let mut logical = String::new();
        let mut current = first;
        loop {
            let trailing = current.chars().rev().take_while(|&c| c == '\\').count();
            if trailing % 2 == 1 {
                logical.push_str(&current[..current.len() - 1]);
                if i < lines.len() {
                    current = lines[i].trim_start_matches(is_blank);
                    i += 1;
                    continue;
                }
                break;
            }
            logical.push_str(current);
            break;
        }
        let (raw_key, raw_value) = split_key_value(&logical);
        let key = unescape(raw_key).map_err(|reason| SyntaxError {
            line: start_line,
            reason,
        })?;
        let value = unescape(raw_value).map_err(|reason| SyntaxError {
            line: start_line,
            reason,
        })?;
        entries.push(Entry {
            key,
            value,
            line: start_line,
        });
    }
    Ok(entries)
}

/// Split a logical line into its raw (still escaped) key and value.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut escaped = false;
    let mut key_end = line.len();
    let mut value_start = line.len();
    let mut has_separator = false;
    for (pos, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            continue;
        }
        if c == '=' || c == ':' {
            key_end = pos;
            value_start = pos + 1;
            has_separator = true;
            break;
        }
        if is_blank(c) {
            key_end = pos;
            value_start = pos + c.len_utf8();
            break;
        }
    }
    let key = &line[..key_end];
    let mut rest = line[value_start..].trim_start_matches(is_blank);
    if !has_separator {
        if let Some(stripped) = rest.strip_prefix(['=', ':']) {
            rest = stripped.trim_start_matches(is_blank);
        }
    }
    (key, rest)
}

/// Resolve Java escapes.
fn unescape(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = if hex.len() == 4 {
                    u32::from_str_radix(&hex, 16).ok()
                } else {
                    None
                };
                match code {
                    Some(code) => {
                        // A lone surrogate half cannot be a Rust char: keep U+FFFD, as a
                        // lossy decoder would.
                        out.push(char::from_u32(code).unwrap_or('\u{fffd}'))
                    }
                    None => return Err(format!("Malformed \\uxxxx encoding: \\u{hex}")),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, String)> {
        parse(text)
            .expect("parses")
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect()
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn config_properties_separators_and_comments() {
        let text = "# comment\n! also comment\n\na=1\nb : 2\nc 3\n  d=  4\ne\nf=\n g = x y \n";
        assert_eq!(
            kv(text),
            vec![
                pair("a", "1"),
                pair("b", "2"),
                pair("c", "3"),
                pair("d", "4"),
                pair("e", ""),
                pair("f", ""),
                pair("g", "x y "),
            ]
        );
    }

    #[test]
    fn config_properties_continuations_and_escapes() {
        let text = "list=a,\\\n    b,\\\r\n  c\nkey\\ with\\=eq=v\\tt\\u0041\\\\\ntrail=x\\\\\n# c \\\nnext=1\n";
        assert_eq!(
            kv(text),
            vec![
                pair("list", "a,b,c"),
                pair("key with=eq", "v\ttA\\"),
                pair("trail", "x\\"),
                pair("next", "1"),
            ]
        );
    }

    #[test]
    fn config_properties_line_numbers_and_bad_unicode() {
        let entries = parse("\r\n\ra=1\nb=2").expect("parses");
        assert_eq!(entries[0].line, 3);
        assert_eq!(entries[1].line, 4);
        let err = parse("x=1\ny=\\u12G4\n").expect_err("an error");
        assert_eq!(err.line, 2);
        assert!(err.reason.contains("Malformed"));
    }

    #[test]
    fn config_properties_continuation_at_eof() {
        assert_eq!(kv("a=b\\"), vec![pair("a", "b")]);
    }
}
