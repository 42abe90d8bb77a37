//! `picolet images`, `picolet image pull REF...`, `picolet image import
//! FILE|DIR...` and `picolet image rm REF...`: the image store at `<root>/images` (src/image/), safe while the
//! agent runs (index.json and blob writes are locked: src/image/index.rs,
//! src/image/blobs.rs). What is in use comes from the agent's published pod
//! status, when last used from its images-used.json (src/published.rs).

use super::args::{parse, ArgsError};
use super::get::{columns, human_age};
use crate::image::digest::Digest;
use crate::image::gc::{self, collect, inventory, GcError, GcImage};
use crate::image::import::{import_archive, import_dir, DirResult};
use crate::image::index::{full_name, IndexError};
use crate::image::layout::Layout;
use crate::image::reference::Reference;
use crate::image::used::LastUsed;
use crate::image::worker::Job;
use crate::image::PullJob;
use crate::pod::status::PodList;
use crate::published::{IMAGES_USED_FILE, STATUS_FILE};
use crate::time::Time;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The agent's `--root` default (src/config.rs).
const DEFAULT_ROOT: &str = "/var/lib/picolet";
/// The agent's `--run-dir` default.
const DEFAULT_RUN: &str = "/run/picolet";
/// The agent's `registryConfig` default.
const DEFAULT_REGISTRY_CONFIG: &str = "/etc/picolet/registries.yaml";

/// Why an image command failed.
#[derive(Debug)]
pub enum ImagesError {
    /// The flags do not parse.
    Args(ArgsError),
    /// No subcommand, or one other than import and rm, or no operand.
    Usage,
    /// index.json (or a name that is not a reference).
    Index(IndexError),
    /// Listing or collecting the store.
    Gc(GcError),
    /// Some archives failed (each was reported as it failed).
    ImportFailed { failed: usize, total: usize },
    /// The image is used by these pods' containers.
    InUse {
        reference: String,
        pods: Vec<String>,
    },
    /// No image of this name in the store.
    NotFound { reference: String },
    /// Some references could not be removed (each was reported).
    RemoveFailed { failed: usize, total: usize },
    /// registries.yaml.
    Registries(crate::registry::RegistryConfigError),
    /// The root could not be made (a pull or an import on a new device).
    Root(PathBuf, std::io::Error),
    /// Some pulls failed (each was reported).
    PullFailed { failed: usize, total: usize },
    /// Writing to stdout failed.
    Write(std::io::Error),
}

impl fmt::Display for ImagesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImagesError::Args(e) => write!(f, "{e}"),
            ImagesError::Usage => f.write_str(
                "usage: picolet images [--root DIR] [--run-dir DIR]\n       picolet image pull REF... [--root DIR] [--registry-config FILE]\n       picolet image import FILE|DIR... [--root DIR]\n       picolet image rm REF... [--root DIR] [--run-dir DIR]",
            ),
            ImagesError::Index(e) => write!(f, "{e}"),
            ImagesError::Gc(e) => write!(f, "{e}"),
            ImagesError::ImportFailed { failed, total } => {
                write!(f, "{failed} of {total} archives failed to import")
            }
            ImagesError::InUse { reference, pods } => write!(
                f,
                "image {reference} is in use by pod {}; remove the pod first",
                pods.join(", ")
            ),
            ImagesError::NotFound { reference } => write!(f, "no such image: {reference}"),
            ImagesError::RemoveFailed { failed, total } => {
                write!(f, "{failed} of {total} images could not be removed")
            }
            ImagesError::Write(e) => write!(f, "{e}"),
            ImagesError::Registries(e) => write!(f, "{e}"),
            ImagesError::Root(path, e) => write!(f, "{}: {e}", path.display()),
            ImagesError::PullFailed { failed, total } => {
                write!(f, "{failed} of {total} images could not be pulled")
            }
        }
    }
}

impl std::error::Error for ImagesError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ImagesError::Args(e) => Some(e),
            ImagesError::Index(e) => Some(e),
            ImagesError::Gc(e) => Some(e),
            ImagesError::Write(e) => Some(e),
            ImagesError::Registries(e) => Some(e),
            ImagesError::Root(_, e) => Some(e),
            ImagesError::Usage
            | ImagesError::PullFailed { .. }
            | ImagesError::ImportFailed { .. }
            | ImagesError::InUse { .. }
            | ImagesError::NotFound { .. }
            | ImagesError::RemoveFailed { .. } => None,
        }
    }
}

impl From<ArgsError> for ImagesError {
    fn from(e: ArgsError) -> ImagesError {
        ImagesError::Args(e)
    }
}

/// The store and the agent's run dir the flags name.
struct Dirs {
    root: PathBuf,
    run: PathBuf,
    registry_config: PathBuf,
}

impl Dirs {
    fn layout(&self) -> Layout {
        Layout::new(self.root.join("images"))
    }

