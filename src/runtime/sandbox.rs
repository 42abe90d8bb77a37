//! The pod sandbox, without a pause process: network, IPC and UTS namespaces
//! created by the agent itself and held open by bind mounts under
//! `<run>/pods/<uid>/ns/`, loopback up, the pod's /etc files, a shared
//! /dev/shm, and its volumes.
//!
//! The agent has one thread, so it can `unshare` a namespace, configure it,
//! pin it with a bind mount and `setns` back without disturbing anything else.

use super::bundle::{SandboxView, VolumePaths};
use super::fsutil::{mount_fs, remove_tree, unmount};
use super::objects::{PodFacts, VolumeFile};
use super::paths::{join, Paths};
use super::records::SandboxRecord;
use crate::pod::quantity;
use crate::pod::Pod;
use crate::safe_path;
use crate::state::{read_json, write_json};
use crate::time::Time;
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::mount::{mount_bind, MountFlags};
use rustix::thread::{unshare_unsafe, LinkNameSpaceType, UnshareFlags};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Size of the pod's /dev/shm, as runc's default.
const SHM_SIZE: &str = "size=65536k";

/// The pod run dir's directory of subPath pins (`subpath.rs`).
const SUBPATHS: &str = "volume-subpaths";

/// A secret volume's tmpfs root: not listable or readable by others (the
/// kubelet's is 1777), but open to be walked through, so that a container
/// running as another user than root reads its secret files, which have the
/// volume's mode (0644 unless `defaultMode` says otherwise), as with the
/// kubelet. Host users never get this far: the root dir is 0700.
const SECRET_ROOT: &str = "mode=0711";

#[derive(Clone, Copy)]
enum Ns {
    Net,
    Ipc,
    Uts,
}

impl Ns {
    fn file(self) -> &'static str {
        match self {
            Ns::Net => "net",
            Ns::Ipc => "ipc",
            Ns::Uts => "uts",
        }
    }
    fn unshare_flag(self) -> UnshareFlags {
        match self {
            Ns::Net => UnshareFlags::NEWNET,
            Ns::Ipc => UnshareFlags::NEWIPC,
            Ns::Uts => UnshareFlags::NEWUTS,
        }
    }
    fn link_type(self) -> LinkNameSpaceType {
        match self {
            Ns::Net => LinkNameSpaceType::Network,
            Ns::Ipc => LinkNameSpaceType::InterProcessCommunication,
            Ns::Uts => LinkNameSpaceType::HostNameAndNISDomainName,
        }
    }
}

