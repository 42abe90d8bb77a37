//! Decoding a manifest file's bytes into pods: YAML or JSON, one Pod or a
//! List/PodList. Type errors name the field path; unknown keys become warnings
//! with their path (a typo must be visible, not fatal).

use super::Pod;
use crate::json::JsonError;
use crate::yaml::YamlError;
use serde_json::Value;
use std::fmt;

/// One pod decoded from a document, with the unknown keys it carried.
#[derive(Debug)]
pub struct Decoded {
    /// The pod, as written (no defaults applied).
    pub pod: Pod,
    /// Paths of keys picolet does not know, e.g. `spec.containers[0].imagePullPolicyy`.
    pub unknown_fields: Vec<String>,
}

/// What makes a document not a pod.
#[derive(Debug)]
pub enum DecodeFault {
    /// The bytes are not UTF-8.
    NotUtf8(std::str::Utf8Error),
    /// Not JSON, or beyond the bounds of src/json.rs.
    Json(JsonError),
    /// Not YAML, or beyond the bounds of src/yaml.rs.
    Yaml(YamlError),
    /// A `List` or `PodList` without an `items` array.
    NoItems,
    /// The document (or a List's item) is not an object.
    NotAnObject,
    /// `apiVersion` is missing (`None`) or not `v1`.
    ApiVersion(Option<String>),
    /// `kind` is missing (`None`) or not `Pod`.
    Kind(Option<String>),
    /// A field of the wrong type or form, as serde says it.
    Type(String),
}

impl fmt::Display for DecodeFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeFault::NotUtf8(e) => write!(f, "not UTF-8: {e}"),
            DecodeFault::Json(e) => write!(f, "invalid JSON: {e}"),
            DecodeFault::Yaml(e) => write!(f, "invalid YAML: {e}"),
            DecodeFault::NoItems => f.write_str("a List needs an items array"),
            DecodeFault::NotAnObject => f.write_str("a manifest must be a Pod object"),
            DecodeFault::ApiVersion(Some(other)) => write!(f, "must be v1, not {other:?}"),
            DecodeFault::ApiVersion(None) => f.write_str("required (v1)"),
            DecodeFault::Kind(Some(other)) => write!(f, "must be Pod, not {other:?}"),
            DecodeFault::Kind(None) => f.write_str("required (Pod)"),
            DecodeFault::Type(message) => f.write_str(message),
        }
    }
}

/// Why a document is not a pod, at a field path.
#[derive(Debug)]
pub struct DecodeError {
    /// The field path at fault (`spec.containers[0].ports[1].containerPort`), or empty.
    pub path: String,
    /// What is wrong there.
    pub fault: DecodeFault,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            self.fault.fmt(f)
        } else {
            write!(f, "{}: {}", self.path, self.fault)
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.fault {
            DecodeFault::NotUtf8(e) => Some(e),
            DecodeFault::Json(e) => Some(e),
            DecodeFault::Yaml(e) => Some(e),
            _ => None,
        }
    }
}

fn error(path: impl Into<String>, fault: DecodeFault) -> DecodeError {
    DecodeError {
        path: path.into(),
        fault,
    }
}

/// Decode a whole manifest file. JSON when it starts with `{` (serde_json
/// stops at 128 levels as it reads), YAML otherwise, bounded in depth and
/// alias expansion before it is loaded (src/yaml.rs); both bounded in the
/// number of nodes (src/json.rs, src/yaml.rs).
pub fn decode_manifest(bytes: &[u8]) -> Result<Vec<Decoded>, DecodeError> {
    let text = std::str::from_utf8(bytes).map_err(|e| error("", DecodeFault::NotUtf8(e)))?;
    let document: Value = if text.trim_start().starts_with('{') {
        crate::json::from_slice(bytes).map_err(|e| error("", DecodeFault::Json(e)))?
    } else {
        crate::yaml::from_str(text).map_err(|e| error("", DecodeFault::Yaml(e)))?
    };
    match document.get("kind").and_then(Value::as_str) {
        Some("List") | Some("PodList") => {
            let items = document
                .get("items")
                .and_then(Value::as_array)
                .ok_or_else(|| error("items", DecodeFault::NoItems))?;
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let prefix = format!("items[{i}]");
                    match decode_pod(item) {
                        Ok(mut decoded) => {
                            for path in &mut decoded.unknown_fields {
                                *path = join(&prefix, path);
                            }
                            Ok(decoded)
                        }
                        Err(mut e) => {
                            e.path = join(&prefix, &e.path);
                            Err(e)
                        }
                    }
                })
                .collect()
        }
        _ => decode_pod(&document).map(|d| vec![d]),
    }
}

fn join(prefix: &str, path: &str) -> String {
    if prefix.is_empty() {
        path.to_string()
    } else if path.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}.{path}")
    }
}

/// Decode one Pod object, checking `apiVersion` and `kind`.
pub fn decode_pod(value: &Value) -> Result<Decoded, DecodeError> {
    if !value.is_object() {
        return Err(error("", DecodeFault::NotAnObject));
    }
    match value.get("apiVersion").and_then(Value::as_str) {
        Some("v1") => {}
        other => {
            let other = other.map(str::to_string);
            return Err(error("apiVersion", DecodeFault::ApiVersion(other)));
        }
    }
    match value.get("kind").and_then(Value::as_str) {
        Some("Pod") => {}
        other => {
            let other = other.map(str::to_string);
            return Err(error("kind", DecodeFault::Kind(other)));
        }
    }
    let mut unknown_fields = Vec::new();
    let mut record =
        |path: serde_ignored::Path<'_>| unknown_fields.push(format_ignored_path(&path));
    let ignored = serde_ignored::Deserializer::new(value, &mut record);
    let pod: Pod = serde_path_to_error::deserialize(ignored).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        error(path, DecodeFault::Type(e.into_inner().to_string()))
    })?;
    Ok(Decoded {
        pod,
        unknown_fields,
    })
}

