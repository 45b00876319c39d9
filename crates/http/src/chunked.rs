//! Resumable decoder for the chunked transfer coding (RFC 9112 §7.1).
//!
//! ```text
//! chunked-body   = *chunk last-chunk trailer-section CRLF
//! chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-size     = 1*HEXDIG
//! last-chunk     = 1*("0") [ chunk-ext ] CRLF
//! chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//! ```

use crate::body::Decoded;
use crate::charset::is_tchar;
use crate::error::ParseError;

/// Longest chunk-size line accepted, extensions included, CRLF excluded.
///
/// Bounds both extensions and runs of leading zeros, neither of which is
/// limited by the grammar.
pub const MAX_CHUNK_LINE: usize = 4 * 1024;

/// Longest trailer section accepted, in bytes, final CRLF included.
pub const MAX_TRAILERS: usize = 16 * 1024;

/// Where the decoder is within the chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkedState {
    /// At the start of a chunk-size: a hex digit must come.
    SizeStart,
    /// Within chunk-size hex digits.
    Size,
    /// Whitespace after the size: only BWS before `;` is allowed.
    SizeLws,
    /// Within chunk extensions, up to the CR.
    Extension,
    /// After the CR of a chunk-size line.
    SizeLf,
    /// Within chunk-data; `ChunkedDecoder::size` bytes are left.
    Data,
    /// After chunk-data, where the CR must come.
    DataCr,
    /// After chunk-data and its CR.
    DataLf,
    /// At the start of a trailer field line or of the final CRLF.
    TrailerStart,
    /// Within a trailer field name, up to the colon.
    TrailerName,
    /// Within a trailer field value, up to the CR.
    TrailerValue,
    /// After the CR of a trailer field line.
    TrailerLf,
    /// After the CR of the final empty line.
    EndLf,
    /// The body is complete.
    End,
}

/// A sans-IO decoder for a chunked body that can be fed any split of its
/// input, down to one byte at a time.
///
/// Chunk data is returned as ranges of the input, never copied. Extensions
/// and trailer fields are checked and discarded.
///
/// # Examples
///
/// ```
/// use gyre_http::ChunkedDecoder;
///
/// let input = b"5\r\nhello\r\n0\r\n\r\n";
/// let mut decoder = ChunkedDecoder::new();
/// let step = decoder.decode(input)?;
/// assert_eq!(&input[step.data.unwrap()], b"hello");
/// let step = decoder.decode(&input[step.consumed..])?;
/// assert!(step.finished);
/// # Ok::<(), gyre_http::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedDecoder {
    /// The current position in the grammar.
    state: ChunkedState,
    /// The chunk-size being read, then the chunk-data bytes left while in
    /// `Data`. INVARIANT: non-zero in `Data`.
    size: u64,
    /// Bytes of the current chunk-size line so far; at most `MAX_CHUNK_LINE`.
    line: usize,
    /// Bytes of the trailer section so far; at most `MAX_TRAILERS`.
    trailers: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub fn new() -> Self {
        ChunkedDecoder {
            state: ChunkedState::SizeStart,
            size: 0,
            line: 0,
            trailers: 0,
        }
    }

    /// True once the last chunk and the trailer section have been read.
    pub fn is_finished(&self) -> bool {
        self.state == ChunkedState::End
    }

    /// Reads framing from `input` until it finds chunk data, runs out of
    /// input, or reaches the end of the body.
    ///
    /// At most one data range is returned per call, so the caller loops,
    /// dropping `consumed` bytes each time. Bytes after the end of the body
    /// are left unconsumed for the next request.
    pub fn decode(&mut self, input: &[u8]) -> Result<Decoded, ParseError> {
        let mut pos = 0;
        while pos < input.len() {
            match self.state {
                ChunkedState::Data => return Ok(self.take_data(input, pos)),
                ChunkedState::End => break,
                _ => self.step(input[pos])?,
            }
            pos += 1;
        }
        Ok(Decoded {
            consumed: pos,
            data: None,
            finished: self.is_finished(),
        })
    }

    /// Returns the chunk data available in `input[pos..]`.
    fn take_data(&mut self, input: &[u8], pos: usize) -> Decoded {
        // `min` with a usize bounds the result, so the cast cannot truncate.
        let take = self.size.min((input.len() - pos) as u64) as usize;
        self.size -= take as u64;
        if self.size == 0 {
            self.state = ChunkedState::DataCr;
        }
        Decoded {
            consumed: pos + take,
            data: Some(pos..pos + take),
            finished: false,
        }
    }

    /// Advances the state machine over one byte of framing.
    fn step(&mut self, byte: u8) -> Result<(), ParseError> {
        use ChunkedState::*;
        match self.state {
            SizeStart | Size | SizeLws | Extension | SizeLf => {
                self.line += 1;
                if self.line > MAX_CHUNK_LINE + 2 {
                    return Err(ParseError::ChunkLineTooLong);
                }
            }
            TrailerStart | TrailerName | TrailerValue | TrailerLf | EndLf => {
                self.trailers += 1;
                if self.trailers > MAX_TRAILERS {
                    return Err(ParseError::TrailersTooLarge);
                }
            }
            Data | DataCr | DataLf | End => {}
        }
        self.state = match (self.state, byte) {
            (SizeStart | Size, b) if b.is_ascii_hexdigit() => self.push_digit(b)?,
            (SizeStart, b'\n') => return Err(ParseError::InvalidChunkFraming),
            (SizeStart, _) => return Err(ParseError::InvalidChunkSize),
            (Size, b';') | (SizeLws, b';') => Extension,
            (Size, b' ' | b'\t') | (SizeLws, b' ' | b'\t') => SizeLws,
            (Size, b'\r') | (Extension, b'\r') => SizeLf,
            (Size | Extension, b'\n') => return Err(ParseError::InvalidChunkFraming),
            (Size | SizeLws, _) => return Err(ParseError::InvalidChunkSize),
            (Extension, b) if is_field_byte(b) => Extension,
            (Extension, _) => return Err(ParseError::InvalidChunkFraming),
            (SizeLf, b'\n') if self.size == 0 => TrailerStart,
            (SizeLf, b'\n') => Data,
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => {
                self.line = 0;
                SizeStart
            }
            (SizeLf | DataCr | DataLf, _) => return Err(ParseError::InvalidChunkFraming),
            (TrailerStart, b'\r') => EndLf,
            (TrailerStart, b'\n') => return Err(ParseError::InvalidChunkFraming),
            (TrailerStart | TrailerName, b) if is_tchar(b) => TrailerName,
            (TrailerName, b':') => TrailerValue,
            (TrailerValue, b'\r') => TrailerLf,
            (TrailerValue, b) if is_field_byte(b) => TrailerValue,
            (TrailerLf, b'\n') => TrailerStart,
            (TrailerStart | TrailerName | TrailerValue | TrailerLf, _) => {
                return Err(ParseError::InvalidTrailer)
            }
            (EndLf, b'\n') => End,
            (EndLf, _) => return Err(ParseError::InvalidChunkFraming),
            (Data | End, _) => unreachable!("decode handles Data and End itself"),
        };
        Ok(())
    }

    /// Appends one hex digit to the chunk-size.
    fn push_digit(&mut self, digit: u8) -> Result<ChunkedState, ParseError> {
        let value = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            // The caller matched `is_ascii_hexdigit`, so this is `A..=F`.
            _ => digit - b'A' + 10,
        };
        self.size = self
            .size
            .checked_mul(16)
            .and_then(|size| size.checked_add(u64::from(value)))
            .ok_or(ParseError::ChunkSizeOverflow)?;
        Ok(ChunkedState::Size)
    }
}

