//! Which manifest of a multi-platform index this machine runs: Linux, the
//! machine's architecture in Go's (and OCI's) words, and for ARM the
//! variant, as containerd's default platform matcher chooses
//! (image-spec `image-index.md`, `platform`).

use serde::Deserialize;

/// An index entry's `platform`, as far as the choice needs it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Platform {
    /// `amd64`, `arm64`, `arm`, ...
    pub architecture: String,
    /// `linux`, `windows`, ...
    pub os: String,
    /// `v8` (arm64), `v7`, `v6` (arm); often absent.
    #[serde(default)]
    pub variant: Option<String>,
}

/// The platform this binary runs on.
pub fn host() -> Platform {
    let (architecture, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", Some("v8")),
        // picolet's 32-bit ARM builds target ARMv7 (cross/README.md).
        "arm" => ("arm", Some("v7")),
        other => (other, None),
    };
    Platform {
        architecture: architecture.into(),
        os: "linux".into(),
        variant: variant.map(Into::into),
    }
}

impl Platform {
    /// How well an index entry's platform fits this one: `None` when it
    /// cannot run here, else a rank where lower is better. arm64 images
    /// rarely name `v8`, so no variant fits arm64 as well as `v8` does; an
    /// ARMv7 machine also runs v6 and v5 images, the nearest first.
    pub fn fit(&self, entry: &Platform) -> Option<u8> {
        if entry.os != self.os || entry.architecture != self.architecture {
            return None;
        }
        let want = self.variant.as_deref().unwrap_or("");
        let have = entry.variant.as_deref().unwrap_or("");
        match (self.architecture.as_str(), want, have) {
            (_, w, h) if w == h => Some(0),
            ("arm64", "v8", "") => Some(0),
            ("arm", w, "") if !w.is_empty() => Some(1),
            ("arm", w, h) => arm_versions_back(h, w).map(|n| 1 + n),
            _ => None,
        }
    }

    /// The best of `entries` for this platform, by [`Platform::fit`]; of
    /// equal fits the first, as the index orders them.
    pub fn choose<'a, T>(&self, entries: impl IntoIterator<Item = (&'a Platform, T)>) -> Option<T> {
        entries
            .into_iter()
            .filter_map(|(p, item)| Some((self.fit(p)?, item)))
            .enumerate()
            .min_by_key(|(order, (rank, _))| (*rank, *order))
            .map(|(_, (_, item))| item)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

/// How many ARM versions `have` is older than `want` (v5 < v6 < v7), or
/// `None` when it is not older.
fn arm_versions_back(have: &str, want: &str) -> Option<u8> {
    let n = |v: &str| v.strip_prefix('v').and_then(|d| d.parse::<u8>().ok());
    let (h, w) = (n(have)?, n(want)?);
    (h < w).then(|| w - h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        Platform {
            architecture: arch.into(),
            os: os.into(),
            variant: variant.map(Into::into),
        }
    }

    #[test]
    fn each_host_picks_its_own_entry_of_a_busybox_like_index() {
        let index = [
            p("linux", "amd64", None),
            p("linux", "arm", Some("v5")),
            p("linux", "arm", Some("v6")),
            p("linux", "arm", Some("v7")),
            p("linux", "arm64", Some("v8")),
            p("windows", "amd64", None),
        ];
        let pick = |host: Platform| host.choose(index.iter().map(|e| (e, e.clone())));
        let amd64 = p("linux", "amd64", None);
        assert_eq!(pick(amd64.clone()), Some(amd64));
        let arm64 = p("linux", "arm64", Some("v8"));
        assert_eq!(pick(arm64.clone()), Some(arm64));
        let armv7 = p("linux", "arm", Some("v7"));
        assert_eq!(pick(armv7.clone()), Some(armv7));
    }

    #[test]
    fn variants_fall_back_as_containerd_allows() {
        let arm64 = p("linux", "arm64", Some("v8"));
        assert_eq!(arm64.fit(&p("linux", "arm64", None)), Some(0));
        assert_eq!(arm64.fit(&p("linux", "amd64", None)), None);
        assert_eq!(arm64.fit(&p("windows", "arm64", None)), None);
        let armv7 = p("linux", "arm", Some("v7"));
        assert_eq!(armv7.fit(&p("linux", "arm", Some("v6"))), Some(2));
        assert_eq!(armv7.fit(&p("linux", "arm", Some("v5"))), Some(3));
        assert_eq!(armv7.fit(&p("linux", "arm", None)), Some(1));
        assert_eq!(armv7.fit(&p("linux", "arm", Some("v8"))), None);
        let only_old = [p("linux", "arm", Some("v5")), p("linux", "arm", Some("v6"))];
        assert_eq!(
            armv7.choose(only_old.iter().map(|e| (e, e.variant.clone()))),
            Some(Some("v6".into())),
            "an older variant runs, the nearest first"
        );
        let amd64 = p("linux", "amd64", None);
        assert_eq!(amd64.fit(&p("linux", "amd64", Some("v3"))), None);
        assert_eq!(host().os, "linux");
    }
}