/// `spec.containers[0].foo`, the way Kubernetes writes field paths.
fn format_ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", format_ignored_path(parent)),
        Path::Map { parent, key } => join(&format_ignored_path(parent), key),
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => format_ignored_path(parent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: busybox\n";

    #[test]
    fn yaml_pod_decodes() {
        let pods = decode_manifest(POD.as_bytes()).unwrap();
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].pod.metadata.name, "web");
        assert_eq!(pods[0].pod.spec.containers[0].image, "busybox");
        assert!(pods[0].unknown_fields.is_empty());
    }

    #[test]
    fn json_pod_decodes() {
        let json = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#;
        let pods = decode_manifest(json.as_bytes()).unwrap();
        assert_eq!(pods[0].pod.metadata.name, "j");
    }

    /// A List of 90 large pods (5 containers of 80 env vars: about 2,100
    /// nodes each) fits under the node cap of src/yaml.rs; 10 more do not.
    #[test]
    fn a_list_of_90_large_pods_is_within_the_node_cap() {
        let env: String = (0..80)
            .map(|i| format!("      - name: ENV_{i}\n        value: a value\n"))
            .collect();
        let containers: String = (0..5)
            .map(|c| format!("    - name: c{c}\n      image: busybox\n      env:\n{env}"))
            .collect();
        let pod = |i| {
            format!("- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: p{i}\n  spec:\n    containers:\n{containers}")
        };
        let list = |n| {
            let pods: String = (0..n).map(pod).collect();
            format!("apiVersion: v1\nkind: List\nitems:\n{pods}")
        };
        assert_eq!(decode_manifest(list(90).as_bytes()).unwrap().len(), 90);
        let err = decode_manifest(list(100).as_bytes()).unwrap_err();
        assert!(
            matches!(err.fault, DecodeFault::Yaml(YamlError::TooManyNodes { .. })),
            "{err:?}"
        );
        assert!(err.to_string().ends_with("more than 200000 nodes"), "{err}");
    }

    #[test]
    fn unknown_field_is_a_warning_with_its_path() {
        let yaml = POD.replace(
            "    image: busybox\n",
            "    image: busybox\n    imagePullPolicyy: Never\n",
        );
        let pods = decode_manifest(yaml.as_bytes()).unwrap();
        assert_eq!(
            pods[0].unknown_fields,
            vec!["spec.containers[0].imagePullPolicyy"]
        );
    }

    #[test]
    fn type_error_names_the_field() {
        let yaml = POD.replace(
            "    image: busybox\n",
            "    image: busybox\n    ports:\n    - containerPort: eighty\n",
        );
        let err = decode_manifest(yaml.as_bytes()).unwrap_err();
        assert_eq!(err.path, "spec.containers[0].ports[0].containerPort");
        assert!(matches!(err.fault, DecodeFault::Type(_)), "{err:?}");
    }

    #[test]
    fn list_of_pods_decodes_each_item() {
        let list = format!(
            "apiVersion: v1\nkind: List\nitems:\n- {}\n- {}\n",
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#,
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"b"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#
        );
        let pods = decode_manifest(list.as_bytes()).unwrap();
        let names: Vec<_> = pods.iter().map(|d| d.pod.metadata.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn wrong_kind_and_broken_yaml_are_errors() {
        let err =
            decode_manifest(POD.replace("kind: Pod", "kind: Deployment").as_bytes()).unwrap_err();
        assert_eq!(err.path, "kind");
        assert!(
            matches!(&err.fault, DecodeFault::Kind(Some(k)) if k == "Deployment"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "kind: must be Pod, not \"Deployment\"");
        let err = decode_manifest(b"apiVersion: v1\nkind: Pod\n  bad: [").unwrap_err();
        assert!(
            matches!(err.fault, DecodeFault::Yaml(YamlError::Invalid(_))),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("invalid YAML: "), "{err}");
    }

    #[test]
    fn an_alias_bomb_is_an_error_not_a_gigabyte() {
        let mut bomb = format!("a0: &a0 [{}]\n", vec!["lol"; 100].join(","));
        for l in 1..4 {
            let refs = vec![format!("*a{}", l - 1); 100].join(",");
            bomb.push_str(&format!("a{l}: &a{l} [{refs}]\n"));
        }
        let err = decode_manifest(bomb.as_bytes()).unwrap_err();
        assert_eq!(err.path, "");
        assert!(
            matches!(
                err.fault,
                DecodeFault::Yaml(YamlError::AliasExpansion {
                    line: 3,
                    column: 14
                })
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("invalid YAML: line 3 column 14: aliases expand to more than"),
            "{err}"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_in_yaml_and_json() {
        let err = decode_manifest("[".repeat(10 << 20).as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid YAML: line 1 column 65: nested deeper than 64 levels"
        );
        let err = decode_manifest("{\"a\":".repeat(1000).as_bytes()).unwrap_err();
        assert!(matches!(
            err.fault,
            DecodeFault::Json(JsonError::Invalid(_))
        ));
        assert!(
            err.to_string()
                .starts_with("invalid JSON: recursion limit exceeded"),
            "{err}"
        );
        // A megabyte of them is refused by its count before serde_json.
        let err = decode_manifest("{\"a\":".repeat(1 << 20).as_bytes()).unwrap_err();
        assert!(matches!(
            err.fault,
            DecodeFault::Json(JsonError::TooManyValues { offset: 999995 })
        ));
        assert_eq!(
            err.to_string(),
            "invalid JSON: byte 999995: more than 200000 values"
        );
    }
}
