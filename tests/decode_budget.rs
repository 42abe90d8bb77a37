//! Documents within the size caps but of millions of tiny values (src/json.rs,
//! src/yaml.rs: MAX_NODES): decoding them must keep the agent within its
//! memory budget. The peak (VmHWM) is the process's: [`measure`] holds a
//! lock so that tests on other threads do not count in it.

use std::sync::Mutex;
use std::time::Instant;

/// Held while a peak is measured.
static MEASURING: Mutex<()> = Mutex::new(());

/// What a decode may add to the agent's peak memory.
const BUDGET_KIB: u64 = 64 << 10;

/// Reset the peak (5 to clear_refs, Linux 4.0) so that each measurement
/// is its own.
fn reset_vm_hwm() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

/// `head`, then `0,` repeated to `size` bytes, then `tail`.
fn flat(head: &str, size: usize, tail: &str) -> String {
    let mut doc = String::with_capacity(size);
    doc.push_str(head);
    while doc.len() < size - tail.len() - 2 {
        doc.push_str("0,");
    }
    doc.push('0');
    doc.push_str(tail);
    doc
}

/// Decode `doc` by `decode`; returns the growth of the peak in KiB.
fn measure(what: &str, doc: &str, decode: fn(&[u8])) -> u64 {
    let _alone = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    reset_vm_hwm();
    let before = vm_hwm_kib();
    let start = Instant::now();
    decode(doc.as_bytes());
    let took = start.elapsed();
    // The kernel's RSS counters are cached per thread (a few pages off):
    // the peak read after can be below the one read before.
    let grew = vm_hwm_kib().saturating_sub(before);
    eprintln!(
        "{what} of {} KiB: VmHWM grew {grew} KiB, decoded in {took:?}",
        doc.len() >> 10
    );
    grew
}

/// The review's attacks: a manifest (the directory's and the URL's path)
/// just under the 10 MiB cap of src/source/url.rs and src/source/file.rs,
/// and an API answer just under MAX_RESPONSE (16 MiB) of
/// src/apiserver/client.rs. Before the node cap they took 819 MB (3 s)
/// and 524 MB.
#[test]
fn flat_documents_within_the_size_caps_stay_within_the_memory_budget() {
    let yaml = flat("apiVersion: v1\nkind: List\nitems: [", 10 << 20, "]\n");
    let grew = measure("a flat YAML manifest", &yaml, picolet::fuzz::manifest);
    assert!(grew < BUDGET_KIB, "VmHWM grew {grew} KiB for the YAML");

    let json = flat("{\"kind\":\"List\",\"items\":[", 10 << 20, "]}");
    let grew = measure("a flat JSON manifest", &json, picolet::fuzz::manifest);
    assert!(grew < BUDGET_KIB, "VmHWM grew {grew} KiB for the JSON");

    let api = flat(
        "{\"items\":[{\"metadata\":{\"uid\":\"u\"},\"spec\":[",
        16 << 20,
        "]}]}",
    );
    let grew = measure("a flat API answer", &api, picolet::fuzz::api_object);
    assert!(
        grew < BUDGET_KIB,
        "VmHWM grew {grew} KiB for the API answer"
    );
}

/// Just under the node cap, the same shapes decode (and are then refused
/// as pods) within the budget: the cap, not luck, bounds the memory.
#[test]
fn flat_documents_at_the_node_cap_stay_within_the_memory_budget() {
    let items = "0,".repeat(199_990);
    let yaml = format!("apiVersion: v1\nkind: List\nitems: [{items}0]\n");
    let grew = measure("a YAML manifest at the cap", &yaml, picolet::fuzz::manifest);
    assert!(grew < BUDGET_KIB, "VmHWM grew {grew} KiB for the YAML");
    let api = format!("{{\"items\":[{{\"metadata\":{{\"uid\":\"u\"}},\"spec\":[{items}0]}}]}}");
    let grew = measure("an API answer at the cap", &api, picolet::fuzz::api_object);
    assert!(
        grew < BUDGET_KIB,
        "VmHWM grew {grew} KiB for the API answer"
    );
}
