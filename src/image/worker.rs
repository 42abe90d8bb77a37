//! The unpack worker: a thread that exists only while an unpack is
//! outstanding, so that the core loop keeps starting pods and running probes
//! while layers are written.
//!
//! The core queues [`UnpackJob`]s by channel; the worker unpacks them one at
//! a time and hands each result back through a channel and a wake-up pipe
//! in the core's epoll set, as the manifest URL poller does
//! (`source/url.rs`). Each destination is unpacked once however many
//! containers wait for it. When the last result is taken, the core drops its
//! end of the job channel: the worker's `recv` fails and the thread ends,
//! and the pipe is closed. With nothing to unpack there is no thread, no fd
//! and no wake-up.

use super::{ImageError, UnpackJob};
use crate::reactor::{Reactor, Token};
use rustix::fd::{AsFd, OwnedFd};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

/// The sending half of a [`wake_channel`], on a worker thread.
pub struct Waker<T> {
    to: Sender<T>,
    pipe: std::fs::File,
}

impl<T> Waker<T> {
    /// Send and wake the core; false once the core's end is gone.
    pub fn send(&mut self, message: T) -> bool {
        if self.to.send(message).is_err() {
            return false;
        }
        // A full pipe (EAGAIN) already holds a wake-up.
        let _ = self.pipe.write_all(b"!");
        true
    }
}

/// The core's half of a [`wake_channel`]: the pipe goes in the reactor.
pub struct Woken<T> {
    from: Receiver<T>,
    pipe: OwnedFd,
}

impl<T> Woken<T> {
    /// The pipe to register with the reactor: readable when something arrived.
    pub fn fd(&self) -> impl AsFd + '_ {
        &self.pipe
    }

    /// Everything sent so far, and whether the sender still exists.
    pub fn drain(&self) -> (Vec<T>, bool) {
        let mut buf = [0u8; 64];
        while rustix::io::read(&self.pipe, &mut buf).is_ok_and(|n| n > 0) {}
        let mut messages = Vec::new();
        loop {
            match self.from.try_recv() {
                Ok(m) => messages.push(m),
                Err(TryRecvError::Empty) => return (messages, true),
                Err(TryRecvError::Disconnected) => return (messages, false),
            }
        }
    }
}

/// A channel from a worker thread to the core whose arrivals wake the
/// core's epoll: the pattern of `source/url.rs` and `source/api`, named.
pub fn wake_channel<T>() -> io::Result<(Waker<T>, Woken<T>)> {
    let (pipe, writer) = rustix::pipe::pipe_with(
        rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
    )?;
    let (to, from) = channel();
    let waker = Waker {
        to,
        pipe: std::fs::File::from(writer),
    };
    Ok((waker, Woken { from, pipe }))
}

/// One finished unpack.
pub struct Unpacked {
    /// The reference of the pod that asked first.
    pub image: String,
    /// The unpacked root the starts waited for.
    pub dest: PathBuf,
    /// Unpacked, or why not.
    pub result: Result<(), ImageError>,
    /// How long the unpack took, for the log.
    pub took: Duration,
}

/// The core's handle on the worker; see the module documentation.
#[derive(Default)]
pub struct Unpacker {
    busy: Option<Busy>,
}

/// A worker at work.
struct Busy {
    jobs: Sender<UnpackJob>,
    thread: std::thread::JoinHandle<()>,
    results: Woken<Unpacked>,
    token: Token,
    /// Destinations queued or unpacking, with the image reference.
    outstanding: BTreeMap<PathBuf, String>,
}

impl Unpacker {
    /// Queue `job` unless its destination is already outstanding; start the
    /// worker if there is none.
    pub fn request(&mut self, job: UnpackJob, reactor: &mut Reactor) -> io::Result<()> {
        let busy = match &mut self.busy {
            Some(busy) => busy,
            None => self.busy.insert(Busy::start(reactor)?),
        };
        if busy.outstanding.contains_key(job.dest()) {
            return Ok(());
        }
        busy.outstanding
            .insert(job.dest().to_path_buf(), job.image.clone());
        busy.jobs
            .send(job)
            .map_err(|_| io::Error::other("the unpack worker has stopped"))
    }

    /// Is `token` the worker's wake-up pipe?
    pub fn owns(&self, token: Token) -> bool {
        self.busy.as_ref().is_some_and(|b| b.token == token)
    }

    /// The unpacks that finished; stops the worker once none is left.
    pub fn finished(&mut self, reactor: &mut Reactor) -> Vec<Unpacked> {
        let Some(busy) = &mut self.busy else {
            return Vec::new();
        };
        let (mut done, alive) = busy.results.drain();
        for d in &done {
            busy.outstanding.remove(&d.dest);
        }
        if !alive {
            // Only a panic ends the worker early: fail what it left.
            done.extend(
                std::mem::take(&mut busy.outstanding)
                    .into_iter()
                    .map(|(dest, image)| Unpacked {
                        image,
                        dest,
                        result: Err(ImageError {
                            reason: "CreateContainerError",
                            message: "the unpack worker stopped unexpectedly".into(),
                        }),
                        took: Duration::ZERO,
                    }),
            );
        }
        if busy.outstanding.is_empty() {
            if let Some(busy) = self.busy.take() {
                busy.stop(reactor);
            }
        }
        done
    }
}

