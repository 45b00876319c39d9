//! Request body framing: how long a body is, and decoders that find its bytes in a buffer.

use std::ops::Range;

use crate::chunked::ChunkedDecoder;
use crate::error::ParseError;

/// How the body of a request is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body: neither Content-Length nor Transfer-Encoding, or
    /// `Content-Length: 0` (RFC 9112 §6.3 rule 7).
    Empty,
    /// Exactly this many bytes follow the head; never zero.
    Length(u64),
    /// The body uses the chunked transfer coding (RFC 9112 §7.1).
    Chunked,
}

/// The outcome of one `decode` call on a body decoder.
///
/// `decode` never copies: it reports which bytes of its input are body data.
/// The caller drops `consumed` bytes from its buffer after taking the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Bytes of the input the decoder has used; the caller must drop them
    /// before the next call. Zero only when the input was empty or the body
    /// had already ended.
    pub consumed: usize,
    /// The body data found, as a range of the input within `..consumed`;
    /// `None` when this call saw only framing.
    pub data: Option<Range<usize>>,
    /// True once the whole body, trailers included, has been read. Input
    /// past `consumed` then belongs to the next request.
    pub finished: bool,
}

/// Decoder for a body delimited by Content-Length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LengthDecoder {
    /// Body bytes not yet seen; the body is finished when this reaches zero.
    remaining: u64,
}

impl LengthDecoder {
    /// A decoder for a body of exactly `length` bytes.
    pub fn new(length: u64) -> Self {
        LengthDecoder { remaining: length }
    }

    /// Body bytes still expected.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Takes as much of `input` as the body still needs.
    pub fn decode(&mut self, input: &[u8]) -> Decoded {
        // `min` with a usize bounds the result, so the cast cannot truncate.
        let take = self.remaining.min(input.len() as u64) as usize;
        self.remaining -= take as u64;
        Decoded {
            consumed: take,
            data: (take > 0).then_some(0..take),
            finished: self.remaining == 0,
        }
    }

    /// True once every byte of the body has been seen.
    pub fn is_finished(&self) -> bool {
        self.remaining == 0
    }
}

/// A decoder for any [`BodyKind`], so a connection can hold one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyDecoder {
    /// A Content-Length body; an [`BodyKind::Empty`] body is a length of 0.
    Length(LengthDecoder),
    /// A chunked body.
    Chunked(ChunkedDecoder),
}

impl BodyDecoder {
    /// The decoder for a body framed as `kind`.
    pub fn new(kind: BodyKind) -> Self {
        match kind {
            BodyKind::Empty => BodyDecoder::Length(LengthDecoder::new(0)),
            BodyKind::Length(n) => BodyDecoder::Length(LengthDecoder::new(n)),
            BodyKind::Chunked => BodyDecoder::Chunked(ChunkedDecoder::new()),
        }
    }

    /// Finds the next body data in `input`; see [`Decoded`].
    pub fn decode(&mut self, input: &[u8]) -> Result<Decoded, ParseError> {
        match self {
            BodyDecoder::Length(decoder) => Ok(decoder.decode(input)),
            BodyDecoder::Chunked(decoder) => decoder.decode(input),
        }
    }

    /// True once the whole body has been read.
    pub fn is_finished(&self) -> bool {
        match self {
            BodyDecoder::Length(decoder) => decoder.is_finished(),
            BodyDecoder::Chunked(decoder) => decoder.is_finished(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_decoder_splits_at_body_end() {
        let mut decoder = LengthDecoder::new(5);
        let step = decoder.decode(b"he");
        assert_eq!(step.data, Some(0..2));
        assert!(!step.finished);
        let step = decoder.decode(b"lloGET /");
        assert_eq!(
            (step.consumed, step.data, step.finished),
            (3, Some(0..3), true)
        );
        let step = decoder.decode(b"GET /");
        assert_eq!((step.consumed, step.data, step.finished), (0, None, true));
    }

    #[test]
    fn length_decoder_empty_input() {
        let mut decoder = LengthDecoder::new(1);
        let step = decoder.decode(b"");
        assert_eq!((step.consumed, step.data, step.finished), (0, None, false));
        assert_eq!(decoder.remaining(), 1);
    }

    #[test]
    fn body_decoder_kinds() {
        let mut empty = BodyDecoder::new(BodyKind::Empty);
        assert!(empty.is_finished());
        assert_eq!(empty.decode(b"x").unwrap().consumed, 0);

        let mut length = BodyDecoder::new(BodyKind::Length(2));
        assert_eq!(length.decode(b"abc").unwrap().data, Some(0..2));
        assert!(length.is_finished());

        let mut chunked = BodyDecoder::new(BodyKind::Chunked);
        let input = b"1\r\nz\r\n0\r\n\r\n";
        let mut pos = 0;
        let mut data = Vec::new();
        while !chunked.is_finished() {
            let step = chunked.decode(&input[pos..]).unwrap();
            if let Some(range) = step.data {
                data.extend_from_slice(&input[pos..][range]);
            }
            pos += step.consumed;
        }
        assert_eq!((data.as_slice(), pos), (&b"z"[..], input.len()));
    }
}
