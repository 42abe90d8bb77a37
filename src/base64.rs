//! Standard base64 (RFC 4648): decoding, as kubeconfig `*-data` fields and
//! Secret `data` are written, and encoding, for Basic authentication. Forty
//! lines instead of a dependency.

use std::fmt;

/// A byte outside the base64 alphabet, at its offset among the
/// non-whitespace characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidCharacter {
    /// The offending byte, as a character.
    pub character: char,
    /// Its index, whitespace not counted.
    pub offset: usize,
}

impl fmt::Display for InvalidCharacter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let InvalidCharacter { character, offset } = self;
        write!(f, "invalid base64 character {character:?} at {offset}")
    }
}

impl std::error::Error for InvalidCharacter {}

/// The bytes `text` encodes; whitespace and padding are skipped.
pub fn decode(text: &str) -> Result<Vec<u8>, InvalidCharacter> {
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
            _ => {
                return Err(InvalidCharacter {
                    character: c as char,
                    offset: i,
                })
            }
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

/// Standard base64 with padding (RFC 4648), as a Basic `Authorization`
/// header carries `user:password`.
pub fn encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_padded_and_unpadded_text() {
        assert_eq!(decode("aGVsbG8gd29ybGQ=").unwrap(), b"hello world");
        assert_eq!(decode("YQ==").unwrap(), b"a");
        assert_eq!(decode("YWI=\n").unwrap(), b"ab");
        assert_eq!(decode("").unwrap(), b"");
        let err = decode("a!b").unwrap_err();
        assert_eq!(
            err,
            InvalidCharacter {
                character: '!',
                offset: 1
            }
        );
        assert_eq!(err.to_string(), "invalid base64 character '!' at 1");
    }

    #[test]
    fn encodes_with_padding_and_round_trips() {
        assert_eq!(encode(b"hello world"), "aGVsbG8gd29ybGQ=");
        assert_eq!(encode(b"a"), "YQ==");
        assert_eq!(encode(b"ab"), "YWI=");
        assert_eq!(encode(b""), "");
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&all)).unwrap(), all);
    }
}
