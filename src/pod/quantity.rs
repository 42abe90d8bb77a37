//! Kubernetes resource quantities (`64Mi`, `1G`, `500m`) as the API parses them.
//!
//! A quantity is at most `i64::MAX` in its unit, as Kubernetes converts
//! quantities to int64: `cpu: 1e300` or `memory: 99999999999999999999Ei` is
//! an error, never a saturated or wrapped number, so that the sums and
//! products of resources.rs stay within u64.

use std::fmt;

/// The first value refused, 2^63: f64 cannot hold `i64::MAX` itself.
const TOO_LARGE: f64 = 9_223_372_036_854_775_808.0;

/// Why a text or YAML value is not a quantity; each holds the text as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuantityError {
    /// Not digits with an optional point and suffix, or negative.
    Malformed(String),
    /// A number with a suffix the API does not know (`12xyz`).
    UnknownSuffix {
        /// The whole quantity.
        text: String,
        /// What follows the number.
        suffix: String,
    },
    /// A quantity that is not one of CPU (`1Gi`, `1e300m`).
    NotCpu(String),
    /// At least 2^63 in its unit.
    TooLarge(String),
    /// A YAML value that is neither a string nor a number, as JSON text.
    NotScalar(String),
}

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuantityError::Malformed(text) => write!(f, "{text:?} is not a quantity"),
            QuantityError::UnknownSuffix { text, suffix } => {
                write!(f, "{text:?} has an unknown suffix {suffix:?}")
            }
            QuantityError::NotCpu(text) => write!(f, "{text:?} is not a CPU quantity"),
            QuantityError::TooLarge(text) => write!(f, "{text:?} is too large (at most 2^63-1)"),
            QuantityError::NotScalar(json) => write!(f, "{json} is not a quantity"),
        }
    }
}

impl std::error::Error for QuantityError {}

/// Parse a byte quantity such as `64Mi`, `1G`, `1e3` or `128974848` into bytes.
/// Fractions that are not whole bytes round up, as the API server does.
pub fn parse_bytes(text: &str) -> Result<u64, QuantityError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let value = decimal(number).ok_or_else(|| QuantityError::Malformed(text.to_string()))?;
    let factor: f64 = match suffix {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "m" => 1e-3,
        s if s.starts_with('e') || s.starts_with('E') => {
            let exp: i32 = s[1..]
                .parse()
                .map_err(|_| QuantityError::Malformed(text.to_string()))?;
            10f64.powi(exp)
        }
        _ => {
            return Err(QuantityError::UnknownSuffix {
                text: text.to_string(),
                suffix: suffix.to_string(),
            })
        }
    };
    whole(value * factor, text)
}

/// Millicores of a CPU quantity: `500m` is 500, `1` is 1000, `0.25` is 250;
/// fractions of a millicore round up, as the API server does.
pub fn parse_millicores(text: &str) -> Result<u64, QuantityError> {
    let text = text.trim();
    let not_cpu = || QuantityError::NotCpu(text.to_string());
    match text.strip_suffix('m') {
        Some(milli) => whole(decimal(milli).ok_or_else(not_cpu)?, text),
        None => {
            parse_bytes(text)?;
            let cores: f64 = text.parse().map_err(|_| not_cpu())?;
            whole(cores * 1000.0, text)
        }
    }
}

/// A CPU quantity as it appears in YAML.
pub fn millicores_of(value: &serde_json::Value) -> Result<u64, QuantityError> {
    match value {
        serde_json::Value::String(s) => parse_millicores(s),
        serde_json::Value::Number(n) => parse_millicores(&n.to_string()),
        other => Err(QuantityError::NotScalar(other.to_string())),
    }
}

/// A quantity as it appears in YAML: a string (`64Mi`) or a bare number.
pub fn bytes_of(value: &serde_json::Value) -> Result<u64, QuantityError> {
    match value {
        serde_json::Value::String(s) => parse_bytes(s),
        serde_json::Value::Number(n) => parse_bytes(&n.to_string()),
        other => Err(QuantityError::NotScalar(other.to_string())),
    }
}

