//! JSON from outside, bounded in the number of values. serde_json stops at
//! 128 levels as it reads, but not at a count: a flat 16 MiB `[0,0,...]`
//! is 8 million values, and building its `Value` took 524 MB. So every JSON
//! text from outside (manifests, URL bodies, API answers and watch events)
//! first passes [`check`], one pass over the bytes that counts values and
//! holds nothing, with the same cap as YAML ([`crate::yaml::MAX_NODES`]).

use crate::yaml::MAX_NODES;
use std::fmt;

/// Why a JSON text is refused.
#[derive(Debug)]
pub enum JsonError {
    /// More than [`MAX_NODES`] values; the first one beyond starts near
    /// this byte offset.
    TooManyValues {
        /// 0-based.
        offset: usize,
    },
    /// What serde_json says: syntax or type errors.
    Invalid(serde_json::Error),
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::TooManyValues { offset } => {
                write!(f, "byte {offset}: more than {MAX_NODES} values")
            }
            JsonError::Invalid(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for JsonError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JsonError::TooManyValues { .. } => None,
            JsonError::Invalid(e) => Some(e),
        }
    }
}

/// Deserialize `bytes` once [`check`] passed them.
pub fn from_slice<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    check(bytes)?;
    serde_json::from_slice(bytes).map_err(JsonError::Invalid)
}

/// Refuse a text of more than [`MAX_NODES`] values. Outside strings, every
/// value but a collection's first follows a `,` and every collection opens
/// with `[` or `{`, so their count plus one is at least the number of
/// values (an object's keys are not counted: each goes with its value).
/// Syntax errors pass: serde_json stops at the same place and names them.
pub fn check(bytes: &[u8]) -> Result<(), JsonError> {
    let mut values: u64 = 1;
    let mut in_string = false;
    let mut escaped = false;
    for (offset, &b) in bytes.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b',' | b'[' | b'{' => {
                values += 1;
                if values > MAX_NODES {
                    return Err(JsonError::TooManyValues { offset });
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{"a":"x,[{\"","b":[0,0,...]}`: the object, its two values and the
    /// list's items; the commas and brackets inside the string do not count.
    fn object(items: u64) -> String {
        let list = vec!["0"; items as usize].join(",");
        format!(r#"{{"a":"x,[{{\"","b":[{list}]}}"#)
    }

    #[test]
    fn a_text_of_more_values_than_the_cap_is_refused() {
        // Counted: 1, the object's `{`, its `,`, the list's `[`, the
        // items' commas.
        let at_cap = object(MAX_NODES - 3);
        assert_eq!(check(at_cap.as_bytes()).ok(), Some(()));
        let value: serde_json::Value = from_slice(at_cap.as_bytes()).unwrap();
        assert_eq!(value["a"], "x,[{\"");
        let beyond = object(MAX_NODES - 2);
        match check(beyond.as_bytes()) {
            Err(JsonError::TooManyValues { offset }) => {
                assert_eq!(offset, beyond.len() - 4, "the last comma")
            }
            other => panic!("{other:?}"),
        }
        let err = from_slice::<serde_json::Value>(beyond.as_bytes()).unwrap_err();
        assert!(
            err.to_string().ends_with("more than 200000 values"),
            "{err}"
        );
    }

    #[test]
    fn syntax_errors_are_left_to_serde_json() {
        assert_eq!(check(b"{\"a\": [\"unterminated").ok(), Some(()));
        match from_slice::<serde_json::Value>(b"{\"a\": [\"unterminated") {
            Err(JsonError::Invalid(e)) => assert!(e.is_eof(), "{e}"),
            other => panic!("{other:?}"),
        }
    }
}
