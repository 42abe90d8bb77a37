//! The distribution spec's grammar for what goes into a request path:
//! repository names, tags and digests. They come from pod specs and
//! manifests (hostile), and are checked before they become a URL.

/// A repository's longest name, as the distribution spec's reference
/// grammar bounds it.
const MAX_REPOSITORY: usize = 255;

/// `a/b-c/d_e.f`: components of lower-case letters and digits joined by
/// `.`, `_`, `__` or dashes, separated by `/`.
pub(super) fn valid_repository(name: &str) -> bool {
    name.len() <= MAX_REPOSITORY && !name.is_empty() && name.split('/').all(valid_component)
}

fn valid_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    // Separators: one `.`, one or two `_`, or any run of `-`.
    bytes
        .split(alnum)
        .filter(|run| !run.is_empty())
        .all(|run| matches!(run, b"." | b"_" | b"__") || run.iter().all(|&b| b == b'-'))
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub(super) fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
}

/// A digest picolet verifies: `sha256:` and 64, or `sha512:` and 128,
/// lower-case hex digits.
pub(super) fn valid_digest(digest: &str) -> bool {
    let hex = |h: &str, n: usize| {
        h.len() == n
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    match digest.split_once(':') {
        Some(("sha256", h)) => hex(h, 64),
        Some(("sha512", h)) => hex(h, 128),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_the_distribution_spec_writes_them() {
        for ok in [
            "busybox",
            "library/busybox",
            "a/b-c/d_e.f",
            "a__b",
            "a--b",
            "x0/1y",
        ] {
            assert!(valid_repository(ok), "{ok}");
        }
        for bad in [
            "", "A", "a/", "/a", "a//b", "-a", "a.", "a..b", "a___b", "a/../b", "a?b", "a%2fb",
            "a b",
        ] {
            assert!(!valid_repository(bad), "{bad}");
        }
        assert!(!valid_repository(&"a".repeat(256)));
        for ok in ["latest", "1.36", "v1_2-rc.3", "_x", &"t".repeat(128)] {
            assert!(valid_tag(ok), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", "a?", &"t".repeat(129)] {
            assert!(!valid_tag(bad), "{bad}");
        }
        let d = format!("sha256:{}", "a".repeat(64));
        assert!(valid_digest(&d));
        assert!(valid_digest(&format!("sha512:{}", "0".repeat(128))));
        for bad in [
            "sha256:",
            "sha256:A",
            "md5:00",
            &format!("sha256:{}", "A".repeat(64)),
            &format!("sha256:{}/", "a".repeat(64)),
        ] {
            assert!(!valid_digest(bad), "{bad}");
        }
    }
}
