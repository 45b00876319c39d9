//! Static files: validators, conditional requests, ranges, directories,
//! precompressed variants, and every way out of the root refused.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use gyre_server::files::ServeDir;
use gyre_server::Server;

mod util;

struct Site {
    _rt: gyre_rt::Runtime,
    _running: gyre_server::Running,
    addr: SocketAddr,
    dir: PathBuf,
    /// The temporary directory holding `dir`, removed with the site.
    base: PathBuf,
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn site() -> Site {
    let base = std::env::temp_dir().join(format!(
        "gyre-files-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&base);
    let dir = base.join("www");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("index.html"), "<h1>home</h1>").unwrap();
    std::fs::write(dir.join("hello.txt"), "hello, world").unwrap();
    std::fs::write(dir.join("hello.txt.gz"), "pretend-gzip").unwrap();
    std::fs::write(dir.join(".secret"), "hidden").unwrap();
    std::fs::write(dir.join("sub/page.html"), "sub page").unwrap();
    std::fs::write(base.join("outside.txt"), "outside the root").unwrap();
    std::os::unix::fs::symlink(base.join("outside.txt"), dir.join("escape.txt")).unwrap();
    std::os::unix::fs::symlink(dir.join("hello.txt"), dir.join("alias.txt")).unwrap();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(dir.join("big.bin"), &big).unwrap();
    let rt = gyre_rt::Builder::new().workers(2).build().unwrap();
    let listener = gyre_rt::net::bind_std("127.0.0.1:0".parse().unwrap(), 128).unwrap();
    let running = Server::new()
        .get("/*path", ServeDir::new(&dir).unwrap())
        .start(rt.handle(), listener)
        .unwrap();
    let addr = running.local_addr().unwrap();
    Site {
        _rt: rt,
        _running: running,
        addr,
        dir,
        base,
    }
}

/// A server of its own on one loop for `dir`, with this file-cache TTL.
fn serve_dir(dir: &std::path::Path, ttl: Duration) -> (gyre_rt::Runtime, gyre_server::Running) {
    let rt = gyre_rt::Builder::new().workers(1).build().unwrap();
    let listener = gyre_rt::net::bind_std("127.0.0.1:0".parse().unwrap(), 64).unwrap();
    let running = Server::new()
        .get("/*path", ServeDir::new(dir).unwrap().cache_ttl(ttl))
        .start(rt.handle(), listener)
        .unwrap();
    (rt, running)
}

/// Status, head text, and body of one request sent with `Connection: close`.
fn get(addr: SocketAddr, target: &str, extra: &str) -> (u16, String, Vec<u8>) {
    request(addr, "GET", target, extra)
}

fn request(addr: SocketAddr, method: &str, target: &str, extra: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{extra}\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no head")
        + 4;
    let head = String::from_utf8_lossy(&all[..split]).into_owned();
    let status = head[9..12].parse().unwrap();
    (status, head, all[split..].to_vec())
}

/// A field's value, the name matched without regard to case.
fn field<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn files_serve_with_type_length_and_validators() {
    let s = site();
    let (status, head, body) = get(s.addr, "/hello.txt", "");
    assert_eq!(status, 200);
    assert_eq!(body, b"hello, world");
    assert_eq!(field(&head, "content-type"), Some("text/plain"));
    assert_eq!(field(&head, "content-length"), Some("12"));
    assert!(field(&head, "etag").is_some() && field(&head, "last-modified").is_some());
    let (status, head, body) = request(s.addr, "HEAD", "/hello.txt", "");
    assert_eq!((status, body.len()), (200, 0));
    assert_eq!(field(&head, "content-length"), Some("12"));
}

#[test]
fn files_conditional_requests() {
    let s = site();
    let (_, head, _) = get(s.addr, "/hello.txt", "");
    let etag = field(&head, "etag").unwrap().to_owned();
    let modified = field(&head, "last-modified").unwrap().to_owned();
    let (status, _, body) = get(s.addr, "/hello.txt", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!((status, body.len()), (304, 0));
    let (status, _, _) = get(
        s.addr,
        "/hello.txt",
        &format!("If-Modified-Since: {modified}\r\n"),
    );
    assert_eq!(status, 304);
    let (status, _, _) = get(s.addr, "/hello.txt", "If-None-Match: \"other\"\r\n");
    assert_eq!(status, 200);
    let (status, _, _) = get(s.addr, "/hello.txt", "If-Match: \"other\"\r\n");
    assert_eq!(status, 412);
    let (status, _, _) = get(s.addr, "/hello.txt", &format!("If-Match: {etag}\r\n"));
    assert_eq!(status, 200);
    let (status, _, _) = get(
        s.addr,
        "/hello.txt",
        "If-Unmodified-Since: Thu, 01 Jan 1970 00:00:01 GMT\r\n",
    );
    assert_eq!(status, 412);
}

#[test]
fn files_ranges() {
    let s = site();
    let (status, head, body) = get(s.addr, "/hello.txt", "Range: bytes=0-4\r\n");
    assert_eq!((status, body.as_slice()), (206, &b"hello"[..]));
    assert_eq!(field(&head, "content-range"), Some("bytes 0-4/12"));
    let (status, _, body) = get(s.addr, "/hello.txt", "Range: bytes=-5\r\n");
    assert_eq!((status, body.as_slice()), (206, &b"world"[..]));
    let (status, head, _) = get(s.addr, "/hello.txt", "Range: bytes=50-\r\n");
    assert_eq!(status, 416);
    assert_eq!(field(&head, "content-range"), Some("bytes */12"));
    let (status, _, body) = get(s.addr, "/hello.txt", "Range: bytes=0-1,3-4\r\n");
    assert_eq!((status, body.len()), (200, 12));
}

#[test]
fn files_large_file_byte_exact_whole_and_range() {
    let s = site();
    let expected = std::fs::read(s.dir.join("big.bin")).unwrap();
    let (status, _, body) = get(s.addr, "/big.bin", "");
    assert_eq!(status, 200);
    assert!(body == expected, "large body differs");
    let (status, _, body) = get(s.addr, "/big.bin", "Range: bytes=1000000-2000000\r\n");
    assert_eq!(status, 206);
    assert!(body == expected[1_000_000..=2_000_000], "range differs");
}

#[test]
fn files_directories_index_and_redirect() {
    let s = site();
    let (status, _, body) = get(s.addr, "/", "");
    assert_eq!((status, body.as_slice()), (200, &b"<h1>home</h1>"[..]));
    let (status, head, _) = get(s.addr, "/sub?x=1", "");
    assert_eq!(status, 301);
    assert_eq!(field(&head, "location"), Some("/sub/?x=1"));
    let (status, _, _) = get(s.addr, "/sub/", "");
    assert_eq!(status, 404, "no index.html and no listing");
    let (status, _, _) = get(s.addr, "/missing.txt", "");
    assert_eq!(status, 404);
}

#[test]
fn files_precompressed_variant_when_accepted() {
    let s = site();
    let (status, head, body) = get(s.addr, "/hello.txt", "Accept-Encoding: gzip, br;q=0\r\n");
    assert_eq!((status, body.as_slice()), (200, &b"pretend-gzip"[..]));
    assert_eq!(field(&head, "content-encoding"), Some("gzip"));
    assert_eq!(field(&head, "vary"), Some("accept-encoding"));
    assert_eq!(field(&head, "content-type"), Some("text/plain"));
    let (_, head, body) = get(s.addr, "/hello.txt", "Accept-Encoding: gzip;q=0\r\n");
    assert_eq!(body, b"hello, world");
    assert_eq!(field(&head, "content-encoding"), None);
}

#[test]
fn files_never_leave_the_root() {
    let s = site();
    for target in [
        "/../outside.txt",
        "/sub/../../outside.txt",
        "/%2e%2e/outside.txt",
        "/..%2foutside.txt",
        "/%2e%2e%2foutside.txt",
        "/sub%2f..%2f..%2foutside.txt",
        "/hello.txt%00",
        "/..%5coutside.txt",
        "/.secret",
        "/%2esecret",
        "/escape.txt",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
    ] {
        let (status, _, body) = get(s.addr, target, "");
        assert!(status == 404 || status == 400, "{target}: {status}");
        assert!(
            !String::from_utf8_lossy(&body).contains("outside the root"),
            "{target}"
        );
        assert!(
            !String::from_utf8_lossy(&body).contains("hidden"),
            "{target}"
        );
    }
    // A symlink that stays inside the root is fine.
    let (status, _, body) = get(s.addr, "/alias.txt", "");
    assert_eq!((status, body.as_slice()), (200, &b"hello, world"[..]));
}

#[test]
fn files_small_file_cache_serves_from_memory_until_its_ttl() {
    let s = site();
    let serve = |ttl| serve_dir(&s.dir, ttl);
    let (_rt1, cached) = serve(Duration::from_secs(3600));
    let (_rt2, uncached) = serve(Duration::ZERO);
    let (c, u) = (cached.local_addr().unwrap(), uncached.local_addr().unwrap());
    assert_eq!(get(c, "/hello.txt", "").2, b"hello, world");
    assert_eq!(get(u, "/hello.txt", "").2, b"hello, world");
    std::fs::write(s.dir.join("hello.txt"), "changed!").unwrap();
    // Within its TTL the cached copy answers; with no cache the change shows.
    assert_eq!(get(c, "/hello.txt", "").2, b"hello, world");
    assert_eq!(get(u, "/hello.txt", "").2, b"changed!");
}

#[test]
fn files_large_file_cache_keeps_the_open_descriptor_until_its_ttl() {
    let s = site();
    let serve = |ttl| serve_dir(&s.dir, ttl);
    // Larger than what is read whole with the lookup: sent with sendfile.
    let old: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let new: Vec<u8> = old.iter().map(|b| b ^ 0xff).collect();
    std::fs::write(s.dir.join("large.bin"), &old).unwrap();
    let (_rt1, cached) = serve(Duration::from_secs(3600));
    let (_rt2, uncached) = serve(Duration::ZERO);
    let (c, u) = (cached.local_addr().unwrap(), uncached.local_addr().unwrap());
    assert_eq!(get(c, "/large.bin", "").2, old);
    assert_eq!(get(u, "/large.bin", "").2, old);
    // Just written and read: in the page cache, so sent from the loop
    // (where the kernel can tell, see `gyre_rt::is_resident`).
    let file = std::fs::File::open(s.dir.join("large.bin")).unwrap();
    if gyre_rt::is_resident(&file, 0, old.len() as u64).is_some() {
        let calls = cached.metrics().sendfile_calls();
        assert!(calls.on_loop > 0, "{calls:?}");
    }
    // Replaced by a rename, as deployments do: a new file under the old name.
    std::fs::write(s.dir.join("large.bin.next"), &new).unwrap();
    std::fs::rename(s.dir.join("large.bin.next"), s.dir.join("large.bin")).unwrap();
    // Within its TTL the cached descriptor still serves the old file, whole
    // and exact, also to several clients at once (one descriptor, each
    // sendfile at its own offset); with no cache the new file shows.
    let clients: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(move || get(c, "/large.bin", "").2))
        .collect();
    for client in clients {
        assert!(client.join().unwrap() == old, "a cached download differs");
    }
    assert!(
        get(u, "/large.bin", "").2 == new,
        "the uncached server missed the change"
    );
}

#[test]
fn files_expired_descriptors_are_closed_so_deleted_files_free_their_space() {
    let s = site();
    let (_rt, running) = serve_dir(&s.dir, Duration::from_millis(200));
    let addr = running.local_addr().unwrap();
    let data = vec![7u8; 200_000];
    let path = s.dir.join("doomed.bin");
    std::fs::write(&path, &data).unwrap();
    assert!(get(addr, "/doomed.bin", "").2 == data);
    std::fs::remove_file(&path).unwrap();
    // This process holds a descriptor of the deleted file while it is cached...
    let holds = || {
        std::fs::read_dir("/proc/self/fd").unwrap().any(|fd| {
            let target = std::fs::read_link(fd.unwrap().path()).unwrap_or_default();
            target.to_string_lossy().contains("doomed.bin")
        })
    };
    // ...and closes it soon after the TTL, with no further request.
    assert!(
        util::wait_until(Duration::from_secs(20), || !holds()),
        "the descriptor stayed open"
    );
}

#[test]
fn files_cold_file_goes_out_from_the_pool_exact() {
    let s = site();
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 241) as u8).collect();
    let path = s.dir.join("cold.bin");
    std::fs::write(&path, &data).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    file.sync_all().unwrap();
    // Out of the page cache, so that sendfile must not run on the loop.
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
    // A file system without a page cache of its own (tmpfs) keeps the
    // pages; then the loop may send them, and only the bytes are checked.
    let resident = gyre_rt::is_resident(&file, 0, data.len() as u64);
    if resident == Some(true) {
        eprintln!("the page cache could not be emptied: hot path only");
    }
    let (status, _, body) = get(s.addr, "/cold.bin", "");
    assert_eq!(status, 200);
    assert!(body == data, "the cold download differs");
    let calls = s._running.metrics().sendfile_calls();
    assert!(resident == Some(true) || calls.on_pool > 0, "{calls:?}");
    // A range from the middle, also cold.
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
    let (status, _, body) = get(s.addr, "/cold.bin", "Range: bytes=1000000-3999999\r\n");
    assert_eq!(status, 206);
    assert!(body == data[1_000_000..4_000_000], "the cold range differs");
}

