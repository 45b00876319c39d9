//! Body framing and connection semantics read from a request's header fields (RFC 9112 §6, §9).

use http::header::{
    HeaderName, CONNECTION, CONTENT_LENGTH, EXPECT, HOST, TRANSFER_ENCODING, UPGRADE,
};
use http::Version;

use crate::body::BodyKind;
use crate::charset::{is_authority_byte, is_tchar};
use crate::error::ParseError;

/// What the framing-relevant header fields of one request say, gathered
/// field line by field line and judged once the head is complete.
#[derive(Debug, Default)]
pub(crate) struct HeadFacts {
    /// The Content-Length value, once seen; every later value must equal it.
    content_length: Option<u64>,
    /// At least one Transfer-Encoding field line was seen.
    transfer_encoding: bool,
    /// `chunked` was among the transfer codings.
    chunked: bool,
    /// The last transfer coding seen so far is `chunked`.
    chunked_last: bool,
    /// A transfer coding other than `chunked` was seen.
    unknown_coding: bool,
    /// Connection holds `close`.
    close: bool,
    /// Connection holds `keep-alive`.
    keep_alive: bool,
    /// Connection holds `upgrade`.
    connection_upgrade: bool,
    /// Host field lines seen.
    hosts: usize,
    /// Expect holds `100-continue`.
    expect_continue: bool,
    /// An Upgrade field is present.
    upgrade: bool,
}

/// The verdict on a complete head: how to read its body and what the
/// connection should do afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Semantics {
    /// How the body is delimited.
    pub(crate) body: BodyKind,
    /// The connection persists after this exchange (RFC 9112 §9.3).
    pub(crate) keep_alive: bool,
    /// The client waits for `100 Continue` before sending the body.
    pub(crate) expect_continue: bool,
    /// The client asks to switch protocols (RFC 9110 §7.8).
    pub(crate) upgrade: bool,
}

/// Lengths of the names `observe` looks for (a test checks them against
/// the names): Host, Expect, Upgrade, Connection, Content-Length,
/// Transfer-Encoding.
const KNOWN_LENGTHS: [usize; 6] = [4, 6, 7, 10, 14, 17];

impl HeadFacts {
    /// Takes note of one field line; fails fast on a value that can never
    /// be valid whatever follows.
    pub(crate) fn observe(&mut self, name: &[u8], value: &[u8]) -> Result<(), ParseError> {
        // Most fields are none of these: their lengths tell at once.
        if !KNOWN_LENGTHS.contains(&name.len()) {
            return Ok(());
        }
        let is = |known: &HeaderName| name.eq_ignore_ascii_case(known.as_str().as_bytes());
        if is(&CONTENT_LENGTH) {
            self.content_length(value)?;
        } else if is(&TRANSFER_ENCODING) {
            self.transfer_encoding(value)?;
        } else if is(&CONNECTION) {
            for token in elements(value) {
                self.close |= token.eq_ignore_ascii_case(b"close");
                self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                self.connection_upgrade |= token.eq_ignore_ascii_case(b"upgrade");
            }
        } else if is(&HOST) {
            self.hosts += 1;
            if !value.iter().all(|&b| is_authority_byte(b)) {
                return Err(ParseError::InvalidHost);
            }
        } else if is(&EXPECT) {
            self.expect_continue |=
                elements(value).any(|e| e.eq_ignore_ascii_case(b"100-continue"));
        } else if is(&UPGRADE) {
            self.upgrade = true;
        }
        Ok(())
    }

    /// Content-Length = 1*DIGIT (RFC 9110 §8.6). A list of identical values,
    /// as left by a proxy merging duplicate lines, collapses to one value
    /// (RFC 9112 §6.3 rule 5); anything else is refused.
    fn content_length(&mut self, value: &[u8]) -> Result<(), ParseError> {
        for element in value.split(|&b| b == b',') {
            let digits = trim(element);
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(ParseError::InvalidContentLength);
            }
            let length = digits.iter().try_fold(0u64, |n, &d| {
                n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            });
            let length = length.ok_or(ParseError::InvalidContentLength)?;
            match self.content_length {
                Some(seen) if seen != length => return Err(ParseError::ConflictingContentLength),
                _ => self.content_length = Some(length),
            }
        }
        Ok(())
    }

    /// Transfer-Encoding = #transfer-coding (RFC 9112 §6.1), where each
    /// coding is `token *( OWS ";" OWS transfer-parameter )`.
    fn transfer_encoding(&mut self, value: &[u8]) -> Result<(), ParseError> {
        self.transfer_encoding = true;
        for element in elements(value) {
            let (coding, has_params) = match element.iter().position(|&b| b == b';') {
                Some(i) => (trim(&element[..i]), true),
                None => (element, false),
            };
            if coding.is_empty() || !coding.iter().all(|&b| is_tchar(b)) {
                return Err(ParseError::InvalidTransferEncoding);
            }
            if !coding.eq_ignore_ascii_case(b"chunked") {
                self.unknown_coding = true;
                self.chunked_last = false;
                continue;
            }
            // chunked takes no parameters (RFC 9112 §7.1) and is applied
            // at most once (RFC 9112 §6.1).
            if has_params {
                return Err(ParseError::InvalidTransferEncoding);
            }
            if self.chunked {
                return Err(ParseError::RepeatedChunked);
            }
            self.chunked = true;
            self.chunked_last = true;
        }
        Ok(())
    }

    /// Judges the complete head of a request of `version`.
    pub(crate) fn finish(self, version: Version) -> Result<Semantics, ParseError> {
        let http10 = version == Version::HTTP_10;
        // RFC 9112 §3.2: 400 for a missing Host in HTTP/1.1, and for more
        // than one Host line in any request.
        if self.hosts > 1 {
            return Err(ParseError::DuplicateHost);
        }
        if self.hosts == 0 && !http10 {
            return Err(ParseError::MissingHost);
        }
        Ok(Semantics {
            body: self.body(http10)?,
            // RFC 9112 §9.3: HTTP/1.1 persists unless `close`; HTTP/1.0
            // persists only with `keep-alive`.
            keep_alive: !self.close && (!http10 || self.keep_alive),
            // RFC 9110 §10.1.1 and §7.8: both are ignored in HTTP/1.0.
            expect_continue: !http10 && self.expect_continue,
            upgrade: !http10 && self.connection_upgrade && self.upgrade,
        })
    }

    /// The body framing, following RFC 9112 §6.3 in order.
    fn body(&self, http10: bool) -> Result<BodyKind, ParseError> {
        if !self.transfer_encoding {
            return Ok(match self.content_length {
                None | Some(0) => BodyKind::Empty,
                Some(length) => BodyKind::Length(length),
            });
        }
        if http10 {
            // RFC 9112 §6.1: treat the framing as faulty.
            Err(ParseError::TransferEncodingHttp10)
        } else if self.content_length.is_some() {
            // RFC 9112 §6.1: a server MAY reject the pair; smuggling
            // attacks live in the gap between the two, so we do.
            Err(ParseError::ContentLengthWithTransferEncoding)
        } else if !self.chunked_last {
            Err(ParseError::ChunkedNotFinal)
        } else if self.unknown_coding {
            Err(ParseError::UnknownTransferCoding)
        } else {
            Ok(BodyKind::Chunked)
        }
    }
}

