//! The errors validation reports: a [`Fault`] at a field path
//! ([`FieldError`]), and every fault of one pod ([`InvalidPod`]). Their
//! texts are the ones the CLI prints and the integration tests match.

use super::names::{NameError, PathError};
use crate::pod::quantity::QuantityError;
use std::fmt;

/// What is wrong with a field. The kinds follow the API server's field
/// error types (required, forbidden, not supported, duplicate, not found,
/// invalid); the names, paths and quantities that become file names or
/// numbers carry their own error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Missing or empty, with what is needed when that is not obvious.
    Required(Option<&'static str>),
    /// A field picolet knows but does not implement, with why when it
    /// helps; refused so that no behaviour is silently dropped.
    NotSupported(Option<&'static str>),
    /// A value outside the set the API accepts, with the set when it is short.
    UnsupportedValue {
        /// The value as given.
        value: String,
        /// The values allowed, in words.
        allowed: Option<&'static str>,
    },
    /// Set where the API does not allow it.
    Forbidden(&'static str),
    /// A second container or volume (`what` is "name") or container port
    /// ("port name") of the same name.
    Duplicate {
        /// What kind of name.
        what: &'static str,
        /// The name given twice.
        name: String,
    },
    /// A volume mount of a volume the pod does not have.
    NoSuchVolume(String),
    /// A reference to a container the pod does not have.
    NoSuchContainer(String),
    /// A handler's port by a name none of the container's ports has.
    NoSuchPort(String),
    /// A name, key or UID not of the form the API requires.
    Name(NameError),
    /// A file path that would not stay below its directory.
    Path(PathError),
    /// A resource amount that is not a quantity.
    Quantity(QuantityError),
    /// A capability name Linux does not have.
    UnknownCapability(String),
    /// A number below the least the API allows.
    LessThan(i64),
    /// A host port on a pod in its own network namespace: picolet does not
    /// map ports.
    HostPortWithoutHostNetwork,
    /// Any other of the API server's rules, as its message states it.
    Invalid(&'static str),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Required(None) => f.write_str("required"),
            Fault::Required(Some(what)) => write!(f, "required: {what}"),
            Fault::NotSupported(None) => f.write_str("not supported"),
            Fault::NotSupported(Some(why)) => write!(f, "not supported: {why}"),
            Fault::UnsupportedValue { value, allowed } => {
                write!(f, "unsupported value {value:?}")?;
                match allowed {
                    Some(allowed) => write!(f, ": {allowed}"),
                    None => Ok(()),
                }
            }
            Fault::Forbidden(why) => write!(f, "forbidden: {why}"),
            Fault::Duplicate { what, name } => write!(f, "duplicate {what} {name:?}"),
            Fault::NoSuchVolume(name) => write!(f, "volume {name:?} not found"),
            Fault::NoSuchContainer(name) => write!(f, "container {name:?} not found"),
            Fault::NoSuchPort(name) => write!(f, "no container port named {name:?}"),
            Fault::Name(e) => e.fmt(f),
            Fault::Path(e) => e.fmt(f),
            Fault::Quantity(e) => e.fmt(f),
            Fault::UnknownCapability(name) => write!(f, "unknown capability {name:?}"),
            Fault::LessThan(min) => write!(f, "must be greater than or equal to {min}"),
            Fault::HostPortWithoutHostNetwork => {
                f.write_str("not supported without hostNetwork (picolet has no port mapping)")
            }
            Fault::Invalid(rule) => f.write_str(rule),
        }
    }
}

impl From<NameError> for Fault {
    fn from(e: NameError) -> Self {
        Fault::Name(e)
    }
}

impl From<PathError> for Fault {
    fn from(e: PathError) -> Self {
        Fault::Path(e)
    }
}

impl From<QuantityError> for Fault {
    fn from(e: QuantityError) -> Self {
        Fault::Quantity(e)
    }
}

/// One fault in a pod, at a field path such as `spec.volumes[1].nfs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field at fault, as Kubernetes writes field paths.
    pub path: String,
    /// What is wrong with it.
    pub fault: Fault,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.fault)
    }
}

impl std::error::Error for FieldError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.fault {
            Fault::Name(e) => Some(e),
            Fault::Path(e) => Some(e),
            Fault::Quantity(e) => Some(e),
            _ => None,
        }
    }
}

/// A pod that failed validation: which pod, and every fault in field order.
/// It prints as the faults alone, joined by `; `: whoever reports it names
/// the pod's origin (a manifest file, the API server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPod {
    /// `metadata.namespace` as given (empty for the default namespace).
    pub namespace: String,
    /// `metadata.name` as given, which may itself be at fault.
    pub name: String,
    /// At least one fault.
    pub faults: Vec<FieldError>,
}

impl fmt::Display for InvalidPod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, fault) in self.faults.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            fault.fmt(f)?;
        }
        Ok(())
    }
}

impl std::error::Error for InvalidPod {}

/// The faults found so far, in field order.
#[derive(Default)]
pub(super) struct Errors(pub(super) Vec<FieldError>);

impl Errors {
    /// `fault` at `path`.
    pub(super) fn push(&mut self, path: impl Into<String>, fault: impl Into<Fault>) {
        self.0.push(FieldError {
            path: path.into(),
            fault: fault.into(),
        });
    }

    /// `path` breaks a rule of the API server's; `rule` says which.
    pub(super) fn invalid(&mut self, path: impl Into<String>, rule: &'static str) {
        self.push(path, Fault::Invalid(rule));
    }

    /// `path` is missing or empty.
    pub(super) fn required(&mut self, path: impl Into<String>) {
        self.push(path, Fault::Required(None));
    }

    /// `path` is set and picolet does not implement it.
    pub(super) fn unsupported(&mut self, path: impl Into<String>) {
        self.push(path, Fault::NotSupported(None));
    }

    /// Each field of `fields` that is set is not supported, at `prefix.field`.
    pub(super) fn unsupported_fields(&mut self, prefix: &str, fields: &[(&str, bool)]) {
        for (field, set) in fields {
            if *set {
                self.unsupported(format!("{prefix}.{field}"));
            }
        }
    }
}
