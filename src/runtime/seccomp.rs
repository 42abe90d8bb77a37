//! The seccomp filter a container runs under: which profile a pod asks for
//! (`securityContext.seccompProfile`, the container's over the pod's, else
//! the node's `seccompDefault`), and the built-in `RuntimeDefault` profile.
//!
//! The profile is containerd's default, rebuilt here: every syscall outside
//! the allowlist fails with EPERM; a few more open up with the capability
//! that guards them in the kernel (mount with CAP_SYS_ADMIN, ptrace's
//! relatives with CAP_SYS_PTRACE...); without CAP_SYS_ADMIN, `clone` may not
//! create namespaces and `clone3` (whose flags a filter cannot read) fails
//! with ENOSYS so that libc falls back to `clone`. Names the runtime's
//! libseccomp does not know are skipped by the runtime, so the list may name
//! syscalls newer than the host's kernel.

use crate::pod::{Container, Pod};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};

/// What a container runs under, once the pod's fields are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    RuntimeDefault,
    Unconfined,
}

/// The container's `seccompProfile.type` wins over the pod's; with neither,
/// `RuntimeDefault` when the node's `seccompDefault` is on, else
/// `Unconfined` (the kubelet's rules). Validation lets only `RuntimeDefault`
/// and `Unconfined` through; anything else is confined, never the opposite.
pub fn choose(pod: &Pod, container: &Container, seccomp_default: bool) -> Choice {
    let from_container = container
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref());
    let from_pod = pod
        .spec
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref());
    match from_container.or(from_pod).map(|p| p.kind.as_str()) {
        Some("Unconfined") => Choice::Unconfined,
        Some(_) => Choice::RuntimeDefault,
        None if seccomp_default => Choice::RuntimeDefault,
        None => Choice::Unconfined,
    }
}

/// Allowed for every container, whatever its capabilities. `socket`,
/// `personality` and `clone` are allowed below with argument rules.
const ALLOWED: &str = "
    _llseek _newselect accept accept4 access adjtimex alarm bind brk cachestat capget capset
    chdir chmod chown chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64
    clock_gettime clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range
    connect copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl
    epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve
    execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate
    fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64
    fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64
    fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64
    futex_wait futex_waitv futex_wake futimesat get_robust_list get_thread_area getcpu
    getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups
    getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom
    getresgid getresgid32 getresuid getresuid32 getrlimit getrusage getsid getsockname
    getsockopt gettid gettimeofday getuid getuid32 getxattr getxattrat inotify_add_watch
    inotify_init inotify_init1 inotify_rm_watch io_cancel io_destroy io_getevents
    io_pgetevents io_pgetevents_time64 io_setup io_submit ioctl ioprio_get ioprio_set ipc
    kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32
    lgetxattr link linkat listen listmount listxattr listxattrat llistxattr lremovexattr
    lseek lsetxattr lsm_get_self_attr lsm_list_modules lsm_set_self_attr lstat lstat64
    madvise map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat
    mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open
    mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap
    mseal msgctl msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at
    nanosleep newfstatat open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2
    pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2
    prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read
    readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
    remap_file_pages removexattr removexattrat rename renameat renameat2 restart_syscall
    rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn
    rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo
    sched_get_priority_max sched_get_priority_min sched_getaffinity sched_getattr
    sched_getparam sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
    sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp
    select semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64
    sendmmsg sendmsg sendto set_robust_list set_thread_area set_tid_address setfsgid
    setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid
    setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid
    setreuid32 setrlimit setsid setsockopt setuid setuid32 setxattr setxattrat shmat shmctl
    shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall
    socketpair splice stat stat64 statfs statfs64 statmount statx symlink symlinkat sync
    sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete
    timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
    timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times
    tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat uretprobe utime
    utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
    process_vm_readv process_vm_writev ptrace";
// The last line: ptrace could bypass seccomp before Linux 4.8, which is why
// containerd checks the kernel; picolet needs pidfds (5.3), past that.

/// The architecture's own syscalls, and the ABIs a filter must also cover
/// (a 64-bit kernel runs 32-bit code: a filter for one ABI only would leave
/// the other open).
#[cfg(target_arch = "x86_64")]
const ARCH: (&str, &[Arch]) = (
    "arch_prctl modify_ldt",
    &[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
);
#[cfg(target_arch = "aarch64")]
const ARCH: (&str, &[Arch]) = (
    "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls",
    &[Arch::ScmpArchArm, Arch::ScmpArchAarch64],
);
#[cfg(target_arch = "arm")]
const ARCH: (&str, &[Arch]) = (
    "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls",
    &[Arch::ScmpArchArm],
);
#[cfg(target_arch = "riscv64")]
const ARCH: (&str, &[Arch]) = ("riscv_flush_icache riscv_hwprobe", &[Arch::ScmpArchRiscv64]);
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "riscv64"
)))]
const ARCH: (&str, &[Arch]) = ("", &[]);

