//! YAML from outside, bounded. yaml_serde loads a whole document's events
//! before its own checks run (its nesting limit of 128 comes after libyaml
//! has walked every level: a megabyte of `[` took 24 s and 360 MB in a debug
//! build), and it replays an alias's events each time the alias is used,
//! limited only by a repetition count (2 KiB of aliases decoded to 300 MB).
//!
//! So every YAML document from outside (manifests from the directory and
//! the URL, the kubeconfig, the agent's configuration) first passes
//! [`check`]: one pass over libyaml's event stream, holding nothing but a
//! stack as deep as the document and the expanded size of each anchor, that
//! stops at the first level beyond [`MAX_DEPTH`] or the first alias that
//! takes the expansion beyond [`MAX_ALIAS_EXPANSION`] or the node count
//! beyond [`MAX_NODES`]. Only then does yaml_serde parse it.

use libyaml_rs as sys;
use std::collections::BTreeMap;
use std::fmt;
use std::mem::MaybeUninit;

/// Nesting depth allowed: collections within collections. The deepest pod
/// field (`spec.affinity.nodeAffinity.requiredDuringScheduling...
/// .nodeSelectorTerms[].matchExpressions[].values[]`, in a List) is about
/// 12 levels; serde_json and yaml_serde stop at 128.
pub const MAX_DEPTH: usize = 64;

/// What aliases may add to a document, in estimated bytes of the decoded
/// value ([`NODE_COST`] per node plus its scalar's bytes): room for a list of
/// pods that share a few env or volume blocks by anchors, while a "billion
/// laughs" document needs gigabytes. About 32,000 small nodes.
pub const MAX_ALIAS_EXPANSION: u64 = 1 << 20;

/// Nodes (scalars, collections, aliases) a text may hold, YAML or JSON
/// (src/json.rs). A flat 10 MiB list `[0,0,...]` is 5 million of them:
/// yaml_serde took 819 MB and 3 s to load it, serde_json about 60 bytes a
/// value. A large pod (5 containers, each with 41 env vars, 10 args, 3
/// ports, 10 mounts, probes, resources, a security context; 10 volumes, 20
/// labels and annotations) is 2,154 nodes in YAML (19 KB as JSON), a small
/// one 25: this is a List of 90 such large pods, near the kubelet's 110
/// pods a node, or 8,000 small ones. A flat list at the cap costs 40 MB to
/// load from YAML, 13 MB from JSON (tests/decode_budget.rs).
pub const MAX_NODES: u64 = 200_000;

/// A decoded node's own size, about a `serde_json::Value` and its place in
/// its parent.
const NODE_COST: u64 = 32;

/// Why a YAML text is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum YamlError {
    /// Collections nested deeper than [`MAX_DEPTH`], at this position.
    TooDeep {
        /// 1-based.
        line: u64,
        /// 1-based.
        column: u64,
    },
    /// The alias at this position takes the expansion beyond
    /// [`MAX_ALIAS_EXPANSION`].
    AliasExpansion {
        /// 1-based.
        line: u64,
        /// 1-based.
        column: u64,
    },
    /// The node at this position is one more than [`MAX_NODES`].
    TooManyNodes {
        /// 1-based.
        line: u64,
        /// 1-based.
        column: u64,
    },
    /// libyaml could not start (out of memory).
    Parser,
    /// What yaml_serde says: syntax or type errors.
    Invalid(String),
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            YamlError::TooDeep { line, column } => write!(
                f,
                "line {line} column {column}: nested deeper than {MAX_DEPTH} levels"
            ),
            YamlError::AliasExpansion { line, column } => write!(
                f,
                "line {line} column {column}: aliases expand to more than {MAX_ALIAS_EXPANSION} bytes (refused as an alias bomb)"
            ),
            YamlError::TooManyNodes { line, column } => write!(
                f,
                "line {line} column {column}: more than {MAX_NODES} nodes"
            ),
            YamlError::Parser => f.write_str("the YAML parser could not start"),
            YamlError::Invalid(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for YamlError {}

/// Deserialize `text` once [`check`] passed it.
pub fn from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    check(text.as_bytes())?;
    serde_yaml::from_str(text).map_err(|e| YamlError::Invalid(e.to_string()))
}

/// Refuse a text nested deeper than [`MAX_DEPTH`], whose aliases expand
/// beyond [`MAX_ALIAS_EXPANSION`] or that holds more than [`MAX_NODES`]
/// nodes. Syntax errors pass: the parser that
/// follows stops at the same place and names them.
pub fn check(text: &[u8]) -> Result<(), YamlError> {
    let mut parser = Parser::new(text)?;
    let mut walk = Walk::default();
    while let Some(event) = parser.next() {
        walk.event(event)?;
    }
    Ok(())
}

/// One libyaml event, with what the bounds need of it.
enum Event {
    DocumentStart,
    /// A sequence or mapping begins.
    Start(Option<Vec<u8>>, Mark),
    End,
    Scalar(Option<Vec<u8>>, u64, Mark),
    Alias(Vec<u8>, Mark),
    Other,
}

