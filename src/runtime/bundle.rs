//! The OCI bundle's config.json for one container, built with oci-spec from
//! runc's defaults (mounts, masked and read-only paths) plus the pod: shared
//! namespaces, /etc files, volumes, security context.
//!
//! The output is not byte-stable (capabilities are a set): nothing compares it.

use crate::image::config::Process as ImageProcess;
use crate::pod::validate::{capability_name, CAPABILITIES};
use crate::pod::DEFAULT_CAPS;
use crate::pod::{Container, Pod, SecurityContext};
use crate::runtime::seccomp::{self, Choice};
use oci_spec::runtime::{
    Capability, Linux, LinuxBuilder, LinuxCapabilities, LinuxNamespaceBuilder, LinuxNamespaceType,
    Mount, MountBuilder, Process, ProcessBuilder, RootBuilder, Spec, UserBuilder,
};
use oci_spec::OciSpecError;
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// Why a container's config.json cannot be built.
#[derive(Debug)]
pub enum BundleError {
    /// oci-spec's builders refused a part of the spec.
    Spec(OciSpecError),
    /// A volume mount names a volume the sandbox did not prepare.
    VolumeNotPrepared { volume: String },
    /// A subPath's pin (made by `subpath::prepare`) cannot be named.
    SubPath {
        sub_path: String,
        source: std::io::Error,
    },
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleError::Spec(source) => source.fmt(f),
            BundleError::VolumeNotPrepared { volume } => {
                write!(f, "volume {volume:?} is not prepared")
            }
            BundleError::SubPath { sub_path, source } => {
                write!(f, "subPath {sub_path:?}: {source}")
            }
        }
    }
}

impl std::error::Error for BundleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BundleError::Spec(source) => Some(source),
            BundleError::VolumeNotPrepared { .. } => None,
            BundleError::SubPath { source, .. } => Some(source),
        }
    }
}

/// The pod-level things a container joins, all prepared by the sandbox.
#[derive(Debug, Clone)]
pub struct SandboxView {
    /// Network namespace file; `None` for hostNetwork.
    pub net: Option<PathBuf>,
    /// IPC namespace file.
    pub ipc: PathBuf,
    /// UTS namespace file; `None` for hostNetwork (the host's name).
    pub uts: Option<PathBuf>,
    /// Directory holding `hosts`, `hostname`, `resolv.conf`.
    pub etc: PathBuf,
    /// The pod's shared /dev/shm.
    pub shm: PathBuf,
    /// The pod's hostname, set unless hostNetwork.
    pub hostname: String,
    /// Where `subpath::prepare` pins the pod's resolved subPaths.
    pub subpaths: PathBuf,
}

/// A volume's directory on the host, by name.
pub type VolumePaths = std::collections::BTreeMap<String, PathBuf>;

/// Where the container sits in the node: its resources, and the node's
/// defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The container's cgroup for the OOM killer and the limits; `None`
    /// with `--cgroups off`.
    pub cgroups_path: Option<String>,
    /// The kubelet's OOM score for the container's QoS class.
    pub oom_score_adj: i64,
    /// The node's `seccompDefault`: `RuntimeDefault` for containers that
    /// name no profile.
    pub seccomp_default: bool,
}

/// Who the process runs as, already resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// The uid the process runs as.
    pub uid: u32,
    /// The gid the process runs as.
    pub gid: u32,
}

fn bind(destination: &str, source: &Path, read_only: bool) -> Result<Mount, BundleError> {
    let mut options = vec!["rbind".to_string(), "rprivate".to_string()];
    if read_only {
        options.push("ro".into());
    }
    MountBuilder::default()
        .destination(destination)
        .typ("bind")
        .source(source)
        .options(options)
        .build()
        .map_err(BundleError::Spec)
}

/// Build the spec. `rootfs` is relative to the bundle.
pub fn build(
    pod: &Pod,
    container: &Container,
    process: &ImageProcess,
    identity: Identity,
    sandbox: &SandboxView,
    volumes: &VolumePaths,
    placement: &Placement,
) -> Result<Spec, BundleError> {
    let sc = container.security_context.clone().unwrap_or_default();
    let privileged = sc.privileged == Some(true);
    let caps = capability_set(&sc);
    let process = process_spec(pod, &sc, process, identity, placement, &caps)?;
    let mounts = mounts(pod, container, sandbox, volumes, privileged)?;
    let linux = linux_spec(pod, container, sandbox, placement, privileged, &caps)?;
    let root = RootBuilder::default()
        .path("rootfs")
        .readonly(sc.read_only_root_filesystem == Some(true))
        .build()
        .map_err(BundleError::Spec)?;

    let mut spec = Spec::default();
    spec.set_process(Some(process))
        .set_root(Some(root))
        .set_hostname(sandbox.uts.as_ref().map(|_| sandbox.hostname.clone()))
        .set_mounts(Some(mounts))
        .set_linux(Some(linux));
    Ok(spec)
}

