//! Request-line checks: request-target forms, limits on partial input, and precise httparse errors.

use std::cell::OnceCell;

use bytes::Bytes;
use http::{Method, Uri};

use crate::charset::{is_origin_form_byte, is_tchar};
use crate::error::ParseError;
use crate::limits::Limits;

/// Checks the request-target at `range` of `head` and that its form suits
/// `method` (RFC 9112 §3.2). Returns its `Uri` and `None`; or, for an
/// origin-form target of bytes that `Uri` is sure to accept, an empty cell
/// and the length of its path: its `Uri` is then built only if someone
/// asks for it (the router needs only the path).
pub(crate) fn parse(
    method: &Method,
    head: &[u8],
    range: std::ops::Range<usize>,
) -> Result<(OnceCell<Uri>, Option<usize>), ParseError> {
    let bytes = &head[range];
    if bytes.first() == Some(&b'/') && method != Method::CONNECT {
        // One pass: the check of every byte, and the end of the path.
        let mut path_len = bytes.len();
        let mut valid = true;
        for (i, &b) in bytes.iter().enumerate().rev() {
            valid &= is_origin_form_byte(b);
            if b == b'?' {
                path_len = i;
            }
        }
        if valid {
            return Ok((OnceCell::new(), Some(path_len)));
        }
    }
    let uri = parse_now(method, Bytes::copy_from_slice(bytes))?;
    Ok((OnceCell::from(uri), None))
}

/// Parses a request-target into a `Uri` and checks its form.
fn parse_now(method: &Method, target: Bytes) -> Result<Uri, ParseError> {
    // No request-target form has a fragment (RFC 9112 §3.2), and a URI is
    // ASCII (RFC 3986 §2); http::Uri would drop the one and accept the other.
    if target.contains(&b'#') || !target.is_ascii() {
        return Err(ParseError::InvalidRequestTarget);
    }
    let asterisk = target.as_ref() == b"*";
    let origin = target.first() == Some(&b'/');
    let uri = Uri::from_maybe_shared(target).map_err(|_| ParseError::InvalidRequestTarget)?;
    let connect = method == Method::CONNECT;
    let form_fits = if origin {
        !connect
    } else if asterisk {
        method == Method::OPTIONS
    } else if let Some(authority) = uri.authority() {
        // RFC 9110 §4.2.4: userinfo in an http(s) URI is an error.
        let userinfo = authority.as_str().contains('@');
        match uri.scheme() {
            Some(_) => !connect && !userinfo,
            None => connect && !userinfo && authority.port().is_some(),
        }
    } else {
        false
    };
    match form_fits {
        true => Ok(uri),
        false => Err(ParseError::InvalidRequestTarget),
    }
}

/// Checks an incomplete head against `limits`, so that a client cannot make
/// the server buffer an unbounded request-line or head.
pub(crate) fn check_partial(buf: &[u8], limits: &Limits) -> Result<(), ParseError> {
    let line = skip_blank_lines(buf);
    // A line within the limit ends (CR, or a bare LF refused later) among
    // its first `max + 1` bytes.
    let max = limits.max_request_line;
    if line.len() > max && !line[..=max].iter().any(|&b| b == b'\r' || b == b'\n') {
        // Past the method, the target is what is long (RFC 9112 §3).
        return Err(match line[..max].contains(&b' ') {
            true => ParseError::UriTooLong,
            false => ParseError::InvalidMethod,
        });
    }
    if buf.len() > limits.max_head {
        return Err(ParseError::HeadTooLarge);
    }
    Ok(())
}

/// Maps an httparse error to the most precise [`ParseError`], looking again
/// at the bytes where httparse's own error is coarse.
pub(crate) fn refine_error(error: httparse::Error, buf: &[u8]) -> ParseError {
    use httparse::Error;
    match error {
        Error::HeaderName if has_obs_fold(buf) => ParseError::ObsoleteLineFolding,
        Error::HeaderName => ParseError::InvalidHeaderName,
        Error::HeaderValue => ParseError::InvalidHeaderValue,
        Error::TooManyHeaders => ParseError::TooManyHeaders,
        Error::Token => token_error(request_line(buf)),
        Error::Version => version_error(request_line(buf)),
        Error::NewLine | Error::Status => ParseError::MalformedHead,
    }
}