impl Busy {
    fn start(reactor: &mut Reactor) -> io::Result<Busy> {
        let (waker, results) = wake_channel()?;
        let (jobs, queue) = channel();
        let token = reactor.register(results.fd())?;
        let spawned = std::thread::Builder::new()
            .name("image-unpack".into())
            .spawn(move || work(&queue, waker));
        let thread = match spawned {
            Ok(thread) => thread,
            Err(e) => {
                reactor.deregister(results.fd());
                return Err(e);
            }
        };
        Ok(Busy {
            jobs,
            thread,
            results,
            token,
            outstanding: BTreeMap::new(),
        })
    }

    /// With every result taken: end the thread and close the pipe.
    fn stop(self, reactor: &mut Reactor) {
        reactor.deregister(self.results.fd());
        // The worker has sent its last result and waits in `recv`, which
        // fails once the job sender is gone: the join is only its exit, and
        // afterwards no thread is left.
        drop(self.jobs);
        let _ = self.thread.join();
    }
}

/// The worker thread: unpack queued jobs until the core hangs up.
fn work(queue: &Receiver<UnpackJob>, mut results: Waker<Unpacked>) {
    while let Ok(job) = queue.recv() {
        let began = Instant::now();
        let result = job.run();
        let done = Unpacked {
            image: job.image.clone(),
            dest: job.dest().to_path_buf(),
            result,
            took: began.elapsed(),
        };
        if !results.send(done) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::layout::{Layer, Layout, Manifest};
    use sha2::{Digest, Sha256};
    use std::path::Path;
    use std::sync::Arc;

    fn blob(layout: &Path, bytes: &[u8]) -> String {
        let hex = format!("{:x}", Sha256::digest(bytes));
        std::fs::write(layout.join("blobs/sha256").join(&hex), bytes).unwrap();
        format!("sha256:{hex}")
    }

    /// A one-layer image holding `/hello`, and a job to unpack it.
    fn job(dir: &Path, image: &str, missing_layer: bool) -> UnpackJob {
        let layout = dir.join("images");
        std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
        let files = dir.join("files");
        std::fs::create_dir_all(&files).unwrap();
        std::fs::write(files.join("hello"), "hi").unwrap();
        let tar = std::process::Command::new("tar")
            .arg("-cC")
            .arg(&files)
            .arg("hello")
            .output()
            .unwrap();
        assert!(tar.status.success(), "{tar:?}");
        let layer = tar.stdout;
        let layer_digest = if missing_layer {
            format!("sha256:{:x}", Sha256::digest(&layer))
        } else {
            blob(&layout, &layer)
        };
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        });
        let config_digest = blob(&layout, config.to_string().as_bytes());
        UnpackJob {
            image: image.into(),
            layout: Arc::new(Layout::new(layout)),
            dest: dir.join("rootfs").join(&config_digest[7..]),
            manifest: Manifest {
                digest: String::new(),
                config_digest,
                layers: vec![Layer {
                    digest: layer_digest,
                    gzip: false,
                }],
            },
            limit: Some(1 << 20),
            root: dir.to_path_buf(),
        }
    }

    fn worker_threads() -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .flatten()
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|c| c.trim() == "image-unpack")
            })
            .count()
    }

    #[test]
    fn each_image_unpacks_once_and_the_worker_ends_with_the_work() {
        let dir = std::env::temp_dir().join(format!("picolet-unpacker-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut reactor = Reactor::new().unwrap();
        let mut unpacker = Unpacker::default();
        let good = job(&dir.join("a"), "good:1", false);
        let good_dest = good.dest().to_path_buf();
        unpacker.request(good, &mut reactor).unwrap();
        unpacker
            .request(job(&dir.join("a"), "good:1", false), &mut reactor)
            .unwrap();
        let bad = job(&dir.join("b"), "bad:1", true);
        let bad_dest = bad.dest().to_path_buf();
        unpacker.request(bad, &mut reactor).unwrap();

        let mut results = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while unpacker.busy.is_some() {
            assert!(Instant::now() < deadline, "unpacks still outstanding");
            let mut ready = Vec::new();
            reactor
                .wait(Some(Duration::from_secs(1)), &mut ready)
                .unwrap();
            for token in ready {
                assert!(unpacker.owns(token), "an unknown token {token}");
                results.extend(unpacker.finished(&mut reactor));
            }
        }
        let outcome: Vec<(&Path, Option<&str>)> = results
            .iter()
            .map(|u| {
                let err = u.result.as_ref().err().map(|e| e.message.as_str());
                (u.dest.as_path(), err)
            })
            .collect();
        assert_eq!(outcome.len(), 2, "{outcome:?}");
        assert_eq!(outcome[0], (good_dest.as_path(), None));
        assert_eq!(outcome[1].0, bad_dest.as_path());
        let message = outcome[1].1.unwrap();
        assert!(message.starts_with("image \"bad:1\": "), "{message}");
        assert_eq!(std::fs::read(good_dest.join("hello")).unwrap(), b"hi");

        // With nothing left, the thread goes and the pipe is closed.
        let deadline = Instant::now() + Duration::from_secs(10);
        while worker_threads() > 0 {
            assert!(Instant::now() < deadline, "the worker thread stayed");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