/// A byte allowed in a field value or chunk extension: VCHAR, SP, HTAB or
/// obs-text (RFC 9110 §5.5). Excludes CR, LF, NUL and other controls.
fn is_field_byte(b: u8) -> bool {
    matches!(b, b'\t' | b' '..=b'~' | 0x80..=0xff)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` to a fresh decoder `split` bytes at a time; returns the
    /// data, the bytes consumed, and whether the body finished.
    fn run(input: &[u8], split: usize) -> Result<(Vec<u8>, usize, bool), ParseError> {
        let mut decoder = ChunkedDecoder::new();
        let (mut data, mut pos, mut end) = (Vec::new(), 0, 0);
        while !decoder.is_finished() && pos < input.len() {
            end = (end + split).min(input.len()).max(pos);
            let step = decoder.decode(&input[pos..end])?;
            if let Some(range) = step.data {
                assert!(range.end <= step.consumed);
                data.extend_from_slice(&input[pos..end][range]);
            }
            pos += step.consumed;
        }
        Ok((data, pos, decoder.is_finished()))
    }

    macro_rules! good {
        ($($name:ident: $input:expr => $data:expr, rest $rest:expr;)*) => {$(
            #[test]
            fn $name() {
                let input: &[u8] = $input;
                for split in [input.len(), 1, 2, 3, 7] {
                    let (data, consumed, finished) = run(input, split).unwrap();
                    assert_eq!(data, &$data[..], "split {split}");
                    assert!(finished, "split {split}");
                    assert_eq!(&input[consumed..], &$rest[..], "split {split}");
                }
            }
        )*};
    }

    macro_rules! bad {
        ($($name:ident: $input:expr => $error:ident;)*) => {$(
            #[test]
            fn $name() {
                let input: &[u8] = &$input;
                for split in [input.len(), 1, 2, 3, 7] {
                    assert_eq!(run(input, split), Err(ParseError::$error), "split {split}");
                }
            }
        )*};
    }

    good! {
        chunked_empty_body: b"0\r\n\r\n" => b"", rest b"";
        chunked_one_chunk: b"5\r\nhello\r\n0\r\n\r\n" => b"hello", rest b"";
        chunked_two_chunks: b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n" => b"hello world", rest b"";
        chunked_hex_cases: b"a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n"
            => b"0123456789abcdefghij", rest b"";
        chunked_leading_zeros: b"0005\r\nhello\r\n000\r\n\r\n" => b"hello", rest b"";
        chunked_data_holds_crlf: b"4\r\n\r\n\r\n\r\n0\r\n\r\n" => b"\r\n\r\n", rest b"";
        chunked_extensions: b"5;name=value;flag\r\nhello\r\n0;last=\"a b\"\r\n\r\n"
            => b"hello", rest b"";
        chunked_extension_bws: b"5 ;a=b\r\nhello\r\n0\t;\tz\r\n\r\n" => b"hello", rest b"";
        chunked_trailers: b"3\r\nabc\r\n0\r\nExpires: never\r\nX-Sum:1\r\n\r\n" => b"abc", rest b"";
        chunked_leaves_pipelined_request: b"1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n"
            => b"x", rest b"GET / HTTP/1.1\r\n";
    }

    bad! {
        chunked_empty_size: *b"\r\n" => InvalidChunkSize;
        chunked_size_not_hex: *b"g\r\n" => InvalidChunkSize;
        chunked_size_minus: *b"-5\r\nhello\r\n" => InvalidChunkSize;
        chunked_size_plus: *b"+5\r\nhello\r\n" => InvalidChunkSize;
        chunked_size_0x: *b"0x5\r\nhello\r\n" => InvalidChunkSize;
        chunked_size_leading_space: *b" 5\r\nhello\r\n" => InvalidChunkSize;
        chunked_size_trailing_space: *b"5 \r\nhello\r\n" => InvalidChunkSize;
        chunked_size_inner_space: *b"5 5\r\n" => InvalidChunkSize;
        chunked_size_overflow: *b"10000000000000000\r\n" => ChunkSizeOverflow;
        chunked_size_bare_lf: *b"5\nhello\r\n0\r\n\r\n" => InvalidChunkFraming;
        chunked_size_bare_cr: *b"5\rhello\r\n" => InvalidChunkFraming;
        chunked_empty_line_bare_lf: *b"\n" => InvalidChunkFraming;
        chunked_extension_bare_lf: *b"5;a\nhello\r\n" => InvalidChunkFraming;
        chunked_extension_control: *b"5;a\x01\r\nhello\r\n" => InvalidChunkFraming;
        chunked_data_too_long: *b"5\r\nhelloX\r\n0\r\n\r\n" => InvalidChunkFraming;
        chunked_data_bare_lf: *b"5\r\nhello\n0\r\n\r\n" => InvalidChunkFraming;
        chunked_data_no_crlf: *b"5\r\nhello0\r\n\r\n" => InvalidChunkFraming;
        chunked_final_not_crlf: *b"0\r\n\rX" => InvalidChunkFraming;
        chunked_final_bare_lf: *b"0\r\n\n" => InvalidChunkFraming;
        chunked_trailer_no_colon: *b"0\r\nfoo\r\n\r\n" => InvalidTrailer;
        chunked_trailer_space_before_colon: *b"0\r\nA : b\r\n\r\n" => InvalidTrailer;
        chunked_trailer_obs_fold: *b"0\r\nA: b\r\n c\r\n\r\n" => InvalidTrailer;
        chunked_trailer_bare_lf: *b"0\r\nA: b\n\r\n" => InvalidTrailer;
        chunked_trailer_bare_cr: *b"0\r\nA: b\rc\r\n\r\n" => InvalidTrailer;
        chunked_line_too_long: {
            let mut v = b"5;".to_vec();
            v.resize(MAX_CHUNK_LINE + 10, b'a');
            v
        } => ChunkLineTooLong;
        chunked_leading_zeros_too_long: [b'0'; MAX_CHUNK_LINE + 10] => ChunkLineTooLong;
        chunked_trailers_too_large: {
            let mut v = b"0\r\nX: ".to_vec();
            v.resize(MAX_TRAILERS + 10, b'a');
            v
        } => TrailersTooLarge;
    }

    #[test]
    fn chunked_partial_is_not_an_error() {
        for input in [
            &b""[..],
            b"5",
            b"5;ext",
            b"5\r\nhel",
            b"5\r\nhello\r",
            b"0\r\nA: b",
        ] {
            for split in [input.len().max(1), 1] {
                let (_, consumed, finished) = run(input, split).unwrap();
                assert_eq!((consumed, finished), (input.len(), false));
            }
        }
    }

    #[test]
    fn chunked_line_at_limit_is_accepted() {
        let mut input = b"1;".to_vec();
        input.resize(MAX_CHUNK_LINE, b'a');
        input.extend_from_slice(b"\r\nz\r\n0\r\n\r\n");
        assert_eq!(run(&input, 1).unwrap().0, b"z");
    }

    #[test]
    fn chunked_max_size_is_accepted() {
        let mut decoder = ChunkedDecoder::new();
        let step = decoder.decode(b"ffffffffffffffff\r\nab").unwrap();
        assert_eq!((step.consumed, step.data), (20, Some(18..20)));
    }

    #[test]
    fn chunked_finished_consumes_nothing_more() {
        let mut decoder = ChunkedDecoder::new();
        assert!(decoder.decode(b"0\r\n\r\n").unwrap().finished);
        let step = decoder.decode(b"junk").unwrap();
        assert_eq!((step.consumed, step.data, step.finished), (0, None, true));
    }
}
