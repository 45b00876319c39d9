//! `is_resident` against the real page cache of a file on disk.

use std::io::{Read, Write};

/// A file of `len` bytes in the system's temporary directory, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, len: usize) -> TempFile {
        let path = std::env::temp_dir().join(format!("gyre-{name}-{}", std::process::id()));
        let mut f = std::fs::File::create(&path).unwrap();
        let block: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        let mut left = len;
        while left > 0 {
            let n = left.min(block.len());
            f.write_all(&block[..n]).unwrap();
            left -= n;
        }
        f.sync_all().unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Whether `path` is on tmpfs, whose pages cannot be evicted.
fn is_tmpfs(path: &std::path::Path) -> bool {
    let stat = rustix::fs::statfs(path).unwrap();
    stat.f_type as i64 == 0x0102_1994 // TMPFS_MAGIC
}

#[test]
fn a_file_just_read_is_resident_and_an_evicted_one_is_not() {
    const LEN: u64 = 4 << 20;
    let tmp = TempFile::new("page-cache", LEN as usize);
    let mut file = std::fs::File::open(&tmp.0).unwrap();
    std::io::copy(&mut (&mut file).take(LEN), &mut std::io::sink()).unwrap();
    let Some(resident) = gyre_rt::is_resident(&file, 0, LEN) else {
        // Only where the kernel has no `cachestat` (before Linux 6.5, or
        // under valgrind, which does not know the call): nothing to check.
        eprintln!("cachestat is not available here; skipped");
        return;
    };
    assert!(resident, "a file read a moment ago is in the page cache");
    assert_eq!(gyre_rt::is_resident(&file, 123, 4096 * 3), Some(true));
    assert_eq!(gyre_rt::is_resident(&file, LEN - 1, 1), Some(true));
    assert_eq!(gyre_rt::is_resident(&file, 0, 0), Some(true));

    // The data is on disk (`sync_all`), so the kernel can drop these clean pages.
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
    if is_tmpfs(&tmp.0) {
        // tmpfs keeps its pages whatever the advice: nothing more to check.
        eprintln!("the temporary directory is tmpfs; eviction not checked");
        return;
    }
    assert_eq!(gyre_rt::is_resident(&file, 0, LEN), Some(false));
    assert_eq!(gyre_rt::is_resident(&file, LEN / 2, 4096), Some(false));

    // Reading a part back makes that part, and only that part, resident.
    let mut part = vec![0u8; 64 * 1024];
    rustix::io::pread(&file, &mut part, LEN / 2).unwrap();
    assert_eq!(
        gyre_rt::is_resident(&file, LEN / 2, part.len() as u64),
        Some(true)
    );
    assert_eq!(gyre_rt::is_resident(&file, 0, LEN), Some(false));
}
