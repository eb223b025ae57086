//! [`JaasConfig`]: the one login module of a `sasl.jaas.config` value.
//!
//! Kafka's format (`JaasConfig`, after Java's `ConfigFile`):
//! `<login module class> <flag> [<name>=<value>]... ;` where the flag is `required`,
//! `requisite`, `sufficient` or `optional`, and a value is a double-quoted string (`\` escapes
//! the next character) or a bare word. Kafka accepts exactly one login module in
//! `sasl.jaas.config`; so do we.

use std::collections::BTreeMap;

/// A parsed `sasl.jaas.config`. `Debug` hides the option values (they hold passwords).
#[derive(Clone, PartialEq, Eq)]
pub struct JaasConfig {
    pub login_module: String,
    pub flag: String,
    pub options: BTreeMap<String, String>,
}

impl std::fmt::Debug for JaasConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JaasConfig")
            .field("login_module", &self.login_module)
            .field("flag", &self.flag)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why a `sasl.jaas.config` value does not parse (no option value is ever quoted back).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JaasError {
    #[error("sasl.jaas.config: {0}")]
    Syntax(String),
}

impl JaasConfig {
    /// Kafka's PlainLoginModule.
    pub const PLAIN_LOGIN_MODULE: &'static str =
        "org.apache.kafka.common.security.plain.PlainLoginModule";
    /// Kafka's ScramLoginModule.
    pub const SCRAM_LOGIN_MODULE: &'static str =
        "org.apache.kafka.common.security.scram.ScramLoginModule";
    /// Kafka's OAuthBearerLoginModule.
    pub const OAUTHBEARER_LOGIN_MODULE: &'static str =
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";

    pub fn parse(text: &str) -> Result<JaasConfig, JaasError> {
        let err = |m: &str| JaasError::Syntax(m.to_owned());
        let mut tokens = Tokenizer {
            chars: text.chars().peekable(),
        };
        let login_module = match tokens.next()? {
            Some(Token::Word(w)) => w,
            _ => return Err(err("expected a login module class name")),
        };
        let flag =
            match tokens.next()? {
                Some(Token::Word(w))
                    if matches!(
                        w.to_ascii_lowercase().as_str(),
                        "required" | "requisite" | "sufficient" | "optional"
                    ) =>
                {
                    w.to_ascii_lowercase()
                }
                _ => return Err(err(
                    "expected a control flag (required, requisite, sufficient, optional) after \
                     the login module",
                )),
            };
        let mut options = BTreeMap::new();
        loop {
            match tokens.next()? {
                Some(Token::Semicolon) => break,
                Some(Token::Word(name)) => {
                    if tokens.next()? != Some(Token::Equals) {
                        return Err(JaasError::Syntax(format!("expected = after option {name}")));
                    }
                    let value = match tokens.next()? {
                        Some(Token::Word(v)) | Some(Token::Quoted(v)) => v,
                        _ => {
                            return Err(JaasError::Syntax(format!(
                                "expected a value for option {name}"
                            )))
                        }
                    };
                    options.insert(name, value);
                }
                _ => return Err(err("expected an option name=value or the closing ;")),
            }
        }
        if tokens.next()?.is_some() {
            return Err(err(
                "exactly one login module is allowed (text follows the first ;)",
            ));
        }
        Ok(JaasConfig {
            login_module,
            flag,
            options,
        })
    }

    pub fn option(&self, name: &str) -> Option<&str> {
        self.options.get(name).map(String::as_str)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Equals,
    Semicolon,
}

struct Tokenizer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
}

impl Tokenizer<'_> {
    fn next(&mut self) -> Result<Option<Token>, JaasError> {
        while self.chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(c) = self.chars.next() else {
            return Ok(None);
        };
        Ok(Some(match c {
            '=' => Token::Equals,
            ';' => Token::Semicolon,
            '"' | '\'' => {
                let quote = c;
                let mut s = String::new();
                loop {
                    match self.chars.next() {
                        None => return Err(JaasError::Syntax("unterminated quoted value".into())),
                        Some('\\') => match self.chars.next() {
                            Some(e) => s.push(e),
                            None => {
                                return Err(JaasError::Syntax("unterminated quoted value".into()))
                            }
                        },
                        Some(q) if q == quote => break,
                        Some(o) => s.push(o),
                    }
                }
                Token::Quoted(s)
            }
            c => {
                let mut s = String::from(c);
                while let Some(n) = self
                    .chars
                    .next_if(|n| !n.is_whitespace() && !matches!(n, '=' | ';' | '"' | '\''))
                {
                    s.push(n);
                }
                Token::Word(s)
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafkas_plain_example() {
        let j = JaasConfig::parse(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required
               username="admin" password="admin-secret"
               user_admin="admin-secret" user_alice="al\"ice";"#,
        )
        .expect("valid");
        assert_eq!(j.login_module, JaasConfig::PLAIN_LOGIN_MODULE);
        assert_eq!(j.flag, "required");
        assert_eq!(j.option("username"), Some("admin"));
        assert_eq!(j.option("user_alice"), Some("al\"ice"));
        assert_eq!(j.options.len(), 4);
        // Debug never shows values.
        assert!(!format!("{j:?}").contains("admin-secret"));
        let j = JaasConfig::parse("a.B optional unsecuredLoginStringClaim_sub=thePrincipal ;")
            .expect("bare words");
        assert_eq!(
            j.option("unsecuredLoginStringClaim_sub"),
            Some("thePrincipal")
        );
    }

    #[test]
    fn refuses_what_kafka_refuses() {
        for bad in [
            "",
            "a.B",
            "a.B required",
            "a.B maybe;",
            "a.B required x;",
            "a.B required x=;",
            "a.B required x=\"open;",
            "a.B required; c.D required;",
            "a.B required x=1",
        ] {
            assert!(JaasConfig::parse(bad).is_err(), "{bad:?}");
        }
    }
}