fn ctx(what: impl std::fmt::Display, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

/// The hostname containers of this pod see (rule: `spec.hostname` or the name).
pub fn hostname(pod: &Pod) -> String {
    pod.spec
        .hostname
        .clone()
        .unwrap_or_else(|| pod.metadata.name.chars().take(63).collect())
}

/// What a container of this pod joins; valid once `create` succeeded.
pub fn view(paths: &Paths, pod: &Pod) -> io::Result<SandboxView> {
    let dir = paths.pod_run(&pod.metadata.uid)?;
    let host = pod.spec.host_network;
    Ok(SandboxView {
        net: (!host).then(|| dir.join("ns/net")),
        ipc: dir.join("ns/ipc"),
        uts: (!host).then(|| dir.join("ns/uts")),
        etc: dir.join("etc"),
        shm: dir.join("shm"),
        hostname: hostname(pod),
        subpaths: dir.join(SUBPATHS),
    })
}

/// Host paths of the pod's volumes.
pub fn volume_paths(paths: &Paths, pod: &Pod) -> io::Result<VolumePaths> {
    let base = paths.pod_volumes(&pod.metadata.uid)?;
    pod.spec
        .volumes
        .iter()
        .map(|v| {
            let path = match &v.host_path {
                Some(h) => PathBuf::from(&h.path),
                None => join(&base, &v.name)?,
            };
            Ok((v.name.clone(), path))
        })
        .collect()
}

/// Create everything the pod's containers share. Safe to repeat: a half-made
/// sandbox from an earlier failure is torn down first. `created_at`, the
/// engine's startTime for the pod, is recorded unless an earlier sandbox was.
/// `spare_network`, a network namespace made ahead, becomes the pod's.
pub fn create(
    paths: &Paths,
    pod: &Pod,
    facts: &PodFacts<'_>,
    created_at: Time,
    spare_network: Option<OwnedFd>,
) -> io::Result<()> {
    let uid = &pod.metadata.uid;
    let dir = paths.pod_run(uid)?;
    teardown_mounts(paths, uid)?;
    fs::create_dir_all(dir.join("ns"))?;
    fs::create_dir_all(dir.join("etc"))?;
    write_json(&dir.join("pod.json"), pod)?;
    let view = view(paths, pod)?;

    pin_namespace(Ns::Ipc, &new_namespace(Ns::Ipc, None)?, &view.ipc)?;
    if let (Some(net), Some(uts)) = (&view.net, &view.uts) {
        let network = match spare_network {
            Some(fd) => fd,
            None => new_network_namespace()?,
        };
        pin_namespace(Ns::Net, &network, net)?;
        let uts_ns = new_namespace(Ns::Uts, Some(&view.hostname))?;
        pin_namespace(Ns::Uts, &uts_ns, uts)?;
    }
    fs::create_dir_all(&view.shm)?;
    mount_fs(
        "shm",
        &view.shm,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        &format!("mode=1777,{SHM_SIZE}"),
    )?;
    write_etc(pod, &view)?;
    prepare_volumes(paths, pod, facts)?;
    let created_at = read_json::<SandboxRecord>(&dir.join("sandbox.json"))?
        .map_or(created_at.0, |r| r.created_at);
    write_json(
        &dir.join("sandbox.json"),
        &SandboxRecord {
            created_at,
            ready: true,
        },
    )
}

/// Record the pod on disk (`history::begin`) with its sandbox's creation
/// time, unless it is recorded already. Called when a monitor first reports
/// a start or an end, so that the record's fsyncs on the root dir's disk
/// (flash on a device) run after the runtime started the container, not
/// while; and for every instance found at recovery.
pub fn record_durably(paths: &Paths, pod: &Pod) -> io::Result<()> {
    if super::history::begun(paths, &pod.metadata.uid) {
        return Ok(());
    }
    let run = paths.pod_run(&pod.metadata.uid)?;
    match read_json::<SandboxRecord>(&run.join("sandbox.json"))? {
        Some(record) => super::history::begin(paths, pod, Time(record.created_at)),
        None => Ok(()),
    }
}

/// A new network namespace with `lo` up, held by the returned fd only.
pub fn new_network_namespace() -> io::Result<OwnedFd> {
    new_namespace(Ns::Net, None)
}

/// Unshare namespace `ns`, configure it, and return to the agent's own
/// namespace; the new one lives as long as the returned fd or a pin.
fn new_namespace(ns: Ns, host_name: Option<&str>) -> io::Result<OwnedFd> {
    let self_path = PathBuf::from(format!("/proc/thread-self/ns/{}", ns.file()));
    let original = open_namespace(&self_path)?;
    // SAFETY: the agent is single-threaded, so unsharing changes no other
    // thread's view; every path below returns to `original` before returning.
    unsafe { unshare_unsafe(ns.unshare_flag()) }
        .map_err(|e| ctx(format!("unshare {}", ns.file()), e))?;
    let made = (|| -> io::Result<OwnedFd> {
        match ns {
            Ns::Net => loopback_up()?,
            Ns::Uts => rustix::system::sethostname(host_name.unwrap_or("localhost").as_bytes())?,
            Ns::Ipc => {}
        }
        open_namespace(&self_path)
    })();
    rustix::thread::move_into_link_name_space(original.as_fd(), Some(ns.link_type())).map_err(
        |e| {
            ctx(
                format!("returning to the agent's {} namespace", ns.file()),
                e,
            )
        },
    )?;
    made
}

/// An fd on the namespace file at `path`.
fn open_namespace(path: &Path) -> io::Result<OwnedFd> {
    rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| ctx(path.display(), e))
}