#[test]
fn files_curl_ranges_and_conditional_requests() {
    let s = site();
    let url = format!("http://{}/hello.txt", s.addr);
    let curl = |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(args)
            .output()
            .expect("curl is required (scripts/test.sh installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(curl(&["-s", "-r", "7-11", &url]), "world");
    assert_eq!(
        curl(&[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-r",
            "99-",
            &url
        ]),
        "416"
    );
    // -z DATE sends If-Modified-Since: a date in the future means "not modified".
    let future = "Fri, 01 Jan 2100 00:00:00 GMT";
    assert_eq!(
        curl(&[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-z",
            future,
            &url
        ]),
        "304"
    );
    // -z -DATE sends If-Unmodified-Since: the file changed after 1980.
    let past = "-Tue, 01 Jan 1980 00:00:00 GMT";
    assert_eq!(
        curl(&[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-z",
            past,
            &url
        ]),
        "412"
    );
}

/// The byte at `i` of the large test file: a pattern that catches misplaced
/// or repeated blocks.
fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(2654435761) >> 13) as u8 ^ (i >> 20) as u8
}

#[test]
fn files_huge_download_is_exact_while_a_slow_client_reads_another() {
    let s = site();
    const HUGE: u64 = 256 << 20;
    {
        use std::io::BufWriter;
        let mut w = BufWriter::new(std::fs::File::create(s.dir.join("huge.bin")).unwrap());
        let mut block = vec![0u8; 1 << 20];
        for b in 0..(HUGE >> 20) {
            for (j, byte) in block.iter_mut().enumerate() {
                *byte = pattern((b << 20) + j as u64);
            }
            w.write_all(&block).unwrap();
        }
    }
    // A slow reader of the 3 MB file: 1 KiB every 50 ms (20 KiB/s, so it
    // cannot finish within any plausible time for the huge download, even on
    // a loaded machine), for the whole time.
    let addr = s.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let slow = std::thread::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        c.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 1024];
        let mut got = 0usize;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        got
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    c.write_all(b"GET /huge.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        c.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(
        field(&head, "content-length"),
        Some(HUGE.to_string().as_str())
    );
    let mut buf = vec![0u8; 1 << 16];
    let mut at = 0u64;
    loop {
        let n = c.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        for (j, b) in buf[..n].iter().enumerate() {
            assert_eq!(*b, pattern(at + j as u64), "byte {} differs", at + j as u64);
        }
        at += n as u64;
    }
    assert_eq!(at, HUGE);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let slow_got = slow.join().unwrap();
    assert!(
        slow_got > 0 && slow_got < 3_000_000,
        "slow client read {slow_got}"
    );
    std::fs::remove_file(s.dir.join("huge.bin")).unwrap();
}

/// 400 concurrent downloads of a 3 MB file, all complete and whole.
#[test]
fn files_many_concurrent_downloads_share_the_bounded_pool() {
    util::raise_fd_limit();
    let s = site();
    let expected = std::fs::metadata(s.dir.join("big.bin")).unwrap().len() as usize;
    // Cold pages, so that the downloads' sendfile calls start on the pool
    // (from the page cache they would run on the loop).
    let big = std::fs::File::open(s.dir.join("big.bin")).unwrap();
    big.sync_all().unwrap();
    rustix::fs::fadvise(&big, 0, None, rustix::fs::Advice::DontNeed).unwrap();
    const CLIENTS: usize = 400;
    let addr = s.addr;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    let mut c = TcpStream::connect(addr).unwrap();
                    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                    c.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                        .unwrap();
                    let mut all = Vec::new();
                    c.read_to_end(&mut all).unwrap();
                    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    all.len() - split
                })
                .unwrap()
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), expected, "a download came back short");
    }
    // The premise: more downloads at once than the pool has threads, which
    // works because no download holds a thread between its sendfile calls
    // (and those whose pages are cached by then use none).
    let pool = s._rt.handle().blocking_stats();
    assert!(CLIENTS > pool.max_threads, "{pool:?}");
}
