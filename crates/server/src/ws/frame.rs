//! WebSocket frames (RFC 6455 §5): header parsing, unmasking and encoding.
//!
//! Sans-IO: [`parse`] looks at buffered bytes and says what frame they hold;
//! [`encode`] writes a server frame (never masked) into a buffer.

use bytes::{BufMut, BytesMut};

/// A frame's opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// More of a fragmented message.
    Continuation,
    /// The first (or only) frame of a text message.
    Text,
    /// The first (or only) frame of a binary message.
    Binary,
    /// Close (control).
    Close,
    /// Ping (control).
    Ping,
    /// Pong (control).
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Close, ping and pong.
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The final fragment of its message.
    pub fin: bool,
    /// What the frame holds.
    pub opcode: Opcode,
    /// The masking key (every client frame has one).
    pub mask: [u8; 4],
    /// Payload length.
    pub len: u64,
    /// Bytes of the header itself.
    pub header_len: usize,
}

/// Why a frame is refused; each maps to a close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Breaks the protocol (close 1002): reserved bits or opcodes, an
    /// unmasked client frame, a fragmented or long control frame, a
    /// non-minimal or oversize length encoding.
    Protocol(&'static str),
    /// Longer than the frame limit (close 1009).
    TooBig,
}

/// Parses the frame header at the start of `buf`. `Ok(None)`: more bytes are
/// needed. `max_len` is the largest payload accepted.
pub fn parse(buf: &[u8], max_len: u64) -> Result<Option<Header>, FrameError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    if b0 & 0x70 != 0 {
        return Err(FrameError::Protocol(
            "reserved bits set (no extension was negotiated)",
        ));
    }
    let fin = b0 & 0x80 != 0;
    let opcode = Opcode::from_bits(b0 & 0x0F).ok_or(FrameError::Protocol("reserved opcode"))?;
    if b1 & 0x80 == 0 {
        return Err(FrameError::Protocol("client frame not masked"));
    }
    let (len, at) = match b1 & 0x7F {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            let n = u16::from_be_bytes([buf[2], buf[3]]) as u64;
            if n < 126 {
                return Err(FrameError::Protocol("length not minimally encoded"));
            }
            (n, 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let n = u64::from_be_bytes(buf[2..10].try_into().expect("8 bytes"));
            if n >> 63 != 0 {
                return Err(FrameError::Protocol("length has its top bit set"));
            }
            if n <= 0xFFFF {
                return Err(FrameError::Protocol("length not minimally encoded"));
            }
            (n, 10)
        }
        n => (n as u64, 2),
    };
    if opcode.is_control() {
        if !fin {
            return Err(FrameError::Protocol("fragmented control frame"));
        }
        if len > 125 {
            return Err(FrameError::Protocol("control frame longer than 125 bytes"));
        }
    }
    if len > max_len {
        return Err(FrameError::TooBig);
    }
    if buf.len() < at + 4 {
        return Ok(None);
    }
    let mask = buf[at..at + 4].try_into().expect("4 bytes");
    Ok(Some(Header {
        fin,
        opcode,
        mask,
        len,
        header_len: at + 4,
    }))
}

/// Unmasks `data`, whose first byte is at offset `pos` of the payload.
pub fn unmask(data: &mut [u8], mask: [u8; 4], pos: usize) {
    // Rotate the key so that it lines up with `data[0]`, then go a word at a time.
    let key = u32::from_ne_bytes([
        mask[pos % 4],
        mask[(pos + 1) % 4],
        mask[(pos + 2) % 4],
        mask[(pos + 3) % 4],
    ]);
    let mut chunks = data.chunks_exact_mut(4);
    for c in &mut chunks {
        let w = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) ^ key;
        c.copy_from_slice(&w.to_ne_bytes());
    }
    let key = key.to_ne_bytes();
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i];
    }
}

