//! Image references as Kubernetes users write them, normalized the way Docker
//! and containerd do: `busybox` is `docker.io/library/busybox:latest`.

use std::fmt;

/// Why an image reference cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceError {
    /// Empty, or with whitespace in it.
    Blank,
    /// A digest of an algorithm other than sha256.
    UnsupportedDigest,
    /// A sha256 digest that is not 64 hex digits.
    BadDigest { digest: String },
    /// `:tag` with nothing before or after the colon.
    EmptyNameOrTag,
    /// Upper case in the repository path.
    Uppercase,
}

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReferenceError::Blank => f.write_str("must be non-empty with no spaces"),
            ReferenceError::UnsupportedDigest => f.write_str("only sha256 digests are supported"),
            ReferenceError::BadDigest { digest } => write!(f, "bad digest {digest:?}"),
            ReferenceError::EmptyNameOrTag => f.write_str("empty name or tag"),
            ReferenceError::Uppercase => f.write_str("the repository name must be lowercase"),
        }
    }
}

impl std::error::Error for ReferenceError {}

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `docker.io/library/busybox`
    pub name: String,
    /// `1.36`; `latest` when neither a tag nor a digest is given.
    pub tag: Option<String>,
    /// `sha256:...`
    pub digest: Option<String>,
}

impl Reference {
    /// Parse and normalize `text` (`busybox`, `org/app:1`,
    /// `quay.io/x@sha256:...`).
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        if text.is_empty() || text.chars().any(char::is_whitespace) {
            return Err(ReferenceError::Blank);
        }
        let (rest, digest) = match text.split_once('@') {
            Some((r, d)) => {
                let hex = d
                    .strip_prefix("sha256:")
                    .ok_or(ReferenceError::UnsupportedDigest)?;
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(ReferenceError::BadDigest { digest: d.into() });
                }
                (r, Some(d.to_string()))
            }
            None => (text, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match rest.rfind(':') {
            Some(i) if i >= last_slash => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        if path.is_empty() || tag.as_deref() == Some("") {
            return Err(ReferenceError::EmptyNameOrTag);
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase);
        }
        let first = path.split('/').next().unwrap_or(path);
        let has_domain = path.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost");
        let name = if has_domain {
            path.to_string()
        } else if path.contains('/') {
            format!("docker.io/{path}")
        } else {
            format!("docker.io/library/{path}")
        };
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Reference { name, tag, digest })
    }

    /// The short form users write: `busybox:1.36`.
    pub fn familiar(&self) -> String {
        // `library/` goes only where what is left has no `/`: `a/b` would
        // parse back as docker.io/a/b, another image.
        let name = self
            .name
            .strip_prefix("docker.io/library/")
            .filter(|rest| !rest.contains('/'))
            .or_else(|| self.name.strip_prefix("docker.io/"))
            .unwrap_or(&self.name);
        match (&self.tag, &self.digest) {
            (_, Some(d)) => format!("{name}@{d}"),
            (Some(t), None) => format!("{name}:{t}"),
            (None, None) => name.to_string(),
        }
    }

    /// The registry host (`docker.io`, `127.0.0.1:5000`) and the repository
    /// on it (`library/busybox`).
    pub fn registry_and_repository(&self) -> (&str, &str) {
        // A normalized name always has a domain part (see `parse`).
        self.name
            .split_once('/')
            .unwrap_or(("docker.io", &self.name))
    }

    /// What the registry's manifest endpoint takes: the digest if any, else
    /// the tag.
    pub fn tag_or_digest(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The full normalized form, the store's `ref.name` for this image and
    /// the one form every comparison of names uses:
    /// `docker.io/library/busybox:1.36`, `host/app@sha256:...`, and with
    /// both, `host/app:1@sha256:...` (the digest decides what is pulled).
    pub fn full(&self) -> String {
        let mut full = self.name.clone();
        if let Some(tag) = &self.tag {
            full = format!("{full}:{tag}");
        }
        if let Some(digest) = &self.digest {
            full = format!("{full}@{digest}");
        }
        full
    }

    /// Does a stored name (a layout `ref.name`) denote this reference?
    pub fn matches_name(&self, stored: &str) -> bool {
        match Reference::parse(stored) {
            Ok(r) => r.name == self.name && (self.digest.is_some() || r.tag == self.tag),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> (String, Option<String>) {
        let r = Reference::parse(s).unwrap();
        (r.name, r.tag)
    }

    #[test]
    fn normalizes_like_docker() {
        let bb = (
            "docker.io/library/busybox".to_string(),
            Some("1.36".to_string()),
        );
        assert_eq!(norm("busybox:1.36"), bb);
        assert_eq!(norm("docker.io/library/busybox:1.36"), bb);
        assert_eq!(norm("library/busybox:1.36"), bb);
        assert_eq!(norm("busybox").1.as_deref(), Some("latest"));
        assert_eq!(norm("localhost:5000/app").0, "localhost:5000/app");
        assert_eq!(norm("localhost:5000/app:v2").1.as_deref(), Some("v2"));
        assert_eq!(norm("quay.io/org/app:1").0, "quay.io/org/app");
        assert_eq!(norm("org/app").0, "docker.io/org/app");
    }

    #[test]
    fn digests_and_matching() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.tag, None);
        assert_eq!(
            Reference::parse("busybox@sha256:123"),
            Err(ReferenceError::BadDigest {
                digest: "sha256:123".into()
            })
        );
        assert_eq!(
            Reference::parse("busybox@md5:123"),
            Err(ReferenceError::UnsupportedDigest)
        );
        let tagged = Reference::parse("busybox:1.36").unwrap();
        assert!(tagged.matches_name("docker.io/library/busybox:1.36"));
        assert!(tagged.matches_name("busybox:1.36"));
        assert!(!tagged.matches_name("busybox:1.35"));
        assert!(!tagged.matches_name("1.36"));
        assert_eq!(tagged.familiar(), "busybox:1.36");
        assert_eq!(tagged.full(), "docker.io/library/busybox:1.36");
        let nested = Reference::parse("docker.io/library/a/b:1").unwrap();
        assert_eq!(nested.familiar(), "library/a/b:1");
        assert_eq!(Reference::parse(&nested.familiar()).unwrap(), nested);
        assert_eq!(
            tagged.registry_and_repository(),
            ("docker.io", "library/busybox")
        );
        assert_eq!(tagged.tag_or_digest(), "1.36");
        let local = Reference::parse(&format!("localhost:5000/team/app@{d}")).unwrap();
        assert_eq!(
            local.registry_and_repository(),
            ("localhost:5000", "team/app")
        );
        assert_eq!(local.tag_or_digest(), d);
        assert_eq!(local.full(), format!("localhost:5000/team/app@{d}"));
        let both = Reference::parse(&format!("app:1@{d}")).unwrap();
        assert_eq!(both.full(), format!("docker.io/library/app:1@{d}"));
        assert_eq!(Reference::parse(&both.full()).unwrap(), both);
    }
}
