//! Unpacking image layers safely: verified blobs, OCI whiteouts, and no path
//! that escapes the rootfs (`..`, symlinks followed while writing, hard links
//! out). Symlinks are resolved inside the rootfs, as `filepath-securejoin`
//! does for runc, so that an entry `evil/x` under `evil -> /` lands in
//! `<rootfs>/x`.

use super::layout::{Layout, Manifest};
use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{lchown, symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";
/// The most symlinks followed while resolving one path (Linux's own limit is 40).
const MAX_LINKS: usize = 255;

fn escape(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unsafe layer entry {}: {why}", path.display()),
    )
}

/// Unpack every layer of `manifest` into `dest`, atomically: a partial
/// unpack never appears at `dest`.
pub fn unpack_image(layout: &Layout, manifest: &Manifest, dest: &Path) -> io::Result<()> {
    let parent = dest.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        dest.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("rootfs")
    ));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp)?;
    let result = manifest.layers.iter().try_for_each(|layer| {
        let blob = layout.open_verified(&layer.digest)?;
        let reader: Box<dyn Read> = if layer.gzip {
            Box::new(flate2::read::GzDecoder::new(blob))
        } else {
            Box::new(blob)
        };
        apply_layer(reader, &tmp)
            .map_err(|e| io::Error::new(e.kind(), format!("layer {}: {e}", layer.digest)))
    });
    match result {
        Ok(()) => fs::rename(&tmp, dest),
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// Apply one layer tar on top of `root`.
pub fn apply_layer(reader: impl Read, root: &Path) -> io::Result<()> {
    let mut archive = tar::Archive::new(reader);
    // Paths this layer created: an opaque whiteout hides lower layers only.
    let mut created: BTreeSet<PathBuf> = BTreeSet::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let rel = clean(&raw)?;
        let Some(name) = rel.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            continue; // the root itself
        };
        let parent = secure_join(root, rel.parent().unwrap_or(Path::new("")))?;
        if name == OPAQUE {
            if let Ok(children) = fs::read_dir(&parent) {
                for child in children.flatten() {
                    if !created.contains(&child.path()) {
                        remove_any(&child.path())?;
                    }
                }
            }
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            remove_any(&parent.join(hidden))?;
            continue;
        }
        fs::create_dir_all(&parent)?;
        let target = parent.join(&name);
        let header = entry.header().clone();
        let mode = header.mode()? & 0o7777;
        let kind = header.entry_type();
        if !(kind.is_dir() && target.is_dir()) {
            remove_any(&target)?;
        }
        match kind {
            k if k.is_dir() => fs::create_dir_all(&target)?,
            k if k.is_file() || k == tar::EntryType::Continuous => {
                let mut out = fs::File::create(&target)?;
                io::copy(&mut entry, &mut out)?;
            }
            k if k.is_symlink() => {
                let link = entry
                    .link_name()?
                    .ok_or_else(|| escape(&raw, "symlink without a target"))?;
                symlink(link, &target)?;
            }
            k if k.is_hard_link() => {
                let link = entry
                    .link_name()?
                    .ok_or_else(|| escape(&raw, "hard link without a target"))?;
                let source = secure_join(root, &clean(&link)?)?;
                let meta = fs::symlink_metadata(&source).map_err(|e| {
                    escape(&raw, &format!("hard link target {}: {e}", link.display()))
                })?;
                if meta.is_dir() {
                    return Err(escape(&raw, "hard link to a directory"));
                }
                fs::hard_link(&source, &target)?;
                created.insert(target);
                continue;
            }
            k if k.is_fifo() => {
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &target,
                    rustix::fs::FileType::Fifo,
                    rustix::fs::Mode::from_raw_mode(mode),
                    0,
                )?;
            }
            // Device nodes come from the runtime's /dev, never from images.
            k if k.is_character_special() || k.is_block_special() => continue,
            // PAX and GNU long-name headers are consumed by the tar reader.
            _ => continue,
        }
        let uid = header.uid().ok().and_then(|u| u32::try_from(u).ok());
        let gid = header.gid().ok().and_then(|g| u32::try_from(g).ok());
        if rustix::process::geteuid().is_root() {
            lchown(&target, uid, gid)?;
        }
        if !kind.is_symlink() {
            fs::set_permissions(&target, fs::Permissions::from_mode(mode))?;
        }
        created.insert(target);
    }
    Ok(())
}

/// A layer path made relative with no `..`: `./a/b` and `/a/b` are `a/b`.
fn clean(path: &Path) -> io::Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => return Err(escape(path, "'..' in the path")),
        }
    }
    Ok(out)
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

fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tar(tar::Builder<Vec<u8>>);

    impl Tar {
        fn new() -> Tar {
            Tar(tar::Builder::new(Vec::new()))
        }

        fn header(kind: tar::EntryType, size: u64) -> tar::Header {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(size);
            h.set_mode(0o755);
            h.set_uid(0);
            h.set_gid(0);
            h
        }

        /// Write a raw name, bypassing the builder's own path checks, as a
        /// hostile layer would.
        fn raw_name(h: &mut tar::Header, name: &str) {
            let bytes = name.as_bytes();
            let field = &mut h.as_old_mut().name;
            field.fill(0);
            field[..bytes.len()].copy_from_slice(bytes);
            h.set_cksum();
        }

        fn file(mut self, name: &str, body: &str) -> Tar {
            let mut h = Self::header(tar::EntryType::Regular, body.len() as u64);
            Self::raw_name(&mut h, name);
            self.0.append(&h, body.as_bytes()).unwrap();
            self
        }

        fn dir(mut self, name: &str) -> Tar {
            let mut h = Self::header(tar::EntryType::Directory, 0);
            Self::raw_name(&mut h, name);
            self.0.append(&h, &[][..]).unwrap();
            self
        }

        fn link(mut self, kind: tar::EntryType, name: &str, target: &str) -> Tar {
            let mut h = Self::header(kind, 0);
            h.set_link_name(target).unwrap();
            Self::raw_name(&mut h, name);
            self.0.append(&h, &[][..]).unwrap();
            self
        }

        fn bytes(self) -> Vec<u8> {
            self.0.into_inner().unwrap()
        }
    }

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let p =
                std::env::temp_dir().join(format!("picolet-unpack-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(p.join("root")).unwrap();
            TempDir(p)
        }
        fn root(&self) -> PathBuf {
            self.0.join("root")
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn dot_dot_is_rejected() {
        let t = TempDir::new("dotdot");
        let layer = Tar::new().file("../escaped", "x").bytes();
        let err = apply_layer(&layer[..], &t.root()).unwrap_err();
        assert!(err.to_string().contains("'..'"), "{err}");
        assert!(!t.0.join("escaped").exists());
    }

    #[test]
    fn absolute_symlinks_resolve_inside_the_root() {
        let t = TempDir::new("abslink");
        fs::write(t.0.join("outside"), "keep").unwrap();
        let outside = t.0.join("outside");
        let layer = Tar::new()
            .link(tar::EntryType::Symlink, "evil", "/")
            .link(tar::EntryType::Symlink, "up", "../../..")
            .file(&format!("evil{}", outside.display()), "inside")
            .file("up/outside", "also inside")
            .bytes();
        apply_layer(&layer[..], &t.root()).unwrap();
        assert_eq!(fs::read_to_string(&outside).unwrap(), "keep");
        let landed = t.root().join(outside.strip_prefix("/").unwrap());
        assert_eq!(fs::read_to_string(landed).unwrap(), "inside");
        assert_eq!(
            fs::read_to_string(t.root().join("outside")).unwrap(),
            "also inside"
        );
        assert_eq!(
            fs::read_link(t.root().join("evil")).unwrap(),
            Path::new("/")
        );
    }

    #[test]
    fn hard_links_cannot_point_out() {
        let t = TempDir::new("hardlink");
        fs::write(t.0.join("secret"), "s").unwrap();
        let layer = Tar::new()
            .link(tar::EntryType::Link, "a", "../secret")
            .bytes();
        assert!(apply_layer(&layer[..], &t.root()).is_err());
        // An absolute target is taken inside the root, where it does not exist.
        let layer = Tar::new()
            .link(
                tar::EntryType::Link,
                "b",
                &t.0.join("secret").display().to_string(),
            )
            .bytes();
        assert!(apply_layer(&layer[..], &t.root()).is_err());
        assert!(!t.root().join("b").exists());
        let layer = Tar::new()
            .file("f", "data")
            .link(tar::EntryType::Link, "g", "f")
            .bytes();
        apply_layer(&layer[..], &t.root()).unwrap();
        assert_eq!(fs::read_to_string(t.root().join("g")).unwrap(), "data");
    }

    #[test]
    fn whiteouts_remove_lower_entries() {
        let t = TempDir::new("whiteout");
        let lower = Tar::new()
            .dir("etc")
            .file("etc/a", "1")
            .file("etc/b", "2")
            .dir("opt")
            .file("opt/old", "3")
            .bytes();
        apply_layer(&lower[..], &t.root()).unwrap();
        let upper = Tar::new()
            .file("etc/.wh.a", "")
            .file("opt/.wh..wh..opq", "")
            .file("opt/new", "4")
            .bytes();
        apply_layer(&upper[..], &t.root()).unwrap();
        assert!(!t.root().join("etc/a").exists());
        assert!(t.root().join("etc/b").exists());
        assert!(!t.root().join("opt/old").exists());
        assert!(t.root().join("opt/new").exists());
        assert!(!t.root().join("etc/.wh.a").exists());
    }
}