/// The non-empty elements of a comma list, without surrounding OWS
/// (RFC 9110 §5.6.1: recipients ignore empty elements).
pub(crate) fn elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|e| !e.is_empty())
}

/// `value` without leading or trailing SP and HTAB.
fn trim(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &value[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_lengths_are_those_of_the_observed_names() {
        let names = [
            HOST,
            EXPECT,
            UPGRADE,
            CONNECTION,
            CONTENT_LENGTH,
            TRANSFER_ENCODING,
        ];
        let mut lengths: Vec<usize> = names.iter().map(|n| n.as_str().len()).collect();
        lengths.sort_unstable();
        assert_eq!(lengths, KNOWN_LENGTHS);
    }

    /// Field lines, and the body framing they must produce.
    type Case = (
        &'static [(&'static str, &'static str)],
        Result<BodyKind, ParseError>,
    );

    /// Runs `lines` through a fresh `HeadFacts` for an HTTP/1.1 request.
    fn judge(lines: &[(&str, &str)]) -> Result<Semantics, ParseError> {
        let mut facts = HeadFacts::default();
        facts.observe(b"host", b"example.com")?;
        for (name, value) in lines {
            facts.observe(name.as_bytes(), value.as_bytes())?;
        }
        facts.finish(Version::HTTP_11)
    }

    #[test]
    fn framing_table() {
        use BodyKind::*;
        use ParseError::*;
        let table: &[Case] = &[
            (&[], Ok(Empty)),
            (&[("content-length", "0")], Ok(Empty)),
            (&[("content-length", "007")], Ok(Length(7))),
            (&[("content-length", "5, 5,5")], Ok(Length(5))),
            (
                &[("content-length", "5"), ("content-length", "5")],
                Ok(Length(5)),
            ),
            (
                &[("content-length", "18446744073709551615")],
                Ok(Length(u64::MAX)),
            ),
            (
                &[("content-length", "18446744073709551616")],
                Err(InvalidContentLength),
            ),
            (&[("content-length", "5,")], Err(InvalidContentLength)),
            (&[("content-length", "5, 6")], Err(ConflictingContentLength)),
            (&[("transfer-encoding", "Chunked")], Ok(Chunked)),
            (&[("transfer-encoding", " , chunked ,")], Ok(Chunked)),
            (&[("transfer-encoding", "")], Err(ChunkedNotFinal)),
            (
                &[("transfer-encoding", "chunked;a=b")],
                Err(InvalidTransferEncoding),
            ),
            (
                &[("transfer-encoding", "gzip;q=1, chunked")],
                Err(UnknownTransferCoding),
            ),
            (
                &[
                    ("transfer-encoding", "chunked"),
                    ("transfer-encoding", "gzip"),
                ],
                Err(ChunkedNotFinal),
            ),
            (
                &[
                    ("transfer-encoding", "gzip"),
                    ("transfer-encoding", "chunked"),
                ],
                Err(UnknownTransferCoding),
            ),
            (
                &[("transfer-encoding", "\"chunked\"")],
                Err(InvalidTransferEncoding),
            ),
        ];
        for (lines, expected) in table {
            assert_eq!(judge(lines).map(|s| s.body), *expected, "{lines:?}");
        }
    }

    #[test]
    fn framing_trim() {
        assert_eq!(trim(b" \t a b\t "), b"a b");
        assert_eq!(trim(b"  "), b"");
        assert_eq!(elements(b",a,, b ,").collect::<Vec<_>>(), [&b"a"[..], b"b"]);
    }
}