    /// The root, made (0700, as the agent makes it) if a new device has
    /// none yet: a factory image is filled before the agent first runs.
    fn make_root(&self) -> Result<(), ImagesError> {
        crate::state::create_private_dir(&self.root)
            .map_err(|e| ImagesError::Root(self.root.clone(), e))
    }
}

fn dirs(args: &[String]) -> Result<(Dirs, Vec<String>), ImagesError> {
    let p = parse(args, &["root", "run-dir", "registry-config"], &[], &[])?;
    let dirs = Dirs {
        root: PathBuf::from(p.value("root").unwrap_or(DEFAULT_ROOT)),
        run: PathBuf::from(p.value("run-dir").unwrap_or(DEFAULT_RUN)),
        registry_config: PathBuf::from(
            p.value("registry-config")
                .unwrap_or(DEFAULT_REGISTRY_CONFIG),
        ),
    };
    Ok((dirs, p.positional))
}

/// `picolet images ARGS`: the table of images.
pub fn images(args: &[String]) -> Result<(), ImagesError> {
    let (dirs, rest) = dirs(args)?;
    if !rest.is_empty() {
        return Err(ImagesError::Usage);
    }
    let used = last_used(&dirs.run);
    let images = inventory(&dirs.layout(), &used).map_err(ImagesError::Gc)?;
    let text = table(&images, &users(&dirs.run), Time::now());
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(ImagesError::Write)
}

/// `picolet image SUBCOMMAND ARGS`: `import` or `rm`.
pub fn image(args: &[String]) -> Result<(), ImagesError> {
    let (dirs, rest) = dirs(args)?;
    match rest.split_first() {
        Some((sub, operands)) if sub == "pull" && !operands.is_empty() => pull(&dirs, operands),
        Some((sub, operands)) if sub == "import" && !operands.is_empty() => import(&dirs, operands),
        Some((sub, operands)) if sub == "rm" && !operands.is_empty() => remove(&dirs, operands),
        _ => Err(ImagesError::Usage),
    }
}

/// Pull each reference as the agent would with `imagePullPolicy: Always`,
/// with registries.yaml's mirrors and credentials; safe while the agent
/// runs and pulls (the store's locks, src/image/blobs.rs).
fn pull(dirs: &Dirs, references: &[String]) -> Result<(), ImagesError> {
    dirs.make_root()?;
    let config = crate::registry::RegistryConfig::load(&dirs.registry_config)
        .map_err(ImagesError::Registries)?;
    let registries = std::sync::Arc::new(crate::registry::Registries::new(config.into()));
    let mut failed = 0;
    for image in references {
        let began = std::time::Instant::now();
        let pulled = Reference::parse(image)
            .map_err(|e| format!("invalid image name {image:?}: {e}"))
            .and_then(|reference| {
                let job = PullJob::new(
                    image,
                    reference,
                    Vec::new(),
                    registries.clone(),
                    &dirs.root,
                    None,
                );
                job.run().map_err(|e| e.message)
            });
        match pulled {
            Ok(p) => println!(
                "Pulled {image}: {} ({} bytes) in {:.1?}",
                p.digest,
                p.bytes,
                began.elapsed()
            ),
            Err(message) => {
                failed += 1;
                eprintln!("error: {message}");
            }
        }
    }
    match failed {
        0 => Ok(()),
        _ => Err(ImagesError::PullFailed {
            failed,
            total: references.len(),
        }),
    }
}

