//! Byte classes of the grammar, as tables built at compile time: a lookup
//! per byte, where `b"...".contains(&b)` measured a `memchr` call per
//! punctuation byte of every Host field.

/// Membership of each byte value in a class.
struct Class([bool; 256]);

impl Class {
    /// ASCII letters and digits, and the bytes of `extra`.
    const fn alphanumeric_and(extra: &[u8]) -> Class {
        let mut set = [false; 256];
        let mut b = 0;
        while b < 256 {
            set[b] = (b as u8).is_ascii_alphanumeric();
            b += 1;
        }
        let mut i = 0;
        while i < extra.len() {
            set[extra[i] as usize] = true;
            i += 1;
        }
        Class(set)
    }

    fn contains(&self, b: u8) -> bool {
        self.0[b as usize]
    }
}

/// tchar (RFC 9110 §5.6.2).
static TCHAR: Class = Class::alphanumeric_and(b"!#$%&'*+-.^_`|~");

/// A byte of `uri-host [ ":" port ]` (RFC 3986 §3.2): unreserved,
/// pct-encoded, sub-delims, `:` and the brackets of an IP-literal.
static AUTHORITY: Class = Class::alphanumeric_and(b"-._~%!$&'()*+,;=:[]");

/// A byte of an origin-form target (RFC 9112 §3.2.1, RFC 3986 §3.3–3.4):
/// pchar (unreserved, pct-encoded, sub-delims, `:`, `@`), `/` and `?`.
static ORIGIN_FORM: Class = Class::alphanumeric_and(b"-._~%!$&'()*+,;=:@/?");

/// A `tchar` (RFC 9110 §5.6.2).
pub(crate) fn is_tchar(b: u8) -> bool {
    TCHAR.contains(b)
}

/// A byte of `uri-host [ ":" port ]`.
pub(crate) fn is_authority_byte(b: u8) -> bool {
    AUTHORITY.contains(b)
}

/// A byte of an origin-form request-target.
pub(crate) fn is_origin_form_byte(b: u8) -> bool {
    ORIGIN_FORM.contains(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_hold_exactly_their_bytes() {
        let tchar: Vec<u8> = (0..=255u8).filter(|&b| is_tchar(b)).collect();
        let expected: Vec<u8> = (0..=255u8)
            .filter(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
            .collect();
        assert_eq!(tchar, expected);
        assert_eq!(tchar.len(), 62 + 15);
        assert!(is_authority_byte(b'[') && is_authority_byte(b':') && !is_authority_byte(b'/'));
        assert!(
            is_origin_form_byte(b'/') && is_origin_form_byte(b'?') && is_origin_form_byte(b'@')
        );
        for b in [
            b' ', b'#', b'"', b'<', b'>', b'\\', b'^', b'`', b'{', b'|', b'}', 0x7f, 0x80, 0,
        ] {
            assert!(!is_origin_form_byte(b), "{b:#x}");
        }
    }
}
