//! Static files from a directory, the way a production server answers them,
//! without blocking a loop: every look-up and open runs on the blocking pool,
//! and `sendfile` runs on the loop only for pages already in the page cache.
//!
//! Mount a [`ServeDir`] on a route ending in `*path` (`/static/*path`, or
//! `/*path` for a whole site). It answers GET and HEAD with Content-Type,
//! Content-Length, Last-Modified and an ETag; conditional requests (304 and
//! 412); a single byte range (206, or 416 when unsatisfiable; several ranges
//! get the whole file); `index.html` for a directory, and a redirect for a
//! directory named without its trailing slash; `NAME.br` / `NAME.gz` when the
//! client accepts that encoding.
//!
//! Nothing outside the root is served: the path is percent-decoded and then
//! refused if a segment is `..`, `.`, or holds a NUL or a backslash; dotfiles
//! are hidden; and the opened file's real path must lie under the root's,
//! so a symlink leading out is refused (unless allowed).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::header;
use http::StatusCode;

use crate::handler::{BoxFuture, Handler};
use crate::request::Request;
use crate::response::{IntoResponse, Response, ResponseBody};

/// Files up to this size are read whole with the lookup (one trip to the
/// blocking pool); larger ones are sent with `sendfile`.
const CHUNK: usize = 64 * 1024;

/// A handler serving files under a root directory.
#[derive(Debug, Clone)]
pub struct ServeDir {
    inner: Arc<Settings>,
}

#[derive(Debug, Clone)]
struct Settings {
    /// The root, canonicalised once (symlinks in the root itself resolved).
    root: PathBuf,
    /// Serve files whose real path leaves the root through a symlink.
    follow_symlinks_out: bool,
    /// Serve names starting with a dot.
    dotfiles: bool,
    /// How long a file looked up once is served from this loop's cache (a
    /// small one from memory, a large one from its open descriptor) before
    /// it is looked up again (nginx's `open_file_cache_valid`).
    cache_ttl: Duration,
    /// The route parameter holding the path (`path` for `*path`).
    param: String,
}

impl ServeDir {
    /// Serves `root` (which must exist) from a route whose wildcard is `*path`.
    pub fn new(root: impl AsRef<Path>) -> std::io::Result<Self> {
        Ok(ServeDir {
            inner: Arc::new(Settings {
                root: std::fs::canonicalize(root)?,
                follow_symlinks_out: false,
                dotfiles: false,
                cache_ttl: Duration::from_secs(1),
                param: "path".to_owned(),
            }),
        })
    }

    /// Also serve files reached through symlinks that lead out of the root.
    pub fn follow_symlinks_out(mut self, on: bool) -> Self {
        Arc::make_mut(&mut self.inner).follow_symlinks_out = on;
        self
    }

    /// Also serve dotfiles (names starting with `.`).
    pub fn dotfiles(mut self, on: bool) -> Self {
        Arc::make_mut(&mut self.inner).dotfiles = on;
        self
    }

    /// How long a looked-up file is served without looking it up again: a
    /// small one from memory, a large one from its open descriptor (at most
    /// 64 per loop are kept open). Default 1 s; zero turns the cache off.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        Arc::make_mut(&mut self.inner).cache_ttl = ttl;
        self
    }

    /// Takes the path from the wildcard named `name` instead of `path`.
    pub fn param(mut self, name: &str) -> Self {
        Arc::make_mut(&mut self.inner).param = name.to_owned();
        self
    }
}

impl Handler for ServeDir {
    fn call(&self, req: Request) -> BoxFuture<'_> {
        let settings = self.inner.clone();
        BoxFuture::new(async move { serve(settings, req).await })
    }
}

/// An opened file to send.
#[derive(Clone)]
struct Opened {
    /// The open file, for a large one sent with `sendfile`; `None` for a
    /// small one, whose bytes are in `small`.
    file: Option<Arc<File>>,
    /// Length in bytes.
    len: u64,
    /// Last modification time.
    modified: SystemTime,
    /// The real path of the file asked for (its type comes from this name).
    path: PathBuf,
    /// The encoding of the precompressed variant opened instead, if any.
    encoding: Option<&'static str>,
    /// The whole content of a small file, read in the same blocking call as
    /// the lookup: one trip to the pool per small file instead of two.
    small: Option<bytes::Bytes>,
}

/// What the blocking lookup found.
enum Lookup {
    /// A file to send (boxed: the other outcomes are empty).
    File(Box<Opened>),
    /// A directory asked for without its trailing slash.
    Redirect,
    /// Nothing to serve.
    Missing,
}