/// The capabilities the container holds: all for a privileged one, else
/// the defaults (unless `drop: [ALL]`) less the dropped plus the added.
fn capability_set(sc: &SecurityContext) -> HashSet<Capability> {
    let mut caps: HashSet<Capability> = HashSet::new();
    if sc.privileged == Some(true) {
        caps.extend(all_capabilities());
        return caps;
    }
    let dropped_all = sc
        .capabilities
        .as_ref()
        .is_some_and(|c| c.drop.iter().any(|d| d.eq_ignore_ascii_case("ALL")));
    if !dropped_all {
        caps.extend(DEFAULT_CAPS.iter().filter_map(|c| capability(c)));
    }
    if let Some(c) = &sc.capabilities {
        for name in c.drop.iter().filter_map(|n| capability_name(n)) {
            if let Some(cap) = capability(&name) {
                caps.remove(&cap);
            }
        }
        for name in c.add.iter().filter_map(|n| capability_name(n)) {
            if name == "CAP_ALL" {
                caps.extend(all_capabilities());
            } else if let Some(cap) = capability(&name) {
                caps.insert(cap);
            }
        }
    }
    caps
}

/// The process: the image's command and env as merged with the container,
/// its user and groups, capabilities, and the OOM score.
fn process_spec(
    pod: &Pod,
    sc: &SecurityContext,
    process: &ImageProcess,
    identity: Identity,
    placement: &Placement,
    caps: &HashSet<Capability>,
) -> Result<Process, BundleError> {
    let mut capabilities = LinuxCapabilities::default();
    capabilities
        .set_bounding(Some(caps.clone()))
        .set_effective(Some(caps.clone()))
        .set_permitted(Some(caps.clone()))
        .set_inheritable(None)
        .set_ambient(None);

    let supplemental: Vec<u32> = pod
        .spec
        .security_context
        .iter()
        .flat_map(|s| &s.supplemental_groups)
        .filter_map(|g| u32::try_from(*g).ok())
        .collect();
    let user = UserBuilder::default()
        .uid(identity.uid)
        .gid(identity.gid)
        .additional_gids(supplemental)
        .build()
        .map_err(BundleError::Spec)?;
    ProcessBuilder::default()
        .terminal(false)
        .args(process.args.clone())
        .env(process.env.clone())
        .cwd(process.cwd.clone())
        .user(user)
        .capabilities(capabilities)
        .no_new_privileges(sc.allow_privilege_escalation == Some(false))
        .oom_score_adj(placement.oom_score_adj as i32)
        .build()
        .map_err(BundleError::Spec)
}

/// runc's default mounts (less /dev/shm), the pod's /dev/shm and /etc
/// files, and the container's volume mounts.
fn mounts(
    pod: &Pod,
    container: &Container,
    sandbox: &SandboxView,
    volumes: &VolumePaths,
    privileged: bool,
) -> Result<Vec<Mount>, BundleError> {
    let mut mounts: Vec<Mount> = oci_spec::runtime::get_default_mounts()
        .into_iter()
        .filter(|m| m.destination() != Path::new("/dev/shm"))
        .map(|mut m| {
            // A privileged container gets a writable /sys, as with containerd.
            if privileged && m.destination() == Path::new("/sys") {
                let opts = m.options().clone().unwrap_or_default();
                m.set_options(Some(opts.into_iter().filter(|o| o != "ro").collect()));
            }
            m
        })
        .collect();
    mounts.push(bind("/dev/shm", &sandbox.shm, false)?);
    for file in ["hosts", "hostname", "resolv.conf"] {
        mounts.push(bind(
            &format!("/etc/{file}"),
            &sandbox.etc.join(file),
            false,
        )?);
    }
    for (i, m) in container.volume_mounts.iter().enumerate() {
        let base = volumes
            .get(&m.name)
            .ok_or_else(|| BundleError::VolumeNotPrepared {
                volume: m.name.clone(),
            })?;
        // A subPath was resolved inside its volume and pinned there by
        // `subpath::prepare` before the bundle is built: never a host path
        // built from the string.
        let source = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            None => base.clone(),
            Some(sub) => super::subpath::target(&sandbox.subpaths, &m.name, &container.name, i)
                .map_err(|source| BundleError::SubPath {
                    sub_path: sub.into(),
                    source,
                })?,
        };
        // configMap, secret and downwardAPI volumes are read-only, always.
        let projected = pod.spec.volumes.iter().any(|v| {
            v.name == m.name
                && (v.config_map.is_some() || v.secret.is_some() || v.downward_api.is_some())
        });
        mounts.push(bind(&m.mount_path, &source, m.read_only || projected)?);
    }
    Ok(mounts)
}

