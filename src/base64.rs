//! Standard base64 decoding (RFC 4648), as kubeconfig `*-data` fields and
//! Secret `data` are written. Twenty lines instead of a dependency.

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
}