/// Syscalls allowed when the container holds the capability.
const BY_CAPABILITY: [(&str, &str); 14] = [
    ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
    (
        "CAP_SYS_ADMIN",
        "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount
         mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname
         sethostname setns syslog umount umount2 unshare",
    ),
    ("CAP_SYS_BOOT", "reboot"),
    ("CAP_SYS_CHROOT", "chroot"),
    ("CAP_SYS_MODULE", "delete_module init_module finit_module"),
    ("CAP_SYS_PACCT", "acct"),
    (
        "CAP_SYS_PTRACE",
        "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace",
    ),
    ("CAP_SYS_RAWIO", "iopl ioperm"),
    (
        "CAP_SYS_TIME",
        "settimeofday stime clock_settime clock_settime64",
    ),
    ("CAP_SYS_TTY_CONFIG", "vhangup"),
    (
        "CAP_SYS_NICE",
        "get_mempolicy mbind set_mempolicy set_mempolicy_home_node",
    ),
    ("CAP_SYSLOG", "syslog"),
    ("CAP_BPF", "bpf"),
    ("CAP_PERFMON", "perf_event_open"),
];

/// `personality(2)` personas allowed: Linux, with unaligned accesses fixed
/// (0x8), their 32-bit-address forms (0x20000), and the query (0xffffffff).
const PERSONAS: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// AF_ALG (kernel crypto) and AF_VSOCK (the hypervisor) are refused; the
/// family between them (AF_NFC) is not.
const AF_ALG: u64 = 38;
const AF_VSOCK: u64 = 40;

/// The namespace flags of `clone(2)`: none without CAP_SYS_ADMIN.
const CLONE_NAMESPACES: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// The `RuntimeDefault` profile for a container whose bounding set holds
/// the capabilities for which `has` answers true.
pub fn runtime_default(has: impl Fn(&str) -> bool) -> LinuxSeccomp {
    let mut rules = vec![
        allow(ALLOWED, None),
        allow(ARCH.0, None),
        allow(
            "socket",
            Some(arg(0, LinuxSeccompOperator::ScmpCmpLt, AF_ALG)),
        ),
        allow(
            "socket",
            Some(arg(0, LinuxSeccompOperator::ScmpCmpEq, AF_ALG + 1)),
        ),
        allow(
            "socket",
            Some(arg(0, LinuxSeccompOperator::ScmpCmpGt, AF_VSOCK)),
        ),
    ];
    for persona in PERSONAS {
        let rule = arg(0, LinuxSeccompOperator::ScmpCmpEq, persona);
        rules.push(allow("personality", Some(rule)));
    }
    for (capability, names) in BY_CAPABILITY {
        if has(capability) {
            rules.push(allow(names, None));
        }
    }
    if !has("CAP_SYS_ADMIN") {
        // The flags are clone's first argument, except on s390.
        let flags = usize::from(cfg!(target_arch = "s390x"));
        // Masked equal: (flags & CLONE_NAMESPACES) == 0.
        let no_namespaces = arg(
            flags,
            LinuxSeccompOperator::ScmpCmpMaskedEq,
            CLONE_NAMESPACES,
        );
        rules.push(allow("clone", Some(no_namespaces)));
        let mut clone3 = allow("clone3", None);
        clone3.set_action(LinuxSeccompAction::ScmpActErrno);
        clone3.set_errno_ret(Some(libc::ENOSYS as u32));
        rules.push(clone3);
    }
    rules.retain(|r| !r.names().is_empty());
    let mut profile = LinuxSeccomp::default();
    profile
        .set_default_action(LinuxSeccompAction::ScmpActErrno)
        .set_default_errno_ret(Some(libc::EPERM as u32))
        .set_architectures(Some(ARCH.1.to_vec()))
        .set_syscalls(Some(rules));
    profile
}

fn allow(names: &str, rule: Option<LinuxSeccompArg>) -> LinuxSyscall {
    let mut syscall = LinuxSyscall::default();
    syscall
        .set_names(names.split_whitespace().map(str::to_string).collect())
        .set_action(LinuxSeccompAction::ScmpActAllow)
        .set_args(rule.map(|r| vec![r]));
    syscall
}