/// The Linux part: the sandbox's namespaces, masked and read-only paths,
/// seccomp, and the cgroup with the container's limits.
fn linux_spec(
    pod: &Pod,
    container: &Container,
    sandbox: &SandboxView,
    placement: &Placement,
    privileged: bool,
    caps: &HashSet<Capability>,
) -> Result<Linux, BundleError> {
    let mut namespaces = vec![
        namespace(LinuxNamespaceType::Pid, None)?,
        namespace(LinuxNamespaceType::Mount, None)?,
        namespace(LinuxNamespaceType::Ipc, Some(&sandbox.ipc))?,
    ];
    if let Some(net) = &sandbox.net {
        namespaces.push(namespace(LinuxNamespaceType::Network, Some(net))?);
    }
    if let Some(uts) = &sandbox.uts {
        namespaces.push(namespace(LinuxNamespaceType::Uts, Some(uts))?);
    }
    let defaults = Linux::default();
    let mut linux = LinuxBuilder::default().namespaces(namespaces);
    if !privileged {
        linux = linux
            .masked_paths(defaults.masked_paths().clone().unwrap_or_default())
            .readonly_paths(defaults.readonly_paths().clone().unwrap_or_default());
    }
    // A privileged container runs unfiltered, as with containerd.
    if !privileged
        && seccomp::choose(pod, container, placement.seccomp_default) == Choice::RuntimeDefault
    {
        linux = linux.seccomp(seccomp::runtime_default(|name| {
            capability(name).is_some_and(|c| caps.contains(&c))
        }));
    }
    if let Some(path) = &placement.cgroups_path {
        linux = linux
            .cgroups_path(PathBuf::from(path))
            .resources(limits(container)?);
    }
    linux.build().map_err(BundleError::Spec)
}

/// The container's own limits, as the kubelet gives them to the runtime:
/// cpu shares from the request (runc turns them into cpu.weight on cgroup
/// v2), a cfs quota from the cpu limit, memory.max from the memory limit, and
/// memory.oom.group=1 so that an OOM kill takes the whole container.
fn limits(c: &Container) -> Result<oci_spec::runtime::LinuxResources, BundleError> {
    use crate::pod::resources::{amounts, cpu_quota, cpu_shares, CPU_PERIOD};
    use oci_spec::runtime::{LinuxCpuBuilder, LinuxMemoryBuilder, LinuxResourcesBuilder};
    let a = amounts(c);
    let mut cpu = LinuxCpuBuilder::default().shares(cpu_shares(a.cpu_request.unwrap_or(0)));
    if let Some(limit) = a.cpu_limit.filter(|l| *l > 0) {
        cpu = cpu.quota(cpu_quota(limit) as i64).period(CPU_PERIOD);
    }
    let mut resources = LinuxResourcesBuilder::default()
        .cpu(cpu.build().map_err(BundleError::Spec)?)
        .unified(std::collections::HashMap::from([(
            "memory.oom.group".to_string(),
            "1".to_string(),
        )]));
    if let Some(limit) = a.memory_limit.filter(|l| *l > 0) {
        let memory = LinuxMemoryBuilder::default()
            .limit(limit as i64)
            .build()
            .map_err(BundleError::Spec)?;
        resources = resources.memory(memory);
    }
    resources.build().map_err(BundleError::Spec)
}

fn namespace(
    kind: LinuxNamespaceType,
    path: Option<&Path>,
) -> Result<oci_spec::runtime::LinuxNamespace, BundleError> {
    let mut b = LinuxNamespaceBuilder::default().typ(kind);
    if let Some(p) = path {
        b = b.path(p);
    }
    b.build().map_err(BundleError::Spec)
}

/// Every capability in picolet's own bounding set, as containerd gives a
/// privileged container (or `add: [ALL]`) the capabilities it holds: one the
/// host withholds from the agent (or the kernel does not know) cannot be
/// granted, and runc would fail the start asking for it.
fn all_capabilities() -> impl Iterator<Item = Capability> {
    use rustix::thread::{capability_is_in_bounding_set, CapabilitySet};
    // CAPABILITIES is in the kernel's order: the index is the number.
    CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(number, _)| {
            capability_is_in_bounding_set(CapabilitySet::from_bits_retain(1 << number))
                .unwrap_or(false)
        })
        .filter_map(|(_, n)| capability(&format!("CAP_{n}")))
}