#[derive(Clone, Copy)]
struct Mark {
    line: u64,
    column: u64,
}

/// The bounds' state: the open collections (their anchor and expanded size
/// so far), the expanded size of every anchor of the document and the
/// nodes of the whole text.
#[derive(Default)]
struct Walk {
    open: Vec<(Option<Vec<u8>>, u64)>,
    anchors: BTreeMap<Vec<u8>, u64>,
    added: u64,
    nodes: u64,
}

impl Walk {
    fn event(&mut self, event: Event) -> Result<(), YamlError> {
        match event {
            Event::DocumentStart => {
                self.anchors.clear();
                self.added = 0;
            }
            Event::Start(anchor, mark) => {
                self.count(mark)?;
                if self.open.len() >= MAX_DEPTH {
                    return Err(YamlError::TooDeep {
                        line: mark.line + 1,
                        column: mark.column + 1,
                    });
                }
                self.open.push((anchor, NODE_COST));
            }
            Event::End => {
                if let Some((anchor, size)) = self.open.pop() {
                    self.node(anchor, size);
                }
            }
            Event::Scalar(anchor, len, mark) => {
                self.count(mark)?;
                self.node(anchor, NODE_COST.saturating_add(len));
            }
            Event::Alias(name, mark) => {
                self.count(mark)?;
                // An unknown anchor is yaml_serde's error to report.
                let size = self.anchors.get(&name).copied().unwrap_or(0);
                self.added = self.added.saturating_add(size);
                if self.added > MAX_ALIAS_EXPANSION {
                    return Err(YamlError::AliasExpansion {
                        line: mark.line + 1,
                        column: mark.column + 1,
                    });
                }
                self.node(None, size);
            }
            Event::Other => {}
        }
        Ok(())
    }

    /// One more node, at `mark`.
    fn count(&mut self, mark: Mark) -> Result<(), YamlError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(YamlError::TooManyNodes {
                line: mark.line + 1,
                column: mark.column + 1,
            });
        }
        Ok(())
    }

    /// A complete node of `size`: it counts in its parent, and under its
    /// anchor for the aliases to come.
    fn node(&mut self, anchor: Option<Vec<u8>>, size: u64) {
        if let Some((_, parent)) = self.open.last_mut() {
            *parent = parent.saturating_add(size);
        }
        if let Some(name) = anchor {
            self.anchors.insert(name, size);
        }
    }
}

/// libyaml's event parser over a borrowed text.
struct Parser<'a> {
    sys: Box<MaybeUninit<sys::yaml_parser_t>>,
    _text: &'a [u8],
    done: bool,
}

impl<'a> Parser<'a> {
    fn new(text: &'a [u8]) -> Result<Parser<'a>, YamlError> {
        let mut sys = Box::new(MaybeUninit::<sys::yaml_parser_t>::uninit());
        let p = sys.as_mut_ptr();
        // SAFETY: `p` points to memory for a parser; initialize zeroes it
        // before anything reads it.
        if unsafe { sys::yaml_parser_initialize(p) }.fail {
            return Err(YamlError::Parser);
        }
        // SAFETY: the parser is initialized; the text outlives it (the
        // struct borrows it for 'a), and `Drop` deletes the parser.
        unsafe {
            sys::yaml_parser_set_encoding(p, sys::YAML_UTF8_ENCODING);
            sys::yaml_parser_set_input_string(p, text.as_ptr(), text.len() as u64);
        }
        Ok(Parser {
            sys,
            _text: text,
            done: false,
        })
    }

    /// The next event; `None` at the end of the stream or at an error.
    fn next(&mut self) -> Option<Event> {
        if self.done {
            return None;
        }
        let mut raw = MaybeUninit::<sys::yaml_event_t>::uninit();
        // SAFETY: the parser is initialized and not yet deleted; on success
        // `raw` is an initialized event, read here and deleted once.
        unsafe {
            if sys::yaml_parser_parse(self.sys.as_mut_ptr(), raw.as_mut_ptr()).fail {
                self.done = true;
                return None;
            }
            let raw = raw.as_mut_ptr();
            let event = convert(&*raw);
            if matches!((*raw).type_, sys::YAML_STREAM_END_EVENT) {
                self.done = true;
            }
            sys::yaml_event_delete(raw);
            Some(event)
        }
    }
}

impl Drop for Parser<'_> {
    fn drop(&mut self) {
        // SAFETY: `new` initialized the parser; it is deleted only here.
        unsafe { sys::yaml_parser_delete(self.sys.as_mut_ptr()) }
    }
}