/// Digits with at most one point (no sign, no `inf` or `NaN`).
fn decimal(number: &str) -> Option<f64> {
    let digits = number.bytes().filter(u8::is_ascii_digit).count();
    let points = number.bytes().filter(|b| *b == b'.').count();
    if digits == 0 || points > 1 || digits + points != number.len() {
        return None;
    }
    number.parse().ok()
}

/// A non-negative amount rounded up, if it is below 2^63.
fn whole(amount: f64, text: &str) -> Result<u64, QuantityError> {
    if amount.is_nan() || amount < 0.0 {
        return Err(QuantityError::Malformed(text.to_string()));
    }
    let amount = amount.ceil();
    if amount >= TOO_LARGE {
        return Err(QuantityError::TooLarge(text.to_string()));
    }
    Ok(amount as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_decimal_suffixes() {
        assert_eq!(parse_bytes("64Mi"), Ok(64 << 20));
        assert_eq!(parse_bytes("1G"), Ok(1_000_000_000));
        assert_eq!(parse_bytes("1e3"), Ok(1000));
        assert_eq!(parse_bytes("1.5Ki"), Ok(1536));
        assert_eq!(parse_bytes("128974848"), Ok(128974848));
        assert_eq!(
            parse_bytes("12xyz"),
            Err(QuantityError::UnknownSuffix {
                text: "12xyz".into(),
                suffix: "xyz".into()
            })
        );
        assert_eq!(
            parse_bytes("Mi"),
            Err(QuantityError::Malformed("Mi".into()))
        );
    }

    #[test]
    fn cpu_quantities_in_millicores() {
        assert_eq!(parse_millicores("500m"), Ok(500));
        assert_eq!(parse_millicores("1"), Ok(1000));
        assert_eq!(parse_millicores("0.25"), Ok(250));
        assert_eq!(parse_millicores("2.0005"), Ok(2001));
        assert_eq!(
            parse_millicores("1Gi"),
            Err(QuantityError::NotCpu("1Gi".into()))
        );
        assert_eq!(
            parse_millicores("x"),
            Err(QuantityError::Malformed("x".into()))
        );
    }

    #[test]
    fn huge_and_odd_quantities_are_errors() {
        let too_large = |t: &str| Err(QuantityError::TooLarge(t.into()));
        assert_eq!(parse_millicores("1e300"), too_large("1e300"));
        assert_eq!(
            parse_millicores("1e300m"),
            Err(QuantityError::NotCpu("1e300m".into()))
        );
        let t = "99999999999999999999Ei";
        assert_eq!(parse_bytes(t), too_large(t));
        assert_eq!(parse_bytes("1e999999"), too_large("1e999999"));
        assert_eq!(parse_bytes("8Ei"), too_large("8Ei"));
        assert_eq!(parse_bytes("7Ei"), Ok(7 << 60));
        assert_eq!(parse_millicores("4503599627370496m"), Ok(1 << 52));
        let not_cpu = |t: &str| Err(QuantityError::NotCpu(t.into()));
        for t in ["infm", "NaNm", "-5m", "1.2.3m", ".m"] {
            assert_eq!(parse_millicores(t), not_cpu(t), "{t}");
        }
        assert_eq!(
            parse_bytes("1..2Ki"),
            Err(QuantityError::Malformed("1..2Ki".into()))
        );
        let json = serde_json::json!(1e300);
        assert_eq!(bytes_of(&json), too_large("1e+300"));
        assert_eq!(
            bytes_of(&serde_json::json!(true)),
            Err(QuantityError::NotScalar("true".into()))
        );
    }

    /// The texts the CLI prints and the integration tests match.
    #[test]
    fn messages_are_the_api_servers() {
        let text = |r: Result<u64, QuantityError>| r.unwrap_err().to_string();
        assert_eq!(
            text(parse_bytes("1e300")),
            "\"1e300\" is too large (at most 2^63-1)"
        );
        assert_eq!(
            text(parse_bytes("12xyz")),
            "\"12xyz\" has an unknown suffix \"xyz\""
        );
        assert_eq!(
            text(parse_millicores("1Gi")),
            "\"1Gi\" is not a CPU quantity"
        );
        assert_eq!(text(parse_bytes("x")), "\"x\" is not a quantity");
        assert_eq!(
            text(bytes_of(&serde_json::json!(true))),
            "true is not a quantity"
        );
    }
}
