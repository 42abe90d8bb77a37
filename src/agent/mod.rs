//! The agent: sources -> engine -> runtime, on one thread.
//!
//! [`Agent::start`] assembles the parts; each [`Agent::turn`] lets the
//! engine act and report, then sleeps in epoll until something wakes it
//! ([`Wake`]): a monitor ends, a start notice arrives, the manifest
//! directory changes, a source thread sends pods, an image unpack ends, a
//! signal comes, or the engine's or the runtime's next deadline passes.
//! Nothing wakes it otherwise: no periodic sync.

mod error;
mod sources;
mod start;
mod status_file;

pub use error::AgentError;

use crate::engine::{Engine, EventType, PodEvent};
use crate::reactor::{Reactor, Token};
use crate::runtime::paths::Paths;
use crate::runtime::Runtime;
use crate::signals::Signals;
use crate::time::Time;
use sources::Sources;
use status_file::StatusWriter;
use std::time::Duration;

/// Run the agent until a signal ends it; containers keep running.
pub fn run(config: crate::config::Config) -> Result<(), AgentError> {
    let mut agent = Agent::start(config)?;
    while agent.turn()? == Flow::Continue {}
    Ok(())
}

/// Whether the agent goes on after a turn.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// A signal asked it to exit.
    Exit,
}

/// What woke the agent: one ready fd.
enum Wake {
    Signal,
    Manifests,
    Url,
    ApiServer,
    /// A monitor, a start notice, an unpack or a handler: the runtime's.
    Runtime(Token),
}

/// The fds of the agent's own sources in its epoll set.
struct Tokens {
    signal: Token,
    manifests: Token,
    url: Option<Token>,
    api_server: Option<Token>,
}

impl Tokens {
    fn wake(&self, token: Token) -> Wake {
        if token == self.signal {
            Wake::Signal
        } else if token == self.manifests {
            Wake::Manifests
        } else if Some(token) == self.url {
            Wake::Url
        } else if Some(token) == self.api_server {
            Wake::ApiServer
        } else {
            Wake::Runtime(token)
        }
    }
}

/// Everything the core thread holds.
pub struct Agent {
    paths: Paths,
    signals: Signals,
    reactor: Reactor,
    tokens: Tokens,
    runtime: Runtime,
    engine: Engine,
    sources: Sources,
    status: StatusWriter,
    ready: Vec<Token>,
}

impl Agent {
    /// One turn: the engine's actions run and its news is reported, then
    /// the thread sleeps until something wakes it, and handles that.
    pub fn turn(&mut self) -> Result<Flow, AgentError> {
        self.act_and_report();
        self.runtime.prepare();
        self.wait()?;
        let now = Time::now();
        let mut sources_changed = false;
        for i in 0..self.ready.len() {
            let token = self.ready[i];
            match self.tokens.wake(token) {
                Wake::Signal => {
                    if let Some(signal) = self.signals.next() {
                        log::info!("signal {signal}: exiting; containers keep running");
                        return Ok(Flow::Exit);
                    }
                }
                Wake::Manifests => sources_changed |= self.sources.files.drain(now),
                Wake::Url => sources_changed |= self.sources.drain_url(now),
                Wake::ApiServer => sources_changed |= self.sources.drain_api_server(),
                Wake::Runtime(token) => {
                    for observation in self.runtime.on_ready(token, &mut self.reactor) {
                        self.engine.handle(observation, now);
                    }
                }
            }
        }
        if sources_changed {
            self.update_desired(now);
        }
        self.engine.handle_timeout(now);
        self.runtime.handle_timeout(now);
        Ok(Flow::Continue)
    }

    /// Run the engine's actions until it has none, then report: events to
    /// the log (and the API server), statuses to the run dir (and the API
    /// server).
    fn act_and_report(&mut self) {
        while let Some(action) = self.engine.poll_action() {
            for observation in self.runtime.execute(action, &mut self.reactor) {
                self.engine.handle(observation, Time::now());
            }
        }
        while let Some(event) = self.engine.poll_event() {
            self.report_event(&event);
        }
        let now = Time::now();
        if self.runtime.collection_due(now) {
            let (named, running) = images_of(self.engine.snapshot());
            self.runtime
                .collect_images(&named, &running, now, &mut self.reactor);
        }
        let errors = self.sources.errors();
        self.status
            .write_if_changed(&self.paths, self.engine.snapshot(), &errors);
        if let Some(node) = self.sources.node.as_mut() {
            node.reporter.report(self.engine.snapshot(), &node.source);
        }
    }

    /// Sleep until an fd is ready or the next deadline passes.
    fn wait(&mut self) -> Result<(), AgentError> {
        let deadline = [self.engine.poll_timeout(), self.runtime.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        // Round up: waking a millisecond early would find nothing due.
        let timeout = deadline.map(|t| t.saturating_sub(Time::now()) + Duration::from_millis(1));
        self.ready.clear();
        self.reactor
            .wait(timeout, &mut self.ready)
            .map_err(AgentError::Epoll)
    }

    /// Hand the sources' pods to the engine after one of them changed.
    fn update_desired(&mut self, now: Time) {
        let desired = self.sources.desired(&self.runtime, &self.engine);
        self.engine.set_desired(desired, now);
        // A deleted pod's start still waiting for its image must not happen
        // after this.
        let engine = &self.engine;
        let deleting = |uid: &str| engine.deleting_since(uid).is_some();
        for observation in self.runtime.abandon_starts(deleting) {
            self.engine.handle(observation, now);
        }
    }

    /// Log an engine event, and post it to the API server in node mode.
    fn report_event(&mut self, event: &PodEvent) {
        let Some(pod) = self.engine.pod(&event.pod_uid) else {
            return;
        };
        let container = event.container.as_deref().unwrap_or("-");
        let line = format!(
            "pod {}: {container}: {}: {}",
            pod.full_name(),
            event.reason,
            event.message
        );
        match event.kind {
            EventType::Normal => log::info!("{line}"),
            EventType::Warning => log::warn!("{line}"),
        }
        if let Some(node) = self.sources.node.as_mut() {
            node.reporter.event(pod, &node.source, event, Time::now());
        }
    }
}

/// What image GC must keep: the images every pod names, and the imageIDs
/// (platform manifest digests) of every container that has one, whose
/// trees may be in use under a tag that has since moved.
fn images_of(snapshot: crate::engine::Snapshot<'_>) -> (Vec<String>, Vec<String>) {
    let mut named = Vec::new();
    let mut running = Vec::new();
    for report in snapshot.pods() {
        let spec = &report.pod.spec;
        let containers = spec.init_containers.iter().chain(&spec.containers);
        named.extend(containers.map(|c| c.image.clone()));
        let status = &report.status;
        let statuses = status
            .init_container_statuses
            .iter()
            .chain(&status.container_statuses);
        running.extend(
            statuses
                .map(|c| c.image_id.clone())
                .filter(|id| !id.is_empty()),
        );
    }
    (named, running)
}