/// Bind-mount the namespace `fd` holds at `at`, so that it outlives the fd
/// and the agent, and runtimes join it by path.
fn pin_namespace(ns: Ns, fd: &OwnedFd, at: &Path) -> io::Result<()> {
    fs::File::create(at)?;
    mount_bind(format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(), at).map_err(|e| {
        ctx(
            format!("pinning {} namespace at {}", ns.file(), at.display()),
            e,
        )
    })
}

/// Run `f` inside the network namespace pinned at `ns`, then return to the
/// agent's own; sockets made by `f` stay in the pod's namespace.
pub fn in_network_namespace<T>(ns: &Path, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    let original = open_namespace(Path::new("/proc/thread-self/ns/net"))?;
    let target = open_namespace(ns)?;
    rustix::thread::move_into_link_name_space(target.as_fd(), Some(LinkNameSpaceType::Network))
        .map_err(|e| ctx(format!("entering {}", ns.display()), e))?;
    let result = f();
    rustix::thread::move_into_link_name_space(original.as_fd(), Some(LinkNameSpaceType::Network))
        .map_err(|e| ctx("returning to the agent's network namespace", e))?;
    result
}

/// Bring `lo` up in the current network namespace.
fn loopback_up() -> io::Result<()> {
    // SAFETY: a plain socket and two ioctls on a zeroed, NUL-terminated ifreq;
    // the socket is closed before returning.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        // The request is an int on musl and an unsigned long on glibc.
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let mut result = libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut req);
        if result == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            result = libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &req);
        }
        let err = io::Error::last_os_error();
        libc::close(fd);
        if result != 0 {
            return Err(ctx("bringing up lo", err));
        }
    }
    Ok(())
}

/// /etc/hosts, /etc/hostname and /etc/resolv.conf for the pod's containers.
fn write_etc(pod: &Pod, view: &SandboxView) -> io::Result<()> {
    let hosts = if pod.spec.host_network {
        fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        format!(
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n127.0.1.1\t{}\n",
            view.hostname
        )
    };
    let host_name = if pod.spec.host_network {
        rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned()
    } else {
        view.hostname.clone()
    };
    fs::write(view.etc.join("hosts"), hosts)?;
    fs::write(view.etc.join("hostname"), format!("{host_name}\n"))?;
    fs::write(
        view.etc.join("resolv.conf"),
        fs::read("/etc/resolv.conf").unwrap_or_default(),
    )
}

/// emptyDir directories (tmpfs for `medium: Memory`), hostPath type checks,
/// and the files of configMap, secret (on tmpfs: never on disk) and
/// downwardAPI volumes, written anew with every sandbox.
fn prepare_volumes(paths: &Paths, pod: &Pod, facts: &PodFacts<'_>) -> io::Result<()> {
    let dirs = volume_paths(paths, pod)?;
    for (i, v) in pod.spec.volumes.iter().enumerate() {
        let Some(path) = dirs.get(&v.name) else {
            continue;
        };
        let field = format!("spec.volumes[{i}]");
        if let Some(e) = &v.empty_dir {
            if path.is_dir() {
                continue;
            }
            fs::create_dir_all(path)?;
            fs::set_permissions(path, fs::Permissions::from_mode(0o777))?;
            if e.medium == "Memory" {
                let mut options = String::from("mode=1777");
                if let Some(limit) = &e.size_limit {
                    let bytes = quantity::bytes_of(limit).map_err(|m| ctx(&field, m))?;
                    options.extend(super::fsutil::tmpfs_size(bytes));
                }
                mount_fs(
                    "tmpfs",
                    path,
                    "tmpfs",
                    MountFlags::NOSUID | MountFlags::NODEV,
                    &options,
                )
                .map_err(|e| ctx(format!("{field}.emptyDir"), e))?;
            }
        } else if let Some(h) = &v.host_path {
            // The others' are resolved below their allowed prefix and
            // checked at each start (host_path.rs), never by this path.
            if crate::pod::policy::trusted(pod) {
                check_host_path(path, &h.kind)
                    .map_err(|m| ctx(format!("{field}.hostPath ({})", path.display()), m))?;
            }
        } else if let Some(files) = facts.volume_files(v).map_err(|m| ctx(&field, m))? {
            write_volume_files(path, v.secret.is_some(), &files).map_err(|e| ctx(&field, e))?;
        }
    }
    Ok(())
}

