//! The path-string join that volumes' subPath and projected files still use
//! (src/runtime/bundle.rs, src/runtime/sandbox.rs) until they move to
//! `crate::safe_path`; layers no longer use it.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// The most symlinks followed while resolving one path (Linux's own limit is 40).
const MAX_LINKS: usize = 255;

fn escape(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unsafe path {}: {why}", path.display()),
    )
}

/// `root/rel` with every symlink on the way resolved inside `root`: an
/// absolute link target restarts at `root`, `..` never climbs above it.
pub fn secure_join(root: &Path, rel: &Path) -> io::Result<PathBuf> {
    let mut pending: Vec<std::ffi::OsString> = rel
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut resolved: Vec<std::ffi::OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate: PathBuf = std::iter::once(root.as_os_str().to_os_string())
            .chain(resolved.iter().cloned())
            .chain(std::iter::once(part.clone()))
            .collect();
        match fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(escape(rel, "too many levels of symbolic links"));
                }
                let target = fs::read_link(&candidate)?;
                if target.is_absolute() {
                    resolved.clear();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(p) => pending.push(p.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => resolved.push(part),
        }
    }
    Ok(std::iter::once(root.as_os_str().to_os_string())
        .chain(resolved)
        .collect())
}
