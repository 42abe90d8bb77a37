//! Tar streams for tests and the fuzz target (src/fuzz.rs), written header
//! by header so that they can hold anything a hostile layer would: raw
//! names, lying sizes, huge extension headers.

/// A tar stream under construction.
#[derive(Default)]
pub struct TarBuilder(pub Vec<u8>);

impl TarBuilder {
    /// An empty stream.
    pub fn new() -> TarBuilder {
        TarBuilder::default()
    }

    /// A header block; `name` and `link` are cut to their fields' 100 bytes.
    pub fn header(name: &[u8], kind: u8, mode: u32, size: u64, link: &[u8]) -> [u8; 512] {
        let (name, link) = (&name[..name.len().min(100)], &link[..link.len().min(100)]);
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name);
        let octal = |h: &mut [u8; 512], at: usize, width: usize, v: u64| {
            let s = format!("{v:0w$o}", w = width - 1);
            h[at..at + width - 1].copy_from_slice(s.as_bytes());
        };
        octal(&mut h, 100, 8, u64::from(mode));
        octal(&mut h, 108, 8, 0);
        octal(&mut h, 116, 8, 0);
        octal(&mut h, 124, 12, size);
        octal(&mut h, 136, 12, 0);
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].fill(b' ');
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    }

    /// A header then `body` with its padding.
    pub fn entry(
        mut self,
        name: &[u8],
        kind: u8,
        mode: u32,
        link: &[u8],
        body: &[u8],
    ) -> TarBuilder {
        let h = Self::header(name, kind, mode, body.len() as u64, link);
        self.0.extend_from_slice(&h);
        self.0.extend_from_slice(body);
        self.0.resize(self.0.len().next_multiple_of(512), 0);
        self
    }

    /// The end-of-archive blocks.
    pub fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&[0u8; 1024]);
        self.0
    }
}

/// Entries of the usual kinds, for tests.
#[cfg(test)]
impl TarBuilder {
    pub fn file(self, name: &str, body: &str) -> TarBuilder {
        self.entry(name.as_bytes(), b'0', 0o644, b"", body.as_bytes())
    }

    pub fn dir(self, name: &str, mode: u32) -> TarBuilder {
        self.entry(name.as_bytes(), b'5', mode, b"", b"")
    }

    pub fn symlink(self, name: &str, target: &str) -> TarBuilder {
        self.entry(name.as_bytes(), b'2', 0o777, target.as_bytes(), b"")
    }

    pub fn hard_link(self, name: &str, target: &str) -> TarBuilder {
        self.entry(name.as_bytes(), b'1', 0o644, target.as_bytes(), b"")
    }

    /// A PAX 'x' header with these records, for the next entry.
    pub fn pax(self, records: &[(&str, &[u8])]) -> TarBuilder {
        let mut data = Vec::new();
        for (key, value) in records {
            let body_len = key.len() + value.len() + 3; // ' ', '=', '\n'
            let mut len = body_len + 1;
            while len != body_len + len.to_string().len() {
                len = body_len + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        self.entry(b"./PaxHeaders/x", b'x', 0o644, b"", &data)
    }
}
