//! Kubelet scenarios run on a simulated node with a jumping clock
//! ([`sim`]): restarts, init containers, sidecars, probes and hooks,
//! termination, recovery, admission, events and image pulls. Many derive from the
//! upstream e2e tests (test/e2e_node/container_lifecycle_test.go,
//! test/e2e/common/node/container_probe.go, lifecycle_hook.go). What the
//! scenarios share lives in [`fixtures`].

mod fixtures;
mod sim;

mod admission;
mod events;
mod images;
mod init;
mod invariants;
mod probes;
mod recovery;
mod restarts;
mod sidecars;
mod termination;
