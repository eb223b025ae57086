//! [`SslPrincipalMapper`]: Kafka's `ssl.principal.mapping.rules`, which turn a client
//! certificate's subject (RFC 2253) into a principal name.
//!
//! The rules, in order, separated by commas (or newlines): `DEFAULT` (the subject unchanged) or
//! `RULE:pattern/replacement/` with an optional `L` or `U` after the last slash (lower- or
//! upper-case the result). A rule applies when its pattern matches the whole subject; the result
//! is the subject with every match of the pattern replaced by the replacement (`$1` names a
//! group). The first rule that applies decides; when none does, the connection has no principal
//! and is refused. Patterns are Rust regular expressions, which agree with Java's for what such
//! rules use (groups, classes, lazy quantifiers, anchors); one that does not compile is refused
//! at start. `\/` in a pattern or replacement is a literal slash.

use regex::Regex;

/// One parsed rule.
#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace {
        /// The pattern anchored at both ends: does the rule apply?
        whole: Regex,
        /// The pattern as written, for the replacement.
        pattern: Regex,
        replacement: String,
        case: Case,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

/// `ssl.principal.mapping.rules`, parsed.
#[derive(Debug, Clone)]
pub struct SslPrincipalMapper {
    rules: Vec<Rule>,
    source: String,
}

impl Default for SslPrincipalMapper {
    fn default() -> Self {
        SslPrincipalMapper {
            rules: vec![Rule::Default],
            source: "DEFAULT".into(),
        }
    }
}

impl SslPrincipalMapper {
    /// Parses the rules; the error says which part is wrong.
    pub fn parse(rules: &str) -> Result<SslPrincipalMapper, String> {
        let mut out = Vec::new();
        let mut rest = rules.trim_start();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                out.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) = until_slash(after)
                    .ok_or_else(|| format!("rule {rest:?}: expected RULE:pattern/replacement/"))?;
                let (replacement, after) = until_slash(after)
                    .ok_or_else(|| format!("rule {rest:?}: expected RULE:pattern/replacement/"))?;
                let (case, after) = match after.chars().next() {
                    Some('L') => (Case::Lower, &after[1..]),
                    Some('U') => (Case::Upper, &after[1..]),
                    _ => (Case::Keep, after),
                };
                let compile =
                    |p: &str| Regex::new(p).map_err(|e| format!("rule pattern {pattern:?}: {e}"));
                out.push(Rule::Replace {
                    whole: compile(&format!("^(?:{pattern})$"))?,
                    pattern: compile(&pattern)?,
                    replacement: java_replacement(&replacement),
                    case,
                });
                rest = after;
            } else {
                return Err(format!(
                    "invalid rule {rest:?}: expected DEFAULT or RULE:..."
                ));
            }
            rest = rest.trim_start_matches([' ', '\t', '\r']);
            match rest.chars().next() {
                None => {}
                Some(',') | Some('\n') => rest = rest[1..].trim_start(),
                Some(_) => return Err(format!("invalid rule text {rest:?} after a rule")),
            }
        }
        if out.is_empty() {
            out.push(Rule::Default);
        }
        Ok(SslPrincipalMapper {
            rules: out,
            source: rules.to_owned(),
        })
    }

    /// The principal name for `subject`; `None` when no rule applies.
    pub fn name(&self, subject: &str) -> Option<String> {
        for rule in &self.rules {
            match rule {
                Rule::Default => return Some(subject.to_owned()),
                Rule::Replace {
                    whole,
                    pattern,
                    replacement,
                    case,
                } => {
                    if !whole.is_match(subject) {
                        continue;
                    }
                    let mapped = pattern.replace_all(subject, replacement.as_str());
                    return Some(match case {
                        Case::Keep => mapped.into_owned(),
                        Case::Lower => mapped.to_lowercase(),
                        Case::Upper => mapped.to_uppercase(),
                    });
                }
            }
        }
        None
    }

    /// The rules as configured.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// A Java replacement string (`$1` a group, `\$` a literal dollar) in Rust's syntax (`${1}`,
/// `$$`), so that `$1_x` means group 1 followed by `_x` as in Java.
fn java_replacement(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {}
            },
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The text up to the next unescaped `/` (with `\/` made a plain `/`) and what follows it.
fn until_slash(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '/' => return Some((out, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '/')) => out.push('/'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_documented_rules() {
        // Kafka's documentation examples.
        let m = SslPrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,\
             RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,\
             RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,\
             DEFAULT",
        )
        .expect("valid");
        assert_eq!(
            m.name("CN=kafka-server1,OU=ServiceUsers,O=Org,C=US")
                .as_deref(),
            Some("kafka-server1")
        );
        assert_eq!(
            m.name("CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Palo Alto,ST=CA,C=US")
                .as_deref(),
            Some("duke@javasoft")
        );
        assert_eq!(m.name("cn=Alice,dc=example").as_deref(), Some("alice"));
        assert_eq!(m.name("O=NoCn").as_deref(), Some("O=NoCn"));
        let upper = SslPrincipalMapper::parse("RULE:^CN=([^,]*).*$/$1/U").expect("valid");
        assert_eq!(upper.name("CN=bob,O=x").as_deref(), Some("BOB"));
        // No DEFAULT: a subject no rule matches has no principal.
        assert_eq!(upper.name("O=x"), None);
        assert_eq!(
            SslPrincipalMapper::default().name("CN=a").as_deref(),
            Some("CN=a")
        );
        // Escaped slashes and newline separators.
        let m = SslPrincipalMapper::parse("RULE:^CN=a\\/b$/x\\/y/\nDEFAULT").expect("valid");
        assert_eq!(m.name("CN=a/b").as_deref(), Some("x/y"));
        // Java's group reference: `$1_x` is group 1, then `_x`.
        let m = SslPrincipalMapper::parse("RULE:^CN=([^,]*)$/$1_x/").expect("valid");
        assert_eq!(m.name("CN=bob").as_deref(), Some("bob_x"));
    }

    #[test]
    fn malformed_rules_are_refused() {
        for bad in [
            "RULE:abc",
            "RULE:abc/def",
            "NOPE",
            "DEFAULT junk",
            "RULE:([/x/",
        ] {
            assert!(SslPrincipalMapper::parse(bad).is_err(), "{bad:?}");
        }
    }
}
