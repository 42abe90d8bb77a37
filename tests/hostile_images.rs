//! Hostile image layers against a real agent (issue 13): each test adds a
//! layer made by python3's `tarfile` on top of the busybox image, as a new
//! image in the agent's OCI layout, runs a pod with it beside a good pod,
//! and checks that nothing outside picolet's directories changed.

mod common;

use common::layers::{add_image_on_busybox, Layer};
use common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tar stream written by python3's `tarfile` from `script`, which adds
/// members to the open archive `t` (PAX format).
fn python_tar(script: &str) -> Vec<u8> {
    let program = format!(
        "import io, sys, tarfile\nbuf = io.BytesIO()\nt = tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT)\n\
         def add(name, kind, mode=0o755, link='', data=b''):\n    i = tarfile.TarInfo(name)\n    i.type = kind\n    i.mode = mode\n    i.linkname = link\n    i.size = len(data)\n    t.addfile(i, io.BytesIO(data))\n\
         {script}\nt.close()\nsys.stdout.buffer.write(buf.getvalue())\n"
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&program)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Add image `name` to the agent's layout: busybox:1.36 with `layer` on
/// top.
fn add_image(agent: &Agent, name: &str, layer: &[u8]) {
    let layout = agent.dir.join("root/images");
    add_image_on_busybox(&layout, name, Layer::gzip(&layout, layer));
}

/// A pod of one container running `script` in `image`.
fn pod(name: &str, image: &str, script: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: c\n    image: {image}\n    command: [\"sh\", \"-c\", {}]\n",
        serde_json::to_string(script).unwrap()
    )
}

/// A host file or directory the attack aims at, outside every picolet
/// directory.
struct Victim {
    path: PathBuf,
    mode: u32,
}

impl Victim {
    fn file(agent: &Agent, name: &str, mode: u32) -> Victim {
        let path = agent.dir.join(name);
        fs::write(&path, "host data").unwrap();
        Victim::with_mode(path, mode)
    }

    /// A directory with a file `data` in it.
    fn dir(agent: &Agent, name: &str, mode: u32) -> Victim {
        let path = agent.dir.join(name);
        fs::create_dir(&path).unwrap();
        fs::write(path.join("data"), "host data").unwrap();
        Victim::with_mode(path, mode)
    }

    fn with_mode(path: PathBuf, mode: u32) -> Victim {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        Victim { path, mode }
    }

    fn assert_untouched(&self) {
        let meta = fs::symlink_metadata(&self.path).expect("the victim still exists");
        assert_eq!(
            meta.mode() & 0o7777,
            self.mode,
            "{}'s mode",
            self.path.display()
        );
        let file = match meta.is_dir() {
            true => self.path.join("data"),
            false => self.path.clone(),
        };
        assert_eq!(fs::read_to_string(&file).unwrap(), "host data");
        if meta.is_dir() {
            assert_eq!(
                fs::read_dir(&self.path).unwrap().count(),
                1,
                "nothing added"
            );
        }
    }
}

/// A relative link target that climbs from the image's root to `path`.
fn climb_to(path: &Path) -> String {
    format!("{}{}", "../".repeat(30), path.display())
}

/// The good pod, started first and running: its image is unpacked.
fn start_with_good_pod(agent: &mut Agent) {
    agent.write_manifest("good.yaml", &pod("good", "busybox:1.36", "sleep 3600"));
    agent.start();
    agent.wait_pod("good", "running", 60, |p| running(p, "c"));
}

/// The hostile pod's container waits with CreateContainerError, its message
/// naming `entry`; the good pod runs on, not restarted.
fn assert_refused(agent: &Agent, name: &str, entry: &str) {
    let p = agent.wait_pod(name, "CreateContainerError", 60, |p| {
        container(p, "c")["state"]["waiting"]["reason"] == "CreateContainerError"
    });
    let message = container(&p, "c")["state"]["waiting"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(message.contains(entry), "{message}");
    let good = agent.pod("good").unwrap();
    assert!(running(&good, "c") && restarts(&good, "c") == 0, "{good}");
}

/// The reported escape: `evil -> ../../../tmp/victim` then `evil/` with
/// mode 0777 chmodded the host's file; a regular file over such a link
/// wrote through it. The layer is legitimate tar: it unpacks, and the
/// container sees a directory and a file of its own.
#[test]
fn a_directory_over_a_symlink_does_not_chmod_the_host() {
    let mut agent = Agent::new("hostile-symdir");
    let dir_victim = Victim::dir(&agent, "victim", 0o700);
    let file_victim = Victim::file(&agent, "victim-file", 0o644);
    let layer = python_tar(&format!(
        "add('evil', tarfile.SYMTYPE, 0o777, {:?})\nadd('evil', tarfile.DIRTYPE, 0o777)\n\
         add('evil2', tarfile.SYMTYPE, 0o777, {:?})\nadd('evil2', tarfile.REGTYPE, 0o4777, data=b'image data')\n",
        climb_to(&dir_victim.path),
        file_victim.path.display().to_string()
    ));
    add_image(&agent, "hostile-symdir:1", &layer);
    start_with_good_pod(&mut agent);
    agent.write_manifest(
        "hostile.yaml",
        &pod(
            "hostile",
            "hostile-symdir:1",
            "stat -c '%F %a' /evil /evil2; cat /evil2",
        ),
    );
    let p = agent.wait_pod("hostile", "Succeeded", 60, |p| phase(p) == "Succeeded");
    dir_victim.assert_untouched();
    file_victim.assert_untouched();
    assert_eq!(
        agent.logs("hostile", &[]),
        "directory 777\nregular file 4777\nimage data\n",
        "{p}"
    );
    assert!(running(&agent.pod("good").unwrap(), "c"));
}

/// The reported escape: an entry `.wh...`, a whiteout of `..`, deleted every
/// unpacked image under `<root>/rootfs`.
#[test]
fn a_whiteout_of_dot_dot_is_an_error_and_other_images_stay() {
    let mut agent = Agent::new("hostile-whiteout");
    let layer = python_tar("add('etc/.wh...', tarfile.REGTYPE, 0o644)\n");
    add_image(&agent, "hostile-wh:1", &layer);
    start_with_good_pod(&mut agent);
    let rootfs = agent.dir.join("root/rootfs");
    let unpacked: Vec<_> = fs::read_dir(&rootfs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(unpacked.len(), 1, "busybox is unpacked: {unpacked:?}");
    agent.write_manifest("hostile.yaml", &pod("hostile", "hostile-wh:1", "true"));
    assert_refused(&agent, "hostile", "etc/.wh...");
    assert!(
        unpacked[0].join("bin/busybox").is_file(),
        "busybox's tree stays"
    );
    let left: Vec<_> = fs::read_dir(&rootfs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(left, unpacked, "no partial unpack left");
}

/// A 64 MiB PAX header cost the agent 100 MB: now the header's size alone
/// is an error, and the agent stays within its memory budget.
#[test]
fn a_pax_bomb_is_an_error_within_the_memory_budget() {
    let mut agent = Agent::new("hostile-pax");
    let layer = python_tar("add('bomb-' + 'a' * (64 << 20), tarfile.REGTYPE, 0o644)\n");
    add_image(&agent, "hostile-pax:1", &layer);
    start_with_good_pod(&mut agent);
    agent.write_manifest("hostile.yaml", &pod("hostile", "hostile-pax:1", "true"));
    agent.wait_pod("hostile", "an error", 60, |p| {
        !container(p, "c")["state"]["waiting"]["message"].is_null()
    });
    let status = fs::read_to_string(format!("/proc/{}/status", agent.pid())).unwrap();
    let hwm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(hwm_kib < 20 * 1024, "the agent's peak RSS is {hwm_kib} KiB");
    assert_refused(&agent, "hostile", "'x' extension header of 67108884 bytes");
}

/// The image's /etc/passwd is read for runAsUser: a link to a host file
/// resolves inside the image (where it names nothing), and a FIFO is an
/// error at once instead of blocking the agent's loop.
#[test]
fn the_image_passwd_is_read_inside_the_image_and_never_blocks() {
    let mut agent = Agent::new("hostile-passwd");
    let host_passwd = agent.dir.join("host-passwd");
    fs::write(&host_passwd, "hostuser:x:4242:4343::/:/bin/sh\n").unwrap();
    let link = python_tar(&format!(
        "add('etc/passwd', tarfile.SYMTYPE, 0o777, {:?})\n",
        host_passwd.display().to_string()
    ));
    add_image(&agent, "passwd-link:1", &link);
    add_image(
        &agent,
        "passwd-fifo:1",
        &python_tar("add('etc/passwd', tarfile.FIFOTYPE, 0o644)\n"),
    );
    start_with_good_pod(&mut agent);
    let as_user = |name: &str, image: &str| {
        pod(name, image, "id -u; id -g").replace(
            "  containers:\n",
            "  securityContext:\n    runAsUser: 4242\n  containers:\n",
        )
    };
    agent.write_manifest("link.yaml", &as_user("link", "passwd-link:1"));
    agent.wait_pod("link", "Succeeded", 60, |p| phase(p) == "Succeeded");
    assert_eq!(
        agent.logs("link", &[]),
        "4242\n0\n",
        "the host's passwd gave the group"
    );
    agent.write_manifest("fifo.yaml", &as_user("fifo", "passwd-fifo:1"));
    let p = agent.wait_pod("fifo", "CreateContainerConfigError", 60, |p| {
        container(p, "c")["state"]["waiting"]["reason"] == "CreateContainerConfigError"
    });
    assert_eq!(
        container(&p, "c")["state"]["waiting"]["message"],
        "the image's /etc/passwd: not a regular file"
    );
    // The loop goes on: a new pod starts.
    agent.write_manifest("after.yaml", &pod("after", "busybox:1.36", "sleep 3600"));
    agent.wait_pod("after", "running", 60, |p| running(p, "c"));
}
