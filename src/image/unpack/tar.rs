//! A bounded reader of tar streams as image layers use them: ustar, GNU long
//! names and links ('L', 'K'), PAX extended headers ('x'; global 'g' ones
//! are read and ignored). Every header that is held in memory has a cap, so
//! a layer cannot make the agent allocate more than a few KiB per entry
//! however large the sizes it declares.

use std::fmt;
use std::io::{self, Read};

const BLOCK: usize = 512;
/// The most bytes of one PAX header ('x' or 'g') kept in memory. Names are
/// capped far below this (`max_name`); the rest leaves room for the records
/// (xattrs, times) that images carry and this reader skips.
pub const MAX_PAX: u64 = 1024 * 1024;

/// What an entry is. Hard links and symlinks carry their target in
/// [`Header::link`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    HardLink,
    Symlink,
    CharDevice,
    BlockDevice,
    Dir,
    Fifo,
}

/// One entry's header, after its GNU and PAX extensions are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name as stored: bytes, not necessarily UTF-8, not yet checked.
    pub path: Vec<u8>,
    /// A link's target (hard or symbolic), as stored.
    pub link: Vec<u8>,
    /// What the entry is.
    pub kind: Kind,
    /// Permission bits (and setuid, setgid, sticky).
    pub mode: u32,
    /// Owner, as stored; unpacking keeps it.
    pub uid: u64,
    /// Group, as stored; unpacking keeps it.
    pub gid: u64,
    /// Bytes of content that follow (0 for every kind but `File`).
    pub size: u64,
}

impl Header {
    /// The name for messages.
    pub fn name(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

/// Why a stream is not a tar this reader accepts. Names are those of the
/// header where it failed, shortened for messages.
#[derive(Debug)]
pub enum TarError {
    Io(io::Error),
    /// The stream ends inside a header or an entry's content.
    Truncated,
    Checksum {
        name: String,
    },
    Number {
        name: String,
        field: &'static str,
    },
    /// An extension header declares more bytes than its cap.
    ExtensionTooLarge {
        name: String,
        kind: char,
        size: u64,
        max: u64,
    },
    /// A path or link name longer than the cap; `start` is its beginning.
    NameTooLong {
        start: String,
        len: u64,
        max: usize,
    },
    Pax {
        name: String,
        why: &'static str,
    },
    UnsupportedType {
        name: String,
        kind: u8,
    },
}

impl fmt::Display for TarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TarError::Io(e) => write!(f, "{e}"),
            TarError::Truncated => write!(f, "the tar stream ends inside an entry"),
            TarError::Checksum { name } => write!(f, "header {name:?}: bad checksum"),
            TarError::Number { name, field } => {
                write!(f, "header {name:?}: field {field} is not a number")
            }
            TarError::ExtensionTooLarge { name, kind, size, max } => write!(
                f,
                "header {name:?}: a '{kind}' extension header of {size} bytes, more than the limit of {max}"
            ),
            TarError::NameTooLong { start, len, max } => write!(
                f,
                "entry {start:?}...: a name of {len} bytes, more than the limit of {max}"
            ),
            TarError::Pax { name, why } => write!(f, "PAX header {name:?}: {why}"),
            TarError::UnsupportedType { name, kind } => write!(
                f,
                "entry {name:?}: unsupported entry type {:?}",
                char::from(*kind)
            ),
        }
    }
}

impl From<io::Error> for TarError {
    fn from(e: io::Error) -> TarError {
        match e.kind() {
            io::ErrorKind::UnexpectedEof => TarError::Truncated,
            _ => TarError::Io(e),
        }
    }
}

/// Values a PAX 'x' header sets for the next entry.
#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
}

/// Extensions read so far for the next entry.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Pax,
}

/// Entries of a tar stream, one at a time; an entry's content is read with
/// [`Archive::contents`] before the next call to [`Archive::next`] (what is
/// left unread is skipped).
pub struct Archive<R> {
    inner: R,
    max_name: usize,
    /// Content bytes of the current entry not read yet, then its padding.
    remaining: u64,
    padding: u64,
    done: bool,
}

impl<R: Read> Archive<R> {
    /// Names (paths and link targets) longer than `max_name` bytes are errors.
    pub fn new(inner: R, max_name: usize) -> Archive<R> {
        Archive {
            inner,
            max_name,
            remaining: 0,
            padding: 0,
            done: false,
        }
    }