/// Replace a projected volume's files; a secret volume is a tmpfs of its own.
fn write_volume_files(dir: &Path, on_tmpfs: bool, files: &[VolumeFile]) -> io::Result<()> {
    if on_tmpfs && !dir.is_dir() {
        fs::create_dir_all(dir)?;
        mount_fs(
            "tmpfs",
            dir,
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
            SECRET_ROOT,
        )?;
    }
    fs::create_dir_all(dir)?;
    for entry in fs::read_dir(dir)?.flatten() {
        remove_tree(&entry.path())?;
    }
    let root = safe_path::open_dir(dir)?;
    for (name, content, mode) in files {
        write_volume_file(root.as_fd(), name, content, *mode)
            .map_err(|e| ctx(format!("{}: {name:?}", dir.display()), e))?;
    }
    Ok(())
}

/// One file of a projected volume at `name` (checked as a path below the
/// volume), made inside `root` whatever links it holds, with exactly `mode`'s
/// permission bits (never set-user-ID), whatever the umask.
fn write_volume_file(
    root: BorrowedFd<'_>,
    name: &str,
    content: &[u8],
    mode: u32,
) -> io::Result<()> {
    let rel = Path::new(name);
    if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
        safe_path::mkdir_all_in_root(root, parent, Mode::from_raw_mode(0o755))?;
    }
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW;
    let fd = safe_path::open_in_root(root, rel, flags, Mode::from_raw_mode(0o600))?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o777))?;
    fs::File::from(fd).write_all(content)
}

/// Why a hostPath volume's path fails its `type`.
#[derive(Debug)]
enum HostPathError {
    /// `DirectoryOrCreate` or `FileOrCreate` could not create it.
    Create(io::Error),
    /// The path is not of the `type` asked for (or missing).
    NotA { kind: String },
}

impl std::fmt::Display for HostPathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPathError::Create(e) => e.fmt(f),
            HostPathError::NotA { kind } => write!(f, "hostPath type check failed: not a {kind}"),
        }
    }
}

impl std::error::Error for HostPathError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HostPathError::Create(e) => Some(e),
            HostPathError::NotA { .. } => None,
        }
    }
}

/// The hostPath `type` checks of the kubelet.
fn check_host_path(path: &Path, kind: &str) -> Result<(), HostPathError> {
    let meta = fs::metadata(path);
    let is = |f: fn(&fs::FileType) -> bool| meta.as_ref().is_ok_and(|m| f(&m.file_type()));
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" if !path.exists() => {
            fs::create_dir_all(path).map_err(HostPathError::Create)?;
            fs::set_permissions(path, fs::Permissions::from_mode(0o755))
                .map_err(HostPathError::Create)
        }
        "FileOrCreate" if !path.exists() => fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map(drop)
            .map_err(HostPathError::Create),
        "Directory" | "DirectoryOrCreate" if is(fs::FileType::is_dir) => Ok(()),
        "File" | "FileOrCreate" if is(fs::FileType::is_file) => Ok(()),
        "Socket" if is(FileTypeExt::is_socket) => Ok(()),
        "CharDevice" if is(FileTypeExt::is_char_device) => Ok(()),
        "BlockDevice" if is(FileTypeExt::is_block_device) => Ok(()),
        other => Err(HostPathError::NotA { kind: other.into() }),
    }
}

