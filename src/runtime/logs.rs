//! Container logs in the CRI format (`<RFC3339Nano> stdout|stderr F|P <text>`)
//! at `<log-dir>/<namespace>_<pod>_<uid>/<container>/<restartCount>.log`,
//! rotated by size: the writer for the monitor, the reader for `picolet logs`.

use crate::time::rfc3339_nanos;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The longest line written whole; longer ones are split into `P` records.
const MAX_LINE: usize = 16 * 1024;

/// Which of the container's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The container's stdout.
    Stdout,
    /// The container's stderr.
    Stderr,
}

impl Stream {
    fn tag(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// The directory of one pod's logs.
pub fn pod_log_dir(log_dir: &Path, namespace: &str, name: &str, uid: &str) -> io::Result<PathBuf> {
    super::paths::join(log_dir, &format!("{namespace}_{name}_{uid}"))
}

/// The highest `<n>.log` in a container's log directory, if any.
pub fn last_attempt(container_dir: &Path) -> Option<u32> {
    fs::read_dir(container_dir)
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".log")?.parse().ok())
        .max()
}

/// Writes one container instance's log, rotating at `max_size` bytes and
/// keeping `max_files` files in all (the live one included), as the kubelet's
/// `containerLogMaxSize` / `containerLogMaxFiles`.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_files: usize,
    /// The unterminated tail of each stream.
    pending: [Vec<u8>; 2],
}

