//! Constant-time comparison.

use subtle::ConstantTimeEq;

/// Constant-time equality: the time taken depends only on the lengths, never
/// on where the contents differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::ct_eq;

    #[test]
    fn equal_and_unequal_inputs() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"same secret", b"same secret"));
        assert!(!ct_eq(b"same secret", b"same secreT"));
        assert!(!ct_eq(b"Same secret", b"same secret"));
        assert!(!ct_eq(b"prefix", b"prefix-longer"));
        assert!(!ct_eq(b"x", b""));
    }
}