/// httparse's `Token` covers both the method and the target: blame the
/// target if the method before the first SP is a valid token.
fn token_error(line: &[u8]) -> ParseError {
    let method = line.split(|&b| b == b' ').next().unwrap_or_default();
    match !method.is_empty() && method.iter().all(|&b| is_tchar(b)) {
        true => ParseError::InvalidRequestTarget,
        false => ParseError::InvalidMethod,
    }
}

/// httparse's `Version` covers malformed and unsupported versions alike:
/// a well-formed `HTTP/x.y` other than 1.0 and 1.1 gets 505 (RFC 9110
/// §15.6.6), anything else 400. A third SP means the target held a space.
fn version_error(line: &[u8]) -> ParseError {
    const SHAPE: &[u8; 8] = b"HTTP/0.0";
    if line.iter().filter(|&&b| b == b' ').count() > 2 {
        return ParseError::InvalidRequestTarget;
    }
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    let shaped = (6..=8).contains(&version.len())
        && version.iter().zip(SHAPE).all(|(&b, &s)| match s {
            b'0' => b.is_ascii_digit(),
            _ => b == s,
        });
    match shaped {
        true => ParseError::UnsupportedVersion,
        false => ParseError::MalformedHead,
    }
}

/// The request-line (possibly incomplete) without its line ending.
fn request_line(buf: &[u8]) -> &[u8] {
    let line = skip_blank_lines(buf);
    let end = line.iter().position(|&b| b == b'\r' || b == b'\n');
    &line[..end.unwrap_or(line.len())]
}

/// `buf` without the empty lines a server ignores before a request-line
/// (RFC 9112 §2.2).
fn skip_blank_lines(buf: &[u8]) -> &[u8] {
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n');
    &buf[start.unwrap_or(buf.len())..]
}

/// True if a line starts with whitespace: obs-fold (RFC 9112 §5.2).
fn has_obs_fold(buf: &[u8]) -> bool {
    buf.windows(2)
        .any(|w| w[0] == b'\n' && (w[1] == b' ' || w[1] == b'\t'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lazy path rests on this: every byte the origin-form class lets
    /// through is one `Uri` accepts, in the path and in the query alike.
    #[test]
    fn uri_accepts_every_origin_form_byte() {
        for b in (0..=255u8).filter(|&b| is_origin_form_byte(b)) {
            let c = b as char;
            let target = format!("/a{c}b?x{c}y");
            assert!(Uri::try_from(target.as_str()).is_ok(), "{target:?}");
        }
    }

    /// The path and query read off an unbuilt target are those of its `Uri`.
    #[test]
    fn lazy_path_and_query_match_the_uri() {
        let targets = [
            "/",
            "/a",
            "/a/b/",
            "/?",
            "/a?",
            "/a?b",
            "/a?b?c",
            "/a?b=c&d=e",
            "//x",
            "/%2F?%3F",
            "/a:b@c;d,e=f!g$h&i'j(k)l*m+n.o~p-q_r",
        ];
        for target in targets {
            let head = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
            let limits = Limits::default();
            let parsed = crate::parse::parse_request(head.as_bytes(), &limits).unwrap();
            let crate::parse::Status::Complete(head) = parsed else {
                panic!("incomplete");
            };
            let (path, query) = (head.path().to_owned(), head.query().map(str::to_owned));
            assert_eq!(head.path_bytes(), path.as_bytes());
            let uri: Uri = target.parse().unwrap();
            assert_eq!((path.as_str(), query.as_deref()), (uri.path(), uri.query()));
            // Building the Uri lazily changes nothing either.
            assert_eq!(head.uri(), &uri);
            assert_eq!((head.path(), head.query()), (uri.path(), uri.query()));
            assert_eq!(head.target(), target);
        }
    }
}