impl LogWriter {
    /// A writer appending to `path`, rotated at `max_size` bytes, keeping `max_files` files.
    pub fn open(path: PathBuf, max_size: u64, max_files: usize) -> io::Result<LogWriter> {
        if let Some(dir) = path.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir)?;
        }
        let file = open_log(&path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path,
            file,
            size,
            max_size,
            max_files: max_files.max(1),
            pending: [Vec::new(), Vec::new()],
        })
    }

    /// Append bytes read from one stream at time `nanos`.
    pub fn write(&mut self, stream: Stream, data: &[u8], nanos: u128) -> io::Result<()> {
        let i = stream as usize;
        let mut buf = std::mem::take(&mut self.pending[i]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|b| *b == b'\n') {
            let mut line = &buf[start..start + pos];
            while line.len() > MAX_LINE {
                self.record(stream, &line[..MAX_LINE], false, nanos)?;
                line = &line[MAX_LINE..];
            }
            self.record(stream, line, true, nanos)?;
            start += pos + 1;
        }
        let mut rest = buf.split_off(start);
        while rest.len() >= MAX_LINE {
            let tail = rest.split_off(MAX_LINE);
            self.record(stream, &rest, false, nanos)?;
            rest = tail;
        }
        self.pending[i] = rest;
        Ok(())
    }

    /// Write out unterminated tails as final lines (the stream ended).
    pub fn flush_partial(&mut self, nanos: u128) -> io::Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let tail = std::mem::take(&mut self.pending[stream as usize]);
            if !tail.is_empty() {
                self.record(stream, &tail, true, nanos)?;
            }
        }
        Ok(())
    }

    fn record(&mut self, stream: Stream, line: &[u8], full: bool, nanos: u128) -> io::Result<()> {
        let head = format!(
            "{} {} {} ",
            rfc3339_nanos(nanos),
            stream.tag(),
            if full { "F" } else { "P" }
        );
        let len = (head.len() + line.len() + 1) as u64;
        if self.size > 0 && self.size + len > self.max_size {
            self.rotate(nanos)?;
        }
        self.file.write_all(head.as_bytes())?;
        self.file.write_all(line)?;
        self.file.write_all(b"\n")?;
        self.size += len;
        Ok(())
    }

    /// `0.log` becomes `0.log.<YYYYMMDD-HHMMSS.nnnnnnnnn>`; the oldest rotated
    /// files beyond `max_files - 1` are removed.
    fn rotate(&mut self, nanos: u128) -> io::Result<()> {
        // Several rotations can happen within one read, at one timestamp:
        // step past names already taken.
        let mut at = nanos;
        let rotated = loop {
            let stamp: String = rfc3339_nanos(at)
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == 'T' || *c == '.')
                .map(|c| if c == 'T' { '-' } else { c })
                .collect();
            let candidate = PathBuf::from(format!("{}.{stamp}", self.path.display()));
            if !candidate.exists() {
                break candidate;
            }
            at += 1;
        };
        fs::rename(&self.path, rotated)?;
        let mut old = rotated_files(&self.path);
        while old.len() >= self.max_files {
            fs::remove_file(old.remove(0))?;
        }
        self.file = open_log(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// Log directories and files: the owner (root) writes, its group reads (an
/// administrator may give the log directory a group such as `adm`), others
/// nothing: a log holds what the pod prints, secrets included.
const DIR_MODE: u32 = 0o750;
const FILE_MODE: u32 = 0o640;

/// Open a log for appending, not through a symlink, with `FILE_MODE` (also
/// when an earlier version made it world-readable).
fn open_log(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

/// Rotated files of `path`, oldest first.
pub fn rotated_files(path: &Path) -> Vec<PathBuf> {
    let Some(dir) = path.parent() else {
        return vec![];
    };
    let prefix = format!(
        "{}.",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("")
    );
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// One parsed CRI log record: `<time> <stream> <F|P> <text>`. Bytes, as
/// the container wrote them: its output need not be UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// The RFC 3339 time, with nanoseconds.
    pub time: &'a [u8],
    /// `stdout` or `stderr`.
    pub stream: &'a [u8],
    /// `F`: the line ends here; `P`: a partial line, continued in the next record.
    pub full: bool,
    /// The line's bytes, without the newline.
    pub text: &'a [u8],
}

/// A CRI log line without its newline; `None` if it is not a record.
pub fn parse_record(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = parts.next()?;
    let stream = parts.next()?;
    let full = match parts.next()? {
        b"F" => true,
        b"P" => false,
        _ => return None,
    };
    Some(Record {
        time,
        stream,
        full,
        text: parts.next().unwrap_or(b""),
    })
}

/// The longest line read as a record: the writer's records hold at most
/// [`MAX_LINE`] bytes after a header of about 40. A longer line is no
/// record of picolet's; it is skipped, never held whole.
const MAX_RECORD: usize = MAX_LINE + 256;

/// Print a container log as `kubectl logs` does: partial records joined,
/// optionally prefixed by their timestamp. Rotated files come first.
pub fn print_log(path: &Path, timestamps: bool, out: &mut impl Write) -> io::Result<u64> {
    let mut files = rotated_files(path);
    files.push(path.to_path_buf());
    let mut offset = 0;
    for file in files {
        let Ok(f) = File::open(&file) else { continue };
        offset = print_from(BufReader::new(f), timestamps, out)?;
    }
    Ok(offset)
}

/// Print records from `reader` as they come, partial ones without their
/// newline (as the kubelet streams them); returns how many bytes it
/// consumed: whole lines only, an unterminated last one is being written.
pub fn print_from(
    mut reader: impl BufRead,
    timestamps: bool,
    out: &mut impl Write,
) -> io::Result<u64> {
    let mut consumed = 0;
    let mut line = Vec::new();
    let mut line_start = true;
    loop {
        line.clear();
        let n = io::Read::take(&mut reader, MAX_RECORD as u64 + 1).read_until(b'\n', &mut line)?;
        let Some(record) = line.strip_suffix(b"\n") else {
            if n > MAX_RECORD {
                if let Some(skipped) = skip_line(&mut reader)? {
                    consumed += (n as u64).saturating_add(skipped);
                    continue;
                }
            }
            break;
        };
        consumed += n as u64;
        let Some(r) = parse_record(record) else {
            continue;
        };
        if line_start && timestamps {
            out.write_all(r.time)?;
            out.write_all(b" ")?;
        }
        out.write_all(r.text)?;
        if r.full {
            out.write_all(b"\n")?;
        }
        line_start = r.full;
    }
    Ok(consumed)
}

/// Past the rest of a line: its length with the newline, or `None` at the
/// end of the input.
fn skip_line(reader: &mut impl BufRead) -> io::Result<Option<u64>> {
    let mut skipped = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        match buf.iter().position(|b| *b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(Some(skipped + i as u64 + 1));
            }
            None => {
                let len = buf.len();
                reader.consume(len);
                skipped += len as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("picolet-logs-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn writes_cri_records_with_partial_lines() {
        let d = dir("cri");
        let path = d.join("c/0.log");
        let mut w = LogWriter::open(path.clone(), 1 << 20, 5).unwrap();
        w.write(Stream::Stdout, b"hello\nwor", 1_000_000_000)
            .unwrap();
        w.write(Stream::Stderr, b"oops\n", 2_000_000_000).unwrap();
        w.write(Stream::Stdout, b"ld\n", 3_000_000_000).unwrap();
        w.write(Stream::Stdout, b"tail", 4_000_000_000).unwrap();
        w.flush_partial(5_000_000_000).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "1970-01-01T00:00:01.000000000Z stdout F hello\n\
             1970-01-01T00:00:02.000000000Z stderr F oops\n\
             1970-01-01T00:00:03.000000000Z stdout F world\n\
             1970-01-01T00:00:05.000000000Z stdout F tail\n"
        );
        let mut out = Vec::new();
        print_log(&path, false, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "hello\noops\nworld\ntail\n"
        );
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn long_lines_split_into_partial_records_and_join_back() {
        let d = dir("long");
        let path = d.join("0.log");
        let mut w = LogWriter::open(path.clone(), 1 << 20, 5).unwrap();
        let long = "x".repeat(MAX_LINE + 10);
        w.write(Stream::Stdout, format!("{long}\n").as_bytes(), 0)
            .unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.lines().next().unwrap().contains(" stdout P "));
        let mut out = Vec::new();
        print_log(&path, true, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("1970-01-01T00:00:00.000000000Z {long}\n")
        );
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn rotates_by_size_and_keeps_max_files() {
        let d = dir("rotate");
        let path = d.join("0.log");
        let mut w = LogWriter::open(path.clone(), 200, 3).unwrap();
        for i in 0..40u128 {
            w.write(
                Stream::Stdout,
                format!("line {i:03}\n").as_bytes(),
                i * 1_000_000_000,
            )
            .unwrap();
        }
        let rotated = rotated_files(&path);
        assert_eq!(rotated.len(), 2, "{rotated:?}");
        assert!(fs::metadata(&path).unwrap().len() <= 200);
        let mut out = Vec::new();
        print_log(&path, false, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.ends_with("line 039\n"));
        assert!(!out.contains("line 000"), "oldest files were removed");
        let numbers: Vec<u32> = out.lines().map(|l| l[5..].parse().unwrap()).collect();
        assert!(
            numbers.windows(2).all(|w| w[1] == w[0] + 1),
            "continuous: {numbers:?}"
        );
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn logs_are_readable_by_owner_and_group_only_and_never_through_a_link() {
        let d = dir("modes");
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
        let path = d.join("ns_web_uid/c/0.log");
        let mut w = LogWriter::open(path.clone(), 100, 3).unwrap();
        for i in 0..10u128 {
            w.write(Stream::Stdout, b"a line of log\n", i).unwrap();
        }
        assert_eq!(mode(&d.join("ns_web_uid")), 0o750);
        assert_eq!(mode(&d.join("ns_web_uid/c")), 0o750);
        assert_eq!(mode(&path), 0o640);
        let rotated = rotated_files(&path);
        assert!(!rotated.is_empty());
        assert!(rotated.iter().all(|r| mode(r) == 0o640), "{rotated:?}");
        // An earlier version's 0644 file is made 0640 when reopened.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        drop(LogWriter::open(path.clone(), 100, 3).unwrap());
        assert_eq!(mode(&path), 0o640);
        // A link planted at the next attempt's name is not written through.
        let victim = d.join("victim");
        fs::write(&victim, "").unwrap();
        std::os::unix::fs::symlink(&victim, d.join("ns_web_uid/c/1.log")).unwrap();
        let e = LogWriter::open(d.join("ns_web_uid/c/1.log"), 100, 3)
            .err()
            .unwrap();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        assert_eq!(fs::read_to_string(&victim).unwrap(), "");
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn last_attempt_reads_the_highest_log() {
        let d = dir("attempt");
        fs::create_dir_all(&d).unwrap();
        assert_eq!(last_attempt(&d), None);
        for n in ["0.log", "2.log", "10.log", "3.log.20261129-000000"] {
            fs::write(d.join(n), "").unwrap();
        }
        assert_eq!(last_attempt(&d), Some(10));
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn the_reader_takes_any_bytes_and_skips_what_is_no_record() {
        let mut log = b"2026-01-01T00:00:00Z stdout F caf\xe9 \xff\n".to_vec();
        log.extend(b"garbage\n");
        log.extend(vec![b'x'; 1 << 20]);
        log.extend(b"\n2026-01-01T00:00:01Z stderr P half\n");
        log.extend(b"2026-01-01T00:00:02Z stderr F  done\n");
        log.extend(b"2026-01-01T00:00:03Z stdout F being written");
        let mut out = Vec::new();
        let consumed = print_from(&log[..], true, &mut out).unwrap();
        assert_eq!(
            out,
            b"2026-01-01T00:00:00Z caf\xe9 \xff\n2026-01-01T00:00:01Z half done\n"
        );
        assert_eq!(
            consumed,
            log.len() as u64 - 43,
            "the unterminated line waits"
        );
    }
}
