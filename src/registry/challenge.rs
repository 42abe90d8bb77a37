//! `WWW-Authenticate` challenges (RFC 7235 §4.1, as the distribution
//! spec's registries send them): `Bearer realm="…",service="…",scope="…"`
//! or `Basic realm="…"`, several challenges possibly in one header.
//! A pure parser of hostile text: bounded by the header's size, never
//! panics (a fuzz entry, [`parse_challenges`]).

/// Parameters kept per challenge: a registry sends three or four; more is
/// a hostile header, and its rest is ignored.
const MAX_PARAMS: usize = 16;

/// Challenges kept per header: a registry sends one or two.
const MAX_CHALLENGES: usize = 8;

/// One challenge: its scheme and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lower case (`bearer`, `basic`).
    pub scheme: String,
    /// `name=value` parameters, names in lower case, values unquoted.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// A parameter's value by its (lower-case) name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every challenge of one `WWW-Authenticate` value; text that is not a
/// challenge is skipped.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut lexer = Lexer {
        bytes: header.as_bytes(),
        at: 0,
    };
    let mut challenges: Vec<Challenge> = Vec::new();
    loop {
        lexer.skip(|b| b == b',' || is_space(b));
        let Some(scheme) = lexer.token() else {
            // Garbage where a scheme should be: step over it.
            if lexer.at >= lexer.bytes.len() {
                break;
            }
            lexer.at += 1;
            continue;
        };
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: Vec::new(),
        };
        lexer.params(&mut challenge.params);
        if challenges.len() < MAX_CHALLENGES {
            challenges.push(challenge);
        }
    }
    challenges
}

/// A cursor over the header's bytes.
struct Lexer<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Lexer<'_> {
    fn skip(&mut self, what: impl Fn(u8) -> bool) {
        while self.bytes.get(self.at).is_some_and(|&b| what(b)) {
            self.at += 1;
        }
    }

    /// An RFC 7230 token, if one starts here.
    fn token(&mut self) -> Option<String> {
        let start = self.at;
        self.skip(is_tchar);
        (self.at > start).then(|| String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned())
    }

    /// `name=value` pairs up to the next challenge (a token followed by a
    /// space, not `=`) or the end.
    fn params(&mut self, params: &mut Vec<(String, String)>) {
        loop {
            self.skip(|b| b == b',' || is_space(b));
            let start = self.at;
            let Some(name) = self.token() else {
                return;
            };
            self.skip(is_space);
            if self.bytes.get(self.at) != Some(&b'=') {
                // The next challenge's scheme: leave it for the caller.
                self.at = start;
                return;
            }
            self.at += 1;
            self.skip(is_space);
            let value = if self.bytes.get(self.at) == Some(&b'"') {
                self.quoted()
            } else {
                self.token().unwrap_or_default()
            };
            if params.len() < MAX_PARAMS {
                params.push((name.to_ascii_lowercase(), value));
            }
        }
    }

    /// A quoted string from its opening quote; `\x` stands for `x`. An
    /// unterminated one runs to the end.
    fn quoted(&mut self) -> String {
        self.at += 1;
        let mut value = Vec::new();
        while let Some(&b) = self.bytes.get(self.at) {
            self.at += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(&escaped) = self.bytes.get(self.at) {
                        value.push(escaped);
                        self.at += 1;
                    }
                }
                _ => value.push(b),
            }
        }
        String::from_utf8_lossy(&value).into_owned()
    }
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// RFC 7230's tchar, plus `/` for token68 values (base64 in a bare value).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(c: &Challenge) -> Vec<(&str, &str)> {
        c.params
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn a_bearer_challenge_as_docker_hub_sends_it() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/busybox:pull"));
    }

    #[test]
    fn quoted_commas_escapes_spaces_and_case() {
        let c = parse_challenges(
            r#"BEARER Realm = "https://a/t?x=1,2" , scope="repository:a/b:pull,push", error="say \"no\"", Service=bare"#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(
            params(&c[0]),
            vec![
                ("realm", "https://a/t?x=1,2"),
                ("scope", "repository:a/b:pull,push"),
                ("error", r#"say "no""#),
                ("service", "bare"),
            ]
        );
    }

    #[test]
    fn several_challenges_in_one_header() {
        let c = parse_challenges(r#"Basic realm="Registry", Bearer realm="https://t/x",service=s"#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].param("realm"), Some("Registry"));
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].param("service"), Some("s"));
        let bare = parse_challenges("Basic");
        assert_eq!(bare.len(), 1);
        assert!(bare[0].params.is_empty());
    }

    #[test]
    fn hostile_headers_end_without_panic() {
        for h in [
            "",
            ",,,",
            "=",
            "Bearer realm=\"unterminated",
            "Bearer realm=\"\\",
            "Bearer realm=",
            "Bearer ===",
            "\u{e9}t\u{e9} realm=\"x\"",
            "Bearer a=\"1\",b=2,,,c",
        ] {
            let _ = parse_challenges(h);
        }
        let many = "Bearer ".to_string() + &"a=1,".repeat(1000);
        assert_eq!(parse_challenges(&many)[0].params.len(), MAX_PARAMS);
        assert_eq!(
            parse_challenges(&"Basic, ".repeat(100)).len(),
            MAX_CHALLENGES
        );
        assert_eq!(
            parse_challenges("Bearer realm=\"unterminated")[0].param("realm"),
            Some("unterminated")
        );
    }
}