/// Appends one unmasked (server) frame.
pub fn encode(out: &mut BytesMut, fin: bool, opcode: Opcode, payload: &[u8]) {
    out.reserve(payload.len() + 10);
    out.put_u8(if fin { 0x80 } else { 0 } | opcode.bits());
    match payload.len() {
        n if n < 126 => out.put_u8(n as u8),
        n if n <= 0xFFFF => {
            out.put_u8(126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(127);
            out.put_u64(n as u64);
        }
    }
    out.extend_from_slice(payload);
}

/// Whether a close code received from a peer is valid (RFC 6455 §7.4).
pub fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(fin: bool, op: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut v = vec![if fin { 0x80 } else { 0 } | op];
        match payload.len() {
            n if n < 126 => v.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                v.push(0x80 | 126);
                v.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                v.push(0x80 | 127);
                v.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        v.extend_from_slice(&mask);
        v.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        v
    }

    #[test]
    fn parses_and_unmasks_every_length_form() {
        for len in [0usize, 1, 5, 125, 126, 127, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let frame = masked(true, 0x2, &payload, [1, 2, 3, 4]);
            for cut in [0, 1, frame.len().min(3), frame.len().min(9)] {
                if cut < frame.len() - len {
                    assert_eq!(
                        parse(&frame[..cut], u64::MAX),
                        Ok(None),
                        "len {len} cut {cut}"
                    );
                }
            }
            let h = parse(&frame, u64::MAX).unwrap().unwrap();
            assert_eq!((h.len, h.opcode, h.fin), (len as u64, Opcode::Binary, true));
            let mut body = frame[h.header_len..].to_vec();
            // Unmask in two uneven pieces, as reads split it.
            let split = body.len() / 3;
            let (a, b) = body.split_at_mut(split);
            unmask(a, h.mask, 0);
            unmask(b, h.mask, split);
            assert_eq!(body, payload);
        }
    }

    #[test]
    fn refuses_what_the_rfc_forbids() {
        let p = |bytes: &[u8]| parse(bytes, 1 << 20);
        assert!(
            matches!(p(&[0x81, 0x05]), Err(FrameError::Protocol(_))),
            "unmasked"
        );
        assert!(
            matches!(p(&[0xC1, 0x80, 0, 0, 0, 0]), Err(FrameError::Protocol(_))),
            "rsv1"
        );
        assert!(
            matches!(p(&[0x83, 0x80, 0, 0, 0, 0]), Err(FrameError::Protocol(_))),
            "opcode 3"
        );
        assert!(
            matches!(p(&[0x09, 0x80, 0, 0, 0, 0]), Err(FrameError::Protocol(_))),
            "fragmented ping"
        );
        assert!(
            matches!(p(&[0x89, 0xFE, 0, 126]), Err(FrameError::Protocol(_))),
            "long ping"
        );
        assert!(
            matches!(p(&[0x82, 0xFE, 0, 5]), Err(FrameError::Protocol(_))),
            "non-minimal 16"
        );
        let mut big = vec![0x82, 0xFF];
        big.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert!(matches!(p(&big), Err(FrameError::Protocol(_))), "top bit");
        let mut over = vec![0x82, 0xFF];
        over.extend_from_slice(&(2u64 << 20).to_be_bytes());
        assert_eq!(p(&over), Err(FrameError::TooBig));
    }

    #[test]
    fn encodes_server_frames() {
        let mut out = BytesMut::new();
        encode(&mut out, true, Opcode::Text, b"hi");
        assert_eq!(&out[..], b"\x81\x02hi");
        out.clear();
        encode(&mut out, false, Opcode::Binary, &[0; 300]);
        assert_eq!(&out[..4], &[0x02, 126, 1, 44]);
        out.clear();
        encode(&mut out, true, Opcode::Binary, &[0; 70000]);
        assert_eq!(&out[..10], &[0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }

    #[test]
    fn close_codes() {
        for ok in [1000, 1001, 1002, 1003, 1007, 1011, 3000, 4999] {
            assert!(valid_close_code(ok), "{ok}");
        }
        for bad in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
            assert!(!valid_close_code(bad), "{bad}");
        }
    }
}