    /// The next entry, or `None` at the end-of-archive block (or a clean
    /// end of the stream between entries).
    pub fn next(&mut self) -> Result<Option<Header>, TarError> {
        if self.done {
            return Ok(None);
        }
        self.skip(self.remaining + self.padding)?;
        self.remaining = 0;
        self.padding = 0;
        let mut pending = Pending::default();
        loop {
            let Some(block) = self.block()? else {
                self.done = true;
                return Ok(None);
            };
            let name = field_name(&block[0..100]);
            verify_checksum(&block, &name)?;
            let size = number(&block[124..136]).ok_or_else(|| TarError::Number {
                name: name.clone(),
                field: "size",
            })?;
            match block[156] {
                b'L' => pending.long_name = Some(self.long_name(&name, size, 'L')?),
                b'K' => pending.long_link = Some(self.long_name(&name, size, 'K')?),
                b'x' => pending.pax = self.pax(&name, size, 'x')?,
                b'g' => drop(self.pax(&name, size, 'g')?),
                _ => return self.entry(&block, name, pending).map(Some),
            }
        }
    }

    /// The current entry's content, up to its size.
    pub fn contents(&mut self) -> Contents<'_, R> {
        Contents { archive: self }
    }

    /// The underlying stream, after the end of the archive: what follows the
    /// end-of-archive blocks is still there to read.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn entry(&mut self, block: &[u8; BLOCK], name: String, p: Pending) -> Result<Header, TarError> {
        let number_field = |range: std::ops::Range<usize>, field| {
            number(&block[range]).ok_or_else(|| TarError::Number {
                name: name.clone(),
                field,
            })
        };
        let mode = number_field(100..108, "mode")?;
        let uid = number_field(108..116, "uid")?;
        let gid = number_field(116..124, "gid")?;
        let size = number_field(124..136, "size")?;
        let path = match p.pax.path.or(p.long_name) {
            Some(path) => path,
            None => ustar_path(block),
        };
        let link = p
            .pax
            .link
            .or(p.long_link)
            .unwrap_or_else(|| until_nul(&block[157..257]).to_vec());
        let kind = match block[156] {
            b'0' | b'7' => Kind::File,
            // Pre-POSIX tar: a directory is a "regular file" named with a '/'.
            0 if path.ends_with(b"/") => Kind::Dir,
            0 => Kind::File,
            b'1' => Kind::HardLink,
            b'2' => Kind::Symlink,
            b'3' => Kind::CharDevice,
            b'4' => Kind::BlockDevice,
            b'5' => Kind::Dir,
            b'6' => Kind::Fifo,
            other => return Err(TarError::UnsupportedType { name, kind: other }),
        };
        for n in [&path, &link] {
            self.check_name(n, n.len() as u64)?;
        }
        // Only regular files have content, whatever the size field of the
        // others says.
        let size = match kind {
            Kind::File => p.pax.size.unwrap_or(size),
            _ => 0,
        };
        self.remaining = size;
        self.padding = padding(size);
        Ok(Header {
            path,
            link,
            kind,
            mode: u32::try_from(mode).map_err(|_| TarError::Number {
                name,
                field: "mode",
            })?,
            uid: p.pax.uid.unwrap_or(uid),
            gid: p.pax.gid.unwrap_or(gid),
            size,
        })
    }

    fn check_name(&self, start: &[u8], len: u64) -> Result<(), TarError> {
        if len > self.max_name as u64 {
            return Err(TarError::NameTooLong {
                start: String::from_utf8_lossy(&start[..start.len().min(64)]).into_owned(),
                len,
                max: self.max_name,
            });
        }
        Ok(())
    }

    /// A GNU 'L' or 'K' header's content: one name, NUL-terminated.
    fn long_name(&mut self, name: &str, size: u64, kind: char) -> Result<Vec<u8>, TarError> {
        if size > self.max_name as u64 + 1 {
            // Read the beginning only, for the message.
            let mut start = [0u8; 64];
            self.inner.read_exact(&mut start)?;
            let start = until_nul(&start);
            return Err(TarError::NameTooLong {
                start: format!(
                    "{} ('{kind}' header {name:?})",
                    String::from_utf8_lossy(start)
                ),
                len: size,
                max: self.max_name,
            });
        }
        let mut data = self.extension(size)?;
        let len = until_nul(&data).len();
        data.truncate(len);
        Ok(data)
    }

    /// A PAX header's records; 'g' ones are parsed (to reject malformed
    /// ones) and dropped by the caller.
    fn pax(&mut self, name: &str, size: u64, kind: char) -> Result<Pax, TarError> {
        if size > MAX_PAX {
            return Err(TarError::ExtensionTooLarge {
                name: name.to_string(),
                kind,
                size,
                max: MAX_PAX,
            });
        }
        let data = self.extension(size)?;
        let mut pax = Pax::default();
        for record in records(&data, name)? {
            let (key, value) = record;
            let decimal = || -> Result<u64, TarError> {
                std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| TarError::Pax {
                        name: name.to_string(),
                        why: "a numeric record is not a number",
                    })
            };
            match key {
                b"path" => {
                    self.check_name(value, value.len() as u64)?;
                    pax.path = Some(value.to_vec());
                }
                b"linkpath" => {
                    self.check_name(value, value.len() as u64)?;
                    pax.link = Some(value.to_vec());
                }
                b"size" => pax.size = Some(decimal()?),
                b"uid" => pax.uid = Some(decimal()?),
                b"gid" => pax.gid = Some(decimal()?),
                _ => {}
            }
        }
        Ok(pax)
    }

    /// An extension header's content (already checked against its cap) and
    /// its padding.
    fn extension(&mut self, size: u64) -> Result<Vec<u8>, TarError> {
        let mut data = Vec::new();
        (&mut self.inner).take(size).read_to_end(&mut data)?;
        if (data.len() as u64) < size {
            return Err(TarError::Truncated);
        }
        self.skip(padding(size))?;
        Ok(data)
    }

    /// The next header block; `None` at a zero block or a clean end.
    fn block(&mut self) -> Result<Option<[u8; BLOCK]>, TarError> {
        let mut block = [0u8; BLOCK];
        let mut filled = 0;
        while filled < BLOCK {
            match self.inner.read(&mut block[filled..]) {
                Ok(0) if filled == 0 => return Ok(None),
                Ok(0) => return Err(TarError::Truncated),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok((block != [0u8; BLOCK]).then_some(block))
    }

    fn skip(&mut self, n: u64) -> Result<(), TarError> {
        let skipped = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())?;
        if skipped < n {
            return Err(TarError::Truncated);
        }
        Ok(())
    }
}

