//! Kubernetes resource quantities (`64Mi`, `1G`, `500m`) as the API parses them.

/// Parse a byte quantity such as `64Mi`, `1G`, `1e3` or `128974848` into bytes.
/// Fractions that are not whole bytes round up, as the API server does.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a quantity"))?;
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
    Ok((value * factor).ceil() as u64)
}

/// Millicores of a CPU quantity: `500m` is 500, `1` is 1000, `0.25` is 250;
/// fractions of a millicore round up, as the API server does.
pub fn parse_millicores(text: &str) -> Result<u64, String> {
    let text = text.trim();
    match text.strip_suffix('m') {
        Some(milli) => milli
            .parse::<f64>()
            .map(|v| v.ceil() as u64)
            .map_err(|_| format!("{text:?} is not a CPU quantity")),
        None => parse_bytes(text).map(|_| ()).and_then(|()| {
            text.parse::<f64>()
                .map(|v| (v * 1000.0).ceil() as u64)
                .map_err(|_| format!("{text:?} is not a CPU quantity"))
        }),
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
}
