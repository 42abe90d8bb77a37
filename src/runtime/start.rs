//! Starting one container instance: image, merged process, identity, writable
//! layer, bundle, and the monitor that runs and outlives it. An image not
//! pulled or not unpacked yet defers the start (`pending.rs`) until the pull
//! or unpack worker (`image/worker.rs`) is done with it.

use super::bundle::{self, Identity};
use super::layer;
use super::monitor::{MonitorArgs, NOTIFY_FD};
use super::paths::container_id;
use super::pending::{Awaited, PendingStart};
use super::records::{process_start_time, InstanceRecord, StartedRecord};
use super::{history, sandbox, Runtime, Watched};
use crate::engine::{ImageNotice, InstanceRef, Observation};
use crate::image::config::{merge, resolve_user, ProcessError};
use crate::image::reference::Reference;
use crate::image::worker::Job;
use crate::image::{Found, Image, ImageError};
use crate::pod::{Container, Pod, PullPolicy};
use crate::reactor::{Reactor, Token};
use crate::state::{read_json, write_json};
use crate::time::Time;
use rustix::fd::AsRawFd;
use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;

/// Why an instance could not be created: a kubelet waiting reason.
pub struct StartFailure {
    /// The kubelet's waiting reason: `CreateContainerConfigError`, `CreateContainerError`, ...
    pub reason: &'static str,
    /// What the container status says.
    pub message: String,
}

impl From<ImageError> for StartFailure {
    fn from(e: ImageError) -> Self {
        StartFailure {
            reason: e.reason,
            message: e.message,
        }
    }
}

fn container<'a>(pod: &'a Pod, instance: &InstanceRef) -> Result<&'a Container, StartFailure> {
    pod.container(&instance.container)
        .ok_or_else(|| fail("CreateContainerConfigError", "no such container in the pod"))
}

fn fail(reason: &'static str, message: impl std::fmt::Display) -> StartFailure {
    StartFailure {
        reason,
        message: message.to_string(),
    }
}

impl Runtime {
    /// `Action::StartContainer`: start now if the image is ready, else once
    /// it is pulled or unpacked. Only an immediate failure is answered at
    /// once.
    pub(super) fn start_container(
        &mut self,
        pod: Arc<Pod>,
        instance: InstanceRef,
        reactor: &mut Reactor,
    ) -> Vec<Observation> {
        let found = self.find_image(&pod, &instance);
        let image = container(&pod, &instance).map_or("", |c| c.image.as_str());
        if found.as_ref().is_ok_and(|f| self.held_by_upkeep(image, f)) {
            self.pending
                .wait(Awaited::Upkeep, PendingStart { pod, instance });
            return Vec::new();
        }
        self.proceed(pod, instance, found, true, reactor)
    }

    /// Act on what the store found: start, or wait for the worker that
    /// brings the image. `fresh`: this is the container's own look-up (not
    /// the one after a pull or an unpack), which the kubelet reports as
    /// "already present" when the image was there.
    fn proceed(
        &mut self,
        pod: Arc<Pod>,
        instance: InstanceRef,
        found: Result<Found, StartFailure>,
        fresh: bool,
        reactor: &mut Reactor,
    ) -> Vec<Observation> {
        let mut notices = Vec::new();
        let mut notice = |notice| {
            notices.push(Observation::Image {
                instance: instance.clone(),
                notice,
            })
        };
        let awaited = match found {
            Ok(Found::Ready(image)) => {
                if fresh {
                    notice(ImageNotice::Present);
                }
                self.start(&pod, &instance, &image, reactor).map(|()| None)
            }
            Ok(Found::Unpack(job)) => {
                if fresh {
                    notice(ImageNotice::Present);
                }
                let dest = job.dest().to_path_buf();
                self.unpacker
                    .request(job, reactor)
                    .map(|_| Some(Awaited::Unpack(dest)))
                    .map_err(|e| fail("CreateContainerError", format!("unpacking the image: {e}")))
            }
            Ok(Found::Pull(job)) => {
                notice(ImageNotice::Pulling);
                let key = job.key();
                self.puller
                    .request(job, reactor)
                    .map(|_| Some(Awaited::Pull(key)))
                    .map_err(|e| fail("ErrImagePull", format!("starting the pull: {e}")))
            }
            Err(failure) => Err(failure),
        };
        match awaited {
            Ok(None) => notices,
            Ok(Some(awaited)) => {
                let start = PendingStart { pod, instance };
                self.pending.wait(awaited, start);
                notices
            }
            Err(failure) => {
                notices.push(start_failed(&pod, instance, failure));
                notices
            }
        }
    }

