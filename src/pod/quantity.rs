//! Kubernetes resource quantities (`64Mi`, `1G`, `500m`) as the API parses them.
//!
//! A quantity is at most `i64::MAX` in its unit, as Kubernetes converts
//! quantities to int64: `cpu: 1e300` or `memory: 99999999999999999999Ei` is
//! an error, never a saturated or wrapped number, so that the sums and
//! products of resources.rs stay within u64.

/// The first value refused, 2^63: f64 cannot hold `i64::MAX` itself.
const TOO_LARGE: f64 = 9_223_372_036_854_775_808.0;

/// Parse a byte quantity such as `64Mi`, `1G`, `1e3` or `128974848` into bytes.
/// Fractions that are not whole bytes round up, as the API server does.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let value = decimal(number).ok_or_else(|| format!("{text:?} is not a quantity"))?;
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
                .map_err(|_| format!("{text:?} is not a quantity"))?;
            10f64.powi(exp)
        }
        _ => return Err(format!("{text:?} has an unknown suffix {suffix:?}")),
    };
    whole(value * factor, text)
}

/// Millicores of a CPU quantity: `500m` is 500, `1` is 1000, `0.25` is 250;
/// fractions of a millicore round up, as the API server does.
pub fn parse_millicores(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let not_cpu = || format!("{text:?} is not a CPU quantity");
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
pub fn millicores_of(value: &serde_json::Value) -> Result<u64, String> {
    match value {
        serde_json::Value::String(s) => parse_millicores(s),
        serde_json::Value::Number(n) => parse_millicores(&n.to_string()),
        other => Err(format!("{other} is not a quantity")),
    }
}

/// A quantity as it appears in YAML: a string (`64Mi`) or a bare number.
pub fn bytes_of(value: &serde_json::Value) -> Result<u64, String> {
    match value {
        serde_json::Value::String(s) => parse_bytes(s),
        serde_json::Value::Number(n) => parse_bytes(&n.to_string()),
        other => Err(format!("{other} is not a quantity")),
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
fn whole(amount: f64, text: &str) -> Result<u64, String> {
    if amount.is_nan() || amount < 0.0 {
        return Err(format!("{text:?} is not a quantity"));
    }
    let amount = amount.ceil();
    if amount >= TOO_LARGE {
        return Err(format!("{text:?} is too large (at most 2^63-1)"));
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
        assert!(parse_bytes("12xyz").is_err());
        assert!(parse_bytes("Mi").is_err());
    }

    #[test]
    fn cpu_quantities_in_millicores() {
        assert_eq!(parse_millicores("500m"), Ok(500));
        assert_eq!(parse_millicores("1"), Ok(1000));
        assert_eq!(parse_millicores("0.25"), Ok(250));
        assert_eq!(parse_millicores("2.0005"), Ok(2001));
        assert!(parse_millicores("1Gi").is_err());
        assert!(parse_millicores("x").is_err());
    }

    #[test]
    fn huge_and_odd_quantities_are_errors() {
        let too_large = |t: &str| Err(format!("{t:?} is too large (at most 2^63-1)"));
        assert_eq!(parse_millicores("1e300"), too_large("1e300"));
        assert_eq!(
            parse_millicores("1e300m"),
            Err("\"1e300m\" is not a CPU quantity".into())
        );
        let t = "99999999999999999999Ei";
        assert_eq!(parse_bytes(t), too_large(t));
        assert_eq!(parse_bytes("1e999999"), too_large("1e999999"));
        assert_eq!(parse_bytes("8Ei"), too_large("8Ei"));
        assert_eq!(parse_bytes("7Ei"), Ok(7 << 60));
        assert_eq!(parse_millicores("4503599627370496m"), Ok(1 << 52));
        let not_cpu = |t: &str| Err(format!("{t:?} is not a CPU quantity"));
        for t in ["infm", "NaNm", "-5m", "1.2.3m", ".m"] {
            assert_eq!(parse_millicores(t), not_cpu(t), "{t}");
        }
        assert_eq!(
            parse_bytes("1..2Ki"),
            Err("\"1..2Ki\" is not a quantity".into())
        );
        let json = serde_json::json!(1e300);
        assert_eq!(bytes_of(&json), too_large("1e+300"));
    }
}