async fn serve(settings: Arc<Settings>, req: Request) -> Response {
    let Some(relative) = safe_relative(&req, &settings) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let accepts = accepted_encodings(&req);
    let wants_dir = req.path().ends_with('/') || relative.as_os_str().is_empty();
    let key = CacheKey {
        dir: Arc::as_ptr(&settings) as usize,
        relative: relative.clone(),
        wants_dir,
        encodings: accepts.clone(),
    };
    if let Some(hit) = cache_get(&key, settings.cache_ttl) {
        return respond(&req, hit);
    }
    let s = settings.clone();
    let found = gyre_rt::blocking(move || lookup(&s, &relative, wants_dir, accepts)).await;
    if let Lookup::File(o) = &found {
        if !settings.cache_ttl.is_zero() {
            cache_put(key, (**o).clone(), settings.cache_ttl);
        }
    }
    match found {
        Lookup::Missing => StatusCode::NOT_FOUND.into_response(),
        Lookup::Redirect => {
            let mut location = format!("{}/", req.path());
            if let Some(q) = req.query() {
                location.push('?');
                location.push_str(q);
            }
            Response::new(StatusCode::MOVED_PERMANENTLY).header(header::LOCATION, &location)
        }
        Lookup::File(o) => respond(&req, *o),
    }
}

/// What a cached lookup answered for.
#[derive(Hash, PartialEq, Eq)]
struct CacheKey {
    /// Which `ServeDir` (its settings' address).
    dir: usize,
    relative: PathBuf,
    wants_dir: bool,
    encodings: Vec<&'static str>,
}

/// Files most recently looked up on this loop.
const CACHE_MAX: usize = 1024;
/// Of those, at most this many large ones, each holding its file open.
const CACHE_OPEN_MAX: usize = 64;

thread_local! {
    /// This loop's file cache: lookups, with the contents of small files and
    /// the open descriptors of large ones, and when each entry expires.
    static CACHE: RefCell<HashMap<CacheKey, (Instant, Opened)>> = RefCell::new(HashMap::new());
    /// Whether this loop runs the task that closes expired descriptors.
    static SWEEPING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn cache_get(key: &CacheKey, ttl: Duration) -> Option<Opened> {
    if ttl.is_zero() {
        return None;
    }
    CACHE.with(|c| {
        let c = c.borrow();
        let (expires, opened) = c.get(key)?;
        (Instant::now() < *expires).then(|| opened.clone())
    })
}

fn cache_put(key: CacheKey, opened: Opened, ttl: Duration) {
    let holds_file = opened.file.is_some();
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let open = || c.values().filter(|(_, o)| o.file.is_some()).count();
        if c.len() >= CACHE_MAX || (holds_file && open() >= CACHE_OPEN_MAX) {
            // Crude but bounded: start over rather than track recency.
            c.clear();
        }
        c.insert(key, (Instant::now() + ttl, opened));
    });
    if holds_file && !SWEEPING.replace(true) {
        gyre_rt::spawn(sweep()).detach();
    }
}

/// Closes the descriptors of expired entries (a deleted file's space is
/// only freed once its last descriptor closes), once a second until this
/// loop's cache holds no open file.
async fn sweep() {
    loop {
        gyre_rt::time::sleep(Duration::from_secs(1)).await;
        let still_open = CACHE.with(|c| {
            let mut c = c.borrow_mut();
            let now = Instant::now();
            c.retain(|_, (expires, _)| now < *expires);
            c.values().any(|(_, o)| o.file.is_some())
        });
        if !still_open {
            SWEEPING.set(false);
            return;
        }
    }
}

/// The request's path below the root, or `None` if it tries to leave it or
/// names a hidden file.
fn safe_relative(req: &Request, settings: &Settings) -> Option<PathBuf> {
    let decoded = req.param(&settings.param).unwrap_or("");
    let mut out = PathBuf::new();
    for segment in decoded.split('/') {
        if segment.is_empty() {
            continue;
        }
        if segment == ".."
            || segment == "."
            || segment.contains(['\0', '\\'])
            || (segment.starts_with('.') && !settings.dotfiles)
        {
            return None;
        }
        out.push(segment);
    }
    Some(out)
}

/// Encodings with a precompressed variant that the client accepts, best first.
fn accepted_encodings(req: &Request) -> Vec<&'static str> {
    let Some(value) = req.header("accept-encoding") else {
        return Vec::new();
    };
    let value = String::from_utf8_lossy(value).to_ascii_lowercase();
    let accepts = |name: &str| {
        value.split(',').any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                let p = p.trim().replace(' ', "");
                p == "q=0" || p == "q=0.0" || p == "q=0.00" || p == "q=0.000"
            });
            coding == name && !refused
        })
    };
    [("br", "br"), ("gzip", "gz")]
        .into_iter()
        .filter(|(name, _)| accepts(name))
        .map(|(_, ext)| ext)
        .collect()
}