    /// The unpack worker has news: run or fail the starts that waited.
    pub(super) fn on_unpacked(&mut self, reactor: &mut Reactor) -> Vec<Observation> {
        let mut observations = Vec::new();
        for done in self.unpacker.finished(reactor) {
            let waiting = self.pending.take(&Awaited::Unpack(done.key));
            match &done.output {
                Ok(()) => log::info!(
                    "image {:?}: unpacked in {:.1?}",
                    waiting.first().map_or("?", |s| s.image()),
                    done.took
                ),
                Err(e) => log::warn!("{} after {:.1?}", e.message, done.took),
            }
            for PendingStart { pod, instance } in waiting {
                observations.extend(match &done.output {
                    Ok(()) => {
                        let found = self.find_local(&pod, &instance);
                        self.proceed(pod, instance, found, false, reactor)
                    }
                    Err(e) => vec![start_failed(&pod, instance, e.clone().into())],
                });
            }
        }
        observations
    }

    /// The pull worker has news: go on with, or fail, the starts that
    /// waited; the engine reports the pull and backs off a failed one.
    pub(super) fn on_pulled(&mut self, reactor: &mut Reactor) -> Vec<Observation> {
        let mut observations = Vec::new();
        for done in self.puller.finished(reactor) {
            let waiting = self.pending.take(&Awaited::Pull(done.key.clone()));
            match &done.output {
                Ok(p) => {
                    log::info!(
                        "image {:?}: pulled {} ({} bytes) in {:.1?}",
                        done.key,
                        p.digest,
                        p.bytes,
                        done.took
                    );
                    if p.changed {
                        self.images_may_be_unused(Time::now());
                    }
                }
                Err(e) => log::warn!("{} after {:.1?}", e.message, done.took),
            }
            for PendingStart { pod, instance } in waiting {
                match &done.output {
                    Ok(pulled) => {
                        observations.push(Observation::Image {
                            instance: instance.clone(),
                            notice: ImageNotice::Pulled {
                                bytes: pulled.bytes,
                                took: done.took,
                            },
                        });
                        let found = self.find_local(&pod, &instance);
                        observations.extend(self.proceed(pod, instance, found, false, reactor));
                    }
                    Err(e) => observations.push(start_failed(&pod, instance, e.clone().into())),
                }
            }
        }
        observations
    }

    /// Starts still waiting for an image, of pods `stopping` names, never
    /// happen: the engine waits for an answer to every `StartContainer`
    /// before it finishes a stop, and gets `StartFailed` at once.
    pub fn abandon_starts(&mut self, stopping: impl Fn(&str) -> bool) -> Vec<Observation> {
        self.pending
            .remove_pods(stopping)
            .into_iter()
            .map(|PendingStart { pod, instance }| {
                // The reason the status showed while it waited: the pod
                // goes at once, with no error flashed on the way.
                let why = fail("ContainerCreating", "the pod is stopping; not started");
                start_failed(&pod, instance, why)
            })
            .collect()
    }

    fn find_image(&self, pod: &Pod, instance: &InstanceRef) -> Result<Found, StartFailure> {
        let c = container(pod, instance)?;
        let policy = c.image_pull_policy.unwrap_or(PullPolicy::IfNotPresent);
        let facts = self.pod_facts(pod);
        let credentials = |r: &Reference| facts.pull_credentials(r.registry_and_repository().0);
        Ok(self.images.find(&c.image, policy, credentials)?)
    }

    fn find_local(&self, pod: &Pod, instance: &InstanceRef) -> Result<Found, StartFailure> {
        Ok(self.images.find_local(&container(pod, instance)?.image)?)
    }

