//! The codec's error type: a small `Copy` enum, each variant with a reason and a status.

use std::fmt;

use http::StatusCode;

/// Why a request head or body was refused.
///
/// Every error is final for the connection: after answering with
/// [`status`](ParseError::status) the server must close it, since the
/// framing of whatever follows can no longer be trusted (RFC 9112 §6.3).
/// The enum is `Copy` and never allocates, so it is cheap on the error path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseError {
    /// The head has a malformed line ending or structure.
    MalformedHead,
    /// The method is not a token (RFC 9110 §9.1).
    InvalidMethod,
    /// The request-target is malformed, holds whitespace or control
    /// characters, or has a form the method does not allow (RFC 9112 §3.2).
    InvalidRequestTarget,
    /// The request-line is longer than [`Limits::max_request_line`](crate::Limits).
    UriTooLong,
    /// The version is well-formed but not HTTP/1.0 or HTTP/1.1 (RFC 9110 §15.6.6).
    UnsupportedVersion,
    /// The head is longer than [`Limits::max_head`](crate::Limits).
    HeadTooLarge,
    /// The head has more field lines than [`Limits::max_headers`](crate::Limits).
    TooManyHeaders,
    /// A field name is not a token, or whitespace precedes its colon
    /// (RFC 9112 §5.1).
    InvalidHeaderName,
    /// A field value holds a control character or a bare CR (RFC 9110 §5.5).
    InvalidHeaderValue,
    /// A field line starts with whitespace: obsolete line folding (RFC 9112 §5.2).
    ObsoleteLineFolding,
    /// A line of the head ends in LF without CR (RFC 9112 §2.2).
    BareLineFeed,
    /// An HTTP/1.1 request has no Host field (RFC 9112 §3.2).
    MissingHost,
    /// A request has more than one Host field line (RFC 9112 §3.2).
    DuplicateHost,
    /// The Host field value is not a valid authority (RFC 9112 §3.2).
    InvalidHost,
    /// Both Content-Length and Transfer-Encoding are present (RFC 9112 §6.1).
    ContentLengthWithTransferEncoding,
    /// A Content-Length value is not `1*DIGIT` or overflows (RFC 9110 §8.6).
    InvalidContentLength,
    /// Content-Length values differ from one another (RFC 9112 §6.3).
    ConflictingContentLength,
    /// An HTTP/1.0 request carries Transfer-Encoding (RFC 9112 §6.1).
    TransferEncodingHttp10,
    /// `chunked` is not the final transfer coding (RFC 9112 §6.3).
    ChunkedNotFinal,
    /// `chunked` is applied more than once (RFC 9112 §6.1).
    RepeatedChunked,
    /// A Transfer-Encoding element is not a well-formed transfer-coding
    /// (RFC 9112 §7).
    InvalidTransferEncoding,
    /// A transfer coding other than `chunked`, which this server does not
    /// implement (RFC 9112 §6.1).
    UnknownTransferCoding,
    /// A chunk-size is not `1*HEXDIG` (RFC 9112 §7.1).
    InvalidChunkSize,
    /// A chunk-size does not fit in 64 bits.
    ChunkSizeOverflow,
    /// A chunk line or chunk data is not followed by CRLF (RFC 9112 §7.1).
    InvalidChunkFraming,
    /// A chunk-size line, extensions included, is longer than
    /// [`MAX_CHUNK_LINE`](crate::chunked::MAX_CHUNK_LINE).
    ChunkLineTooLong,
    /// A trailer field line is malformed (RFC 9112 §7.1.2).
    InvalidTrailer,
    /// The trailer section is longer than
    /// [`MAX_TRAILERS`](crate::chunked::MAX_TRAILERS).
    TrailersTooLarge,
}