/// SAFETY: `raw` must be an event libyaml's parser produced.
unsafe fn convert(raw: &sys::yaml_event_t) -> Event {
    let mark = Mark {
        line: raw.start_mark.line,
        column: raw.start_mark.column,
    };
    // SAFETY: each union field read is the one `type_` selects, so it is
    // the variant libyaml wrote; and since `raw` is an event libyaml's
    // parser produced (this function's contract), each anchor it holds is
    // null or a NUL-terminated string libyaml owns, as `name` requires.
    unsafe {
        match raw.type_ {
            sys::YAML_DOCUMENT_START_EVENT => Event::DocumentStart,
            sys::YAML_SEQUENCE_START_EVENT => {
                Event::Start(name(raw.data.sequence_start.anchor), mark)
            }
            sys::YAML_MAPPING_START_EVENT => {
                Event::Start(name(raw.data.mapping_start.anchor), mark)
            }
            sys::YAML_SEQUENCE_END_EVENT | sys::YAML_MAPPING_END_EVENT => Event::End,
            sys::YAML_SCALAR_EVENT => {
                Event::Scalar(name(raw.data.scalar.anchor), raw.data.scalar.length, mark)
            }
            sys::YAML_ALIAS_EVENT => {
                Event::Alias(name(raw.data.alias.anchor).unwrap_or_default(), mark)
            }
            _ => Event::Other,
        }
    }
}

/// SAFETY: `p` is null or a NUL-terminated string libyaml owns.
unsafe fn name(p: *const u8) -> Option<Vec<u8>> {
    if p.is_null() {
        return None;
    }
    // SAFETY: as the function's contract says.
    Some(
        unsafe { std::ffi::CStr::from_ptr(p.cast()) }
            .to_bytes()
            .to_vec(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// `levels` levels of `width` aliases each, over a list of `width`
    /// scalars: a "billion laughs" document.
    fn bomb(width: usize, levels: usize) -> String {
        let mut y = format!("a0: &a0 [{}]\n", vec!["lol"; width].join(","));
        for l in 1..=levels {
            let refs = vec![format!("*a{}", l - 1); width].join(",");
            y.push_str(&format!("a{l}: &a{l} [{refs}]\n"));
        }
        y
    }

    /// Kubernetes met the same attack in go-yaml (CVE-2019-11254, fixed in
    /// gopkg.in/yaml.v2 2.2.8 by "excessive aliasing" limits); yaml_serde's
    /// repetition count (de.rs, `jumpcount`) bounds only the jumps, not what
    /// each jump expands.
    #[test]
    fn an_alias_bomb_is_refused_where_its_expansion_passes_the_limit() {
        let text = bomb(100, 3);
        assert!(text.len() < 3000, "{} bytes", text.len());
        match check(text.as_bytes()) {
            Err(YamlError::AliasExpansion { line, .. }) => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
        let start = Instant::now();
        let err = from_str::<serde_json::Value>(&text).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(err.to_string().contains("alias bomb"), "{err}");
    }

    #[test]
    fn anchors_shared_by_a_few_pods_pass() {
        let text = format!(
            "env: &env [{}]\nitems:\n{}",
            ["{name: A_NAME, value: a value}"; 10].join(","),
            "- {name: p, env: *env}\n".repeat(50)
        );
        let value: serde_json::Value = from_str(&text).unwrap();
        assert_eq!(value["items"][49]["env"][9]["name"], "A_NAME");
    }

    #[test]
    fn an_anchor_redefined_in_a_later_document_starts_afresh() {
        // Each document's aliases count on their own.
        let text = format!("{}---\n{}", bomb(30, 2), bomb(30, 2));
        assert_eq!(check(text.as_bytes()), Ok(()));
    }

    #[test]
    fn deep_nesting_is_refused_before_it_is_walked() {
        let indented: String = (0..1000)
            .map(|i| format!("{}a:\n", " ".repeat(i)))
            .collect();
        for text in ["[".repeat(1 << 20), "- ".repeat(1 << 20), indented] {
            let start = Instant::now();
            match check(text.as_bytes()) {
                Err(YamlError::TooDeep { .. }) => {}
                other => panic!("{other:?}"),
            }
            assert!(start.elapsed() < Duration::from_millis(100));
        }
        let fine = format!("{}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(check(fine.as_bytes()), Ok(()));
        let deeper = format!("[{fine}]");
        assert_eq!(
            check(deeper.as_bytes()),
            Err(YamlError::TooDeep {
                line: 1,
                column: MAX_DEPTH as u64 + 1
            })
        );
    }

    #[test]
    fn a_text_of_more_nodes_than_the_cap_is_refused_at_the_first_one_beyond() {
        // The mapping, two keys, `1` and the list: 5 nodes and the items.
        let list = |n: u64| format!("a: 1\nb: [{}]\n", vec!["0"; n as usize].join(","));
        let at_cap = list(MAX_NODES - 5);
        assert_eq!(check(at_cap.as_bytes()), Ok(()));
        let beyond = list(MAX_NODES - 4);
        let column = 5 + 2 * (MAX_NODES - 5);
        assert_eq!(
            check(beyond.as_bytes()),
            Err(YamlError::TooManyNodes { line: 2, column })
        );
    }

    #[test]
    fn syntax_errors_are_left_to_the_parser() {
        assert_eq!(check(b"a: [\n"), Ok(()));
        assert_eq!(check(b"a: *nowhere\n"), Ok(()));
        let err = from_str::<serde_json::Value>("a: *nowhere\n").unwrap_err();
        assert!(matches!(err, YamlError::Invalid(m) if m.contains("unknown anchor")));
    }
}
