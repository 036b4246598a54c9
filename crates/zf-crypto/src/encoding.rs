//! The one unambiguous byte encoding used for associated data and MAC inputs.
//!
//! Each part is preceded by its length as a big-endian u64, so no two different part lists encode to the same bytes
//! (("ab", "c") and ("a", "bc") differ), which is what makes the binding to table, row and field trustworthy.

pub(crate) fn length_prefix(len: usize) -> [u8; 8] {
    // usize is at most 64 bits on every target Rust supports, so this never truncates.
    (len as u64).to_be_bytes()
}

pub(crate) fn length_prefixed(parts: &[&[u8]]) -> Vec<u8> {
    let total = parts.iter().map(|part| 8 + part.len()).sum();
    let mut out = Vec::with_capacity(total);
    for part in parts {
        out.extend_from_slice(&length_prefix(part.len()));
        out.extend_from_slice(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_a_boundary_changes_the_encoding() {
        assert_ne!(
            length_prefixed(&[b"ab", b"c"]),
            length_prefixed(&[b"a", b"bc"])
        );
        assert_ne!(length_prefixed(&[b"", b"x"]), length_prefixed(&[b"x", b""]));
        assert_eq!(
            length_prefixed(&[b"ab"]),
            [0, 0, 0, 0, 0, 0, 0, 2, b'a', b'b']
        );
    }
}