/// Unmount what the sandbox mounted in its run dir: namespaces, /dev/shm,
/// subPath and hostPath pins.
fn teardown_mounts(paths: &Paths, uid: &str) -> io::Result<()> {
    let dir = paths.pod_run(uid)?;
    for ns in ["net", "ipc", "uts"] {
        let file = dir.join("ns").join(ns);
        unmount(&file)?;
        match fs::remove_file(&file) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    unmount(&dir.join("shm"))?;
    super::host_path::remove_all(&dir.join(super::host_path::HOST_PATHS))?;
    super::subpath::remove_all(&dir.join(SUBPATHS))
}

/// The pod completed: release its namespaces, keep records and volumes.
pub fn stop(paths: &Paths, uid: &str) -> io::Result<()> {
    teardown_mounts(paths, uid)?;
    let record = paths.pod_run(uid)?.join("sandbox.json");
    if let Some(mut r) = read_json::<SandboxRecord>(&record)? {
        r.ready = false;
        write_json(&record, &r)?;
    }
    Ok(())
}

/// The pod is gone: namespaces, volumes and records go; logs stay.
pub fn remove(paths: &Paths, uid: &str) -> io::Result<()> {
    teardown_mounts(paths, uid)?;
    let volumes = paths.pod_volumes(uid)?;
    if let Ok(entries) = fs::read_dir(&volumes) {
        for e in entries.flatten() {
            unmount(&e.path())?;
        }
    }
    remove_tree(&paths.pod_disk(uid)?)?;
    remove_tree(&paths.pod_run(uid)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_secret_volume_is_a_private_tmpfs_with_files_of_its_modes() {
        let base = std::env::temp_dir().join(format!("picolet-secret-{}", std::process::id()));
        let dir = base.join("volumes/creds");
        let _ = unmount(&dir);
        let _ = fs::remove_dir_all(&base);
        let files: Vec<VolumeFile> = vec![
            ("default".into(), b"a".to_vec(), 0o644),
            ("owner-only".into(), b"b".to_vec(), 0o400),
            ("sub/group".into(), b"c".to_vec(), 0o440),
            // Only permission bits, even if validation let a set-user-ID through.
            ("setuid".into(), b"d".to_vec(), 0o4755),
            // Stays inside the volume, even if validation let `..` through.
            ("../../escape".into(), b"e".to_vec(), 0o644),
        ];
        write_volume_files(&dir, true, &files).unwrap();
        let fs_type = rustix::fs::statfs(&dir).unwrap().f_type;
        assert_eq!(
            fs_type as u64,
            libc::TMPFS_MAGIC as u64,
            "a tmpfs of its own"
        );
        assert_eq!(mode(&dir), 0o711, "not listable by others");
        assert_eq!(mode(&dir.join("default")), 0o644);
        assert_eq!(mode(&dir.join("owner-only")), 0o400);
        assert_eq!(mode(&dir.join("sub/group")), 0o440);
        assert_eq!(mode(&dir.join("setuid")), 0o755);
        assert_eq!(fs::read_to_string(dir.join("escape")).unwrap(), "e");
        assert!(!base.join("escape").exists());
        // Written again (a new sandbox): the same, not stacked.
        write_volume_files(&dir, true, &files[..1]).unwrap();
        assert!(!dir.join("owner-only").exists());
        unmount(&dir).unwrap();
        assert!(
            fs::read_dir(&dir).unwrap().next().is_none(),
            "nothing on disk"
        );
        fs::remove_dir_all(&base).unwrap();
    }
}