    fn start(
        &mut self,
        pod: &Arc<Pod>,
        instance: &InstanceRef,
        image: &Image,
        reactor: &mut Reactor,
    ) -> Result<(), StartFailure> {
        let c = container(pod, instance)?;
        // Recorded once the monitor reports, if this pod never ran before.
        let unrecorded =
            (!history::begun(&self.config.paths, &pod.metadata.uid)).then(|| Arc::clone(pod));
        let hostname = sandbox::hostname(pod);
        let env = self
            .pod_facts(pod)
            .container_env(c)
            .map_err(|m| fail("CreateContainerConfigError", m))?;
        let process = merge(&image.config, c, &[("HOSTNAME".into(), hostname)], &env)
            .map_err(|m| fail("CreateContainerConfigError", m))?;
        let identity = identity(pod, c, &image.rootfs, process.image_user.as_deref())
            .map_err(|m| fail("CreateContainerConfigError", m))?;

        let paths = &self.config.paths;
        let view = sandbox::view(paths, pod).map_err(|e| fail("CreateContainerError", e))?;
        let mut volumes =
            sandbox::volume_paths(paths, pod).map_err(|e| fail("CreateContainerError", e))?;
        // Before subPaths: a subPath of a hostPath lies below its pin.
        super::host_path::prepare(paths, &self.config.allowed_host_paths, pod, &mut volumes)
            .map_err(|e| fail("CreateContainerConfigError", e))?;
        super::subpath::prepare(&view.subpaths, &volumes, c)
            .map_err(|e| fail("CreateContainerConfigError", e))?;
        let id = container_id(instance);
        let (dir, disk) =
            super::stop::instance_paths(paths, &id).map_err(|e| fail("CreateContainerError", e))?;
        let rootfs = dir.join("rootfs");
        super::stop::remove_instance_files(&self.oci, paths, &id);
        let spare = self.spare_layer.take();
        let prepared = fs::create_dir_all(&rootfs)
            .and_then(|()| layer::place(&disk, spare))
            .and_then(|()| layer::mount(&rootfs, &image.rootfs, &disk));
        prepared.map_err(|e| fail("CreateContainerError", e))?;

        let cgroups_path = self
            .config
            .cgroups
            .as_ref()
            .map(|cg| cg.container_path(pod, &id));
        let placement = bundle::Placement {
            oom_score_adj: crate::pod::resources::oom_score_adj(
                pod,
                c,
                self.config.memory_capacity,
            ),
            cgroups_path: cgroups_path.clone(),
            seccomp_default: self.config.seccomp_default,
        };
        let spec = bundle::build(pod, c, &process, identity, &view, &volumes, &placement)
            .map_err(|m| fail("CreateContainerError", m))?;
        write_json(&dir.join("config.json"), &spec).map_err(|e| fail("CreateContainerError", e))?;

        let m = &pod.metadata;
        let args = MonitorArgs {
            runtime: self.config.binary.clone(),
            runtime_root: paths.runc_root(),
            id: id.clone(),
            dir: dir.clone(),
            log_path: paths
                .container_log(&m.namespace, &m.name, &m.uid, &c.name, instance.attempt)
                .map_err(|e| fail("CreateContainerError", e))?,
            log_max_size: self.config.log_max_size,
            log_max_files: self.config.log_max_files,
            cgroup_dir: self
                .config
                .cgroups
                .as_ref()
                .zip(cgroups_path)
                .map(|(cg, path)| cg.host_dir(&path)),
        };
        self.image_used(&image.digest, Time::now());
        self.spawn_monitor(instance, &image.digest, &args, unrecorded, reactor)
            .map_err(|e| fail("RunContainerError", format!("starting the monitor: {e}")))
    }

