//! Letting go of the pages of picolet's own executable that a process mapped
//! while starting up and will not touch again.
//!
//! The kernel maps a binary's read-only pages 64 KiB at a time around each
//! page touched (fault-around), and a monitor touches code and constants all
//! over the binary while it starts its container: argument parsing,
//! `Command`, JSON records. Then it sleeps in poll(2) for the container's
//! life, hours, still mapping them. Dropping the mappings of the read-only
//! segments cannot change what the process computes: their pages are clean
//! copies of the file, mapped again from the page cache on the next touch.
//! The writable segments (relocated pointers, .data, .bss) are left alone:
//! dropping them would lose what was written.
//!
//! `cross/profile` sets `PICOLET_MONITOR_KEEP_PAGES`: its breakpoints live
//! in the very pages dropped here, and would vanish with them.

use std::ops::Range;

/// Unmap every page of the read-only segments of this executable from this
/// process; the next touch of one maps it again. Best effort: without the
/// program headers in the auxiliary vector nothing is done.
pub fn release() {
    if std::env::var_os("PICOLET_MONITOR_KEEP_PAGES").is_some() {
        return;
    }
    // Computed in full first: the headers are in a page about to go. On
    // the stack: freeing a heap copy would map malloc's tables back.
    for pages in read_only_segments().iter().filter(|r| !r.is_empty()) {
        // SAFETY: the range covers whole pages of segments mapped without
        // write permission, so no page in it was ever written (protections
        // are per page: no writable segment shares one). MADV_DONTNEED on a
        // clean private file mapping only drops the page table entries.
        let _ = unsafe {
            rustix::mm::madvise(
                pages.start as *mut std::ffi::c_void,
                pages.len(),
                rustix::mm::Advice::LinuxDontNeed,
            )
        };
    }
}

/// Linkers emit two or three loadable segments without write permission
/// (read-only data, code, and sometimes headers apart); room for more.
const MOST_SEGMENTS: usize = 8;

/// The page ranges of this executable's loadable segments without write
/// permission; empty ranges fill the rest.
fn read_only_segments() -> [Range<usize>; MOST_SEGMENTS] {
    let mut ranges: [Range<usize>; MOST_SEGMENTS] = Default::default();
    // SAFETY: getauxval only reads the auxiliary vector the kernel handed
    // this process.
    let (phdr, phnum) = unsafe {
        (
            libc::getauxval(libc::AT_PHDR) as usize,
            libc::getauxval(libc::AT_PHNUM) as usize,
        )
    };
    if phdr == 0 {
        return ranges;
    }
    // SAFETY: AT_PHDR points at AT_PHNUM program headers, mapped for the
    // life of the process (64-bit targets only: aarch64, x86_64).
    let headers = unsafe { std::slice::from_raw_parts(phdr as *const libc::Elf64_Phdr, phnum) };
    // The headers sit at PT_PHDR's address: where they are tells where the
    // executable was loaded (it is position-independent).
    let Some(own) = headers.iter().find(|h| h.p_type == libc::PT_PHDR) else {
        return ranges;
    };
    let base = phdr - own.p_vaddr as usize;
    let page = rustix::param::page_size();
    let segments = headers
        .iter()
        .filter(|h| h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_W == 0);
    for (range, h) in ranges.iter_mut().zip(segments) {
        let start = base + h.p_vaddr as usize;
        let end = start + h.p_memsz as usize;
        *range = start & !(page - 1)..end.next_multiple_of(page);
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    // A pointer written by the relocations at start: it lives in a page that
    // is read-only once relocated, and must not revert to the file's bytes.
    static NAME: &str = "picolet";
    static TABLE: [u8; 4] = [1, 2, 3, 4];
    // Read-only data no other test touches: 1 MiB, far more than one
    // fault-around window, so its middle is mapped only by reading it.
    static BIG: [u8; 1 << 20] = [7; 1 << 20];

    /// Whether this process maps the page holding `address`
    /// (/proc/self/pagemap, bit 63: present).
    fn mapped(address: usize) -> bool {
        use std::io::{Read, Seek, SeekFrom};
        let page = rustix::param::page_size();
        let mut pagemap = std::fs::File::open("/proc/self/pagemap").unwrap();
        pagemap
            .seek(SeekFrom::Start((address / page * 8) as u64))
            .unwrap();
        let mut entry = [0u8; 8];
        pagemap.read_exact(&mut entry).unwrap();
        u64::from_le_bytes(entry) >> 63 == 1
    }

    fn within(ranges: &[Range<usize>], address: usize) -> bool {
        ranges.iter().any(|r| r.contains(&address))
    }

    #[test]
    fn the_read_only_segments_hold_code_and_constants_and_no_written_data() {
        let ranges = read_only_segments();
        let code = read_only_segments as fn() -> [Range<usize>; MOST_SEGMENTS] as usize;
        assert!(within(&ranges, code), "code at {code:#x} not in {ranges:?}");
        assert!(within(&ranges, TABLE.as_ptr() as usize));
        assert!(!within(&ranges, &COUNTER as *const _ as usize));
        assert!(!within(&ranges, &NAME as *const &str as usize));
    }

    #[test]
    fn release_unmaps_read_only_data_the_process_had_mapped() {
        let middle = &BIG[BIG.len() / 2] as *const u8 as usize;
        assert_eq!(std::hint::black_box(BIG[BIG.len() / 2]), 7);
        assert!(mapped(middle));
        release();
        assert!(!mapped(middle), "the page is still mapped after release");
        assert_eq!(std::hint::black_box(BIG[BIG.len() / 2]), 7);
        assert!(mapped(middle));
    }

    #[test]
    fn released_pages_come_back_as_they_were_and_written_data_stays() {
        COUNTER.store(41, Ordering::SeqCst);
        release();
        COUNTER.fetch_add(1, Ordering::SeqCst);
        assert_eq!(COUNTER.load(Ordering::SeqCst), 42);
        assert_eq!(NAME, "picolet");
        assert_eq!(TABLE.iter().sum::<u8>(), 10);
    }
}
