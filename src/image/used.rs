//! When each image was last used: the agent's `<run>/images-used.json`
//! (`published.rs`), written by the runtime when a container starts and
//! read back by the next agent and by `picolet images`. Keyed by the
//! platform manifest digest a container runs (its imageID).

use super::digest::Digest;
use crate::published::IMAGES_USED_FILE;
use crate::time::Time;
use std::collections::BTreeMap;
use std::io;
use std::path::Path;

/// Last uses by imageID.
pub type LastUsed = BTreeMap<Digest, Time>;

/// The run dir's record; absent is empty, and an entry that does not parse
/// is skipped (it only orders GC's choice).
pub fn read(run: &Path) -> io::Result<LastUsed> {
    let text: Option<BTreeMap<String, String>> =
        crate::state::read_json(&run.join(IMAGES_USED_FILE))?;
    Ok(text
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(d, t)| Some((Digest::parse(&d).ok()?, Time::parse_rfc3339(&t)?)))
        .collect())
}

/// Replace the run dir's record.
pub fn write(run: &Path, used: &LastUsed) -> io::Result<()> {
    let text: BTreeMap<String, String> = used
        .iter()
        .map(|(d, t)| (d.to_string(), t.rfc3339()))
        .collect();
    crate::state::write_json(&run.join(IMAGES_USED_FILE), &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_one_agent_writes_the_next_reads() {
        let run = std::env::temp_dir().join(format!("picolet-used-{}", std::process::id()));
        std::fs::create_dir_all(&run).unwrap();
        assert!(read(&run).unwrap().is_empty(), "absent is empty");
        let digest = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
        let used: LastUsed = [(digest, Time::from_secs(1_700_000_000))].into();
        write(&run, &used).unwrap();
        assert_eq!(read(&run).unwrap(), used);
        std::fs::write(
            run.join(IMAGES_USED_FILE),
            r#"{"sha256:nope": "2026-01-01T00:00:00Z", "sha256:bbbb": "yesterday"}"#,
        )
        .unwrap();
        assert!(
            read(&run).unwrap().is_empty(),
            "entries that do not parse are skipped"
        );
        std::fs::remove_dir_all(run).unwrap();
    }
}