/// Runs on the blocking pool: finds, checks and opens the file.
fn lookup(
    settings: &Settings,
    relative: &Path,
    wants_dir: bool,
    encodings: Vec<&'static str>,
) -> Lookup {
    let mut path = settings.root.join(relative);
    let Ok(meta) = std::fs::metadata(&path) else {
        return Lookup::Missing;
    };
    if meta.is_dir() {
        if !wants_dir {
            return Lookup::Redirect;
        }
        path.push("index.html");
    }
    let Some(real) = inside_root(settings, &path) else {
        return Lookup::Missing;
    };
    for ext in encodings {
        let mut variant = real.clone().into_os_string();
        variant.push(".");
        variant.push(ext);
        let variant = PathBuf::from(variant);
        if let Some(mut opened) = open_file(settings, &variant) {
            // The type is the original file's: `app.js.gz` is still JavaScript.
            opened.path = real;
            opened.encoding = Some(if ext == "gz" { "gzip" } else { "br" });
            return Lookup::File(Box::new(opened));
        }
    }
    open_file(settings, &real).map_or(Lookup::Missing, |o| Lookup::File(Box::new(o)))
}

/// The real path of `path` if it lies under the root (or symlinks may leave it).
fn inside_root(settings: &Settings, path: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(path).ok()?;
    (settings.follow_symlinks_out || real.starts_with(&settings.root)).then_some(real)
}

fn open_file(settings: &Settings, path: &Path) -> Option<Opened> {
    let real = inside_root(settings, path)?;
    let file = File::open(&real).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let mut small = None;
    if meta.len() <= CHUNK as u64 {
        let mut data = Vec::with_capacity(meta.len() as usize);
        (&file).take(CHUNK as u64).read_to_end(&mut data).ok()?;
        small = Some(bytes::Bytes::from(data));
    }
    Some(Opened {
        len: small.as_ref().map_or(meta.len(), |b| b.len() as u64),
        modified: meta.modified().unwrap_or(UNIX_EPOCH),
        file: if small.is_some() {
            None
        } else {
            Some(Arc::new(file))
        },
        path: real,
        encoding: None,
        small,
    })
}

/// Builds the response for an opened file: validators, conditions, range.
fn respond(req: &Request, opened: Opened) -> Response {
    let Opened {
        file,
        len,
        modified,
        path,
        encoding,
        small,
    } = opened;
    let etag = etag(len, modified, encoding);
    let last_modified = httpdate::fmt_http_date(modified);
    if let Some(status) = precondition(req, &etag, modified) {
        let mut r = Response::new(status);
        if status == StatusCode::NOT_MODIFIED {
            r = r
                .header(header::ETAG, &etag)
                .header(header::LAST_MODIFIED, &last_modified);
        }
        return r;
    }
    let range = match req.header("range") {
        Some(value) if if_range_holds(req, &etag) => parse_range(value, len),
        _ => RangeOutcome::Whole,
    };
    let (status, start, count) = match range {
        RangeOutcome::Whole => (StatusCode::OK, 0, len),
        RangeOutcome::Single(start, end) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        RangeOutcome::Unsatisfiable => {
            return Response::new(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, &format!("bytes */{len}"));
        }
    };
    let content_type = mime_guess::from_path(&path)
        .first_raw()
        .unwrap_or("application/octet-stream");
    let mut response = match (small, file) {
        (Some(data), _) => {
            let part = data.slice(start as usize..(start + count) as usize);
            Response::with_body(content_type, part)
        }
        // Larger files go out with sendfile (see `conn/send.rs`).
        (None, None) => return StatusCode::NOT_FOUND.into_response(),
        (None, Some(file)) => {
            let mut r = Response::new(StatusCode::OK);
            r.content_type = Some(http::HeaderValue::from_static(content_type));
            r.body = ResponseBody::File {
                file,
                offset: start,
                len: count,
            };
            r
        }
    };
    response.status = status;
    response = response
        .header(header::ETAG, &etag)
        .header(header::LAST_MODIFIED, &last_modified)
        .header(header::ACCEPT_RANGES, "bytes");
    if status == StatusCode::PARTIAL_CONTENT {
        response = response.header(
            header::CONTENT_RANGE,
            &format!("bytes {start}-{}/{len}", start + count - 1),
        );
    }
    if let Some(e) = encoding {
        response = response
            .header(header::CONTENT_ENCODING, e)
            .header(header::VARY, "accept-encoding");
    }
    response
}

/// A strong validator from length, modification time and encoding.
fn etag(len: u64, modified: SystemTime, encoding: Option<&str>) -> String {
    let t = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
    let suffix = encoding.map(|e| format!("-{e}")).unwrap_or_default();
    format!(
        "\"{len:x}-{:x}-{:x}{suffix}\"",
        t.as_secs(),
        t.subsec_nanos()
    )
}

