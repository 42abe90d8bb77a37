//! The safe-path rules, each with the attack built in the test: symlinks
//! to `/`, `..` chains, absolute links, loops, and a property test that the
//! kernel's resolution (`openat2`) and the fallback walk agree and never
//! leave the root.

use super::*;
use proptest::prelude::*;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};

struct Tree(PathBuf);

impl Tree {
    fn new(tag: &str) -> Tree {
        let base = std::env::temp_dir().join(format!(
            "picolet-safe-path-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("root")).unwrap();
        fs::write(base.join("outside"), "host").unwrap();
        Tree(base)
    }
    fn root(&self) -> PathBuf {
        self.0.join("root")
    }
    fn fd(&self) -> OwnedFd {
        open_dir(&self.root()).unwrap()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn errno(e: &io::Error) -> Option<Errno> {
    e.raw_os_error().map(Errno::from_raw_os_error)
}

fn read_fd(fd: OwnedFd) -> String {
    let mut s = String::new();
    io::Read::read_to_string(&mut fs::File::from(fd), &mut s).unwrap();
    s
}

const WALK: Walk = Walk {
    links: Links::InRoot,
    make_dirs: None,
};

#[test]
fn components_refuse_what_could_leave_the_directory() {
    assert_eq!(component("pod-1"), Ok("pod-1"));
    assert_eq!(component("..."), Ok("..."));
    assert_eq!(component(""), Err(NameError::Empty));
    assert_eq!(component("."), Err(NameError::Dot));
    assert_eq!(component(".."), Err(NameError::DotDot));
    assert_eq!(component("../../tmp/victim"), Err(NameError::Slash));
    assert_eq!(component("a\0b"), Err(NameError::Nul));
    assert_eq!(component(&"x".repeat(256)), Err(NameError::TooLong(256)));
    assert_eq!(
        join(Path::new("/var/lib/picolet/pods"), "..").unwrap_err(),
        NameError::DotDot
    );
}

#[test]
fn links_to_the_host_root_resolve_inside() {
    let t = Tree::new("abs");
    let root = t.root();
    symlink("/", root.join("evil")).unwrap();
    symlink("../../../../../..", root.join("up")).unwrap();
    fs::create_dir(root.join("deep")).unwrap();
    symlink("/", root.join("deep/evil")).unwrap();
    // The host path of `outside`, as an image would name it.
    let host_outside = t.0.join("outside");
    fs::create_dir_all(root.join(host_outside.parent().unwrap().strip_prefix("/").unwrap()))
        .unwrap();
    fs::write(root.join(host_outside.strip_prefix("/").unwrap()), "inside").unwrap();
    fs::write(root.join("outside"), "inside too").unwrap();
    let fd = t.fd();
    for walk in [false, true] {
        let open = |p: &Path| {
            if walk {
                WALK.open(fd.as_fd(), p, OFlags::RDONLY, Mode::empty())
                    .map_err(io::Error::from)
            } else {
                open_in_root(fd.as_fd(), p, OFlags::RDONLY, Mode::empty())
            }
        };
        let via_evil = Path::new("evil").join(host_outside.strip_prefix("/").unwrap());
        assert_eq!(read_fd(open(&via_evil).unwrap()), "inside", "walk={walk}");
        assert_eq!(read_fd(open(&host_outside).unwrap()), "inside");
        assert_eq!(
            read_fd(open(Path::new("up/outside")).unwrap()),
            "inside too"
        );
        let deep = open(Path::new("deep/evil/outside"));
        assert_eq!(read_fd(deep.unwrap()), "inside too", "walk={walk}");
        assert_eq!(
            read_fd(open(Path::new("../../outside")).unwrap()),
            "inside too"
        );
    }
    assert_eq!(fs::read_to_string(&host_outside).unwrap(), "host");
}

#[test]
fn beneath_follows_links_that_stay_and_refuses_escapes() {
    let t = Tree::new("beneath");
    fs::create_dir(t.root().join("d")).unwrap();
    fs::write(t.root().join("d/f"), "x").unwrap();
    symlink("d", t.root().join("l")).unwrap();
    symlink("/", t.root().join("abs")).unwrap();
    symlink("../..", t.root().join("d/up")).unwrap();
    let fd = t.fd();
    let beneath = Walk {
        links: Links::Beneath,
        make_dirs: None,
    };
    for walk in [false, true] {
        let open = |p: &str| {
            if walk {
                beneath
                    .open(fd.as_fd(), Path::new(p), OFlags::RDONLY, Mode::empty())
                    .map_err(io::Error::from)
            } else {
                open_beneath(fd.as_fd(), Path::new(p), OFlags::RDONLY, Mode::empty())
            }
        };
        assert_eq!(read_fd(open("d/f").unwrap()), "x");
        assert_eq!(read_fd(open("l/f").unwrap()), "x", "walk={walk}");
        for escape in ["abs/etc", "d/up/outside", "../outside", "d/../../outside"] {
            let e = open(escape).unwrap_err();
            assert_eq!(errno(&e), Some(Errno::XDEV), "walk={walk} {escape}");
        }
    }
}

#[test]
fn a_final_link_is_refused_under_nofollow_and_loops_end() {
    let t = Tree::new("nofollow");
    fs::write(t.root().join("f"), "x").unwrap();
    symlink("f", t.root().join("l")).unwrap();
    symlink("loop2", t.root().join("loop1")).unwrap();
    symlink("loop1", t.root().join("loop2")).unwrap();
    let fd = t.fd();
    for walk in [false, true] {
        let open = |p: &str, flags| {
            if walk {
                WALK.open(fd.as_fd(), Path::new(p), flags, Mode::empty())
                    .map_err(io::Error::from)
            } else {
                open_in_root(fd.as_fd(), Path::new(p), flags, Mode::empty())
            }
        };
        let nofollow = OFlags::RDONLY | OFlags::NOFOLLOW;
        assert_eq!(errno(&open("l", nofollow).unwrap_err()), Some(Errno::LOOP));
        assert_eq!(read_fd(open("l", OFlags::RDONLY).unwrap()), "x");
        assert_eq!(
            errno(&open("loop1/x", OFlags::RDONLY).unwrap_err()),
            Some(Errno::LOOP),
            "walk={walk}"
        );
        // Found by the fuzz target: a NUL fails before any lookup.
        let nul = open("missing/\n1\0", OFlags::RDONLY).unwrap_err();
        assert_eq!(errno(&nul), Some(Errno::INVAL), "walk={walk}");
        // Found by the fuzz target: a path of PATH_MAX bytes or more.
        let long = "a/../".repeat(820);
        let e = open(&long, OFlags::RDONLY).unwrap_err();
        assert_eq!(errno(&e), Some(Errno::NAMETOOLONG), "walk={walk}");
        // O_CREAT through a final link to the host makes the file inside.
        let made = open("evil-new", OFlags::WRONLY | OFlags::CREATE);
        assert!(made.is_ok(), "walk={walk}: {made:?}");
    }
}

#[test]
fn directories_are_made_inside_and_never_through_a_link_out() {
    let t = Tree::new("mkdir");
    symlink(t.0.display().to_string(), t.root().join("host")).unwrap();
    fs::write(t.root().join("file"), "x").unwrap();
    let fd = t.fd();
    let mode = Mode::from_raw_mode(0o755);
    let made = mkdir_all_in_root(fd.as_fd(), Path::new("host/a/b"), mode).unwrap();
    let inside = t.root().join(t.0.strip_prefix("/").unwrap()).join("a/b");
    assert_eq!(
        rustix::fs::fstat(&made).unwrap().st_ino,
        fs::metadata(&inside).unwrap().ino()
    );
    assert!(!t.0.join("a").exists(), "made outside the root");
    let err = mkdir_all_in_root(fd.as_fd(), Path::new("file/sub"), mode).unwrap_err();
    assert_eq!(errno(&err), Some(Errno::NOTDIR));
    // 2000 levels would hold 2000 fds at once: refused past 255.
    let deep: PathBuf = std::iter::repeat_n("a", 2000).collect();
    let err = mkdir_all_in_root(fd.as_fd(), &deep, mode).unwrap_err();
    assert_eq!(errno(&err), Some(Errno::NAMETOOLONG));
    let fine: PathBuf = std::iter::repeat_n("a", 200).collect();
    assert!(mkdir_all_in_root(fd.as_fd(), &fine, mode).is_ok());
}

#[test]
fn directories_made_beneath_follow_links_inside_and_stop_at_one_out() {
    let t = Tree::new("mkdir-beneath");
    symlink(t.0.display().to_string(), t.root().join("host")).unwrap();
    symlink("../..", t.root().join("up")).unwrap();
    fs::create_dir(t.root().join("real")).unwrap();
    symlink("real", t.root().join("alias")).unwrap();
    let fd = t.fd();
    let mode = Mode::from_raw_mode(0o755);
    for out in ["host/a/b", "up/a", "new/../../a", "/a"] {
        let err = mkdir_all_beneath(fd.as_fd(), Path::new(out), mode).unwrap_err();
        assert_eq!(errno(&err), Some(Errno::XDEV), "{out}");
    }
    assert!(!t.0.join("a").exists(), "made outside the root");
    assert!(
        !t.root().join(t.0.strip_prefix("/").unwrap()).exists(),
        "made inside as if the root were / (in-root semantics)"
    );
    let made = mkdir_all_beneath(fd.as_fd(), Path::new("alias/x/y"), mode).unwrap();
    assert_eq!(
        rustix::fs::fstat(&made).unwrap().st_ino,
        fs::metadata(t.root().join("real/x/y")).unwrap().ino()
    );
}

/// A small tree of directories, files and hostile links, built from a
/// seed, and a path made of its names.
fn tree_and_path() -> impl Strategy<Value = (Vec<(u8, u8, u8)>, Vec<u8>)> {
    (
        proptest::collection::vec((0u8..4, 0u8..6, 0u8..8), 0..12),
        proptest::collection::vec(0u8..9, 0..8),
    )
}

const NAMES: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
const TARGETS: [&str; 8] = [
    "/",
    "..",
    "../..",
    "/a",
    "a/b",
    "../../../../outside",
    ".",
    "/e/../b",
];

fn build(root: &Path, entries: &[(u8, u8, u8)]) {
    // `a` is always a directory, so that links below the top are common.
    fs::create_dir(root.join("a")).unwrap();
    for &(kind, name, target) in entries {
        let dir = if kind % 2 == 0 {
            root.to_path_buf()
        } else {
            root.join("a")
        };
        let path = dir.join(NAMES[usize::from(name)]);
        if !dir.is_dir() || path.symlink_metadata().is_ok() {
            continue;
        }
        match kind / 2 {
            0 => fs::create_dir(&path).unwrap(),
            _ => symlink(TARGETS[usize::from(target)], &path).unwrap(),
        }
    }
}

fn path_of(parts: &[u8]) -> PathBuf {
    parts
        .iter()
        .map(|&p| match p {
            6 => "..",
            7 => "/",
            8 => "outside",
            n => NAMES[usize::from(n)],
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever the tree and the path, `openat2` and the walk open the same
    /// file or fail alike, and what they open is inside the root.
    #[test]
    fn the_walk_agrees_with_the_kernel_and_stays_inside((entries, parts) in tree_and_path(), beneath: bool) {
        let t = Tree::new("prop");
        build(&t.root(), &entries);
        let fd = t.fd();
        let path = path_of(&parts);
        let flags = OFlags::PATH;
        let (kernel, links) = if beneath {
            (open_beneath(fd.as_fd(), &path, flags, Mode::empty()), Links::Beneath)
        } else {
            (open_in_root(fd.as_fd(), &path, flags, Mode::empty()), Links::InRoot)
        };
        let walk = Walk { links, make_dirs: None };
        let walked = walk.open(fd.as_fd(), &path, flags, Mode::empty()).map_err(io::Error::from);
        match (&kernel, &walked) {
            (Ok(k), Ok(w)) => {
                let (k, w) = (rustix::fs::fstat(k).unwrap(), rustix::fs::fstat(w).unwrap());
                prop_assert_eq!((k.st_dev, k.st_ino), (w.st_dev, w.st_ino), "{:?}", path);
                let host_outside = fs::metadata(t.0.join("outside")).unwrap().ino();
                let parent = fs::metadata(&t.0).unwrap().ino();
                prop_assert!(k.st_ino != host_outside && k.st_ino != parent, "{:?} left the root", path);
            }
            (Err(k), Err(w)) => prop_assert_eq!(errno(k), errno(w), "{:?}", path),
            _ => prop_assert!(false, "{:?}: kernel {:?}, walk {:?}", path, kernel, walked),
        }
    }
}
