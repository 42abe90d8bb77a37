//! The forms of names, keys, UIDs and file paths: every string of a pod
//! that becomes part of a file name, a directory or an API path on the
//! node, checked as the API server checks it (and a little tighter where it
//! names picolet's own directories).

use std::fmt;

/// A name, key or UID not of the form the API requires; each holds the
/// string as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    /// Not a DNS-1123 label (container and volume names, namespaces).
    Dns1123Label(String),
    /// Not a DNS-1123 subdomain (pod, ConfigMap and Secret names).
    Dns1123Subdomain(String),
    /// Not a pod UID picolet can name directories by.
    PodUid(String),
    /// Not a ConfigMap or Secret key.
    ConfigMapKey(String),
    /// Not an IANA service name (container port names).
    PortName(String),
    /// Not an HTTP header name (a probe's or hook's `httpHeaders`).
    HttpHeaderName(String),
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Dns1123Label(s) => write!(
                f,
                "{s:?} is not a DNS-1123 label (at most 63 lowercase alphanumerics or '-', starting and ending alphanumeric)"
            ),
            NameError::Dns1123Subdomain(s) => write!(
                f,
                "{s:?} is not a DNS-1123 subdomain (lowercase alphanumerics, '-' and '.', at most 253)"
            ),
            NameError::PodUid(s) => write!(
                f,
                "{s:?} is not a valid pod UID (1-{MAX_UID} ASCII letters, digits and '-', as a UUID)"
            ),
            NameError::ConfigMapKey(s) => write!(
                f,
                "{s:?} is not a valid key (at most 253 of '-', '.', '_' and alphanumerics, not '.' or '..')"
            ),
            NameError::PortName(s) => write!(f, "{s:?} is not a valid port name (IANA_SVC_NAME)"),
            NameError::HttpHeaderName(s) => write!(f, "{s:?} is not a valid HTTP header name"),
        }
    }
}

impl std::error::Error for NameError {}

/// A path that would not stay a file name below its directory; each holds
/// the path as given, or its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// Starts with `/`.
    Absolute(String),
    /// Holds a NUL byte.
    Nul(String),
    /// Has a `..` element.
    ParentElement(String),
    /// Longer than 4096 bytes, or an element longer than 255.
    TooLong(usize),
    /// Starts with `..`, which the kubelet's atomic writer keeps for its own names.
    Reserved(String),
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::Absolute(p) => write!(f, "{p:?} must be a relative path"),
            PathError::Nul(p) => write!(f, "{p:?} must not contain NUL"),
            PathError::ParentElement(p) => write!(f, "{p:?} must not contain '..'"),
            PathError::TooLong(len) => write!(
                f,
                "is {len} bytes: at most {MAX_PATH}, and {MAX_ELEMENT} per element"
            ),
            PathError::Reserved(p) => write!(f, "{p:?} must not start with '..'"),
        }
    }
}

impl std::error::Error for PathError {}

/// The longest path and path element a volume file or subPath may have, as
/// the kubelet's atomic writer allows (and Linux's PATH_MAX / NAME_MAX).
const MAX_PATH: usize = 4096;
const MAX_ELEMENT: usize = 255;

/// A path that stays below the directory it is joined to, as the API
/// server's `validateLocalDescendingPath` (used for subPath and volume file
/// paths): relative, no `..` element; and, since it becomes a file name,
/// no NUL and within the file system's length limits.
pub(super) fn local_descending_path(p: &str) -> Result<(), PathError> {
    if p.starts_with('/') {
        return Err(PathError::Absolute(p.to_string()));
    }
    if p.contains('\0') {
        return Err(PathError::Nul(p.to_string()));
    }
    if p.split('/').any(|part| part == "..") {
        return Err(PathError::ParentElement(p.to_string()));
    }
    if p.len() > MAX_PATH || p.split('/').any(|part| part.len() > MAX_ELEMENT) {
        return Err(PathError::TooLong(p.len()));
    }
    Ok(())
}

/// `local_descending_path` that does not start with `..` either (the
/// kubelet's atomic writer keeps its own `..data` names there), as the API
/// server's `ValidateLocalNonReservedPath`.
pub(super) fn local_non_reserved_path(p: &str) -> Result<(), PathError> {
    local_descending_path(p)?;
    if p.starts_with("..") {
        return Err(PathError::Reserved(p.to_string()));
    }
    Ok(())
}

/// A ConfigMap or Secret key, as the API server's `IsConfigMapKey`: at most
/// 253 of `[-._a-zA-Z0-9]`, not `.` or `..`. A key becomes a file name in
/// a volume.
pub fn config_map_key(s: &str) -> Result<(), NameError> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && s != "."
        && s != "..";
    ok.then_some(())
        .ok_or_else(|| NameError::ConfigMapKey(s.to_string()))
}

/// The longest `metadata.uid` accepted: a DNS label's length, room for an
/// RFC 4122 UUID (36, what API servers assign) and the kubelet's and
/// picolet's 32-digit hex hashes.
const MAX_UID: usize = 63;

/// A pod UID given in a manifest or by a server. An API server makes UUIDs
/// and the kubelet keeps a static pod's as given, unchecked; here it names
/// the pod's directories (`<root>/pods/<uid>`, the log directory
/// `<namespace>_<name>_<uid>`, container ids `<uid>_<container>_<n>`), so
/// only ASCII alphanumerics and '-' are allowed: never `.`, `..`, '/' or
/// NUL, and no '_', which separates the parts of those names.
pub fn pod_uid(s: &str) -> Result<(), NameError> {
    let ok = !s.is_empty()
        && s.len() <= MAX_UID
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    ok.then_some(())
        .ok_or_else(|| NameError::PodUid(s.to_string()))
}

/// A DNS-1123 label: at most 63 lowercase alphanumerics or '-', alphanumeric at both ends.
pub fn dns1123_label(s: &str) -> Result<(), NameError> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    ok.then_some(())
        .ok_or_else(|| NameError::Dns1123Label(s.to_string()))
}

/// A DNS-1123 subdomain: dot-separated labels, at most 253 characters.
pub fn dns1123_subdomain(s: &str) -> Result<(), NameError> {
    let ok = s.len() <= 253 && s.split('.').all(|l| dns1123_label(l).is_ok());
    ok.then_some(())
        .ok_or_else(|| NameError::Dns1123Subdomain(s.to_string()))
}

/// IANA_SVC_NAME: at most 15 lowercase alphanumerics or '-', with a letter, no "--".
pub(super) fn port_name(s: &str) -> Result<(), NameError> {
    let ok = dns1123_label(s).is_ok()
        && s.len() <= 15
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && !s.contains("--");
    ok.then_some(())
        .ok_or_else(|| NameError::PortName(s.to_string()))
}

/// An HTTP header name: a token of RFC 9110 (letters, digits and
/// ``!#$%&'*+-.^_`|~``).
pub(super) fn http_header_name(s: &str) -> Result<(), NameError> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b));
    ok.then_some(())
        .ok_or_else(|| NameError::HttpHeaderName(s.to_string()))
}

#[cfg(test)]
mod tests;