/// The current entry's content; the stream ending early is an error.
pub struct Contents<'a, R> {
    archive: &'a mut Archive<R>,
}

impl<R: Read> Read for Contents<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let a = &mut *self.archive;
        if a.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(a.remaining).unwrap_or(usize::MAX));
        let n = a.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        a.remaining -= n as u64;
        Ok(n)
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn until_nul(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

fn field_name(field: &[u8]) -> String {
    String::from_utf8_lossy(until_nul(field)).into_owned()
}

/// `prefix/name` for POSIX ustar headers; GNU ones use the prefix's bytes
/// for other fields.
fn ustar_path(block: &[u8; BLOCK]) -> Vec<u8> {
    let name = until_nul(&block[0..100]);
    let prefix = until_nul(&block[345..500]);
    if &block[257..263] != b"ustar\0" || prefix.is_empty() {
        return name.to_vec();
    }
    [prefix, b"/", name].concat()
}

/// The checksum is the sum of the header's bytes with its own field read as
/// spaces; old tars summed signed bytes, so either sum is accepted.
fn verify_checksum(block: &[u8; BLOCK], name: &str) -> Result<(), TarError> {
    let stored = number(&block[148..156]);
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    match stored {
        Some(s) if s == unsigned || i64::try_from(s) == Ok(signed) => Ok(()),
        _ => Err(TarError::Checksum {
            name: name.to_string(),
        }),
    }
}

/// A numeric field: octal digits (space or NUL padded), or GNU's base-256
/// (high bit set) for values that do not fit. `None` if malformed or
/// negative.
pub(crate) fn number(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        if field[0] & 0x40 != 0 {
            return None; // negative
        }
        let mut value: u64 = u64::from(field[0] & 0x3f);
        for &b in &field[1..] {
            value = value.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(value);
    }
    let text = field
        .iter()
        .skip_while(|&&b| b == b' ')
        .take_while(|&&b| b != 0 && b != b' ');
    let mut value: u64 = 0;
    for &b in text {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        value = value.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(value)
}

/// One PAX record's key and value.
type Record<'a> = (&'a [u8], &'a [u8]);

/// PAX records: `<length> <key>=<value>\n`, the length counting the whole
/// record.
fn records<'a>(mut data: &'a [u8], name: &str) -> Result<Vec<Record<'a>>, TarError> {
    let bad = |why| TarError::Pax {
        name: name.to_string(),
        why,
    };
    let mut out = Vec::new();
    // GNU tar pads some headers with NULs.
    while !until_nul(data).is_empty() {
        let space = data
            .iter()
            .take(20)
            .position(|&b| b == b' ')
            .ok_or_else(|| bad("a record has no length"))?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&l| l > space + 1 && l <= data.len())
            .ok_or_else(|| bad("a record's length is wrong"))?;
        let record = &data[space + 1..len];
        let body = record
            .strip_suffix(b"\n")
            .ok_or_else(|| bad("a record does not end with a newline"))?;
        let eq = body
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| bad("a record has no '='"))?;
        out.push((&body[..eq], &body[eq + 1..]));
        data = &data[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tar_writer::TarBuilder;
    use super::*;

    fn all(data: &[u8], max_name: usize) -> Result<Vec<(Header, Vec<u8>)>, TarError> {
        let mut archive = Archive::new(data, max_name);
        let mut out = Vec::new();
        while let Some(h) = archive.next()? {
            let mut body = Vec::new();
            archive.contents().read_to_end(&mut body)?;
            out.push((h, body));
        }
        Ok(out)
    }

    #[test]
    fn reads_ustar_entries_and_their_content() {
        let data = TarBuilder::new()
            .dir("etc/", 0o755)
            .file("etc/passwd", "root:x:0:0")
            .symlink("bin/sh", "busybox")
            .hard_link("bin/ls", "bin/busybox")
            .entry(b"run/fifo", b'6', 0o600, b"", b"")
            .finish();
        let entries = all(&data, 4096).unwrap();
        let summary: Vec<_> = entries
            .iter()
            .map(|(h, body)| (h.name(), h.kind, h.mode, h.link.clone(), body.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                ("etc/".into(), Kind::Dir, 0o755, vec![], vec![]),
                (
                    "etc/passwd".into(),
                    Kind::File,
                    0o644,
                    vec![],
                    b"root:x:0:0".to_vec()
                ),
                (
                    "bin/sh".into(),
                    Kind::Symlink,
                    0o777,
                    b"busybox".to_vec(),
                    vec![]
                ),
                (
                    "bin/ls".into(),
                    Kind::HardLink,
                    0o644,
                    b"bin/busybox".to_vec(),
                    vec![]
                ),
                ("run/fifo".into(), Kind::Fifo, 0o600, vec![], vec![]),
            ]
        );
    }

    #[test]
    fn unread_content_is_skipped() {
        let data = TarBuilder::new()
            .file("a", &"x".repeat(1000))
            .file("b", "second")
            .finish();
        let mut archive = Archive::new(&data[..], 4096);
        assert_eq!(archive.next().unwrap().unwrap().name(), "a");
        let b = archive.next().unwrap().unwrap();
        assert_eq!((b.name(), b.size), ("b".to_string(), 6));
        assert!(archive.next().unwrap().is_none());
    }

    #[test]
    fn pax_and_gnu_extensions_name_the_next_entry() {
        let long = "d/".repeat(100) + "file";
        let data = TarBuilder::new()
            .pax(&[
                ("path", long.as_bytes()),
                ("linkpath", b"target"),
                ("uid", b"1000"),
                ("mtime", b"1.5"),
            ])
            .symlink("short", "ignored")
            .entry(
                b"././@LongLink",
                b'L',
                0,
                b"",
                format!("{long}2\0").as_bytes(),
            )
            .entry(b"././@LongLink", b'K', 0, b"", b"long-target\0")
            .hard_link("short2", "ignored")
            .entry(b"global", b'g', 0, b"", b"13 path=/etc\n")
            .file("after-global", "")
            .finish();
        let entries = all(&data, 4096).unwrap();
        let (pax, gnu, after) = (&entries[0].0, &entries[1].0, &entries[2].0);
        assert_eq!(
            (pax.name(), &pax.link[..], pax.uid),
            (long.clone(), &b"target"[..], 1000)
        );
        assert_eq!(
            (gnu.name(), &gnu.link[..]),
            (format!("{long}2"), &b"long-target"[..])
        );
        assert_eq!(
            after.name(),
            "after-global",
            "a global header names no entry"
        );
    }

    #[test]
    fn ustar_prefix_is_joined() {
        let mut h = TarBuilder::header(b"name", b'0', 0o644, 0, b"");
        h[345..351].copy_from_slice(b"prefix");
        h[148..156].fill(b' ');
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        let data = [&h[..], &[0u8; 1024]].concat();
        assert_eq!(all(&data, 4096).unwrap()[0].0.name(), "prefix/name");
    }

    #[test]
    fn a_huge_pax_header_is_refused_unread() {
        // The stream holds only the header: reading its 64 MiB would be
        // `Truncated`, allocating them would be the attack.
        let h = TarBuilder::header(b"./PaxHeaders/bomb", b'x', 0o644, 64 << 20, b"");
        match Archive::new(&h[..], 4096).next() {
            Err(TarError::ExtensionTooLarge {
                name,
                kind: 'x',
                size,
                max,
            }) => {
                assert_eq!(
                    (name.as_str(), size, max),
                    ("./PaxHeaders/bomb", 64 << 20, MAX_PAX)
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_longer_than_the_cap_are_refused() {
        let long = "a".repeat(5000);
        let data = TarBuilder::new()
            .pax(&[("path", long.as_bytes())])
            .file("x", "")
            .finish();
        match all(&data, 4096) {
            Err(TarError::NameTooLong {
                start,
                len: 5000,
                max: 4096,
            }) => {
                assert_eq!(start, "a".repeat(64));
            }
            other => panic!("{other:?}"),
        }
        let h = TarBuilder::header(b"././@LongLink", b'L', 0, 64 << 20, b"");
        let data = [&h[..], "b".repeat(100).as_bytes()].concat();
        match Archive::new(&data[..], 4096).next() {
            Err(TarError::NameTooLong {
                start,
                len,
                max: 4096,
            }) => {
                assert_eq!(len, 64 << 20);
                assert!(start.starts_with(&"b".repeat(64)), "{start}");
            }
            other => panic!("{other:?}"),
        }
        let data = TarBuilder::new().symlink("l", &"t".repeat(99)).finish();
        assert!(matches!(
            all(&data, 50),
            Err(TarError::NameTooLong {
                len: 99,
                max: 50,
                ..
            })
        ));
    }

    #[test]
    fn malformed_headers_are_errors() {
        let mut data = TarBuilder::new().file("a", "x").finish();
        data[0] = b'b';
        assert!(matches!(all(&data, 4096), Err(TarError::Checksum { .. })));
        let data = TarBuilder::new()
            .entry(b"sparse", b'S', 0o644, b"", b"")
            .finish();
        assert!(matches!(
            all(&data, 4096),
            Err(TarError::UnsupportedType { kind: b'S', .. })
        ));
        let data = TarBuilder::new()
            .pax(&[("size", b"12x")])
            .file("a", "")
            .finish();
        assert!(matches!(all(&data, 4096), Err(TarError::Pax { .. })));
        let data = TarBuilder::new()
            .entry(b"bad", b'x', 0, b"", b"99 path=a\n")
            .finish();
        assert!(matches!(all(&data, 4096), Err(TarError::Pax { .. })));
        let data = TarBuilder::new().file("a", "content").0;
        assert!(matches!(all(&data[..520], 4096), Err(TarError::Truncated)));
    }

    #[test]
    fn only_regular_files_have_content() {
        // A symlink whose size field claims content: the next header follows
        // right after it, as in GNU tar and Go's archive/tar.
        let mut data = TarBuilder::header(b"l", b'2', 0o777, 600, b"t").to_vec();
        data.extend_from_slice(&TarBuilder::new().file("f", "x").finish());
        let entries = all(&data, 4096).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            (entries[0].0.size, entries[1].0.name()),
            (0, "f".to_string())
        );
    }

    #[test]
    fn numbers_in_octal_and_base_256() {
        assert_eq!(number(b"0000644\0"), Some(0o644));
        assert_eq!(number(b"   755 \0"), Some(0o755));
        assert_eq!(number(b"\0\0\0\0"), Some(0));
        assert_eq!(
            number(&[0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]),
            Some(1 << 32)
        );
        assert_eq!(number(&[0xff; 12]), None, "negative");
        assert_eq!(
            number(&[0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            None
        );
        assert_eq!(number(b"0009"), None);
    }
}