/// `CAP_NET_ADMIN` as oci-spec's type. Its `FromStr` wants `NET_ADMIN`
/// while its serde form is `CAP_NET_ADMIN`: go through serde, the form
/// config.json carries.
fn capability(name: &str) -> Option<Capability> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::decode::decode_manifest;

    /// The spec of the only container of a pod whose container has
    /// `security` as its securityContext, under the node's `seccompDefault`.
    fn spec_of(security: &str, seccomp_default: bool) -> Spec {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: busybox\n    securityContext: {security}\n"
        );
        let pod = decode_manifest(yaml.as_bytes()).unwrap().remove(0).pod;
        let process = ImageProcess {
            args: vec!["sh".into()],
            env: vec![],
            cwd: "/".into(),
            image_user: None,
        };
        let sandbox = SandboxView {
            net: None,
            ipc: "/proc/1/ns/ipc".into(),
            uts: None,
            etc: "/tmp/etc".into(),
            shm: "/tmp/shm".into(),
            hostname: "p".into(),
            subpaths: "/tmp/volume-subpaths".into(),
        };
        let placement = Placement {
            cgroups_path: None,
            oom_score_adj: 0,
            seccomp_default,
        };
        let identity = Identity { uid: 0, gid: 0 };
        let c = &pod.spec.containers[0];
        build(
            &pod,
            c,
            &process,
            identity,
            &sandbox,
            &VolumePaths::new(),
            &placement,
        )
        .unwrap()
    }

    fn seccomp(spec: &Spec) -> Option<oci_spec::runtime::LinuxSeccomp> {
        spec.linux().as_ref().and_then(|l| l.seccomp().clone())
    }

    #[test]
    fn seccomp_follows_the_profile_and_never_filters_a_privileged_container() {
        let runtime_default = "{seccompProfile: {type: RuntimeDefault}}";
        assert!(seccomp(&spec_of(runtime_default, false)).is_some());
        assert!(seccomp(&spec_of("{seccompProfile: {type: Unconfined}}", true)).is_none());
        assert!(seccomp(&spec_of("{}", true)).is_some());
        assert!(seccomp(&spec_of("{}", false)).is_none());
        // containerd: a privileged container gets no filter at all.
        let privileged = "{privileged: true, seccompProfile: {type: RuntimeDefault}}";
        assert!(seccomp(&spec_of(privileged, true)).is_none());
        // The filter follows the container's capabilities.
        let allows = |spec: &Spec, name: &str| {
            seccomp(spec)
                .and_then(|s| s.syscalls().clone())
                .unwrap_or_default()
                .iter()
                .any(|r| r.names().iter().any(|n| n == name) && r.args().is_none())
        };
        let admin = spec_of("{capabilities: {add: [SYS_ADMIN]}}", true);
        assert!(allows(&admin, "unshare"));
        assert!(!allows(&spec_of("{}", true), "unshare"));
        let chroot_dropped = spec_of("{capabilities: {drop: [SYS_CHROOT]}}", true);
        assert!(!allows(&chroot_dropped, "chroot"));
        assert!(allows(&spec_of("{}", true), "chroot"));
    }

    #[test]
    fn no_new_privileges_only_when_escalation_is_refused() {
        // kubelet pkg/securitycontext/util.go AddNoNewPrivileges: unset
        // means false (containerd's CRI clears its own default).
        let nnp = |security: &str| {
            spec_of(security, false)
                .process()
                .as_ref()
                .and_then(|p| p.no_new_privileges())
        };
        assert_eq!(nnp("{allowPrivilegeEscalation: false}"), Some(true));
        assert_eq!(nnp("{allowPrivilegeEscalation: true}"), Some(false));
        assert_eq!(nnp("{}"), Some(false));
    }

    #[test]
    fn every_known_capability_converts() {
        assert_eq!(
            DEFAULT_CAPS.iter().filter_map(|c| capability(c)).count(),
            DEFAULT_CAPS.len()
        );
        let every = CAPABILITIES.iter().map(|n| capability(&format!("CAP_{n}")));
        assert_eq!(every.flatten().count(), CAPABILITIES.len());
        // The bounding set, as /proc/self/status shows it.
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let bounding = status
            .lines()
            .find_map(|l| l.strip_prefix("CapBnd:"))
            .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap())
            .unwrap();
        let known = bounding & ((1 << CAPABILITIES.len()) - 1);
        assert_eq!(all_capabilities().count(), known.count_ones() as usize);
    }
}
