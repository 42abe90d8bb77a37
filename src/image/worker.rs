//! The image workers: threads that exist only while there is work, so
//! that the core loop keeps starting pods and running probes while layers
//! are downloaded or written.
//!
//! The core queues [`Job`]s by channel; a worker runs them one at a time
//! and hands each result back through a channel and a wake-up pipe in the
//! core's epoll set, as the manifest URL poller does (`source/url.rs`).
//! Each key (an image's destination, a reference to pull) is worked once
//! however many containers wait for it. When the last result is taken, the
//! core drops its end of the job channel: the worker's `recv` fails and the
//! thread ends, and the pipe is closed. With nothing to do there is no
//! thread, no fd and no wake-up. The unpacker (`UnpackJob`) and the puller
//! (`pull::PullJob`) are two [`Worker`]s.

use super::{ImageError, UnpackJob};
use crate::reactor::{Reactor, Token};
use rustix::fd::{AsFd, OwnedFd};
use std::collections::BTreeSet;
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

/// Work for a [`Worker`] thread: blocking, run off the core thread.
pub trait Job: Send + 'static {
    /// What makes two jobs the same work (done once).
    type Key: Ord + Clone + Send + 'static;
    /// What the core gets back.
    type Output: Send + 'static;
    /// The thread's name, as `ps -T` and the tests see it.
    const THREAD: &'static str;
    /// This job's key.
    fn key(&self) -> Self::Key;
    /// Do the work; this blocks for as long as it takes.
    fn run(&self) -> Self::Output;
    /// The result of a job the worker never finished (it panicked).
    fn lost(key: &Self::Key) -> Self::Output;
}

/// One finished job.
pub struct Done<J: Job> {
    /// The job's key.
    pub key: J::Key,
    /// What it gave.
    pub output: J::Output,
    /// How long it took, for the log and the Pulled event.
    pub took: Duration,
}

/// The core's handle on one kind of worker; see the module documentation.
pub struct Worker<J: Job> {
    busy: Option<Busy<J>>,
}

impl<J: Job> Default for Worker<J> {
    fn default() -> Self {
        Worker { busy: None }
    }
}

/// A worker at work.
struct Busy<J: Job> {
    jobs: Sender<J>,
    thread: std::thread::JoinHandle<()>,
    results: Woken<Done<J>>,
    token: Token,
    /// Keys queued or at work.
    outstanding: BTreeSet<J::Key>,
}

impl<J: Job> Worker<J> {
    /// Queue `job` unless its key is already outstanding; start the thread
    /// if there is none. True when the job was queued (not a duplicate).
    pub fn request(&mut self, job: J, reactor: &mut Reactor) -> io::Result<bool> {
        let busy = match &mut self.busy {
            Some(busy) => busy,
            None => self.busy.insert(Busy::start(reactor)?),
        };
        if !busy.outstanding.insert(job.key()) {
            return Ok(false);
        }
        busy.jobs
            .send(job)
            .map(|()| true)
            .map_err(|_| io::Error::other(format!("the {} worker has stopped", J::THREAD)))
    }

    /// Is `token` the worker's wake-up pipe?
    pub fn owns(&self, token: Token) -> bool {
        self.busy.as_ref().is_some_and(|b| b.token == token)
    }

    /// The jobs that finished; stops the thread once none is left.
    pub fn finished(&mut self, reactor: &mut Reactor) -> Vec<Done<J>> {
        let Some(busy) = &mut self.busy else {
            return Vec::new();
        };
        let (mut done, alive) = busy.results.drain();
        for d in &done {
            busy.outstanding.remove(&d.key);
        }
        if !alive {
            // Only a panic ends the worker early: fail what it left.
            done.extend(
                std::mem::take(&mut busy.outstanding)
                    .into_iter()
                    .map(|key| Done {
                        output: J::lost(&key),
                        key,
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

impl<J: Job> Busy<J> {
    fn start(reactor: &mut Reactor) -> io::Result<Busy<J>> {
        let (waker, results) = wake_channel()?;
        let (jobs, queue) = channel();
        let token = reactor.register(results.fd())?;
        let spawned = std::thread::Builder::new()
            .name(J::THREAD.into())
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
            outstanding: BTreeSet::new(),
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

/// The worker thread: run queued jobs until the core hangs up.
fn work<J: Job>(queue: &Receiver<J>, mut results: Waker<Done<J>>) {
    while let Ok(job) = queue.recv() {
        let began = Instant::now();
        let output = job.run();
        let done = Done {
            key: job.key(),
            output,
            took: began.elapsed(),
        };
        if !results.send(done) {
            return;
        }
    }
}

/// The unpacker: one unpack per destination.
impl Job for UnpackJob {
    type Key = PathBuf;
    type Output = Result<(), ImageError>;
    const THREAD: &'static str = "image-unpack";

    fn key(&self) -> PathBuf {
        self.dest().to_path_buf()
    }

    fn run(&self) -> Self::Output {
        UnpackJob::run(self)
    }

    fn lost(_: &PathBuf) -> Self::Output {
        Err(ImageError {
            reason: "CreateContainerError",
            message: "the unpack worker stopped unexpectedly".into(),
        })
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
        let mut unpacker: Worker<UnpackJob> = Worker::default();
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
                let err = u.output.as_ref().err().map(|e| e.message.as_str());
                (u.key.as_path(), err)
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