    fn spawn_monitor(
        &mut self,
        instance: &InstanceRef,
        image_id: &str,
        args: &MonitorArgs,
        unrecorded: Option<Arc<Pod>>,
        reactor: &mut Reactor,
    ) -> std::io::Result<()> {
        let (notify_r, notify_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let write_fd = notify_w.as_raw_fd();
        let stderr = fs::File::create(args.dir.join("monitor.err"))?;
        let mut cmd = Command::new(&self.config.self_exe);
        cmd.args(args.to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        // SAFETY: between fork and exec only async-signal-safe calls are made:
        // setsid, dup2 and sigprocmask, on memory owned by the child.
        unsafe {
            cmd.pre_exec(move || {
                // Its own session: no signal for the agent reaches it.
                libc::setsid();
                if libc::dup2(write_fd, NOTIFY_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                super::process::clear_signal_mask();
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        drop(notify_w);
        let pid = child.id() as i32;
        write_json(
            &args.dir.join("instance.json"),
            &InstanceRecord {
                pod_uid: instance.pod_uid.clone(),
                container: instance.container.clone(),
                attempt: instance.attempt,
                image_id: image_id.to_string(),
                monitor_pid: pid,
                monitor_start: process_start_time(pid).unwrap_or(0),
            },
        )?;
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_child(&child),
            rustix::process::PidfdFlags::empty(),
        )?;
        let pid_token = reactor.register(&pidfd)?;
        let notice_token = reactor.register(&notify_r)?;
        self.notices.insert(notice_token, pid_token);
        self.watched.insert(
            pid_token,
            Watched {
                instance: instance.clone(),
                pidfd,
                notify: Some((notify_r, notice_token)),
                child: Some(child),
                unrecorded,
            },
        );
        Ok(())
    }

    /// The monitor's start notice pipe is readable: a byte means the
    /// container runs; end of file without one means it never will (the exit
    /// follows through the pidfd).
    pub(super) fn on_notice(
        &mut self,
        pid_token: Token,
        reactor: &mut Reactor,
    ) -> Option<Observation> {
        let watched = self.watched.get_mut(&pid_token)?;
        let (fd, _) = watched.notify.take()?;
        reactor.deregister(&fd);
        let mut byte = [0u8; 1];
        let got = fs::File::from(fd).read(&mut byte).unwrap_or(0);
        if got == 0 {
            return None;
        }
        let unrecorded = watched.unrecorded.take();
        let id = container_id(&watched.instance);
        let instance = watched.instance.clone();
        if let Some(pod) = unrecorded {
            self.record_durably(&pod);
        }
        let dir = self.config.paths.container_run(&id).ok()?;
        let started = read_json::<StartedRecord>(&dir.join("started.json"))
            .ok()
            .flatten()?;
        let record = read_json::<InstanceRecord>(&dir.join("instance.json"))
            .ok()
            .flatten()?;
        Some(Observation::Started {
            instance,
            container_id: self.status_id(&id),
            image_id: record.image_id,
            at: Time(started.started_at),
        })
    }
}

/// The answer to a start that cannot happen, logged.
fn start_failed(pod: &Pod, instance: InstanceRef, failure: StartFailure) -> Observation {
    log::warn!(
        "pod {} container {}: {}: {}",
        pod.full_name(),
        instance.container,
        failure.reason,
        failure.message
    );
    Observation::StartFailed {
        instance,
        reason: failure.reason.into(),
        message: failure.message,
    }
}

/// Why the process's uid and gid cannot be had.
#[derive(Debug)]
enum IdentityError {
    /// The user or group named (by the image or runAsUser) is not in the image.
    User(ProcessError),
    /// runAsUser or runAsGroup does not fit a uid.
    OutOfRange { field: &'static str, value: i64 },
    /// runAsNonRoot, and the container would run as uid 0.
    RunsAsRoot { pod: String, container: String },
}

impl std::fmt::Display for IdentityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdentityError::User(e) => e.fmt(f),
            IdentityError::OutOfRange { field, value } => {
                write!(f, "{field} {value} is out of range")
            }
            IdentityError::RunsAsRoot { pod, container } => write!(
                f,
                "container has runAsNonRoot and image will run as root (pod: {pod:?}, container: {container})"
            ),
        }
    }
}

impl std::error::Error for IdentityError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IdentityError::User(e) => Some(e),
            _ => None,
        }
    }
}

/// uid and gid of the process: securityContext over the pod's over the
/// image's `User`; `runAsNonRoot` refuses uid 0 (kubelet:
/// CreateContainerConfigError).
fn identity(
    pod: &Pod,
    c: &crate::pod::Container,
    rootfs: &std::path::Path,
    image_user: Option<&str>,
) -> Result<Identity, IdentityError> {
    let sc = c.security_context.clone().unwrap_or_default();
    let psc = pod.spec.security_context.clone().unwrap_or_default();
    let run_as_user = sc.run_as_user.or(psc.run_as_user);
    let run_as_group = sc.run_as_group.or(psc.run_as_group);
    let non_root = sc.run_as_non_root.or(psc.run_as_non_root) == Some(true);
    let (mut uid, mut gid) = match (run_as_user, image_user) {
        (Some(u), _) => resolve_user(rootfs, &u.to_string()).map_err(IdentityError::User)?,
        (None, Some(user)) => resolve_user(rootfs, user).map_err(IdentityError::User)?,
        (None, None) => (0, 0),
    };
    if let Some(u) = run_as_user {
        uid = u32::try_from(u).map_err(|_| IdentityError::OutOfRange {
            field: "runAsUser",
            value: u,
        })?;
    }
    if let Some(g) = run_as_group {
        gid = u32::try_from(g).map_err(|_| IdentityError::OutOfRange {
            field: "runAsGroup",
            value: g,
        })?;
    }
    if non_root && uid == 0 {
        return Err(IdentityError::RunsAsRoot {
            pod: pod.full_name(),
            container: c.name.clone(),
        });
    }
    Ok(Identity { uid, gid })
}