/// RFC 9110 §13.2.2: evaluates the preconditions in order; `Some` status
/// means answer with it instead of the file.
fn precondition(req: &Request, etag: &str, modified: SystemTime) -> Option<StatusCode> {
    let header_str = |name| {
        req.header(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let modified_secs = modified
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let date_secs = |v: &str| {
        httpdate::parse_http_date(v)
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
    };
    if let Some(v) = header_str("if-match") {
        if !etag_list_matches(&v, etag, false) {
            return Some(StatusCode::PRECONDITION_FAILED);
        }
    } else if let Some(since) = header_str("if-unmodified-since")
        .as_deref()
        .and_then(date_secs)
    {
        if modified_secs > since {
            return Some(StatusCode::PRECONDITION_FAILED);
        }
    }
    if let Some(v) = header_str("if-none-match") {
        if etag_list_matches(&v, etag, true) {
            return Some(StatusCode::NOT_MODIFIED);
        }
    } else if let Some(since) = header_str("if-modified-since")
        .as_deref()
        .and_then(date_secs)
    {
        if modified_secs <= since {
            return Some(StatusCode::NOT_MODIFIED);
        }
    }
    None
}

/// Whether `list` (a field value: `*` or entity tags) matches `etag`; weak
/// comparison ignores a `W/` prefix.
fn etag_list_matches(list: &str, etag: &str, weak: bool) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag == etag || (weak && tag.strip_prefix("W/") == Some(etag)))
}

/// If-Range (RFC 9110 §13.1.5): the range applies only if the validator still matches.
fn if_range_holds(req: &Request, etag: &str) -> bool {
    match req.header("if-range") {
        None => true,
        Some(v) => v == etag.as_bytes(),
    }
}

/// What a Range field asks for.
#[derive(Debug, PartialEq, Eq)]
enum RangeOutcome {
    /// Ignore it: send the whole file (absent, malformed, or several ranges).
    Whole,
    /// One satisfiable range, inclusive.
    Single(u64, u64),
    /// A well-formed range that lies past the end.
    Unsatisfiable,
}

/// RFC 9110 §14.1.2: `bytes=first-last`, `bytes=first-`, `bytes=-suffix`.
fn parse_range(value: &[u8], len: u64) -> RangeOutcome {
    let Ok(value) = std::str::from_utf8(value) else {
        return RangeOutcome::Whole;
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeOutcome::Whole;
    };
    if spec.contains(',') {
        return RangeOutcome::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeOutcome::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.is_empty(), number(first), number(last)) {
        (true, _, Some(suffix)) => {
            if suffix == 0 || len == 0 {
                RangeOutcome::Unsatisfiable
            } else {
                RangeOutcome::Single(len.saturating_sub(suffix), len - 1)
            }
        }
        (false, Some(start), end) if last.is_empty() || end.is_some() => {
            if start >= len {
                return RangeOutcome::Unsatisfiable;
            }
            match end {
                Some(end) if end < start => RangeOutcome::Whole,
                Some(end) => RangeOutcome::Single(start, end.min(len - 1)),
                None => RangeOutcome::Single(start, len - 1),
            }
        }
        _ => RangeOutcome::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_parsing_table() {
        use RangeOutcome::*;
        let cases: &[(&str, u64, RangeOutcome)] = &[
            ("bytes=0-4", 10, Single(0, 4)),
            ("bytes=5-", 10, Single(5, 9)),
            ("bytes=-3", 10, Single(7, 9)),
            ("bytes=-30", 10, Single(0, 9)),
            ("bytes=8-100", 10, Single(8, 9)),
            ("bytes=10-", 10, Unsatisfiable),
            ("bytes=-0", 10, Unsatisfiable),
            ("bytes=0-1,3-4", 10, Whole),
            ("bytes=5-2", 10, Whole),
            ("bytes=+1-2", 10, Whole),
            ("items=0-1", 10, Whole),
            ("bytes=0x1-2", 10, Whole),
            ("bytes=", 10, Whole),
        ];
        for (value, len, want) in cases {
            assert_eq!(&parse_range(value.as_bytes(), *len), want, "{value}");
        }
    }

    #[test]
    fn etag_lists_match_strongly_and_weakly() {
        assert!(etag_list_matches("\"a\", \"b\"", "\"b\"", false));
        assert!(etag_list_matches("*", "\"b\"", false));
        assert!(!etag_list_matches("W/\"b\"", "\"b\"", false));
        assert!(etag_list_matches("W/\"b\"", "\"b\"", true));
        assert!(!etag_list_matches("\"c\"", "\"b\"", true));
    }
}