/// Import each archive, or each new archive of a directory (as the agent
/// does with its import directory at start).
fn import(dirs: &Dirs, operands: &[String]) -> Result<(), ImagesError> {
    dirs.make_root()?;
    let layout = dirs.layout();
    let (mut failed, mut total) = (0, 0);
    let mut report = |file: &Path, result: DirResult| {
        total += 1;
        match result {
            Ok(Some(refs)) => refs.iter().for_each(|r| println!("Imported {r}")),
            Ok(None) => println!("{}: imported before, unchanged", file.display()),
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
    };
    for operand in operands.iter().map(Path::new) {
        if operand.is_dir() {
            match import_dir(&layout, operand) {
                Ok(results) => results.into_iter().for_each(|(f, r)| report(&f, r)),
                Err(e) => report(operand, Err(e)),
            }
        } else {
            report(operand, import_archive(&layout, operand).map(Some));
        }
    }
    match failed {
        0 => Ok(()),
        _ => Err(ImagesError::ImportFailed { failed, total }),
    }
}

/// Remove each name, then collect what no name or container needs, under
/// `gc.lock` from the first look at index.json: a pull finishing meanwhile
/// cannot name an image this removes. Waits while pulls write.
fn remove(dirs: &Dirs, references: &[String]) -> Result<(), ImagesError> {
    let layout = dirs.layout();
    let lock = gc::lock(&layout).map_err(ImagesError::Gc)?;
    let users = users(&dirs.run);
    let mut victims = BTreeSet::new();
    let mut failed = 0;
    for reference in references {
        match remove_one(&layout, reference, &users) {
            Ok((full, victim)) => {
                println!("Untagged: {full}");
                victims.extend(victim);
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
    }
    let in_use: BTreeSet<Digest> = users.keys().cloned().collect();
    let freed = collect(
        &lock,
        &layout,
        &dirs.root.join("rootfs"),
        &victims,
        &in_use,
        SystemTime::now(),
    )
    .map_err(ImagesError::Gc)?;
    for digest in &victims {
        println!("Deleted: {digest}");
    }
    if freed.bytes > 0 {
        println!("Freed {}", human_size(freed.bytes));
    }
    match failed {
        0 => Ok(()),
        _ => Err(ImagesError::RemoveFailed {
            failed,
            total: references.len(),
        }),
    }
}

/// Remove the name `reference`, unless a container uses its image; the
/// full name, and the manifest to collect when no other name keeps it.
fn remove_one(
    layout: &Layout,
    reference: &str,
    users: &BTreeMap<Digest, Vec<String>>,
) -> Result<(String, Option<Digest>), ImagesError> {
    let full = full_name(reference).map_err(ImagesError::Index)?;
    let entries = layout.list().map_err(ImagesError::Index)?;
    let named = |n: &Option<String>| {
        n.as_deref()
            .is_some_and(|n| full_name(n).is_ok_and(|n| n == full))
    };
    let Some(entry) = entries.iter().find(|e| named(&e.name)) else {
        return Err(ImagesError::NotFound { reference: full });
    };
    let digest = entry.descriptor.digest.clone();
    // pods.json names the platform manifest of a multi-platform image.
    let id = gc::image_id(layout, &digest);
    if let Some(pods) = users.get(&digest).or_else(|| users.get(id.as_ref()?)) {
        return Err(ImagesError::InUse {
            reference: full,
            pods: pods.clone(),
        });
    }
    layout.remove_ref(&full).map_err(ImagesError::Index)?;
    let still_named = entries
        .iter()
        .any(|e| e.descriptor.digest == digest && !named(&e.name));
    Ok((full, (!still_named).then_some(digest)))
}

/// The pods (`namespace/name`) whose containers use each image, from the
/// agent's published status; none when the agent has published none.
fn users(run: &Path) -> BTreeMap<Digest, Vec<String>> {
    let path = run.join(STATUS_FILE);
    let list: PodList = match crate::state::read_json(&path) {
        Ok(Some(list)) => list,
        Ok(None) => return BTreeMap::new(),
        Err(e) => {
            eprintln!("warning: {e}: images in use are not known");
            return BTreeMap::new();
        }
    };
    let mut users: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    for pod in &list.items {
        let s = &pod.status;
        let name = format!("{}/{}", pod.metadata.namespace, pod.metadata.name);
        for c in s
            .init_container_statuses
            .iter()
            .chain(&s.container_statuses)
        {
            // `sha256:...`, or `name@sha256:...` as some runtimes report it.
            let id = c.image_id.rsplit('@').next().unwrap_or_default();
            if let Ok(digest) = Digest::parse(id) {
                let pods = users.entry(digest).or_default();
                if !pods.contains(&name) {
                    pods.push(name.clone());
                }
            }
        }
    }
    users
}

/// When each image was last used, from the agent's images-used.json.
fn last_used(run: &Path) -> LastUsed {
    crate::image::used::read(run).unwrap_or_else(|e| {
        eprintln!("warning: {}: {e}", run.join(IMAGES_USED_FILE).display());
        LastUsed::new()
    })
}

/// The table: one row per name (an unnamed image as `<none>`).
fn table(images: &[GcImage], users: &BTreeMap<Digest, Vec<String>>, now: Time) -> String {
    let mut rows = vec![["IMAGE", "DIGEST", "SIZE", "LAST USED", "IN USE"].map(String::from)];
    for image in images {
        let names: Vec<String> = match image.refs.is_empty() {
            true => vec!["<none>".into()],
            false => image.refs.iter().map(|r| familiar(r)).collect(),
        };
        let last = image.last_used.map_or("-".into(), |t| {
            format!("{} ago", human_age(now.saturating_sub(t).as_secs()))
        });
        let in_use = users
            .get(&image.manifest)
            .or_else(|| users.get(image.image_id.as_ref()?))
            .map_or("-".into(), |p| p.join(","));
        for name in names {
            rows.push([
                name,
                image.manifest.hex()[..12].to_string(),
                human_size(image.size),
                last.clone(),
                in_use.clone(),
            ]);
        }
    }
    columns(&rows)
}

fn familiar(stored: &str) -> String {
    Reference::parse(stored).map_or_else(|_| stored.to_string(), |r| r.familiar())
}

/// Bytes in decimal units, as `crictl images` prints them: `4.26MB`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes}B");
    }
    // Three significant digits, without trailing zeros: 4.26, 42.6, 426, 1.5.
    let digits: String = format!("{value:.3}").chars().take(4).collect();
    let digits = match digits.contains('.') {
        true => digits.trim_end_matches('0').trim_end_matches('.'),
        false => &digits,
    };
    format!("{digits}{}", UNITS[unit])
}

#[cfg(test)]
mod tests;