/// One argument test; a masked one compares `arg & value` with 0.
fn arg(index: usize, op: LinuxSeccompOperator, value: u64) -> LinuxSeccompArg {
    let b = LinuxSeccompArgBuilder::default()
        .index(index)
        .op(op)
        .value(value);
    let b = if op == LinuxSeccompOperator::ScmpCmpMaskedEq {
        b.value_two(0u64)
    } else {
        b
    };
    // Every field is set: building cannot fail.
    b.build().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::decode::decode_manifest;

    fn pod(pod_profile: &str, container_profile: &str) -> Pod {
        let field = |indent: &str, kind: &str| {
            if kind.is_empty() {
                String::new()
            } else {
                format!("{indent}securityContext:\n{indent}  seccompProfile:\n{indent}    type: {kind}\n")
            }
        };
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n{}  containers:\n  - name: c\n    image: busybox\n{}",
            field("  ", pod_profile),
            field("    ", container_profile)
        );
        decode_manifest(yaml.as_bytes()).unwrap().remove(0).pod
    }

    /// The rules naming `syscall`, as (action, errno, argument tests).
    fn rules_for(profile: &LinuxSeccomp, syscall: &str) -> Vec<LinuxSyscall> {
        let rules = profile.syscalls().clone().unwrap_or_default();
        rules
            .into_iter()
            .filter(|r| r.names().iter().any(|n| n == syscall))
            .collect()
    }

    fn unconditionally_allowed(profile: &LinuxSeccomp, syscall: &str) -> bool {
        rules_for(profile, syscall)
            .iter()
            .any(|r| r.action() == LinuxSeccompAction::ScmpActAllow && r.args().is_none())
    }

    #[test]
    fn the_container_profile_wins_then_the_pod_then_the_node_default() {
        use Choice::*;
        // (pod, container, seccompDefault, expected): kubelet
        // pkg/kubelet/kuberuntime/helpers.go getSeccompProfile.
        let cases = [
            ("", "", false, Unconfined),
            ("", "", true, RuntimeDefault),
            ("RuntimeDefault", "", false, RuntimeDefault),
            ("Unconfined", "", true, Unconfined),
            ("RuntimeDefault", "Unconfined", false, Unconfined),
            ("Unconfined", "RuntimeDefault", false, RuntimeDefault),
            ("", "Unconfined", true, Unconfined),
        ];
        for (p, c, default, want) in cases {
            let pod = pod(p, c);
            let got = choose(&pod, &pod.spec.containers[0], default);
            assert_eq!(got, want, "pod {p:?} container {c:?} default {default}");
        }
    }

    #[test]
    fn the_default_profile_refuses_what_containerd_refuses() {
        let plain = runtime_default(|_| false);
        assert_eq!(plain.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(plain.default_errno_ret(), Some(1));
        let arches = plain.architectures().clone().unwrap_or_default();
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            arches,
            [Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
        #[cfg(target_arch = "aarch64")]
        assert_eq!(arches, [Arch::ScmpArchArm, Arch::ScmpArchAarch64]);
        for ok in ["read", "execve", "openat2", "futex", "ptrace", "socketpair"] {
            assert!(unconditionally_allowed(&plain, ok), "{ok}");
        }
        for refused in [
            "unshare",
            "mount",
            "setns",
            "chroot",
            "reboot",
            "kexec_load",
            "bpf",
            "keyctl",
            "add_key",
            "init_module",
            "open_by_handle_at",
            "kcmp",
            "syslog",
            "acct",
        ] {
            assert!(rules_for(&plain, refused).is_empty(), "{refused}");
        }
        // clone without namespace flags; clone3 answers ENOSYS.
        let clone = rules_for(&plain, "clone");
        let args = clone[0].args().clone().unwrap_or_default();
        assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        assert_eq!(
            (args[0].value(), args[0].value_two()),
            (0x7e02_0000, Some(0))
        );
        let clone3 = rules_for(&plain, "clone3");
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3[0].errno_ret(), Some(38));
        // socket: every family but AF_ALG (38) and AF_VSOCK (40).
        let socket: Vec<_> = rules_for(&plain, "socket")
            .iter()
            .flat_map(|r| r.args().clone().unwrap_or_default())
            .map(|a| (a.op(), a.value()))
            .collect();
        assert_eq!(
            socket,
            [
                (LinuxSeccompOperator::ScmpCmpLt, 38),
                (LinuxSeccompOperator::ScmpCmpEq, 39),
                (LinuxSeccompOperator::ScmpCmpGt, 40)
            ]
        );
        assert_eq!(rules_for(&plain, "personality").len(), 5);
    }

    #[test]
    fn capabilities_open_their_syscalls() {
        let admin = runtime_default(|c| c == "CAP_SYS_ADMIN");
        for ok in ["unshare", "mount", "setns", "clone", "clone3"] {
            assert!(unconditionally_allowed(&admin, ok), "{ok}");
        }
        assert!(rules_for(&admin, "clone3")
            .iter()
            .all(|r| r.action() == LinuxSeccompAction::ScmpActAllow));
        let ptrace = runtime_default(|c| c == "CAP_SYS_PTRACE");
        assert!(unconditionally_allowed(&ptrace, "kcmp"));
        assert!(!unconditionally_allowed(&ptrace, "mount"));
        let time = runtime_default(|c| c == "CAP_SYS_TIME");
        assert!(unconditionally_allowed(&time, "settimeofday"));
        assert!(!unconditionally_allowed(&admin, "settimeofday"));
    }
}
