//! Standard base64 decoding (RFC 4648), as kubeconfig `*-data` fields and
//! Secret `data` are written. Twenty lines instead of a dependency.

pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for (i, c) in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace())
        .enumerate()
    {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => continue,
            _ => return Err(format!("invalid base64 character {:?} at {i}", c as char)),
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_padded_and_unpadded_text() {
        assert_eq!(super::decode("aGVsbG8gd29ybGQ=").unwrap(), b"hello world");
        assert_eq!(super::decode("YQ==").unwrap(), b"a");
        assert_eq!(super::decode("YWI=\n").unwrap(), b"ab");
        assert_eq!(super::decode("").unwrap(), b"");
        assert!(super::decode("a!b").is_err());
    }
}
