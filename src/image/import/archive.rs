//! Reading members of an archive by name, one pass over the file at a
//! time, with the bounded tar reader of src/image/unpack/tar.rs. Names in
//! an archive are hostile: they are compared as strings and never become
//! paths; links and other non-files are never read.

use super::ImportError;
use crate::image::layout::MAX_JSON;
use crate::image::unpack::tar::{Archive, Header, Kind};
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// The longest member name read: the names that matter are short
/// (`manifest.json`, `blobs/sha512/<128 hex>`); PATH_MAX as the unpacker.
const MAX_NAME: usize = 4096;

/// The archive's stream: the file, gunzipped when it starts with gzip's
/// magic (`docker save | gzip`).
fn open(file: &Path) -> Result<Box<dyn Read>, ImportError> {
    let open_error = |error| ImportError::Open {
        file: file.to_path_buf(),
        error,
    };
    let mut reader = BufReader::new(File::open(file).map_err(open_error)?);
    let gzip = reader
        .fill_buf()
        .map_err(open_error)?
        .starts_with(&[0x1f, 0x8b]);
    Ok(match gzip {
        true => Box::new(MultiGzDecoder::new(reader)),
        false => Box::new(reader),
    })
}

/// A member's name without a leading `./`.
pub(super) fn member_name(header: &Header) -> String {
    let name = header.name();
    name.strip_prefix("./").unwrap_or(&name).to_string()
}

/// Call `f` with each regular file of the archive and its content, in the
/// archive's order; `f` reads as much as it wants.
pub(super) fn for_each_file(
    file: &Path,
    mut f: impl FnMut(&str, u64, &mut dyn Read) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let tar_error = |error| ImportError::Tar {
        file: file.to_path_buf(),
        error,
    };
    let mut archive = Archive::new(open(file)?, MAX_NAME);
    while let Some(header) = archive.next().map_err(tar_error)? {
        if header.kind == Kind::File {
            f(&member_name(&header), header.size, &mut archive.contents())?;
        }
    }
    Ok(())
}

/// The most bytes of small members read whole from one archive: a
/// manifest.json or index.json and a few configs take kilobytes; without a
/// bound, an archive repeating 4 MiB members took 830 MB (found by
/// fuzz/fuzz_targets/image_archive.rs).
const MAX_SMALL_TOTAL: u64 = 4 * MAX_JSON;

/// The small members (at most [`MAX_JSON`] bytes each, [`MAX_SMALL_TOTAL`]
/// in all) `wanted` says yes to, whole, by name; a larger one, or a name
/// that comes twice (which one would count is the tool's guess), is an
/// error naming it.
pub(super) fn read_small(
    file: &Path,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<(String, Vec<u8>)>, ImportError> {
    let mut found: Vec<(String, Vec<u8>)> = Vec::new();
    let mut total = 0u64;
    for_each_file(file, |name, size, content| {
        if !wanted(name) {
            return Ok(());
        }
        if found.iter().any(|(n, _)| n == name) {
            return Err(ImportError::Format {
                file: file.to_path_buf(),
                why: format!("member {name:?} appears twice"),
            });
        }
        total = total.saturating_add(size);
        if total > MAX_SMALL_TOTAL {
            return Err(ImportError::Format {
                file: file.to_path_buf(),
                why: format!("its JSON members take more than {MAX_SMALL_TOTAL} bytes"),
            });
        }
        if size > MAX_JSON {
            return Err(ImportError::TooLarge {
                file: file.to_path_buf(),
                member: name.to_string(),
                max: MAX_JSON,
            });
        }
        let mut data = Vec::with_capacity(size as usize);
        content
            .read_to_end(&mut data)
            .map_err(|e| read_error(file, name, e))?;
        found.push((name.to_string(), data));
        Ok(())
    })?;
    Ok(found)
}

/// A member's content could not be read.
pub(super) fn read_error(file: &Path, member: &str, error: io::Error) -> ImportError {
    ImportError::Read {
        file: file.to_path_buf(),
        member: member.to_string(),
        error,
    }
}
