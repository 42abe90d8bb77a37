//! A small kubectl-style flag parser: `--flag value`, `--flag=value`,
//! `-o json`, `-ojson`, boolean flags, positional arguments. Every command
//! (the client commands and `run`) parses its arguments here.

use std::collections::BTreeMap;
use std::fmt;

/// The arguments of one command, sorted out.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The arguments that are not flags, in order.
    pub positional: Vec<String>,
    /// Valued flags by long name; the last one given wins.
    values: BTreeMap<String, String>,
    /// The boolean flags given, by long name.
    switches: Vec<String>,
}

impl Parsed {
    /// The value of the flag `name` (its long name), if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether the boolean flag `name` (its long name) was given.
    pub fn switch(&self, name: &str) -> bool {
        self.switches.iter().any(|s| s == name)
    }
}

/// `valued` and `switches` list long names; `short` maps one-letter flags to them.
pub fn parse(
    args: &[String],
    valued: &[&str],
    switches: &[&str],
    short: &[(char, &str)],
) -> Result<Parsed, ArgsError> {
    let mut out = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let (name, inline) = if let Some(long) = arg.strip_prefix("--") {
            match long.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (long.to_string(), None),
            }
        } else if let Some(rest) = arg.strip_prefix('-').filter(|r| !r.is_empty()) {
            let letter = rest.chars().next().unwrap_or('-');
            let long = short
                .iter()
                .find(|(c, _)| *c == letter)
                .map(|(_, l)| l.to_string())
                .ok_or_else(|| ArgsError::UnknownFlag {
                    flag: format!("-{letter}"),
                })?;
            let tail = rest[letter.len_utf8()..].trim_start_matches('=');
            (long, (!tail.is_empty()).then(|| tail.to_string()))
        } else {
            out.positional.push(arg.clone());
            continue;
        };
        if switches.contains(&name.as_str()) {
            if inline.as_deref().is_some_and(|v| v != "true") {
                continue;
            }
            out.switches.push(name);
        } else if valued.contains(&name.as_str()) {
            let value = match inline {
                Some(v) => v,
                None => {
                    let v = args.get(i).ok_or_else(|| ArgsError::MissingValue {
                        flag: format!("--{name}"),
                    })?;
                    i += 1;
                    v.clone()
                }
            };
            out.values.insert(name, value);
        } else {
            return Err(ArgsError::UnknownFlag {
                flag: format!("--{name}"),
            });
        }
    }
    Ok(out)
}

/// Why the arguments do not parse; `flag` as written: `-x` or `--name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgsError {
    /// A flag the command does not take.
    UnknownFlag { flag: String },
    /// A flag that takes a value came last, without one.
    MissingValue { flag: String },
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgsError::UnknownFlag { flag } => write!(f, "unknown flag: {flag}"),
            ArgsError::MissingValue { flag } => write!(f, "flag needs an argument: {flag}"),
        }
    }
}

impl std::error::Error for ArgsError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn kubectl_habits() {
        let p = parse(
            &argv("pods web -ojson --run-dir=/r -p -c side"),
            &["output", "run-dir", "container"],
            &["previous"],
            &[('o', "output"), ('c', "container"), ('p', "previous")],
        )
        .unwrap();
        assert_eq!(p.positional, ["pods", "web"]);
        assert_eq!(p.value("output"), Some("json"));
        assert_eq!(p.value("run-dir"), Some("/r"));
        assert_eq!(p.value("container"), Some("side"));
        assert!(p.switch("previous"));
        let unknown = parse(&argv("--nope"), &[], &[], &[]).unwrap_err();
        assert_eq!(
            unknown,
            ArgsError::UnknownFlag {
                flag: "--nope".into()
            }
        );
        assert_eq!(unknown.to_string(), "unknown flag: --nope");
        let short = parse(&argv("-x"), &[], &[], &[]).unwrap_err();
        assert_eq!(short.to_string(), "unknown flag: -x");
        let missing = parse(&argv("--output"), &["output"], &[], &[]).unwrap_err();
        assert_eq!(
            missing,
            ArgsError::MissingValue {
                flag: "--output".into()
            }
        );
        assert_eq!(missing.to_string(), "flag needs an argument: --output");
    }
}
