//! Content digests (image-spec `descriptor.md`, "Digests"): `sha256:<hex>`
//! and `sha512:<hex>`, validated before one becomes a file name under
//! `blobs/<algorithm>/<hex>` or `ingest/`, and the hasher that checks them.

use sha2::Digest as _;
use std::fmt;

/// The most characters of a rejected digest quoted in a message: the text
/// comes from registries and archives, and may be of any length.
const QUOTE_MAX: usize = 80;

/// A digest algorithm the store accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The name in digests and in the layout's `blobs/` directory.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Hex digits of an encoded digest of this algorithm.
    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A validated digest: a known algorithm and exactly its number of
/// lowercase hex digits, so [`Digest::hex`] is safe as a file name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

/// Why a text is not a digest the store accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestError {
    /// No `algorithm:` prefix.
    NoAlgorithm { digest: String },
    /// An algorithm other than sha256 and sha512.
    UnsupportedAlgorithm { digest: String },
    /// The encoded part is not the algorithm's count of lowercase hex digits.
    BadHex { digest: String },
}

impl fmt::Display for DigestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DigestError::NoAlgorithm { digest } => {
                write!(f, "digest {digest:?} has no algorithm")
            }
            DigestError::UnsupportedAlgorithm { digest } => {
                write!(f, "digest {digest:?}: only sha256 and sha512 are supported")
            }
            DigestError::BadHex { digest } => write!(
                f,
                "digest {digest:?} is not 64 (sha256) or 128 (sha512) lowercase hex digits"
            ),
        }
    }
}

impl std::error::Error for DigestError {}

impl Digest {
    /// Parse `sha256:<64 hex>` or `sha512:<128 hex>`; upper case is refused,
    /// as the spec's grammar does.
    pub fn parse(text: &str) -> Result<Digest, DigestError> {
        let quoted = || quote(text);
        let (algorithm, hex) = text
            .split_once(':')
            .ok_or_else(|| DigestError::NoAlgorithm { digest: quoted() })?;
        let algorithm = match algorithm {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return Err(DigestError::UnsupportedAlgorithm { digest: quoted() }),
        };
        let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if hex.len() != algorithm.hex_len() || !hex.bytes().all(lower_hex) {
            return Err(DigestError::BadHex { digest: quoted() });
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }

    /// The digest of `data` under `algorithm`.
    pub fn of(algorithm: Algorithm, data: &[u8]) -> Digest {
        let mut hasher = Hasher::new(algorithm);
        hasher.update(data);
        hasher.finish()
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex digits: a safe file name.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `text` cut to [`QUOTE_MAX`] characters for a message.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_MAX) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

/// A running hash of one algorithm.
#[derive(Clone)]
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// A hasher for digests of `algorithm`.
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    /// Hash `data` too.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything hashed.
    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            Hasher::Sha256(h) => (Algorithm::Sha256, format!("{:x}", h.finalize())),
            Hasher::Sha512(h) => (Algorithm::Sha512, format!("{:x}", h.finalize())),
        };
        Digest { algorithm, hex }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_both_algorithms() {
        let d = Digest::of(Algorithm::Sha256, b"abc");
        assert_eq!(
            d.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Digest::parse(&d.to_string()), Ok(d.clone()));
        assert_eq!(d.hex().len(), 64);
        let long = Digest::of(Algorithm::Sha512, b"abc");
        assert!(long.to_string().starts_with("sha512:ddaf35a193617aba"));
        assert_eq!(Digest::parse(&long.to_string()), Ok(long));
    }

    #[test]
    fn refuses_what_cannot_be_a_file_name() {
        let hex = "a".repeat(64);
        let bad = |t: &str| Digest::parse(t).unwrap_err();
        assert!(matches!(bad(&hex), DigestError::NoAlgorithm { .. }));
        assert!(matches!(
            bad(&format!("md5:{hex}")),
            DigestError::UnsupportedAlgorithm { .. }
        ));
        for text in [
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", &hex[..63]),
            format!("sha256:{hex}a"),
            format!("sha256:../{}", &hex[3..]),
            format!("sha512:{hex}"),
            "sha256:".to_string(),
        ] {
            assert!(matches!(bad(&text), DigestError::BadHex { .. }), "{text}");
        }
        let huge = format!("sha256:{}", "x".repeat(10_000));
        assert!(bad(&huge).to_string().len() < 200);
    }

    #[test]
    fn serde_round_trip_validates() {
        let d = Digest::of(Algorithm::Sha256, b"");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"sha256:zz\"").is_err());
    }
}
