//! A property test: invariants that hold for random pods, scripts and
//! probe answers.

use super::fixtures::*;
use super::sim::{Answer, Script, Seen, Sim};
use crate::engine::backoff::BackoffPolicy;
use crate::engine::probe::ProbeKind;
use crate::pod::status::PodPhase;
use std::collections::BTreeMap;
use std::time::Duration;

/// A small deterministic generator for the property test.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn invariants_hold_for_random_pods() {
    // For random containers, scripts and probe answers: no container starts
    // before its predecessors allow; no two instances of one container at
    // once; the phase never leaves Succeeded/Failed; restart counts never drop.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..300 {
        let mut sim = Sim::new(BackoffPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(4),
        });
        let (yaml, names) = random_pod(&mut rng, &mut sim);
        let p = pod(&yaml);
        sim.desire(&[&p]);
        let delete_at = 20 + rng.next(40);
        run_checking_statuses(&mut sim, case, delete_at);
        check_replay(&sim, &names, case);
    }
}

/// A random pod's manifest and its containers in spec order as (name, is
/// a sidecar); their scripts and probe answers go to `sim`.
fn random_pod(rng: &mut Rng, sim: &mut Sim) -> (String, Vec<(String, bool)>) {
    let policy = ["Always", "OnFailure", "Never"][rng.next(3) as usize];
    let mut inits = String::new();
    let mut names = Vec::new();
    for i in 0..rng.next(4) {
        let name = format!("i{i}");
        let sidecar = rng.next(2) == 0;
        let extra = if sidecar {
            format!("{SIDECAR}{}", startup_probe(1, 2))
        } else {
            String::new()
        };
        inits.push_str(&container(&name, &extra));
        names.push((name, sidecar));
    }
    let mut regular = String::new();
    for r in 0..1 + rng.next(3) {
        let name = format!("r{r}");
        let liveness = if rng.next(3) == 0 {
            "    livenessProbe:\n      exec:\n        command: [alive]\n      periodSeconds: 2\n"
        } else {
            ""
        };
        regular.push_str(&container(&name, liveness));
        names.push((name, false));
    }
    for (name, _) in &names {
        script_randomly(rng, sim, name);
    }
    let init_part = if inits.is_empty() {
        String::new()
    } else {
        format!("  initContainers:\n{inits}")
    };
    let yaml = format!("{HEAD}  restartPolicy: {policy}\n  terminationGracePeriodSeconds: 3\n{init_part}  containers:\n{regular}");
    (yaml, names)
}

/// Random scripts for a container's instances, and random answers of its
/// startup and liveness probes.
fn script_randomly(rng: &mut Rng, sim: &mut Sim, name: &str) {
    let scripts: Vec<Script> = (0..4)
        .map(|_| match rng.next(4) {
            0 => Script::Serve,
            1 => Script::IgnoreTerm,
            _ => Script::Exit {
                secs: rng.next(6),
                code: rng.next(2) as i32,
            },
        })
        .collect();
    sim.script(name, &scripts);
    let seed = rng.next(1000);
    sim.probe(name, ProbeKind::Startup, move |a, s| {
        if (seed + u64::from(a) + s) % 3 == 0 {
            Answer::Failure
        } else {
            Answer::Success
        }
    });
    sim.probe(name, ProbeKind::Liveness, move |a, s| {
        if (seed + u64::from(a) * 7 + s) % 5 == 0 {
            Answer::Failure
        } else {
            Answer::Success
        }
    });
}

/// Run second by second to 80 s, deleting the pod at `delete_at`: the phase
/// never leaves Succeeded/Failed, restart counts never drop.
fn run_checking_statuses(sim: &mut Sim, case: u32, delete_at: u64) {
    let mut last_phase = PodPhase::Pending;
    let mut last_counts: BTreeMap<String, u32> = BTreeMap::new();
    for t in 1..80 {
        if t == delete_at {
            sim.desire(&[]);
        }
        sim.run_until(t);
        let Some(s) = sim.engine.snapshot().pods().next().map(|r| r.status) else {
            break;
        };
        if matches!(last_phase, PodPhase::Succeeded | PodPhase::Failed) {
            assert_eq!(s.phase, last_phase, "case {case}: left a terminal phase");
        }
        last_phase = s.phase;
        for c in s
            .init_container_statuses
            .iter()
            .chain(&s.container_statuses)
        {
            let before = last_counts
                .insert(c.name.clone(), c.restart_count)
                .unwrap_or(0);
            assert!(
                c.restart_count >= before,
                "case {case}: {} restartCount went down",
                c.name
            );
        }
    }
}

/// Replay what the runtime saw: instances never overlap, and nothing
/// starts before its predecessors allowed it.
fn check_replay(sim: &Sim, names: &[(String, bool)], case: u32) {
    let mut live: BTreeMap<String, bool> = BTreeMap::new();
    let mut completed_inits: Vec<String> = Vec::new();
    for (_, seen) in &sim.seen {
        match seen {
            Seen::Start(c, _) => {
                assert!(
                    !live.get(c).copied().unwrap_or(false),
                    "case {case}: two instances of {c}"
                );
                live.insert(c.clone(), true);
                let position = names.iter().position(|(n, _)| n == c).unwrap();
                let plain_inits_before = names[..position]
                    .iter()
                    .filter(|(n, sidecar)| n.starts_with('i') && !sidecar);
                if !c.starts_with('i') || names[..position].iter().any(|(n, _)| n.starts_with('i'))
                {
                    for (n, _) in plain_inits_before {
                        assert!(
                            completed_inits.contains(n),
                            "case {case}: {c} started before init {n} completed"
                        );
                    }
                }
            }
            Seen::Exit(c, _, code) => {
                live.insert(c.clone(), false);
                if *code == 0 && c.starts_with('i') {
                    completed_inits.push(c.clone());
                }
            }
            _ => {}
        }
    }
}