impl ParseError {
    /// A short, static description, fit for a log line or a response body.
    pub fn reason(&self) -> &'static str {
        use ParseError::*;
        match self {
            MalformedHead => "malformed request head",
            InvalidMethod => "invalid method",
            InvalidRequestTarget => "invalid request-target",
            UriTooLong => "request-line too long",
            UnsupportedVersion => "unsupported HTTP version",
            HeadTooLarge => "request head too large",
            TooManyHeaders => "too many header fields",
            InvalidHeaderName => "invalid header field name",
            InvalidHeaderValue => "invalid header field value",
            ObsoleteLineFolding => "obsolete line folding",
            BareLineFeed => "line ends in bare LF",
            MissingHost => "missing Host header",
            DuplicateHost => "more than one Host header",
            InvalidHost => "invalid Host header",
            ContentLengthWithTransferEncoding => "both Content-Length and Transfer-Encoding",
            InvalidContentLength => "invalid Content-Length",
            ConflictingContentLength => "conflicting Content-Length values",
            TransferEncodingHttp10 => "Transfer-Encoding in an HTTP/1.0 request",
            ChunkedNotFinal => "chunked is not the final transfer coding",
            RepeatedChunked => "chunked applied more than once",
            InvalidTransferEncoding => "invalid Transfer-Encoding",
            UnknownTransferCoding => "unsupported transfer coding",
            InvalidChunkSize => "invalid chunk size",
            ChunkSizeOverflow => "chunk size overflows",
            InvalidChunkFraming => "invalid chunk framing",
            ChunkLineTooLong => "chunk line too long",
            InvalidTrailer => "invalid trailer field",
            TrailersTooLarge => "trailer section too large",
        }
    }

    /// The response status the server should answer with.
    pub fn status_code(&self) -> StatusCode {
        use ParseError::*;
        match self {
            UriTooLong => StatusCode::URI_TOO_LONG,
            HeadTooLarge | TooManyHeaders | TrailersTooLarge => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            UnknownTransferCoding => StatusCode::NOT_IMPLEMENTED,
            UnsupportedVersion => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The response status as a number: 400, 414, 431, 501 or 505.
    pub fn status(&self) -> u16 {
        self.status_code().as_u16()
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::ParseError::{self, *};

    /// Every variant with the status it must map to.
    const TABLE: &[(ParseError, u16)] = &[
        (MalformedHead, 400),
        (InvalidMethod, 400),
        (InvalidRequestTarget, 400),
        (UriTooLong, 414),
        (UnsupportedVersion, 505),
        (HeadTooLarge, 431),
        (TooManyHeaders, 431),
        (InvalidHeaderName, 400),
        (InvalidHeaderValue, 400),
        (ObsoleteLineFolding, 400),
        (BareLineFeed, 400),
        (MissingHost, 400),
        (DuplicateHost, 400),
        (InvalidHost, 400),
        (ContentLengthWithTransferEncoding, 400),
        (InvalidContentLength, 400),
        (ConflictingContentLength, 400),
        (TransferEncodingHttp10, 400),
        (ChunkedNotFinal, 400),
        (RepeatedChunked, 400),
        (InvalidTransferEncoding, 400),
        (UnknownTransferCoding, 501),
        (InvalidChunkSize, 400),
        (ChunkSizeOverflow, 400),
        (InvalidChunkFraming, 400),
        (ChunkLineTooLong, 400),
        (InvalidTrailer, 400),
        (TrailersTooLarge, 431),
    ];

    #[test]
    fn error_status_table() {
        for &(error, status) in TABLE {
            assert_eq!(error.status(), status, "{error:?}");
            assert_eq!(error.status_code().as_u16(), status, "{error:?}");
        }
    }

    #[test]
    fn error_reasons_are_distinct_and_displayed() {
        let mut seen = std::collections::HashSet::new();
        for &(error, _) in TABLE {
            assert!(!error.reason().is_empty());
            assert!(seen.insert(error.reason()), "duplicate reason {error:?}");
            assert_eq!(error.to_string(), error.reason());
        }
    }

    #[test]
    fn error_is_small_and_copy() {
        fn assert_traits<T: Copy + Send + Sync + std::error::Error + 'static>() {}
        assert_traits::<ParseError>();
        assert_eq!(std::mem::size_of::<ParseError>(), 1);
    }
}
