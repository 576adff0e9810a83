//! What a ciphertext is bound to, and its unambiguous byte encoding.

/// What a ciphertext is bound to; becomes the AEAD associated data
/// (unambiguous length-prefixed encoding of every field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Binding<'a> {
    /// Tenant that owns the row.
    pub tenant: &'a str,
    /// Table holding the row.
    pub table: &'a str,
    /// Row identifier.
    pub row: &'a str,
    /// Field (column) within the row.
    pub field: &'a str,
    /// Version of the value (for example the row's revision number).
    pub version: i64,
}

impl Binding<'_> {
    /// Appends the encoding to `out`: each string as a u64 big-endian byte
    /// length followed by its UTF-8 bytes, in the order tenant, table, row,
    /// field, then the version as i64 big-endian. Because every string is
    /// length-prefixed, distinct bindings never share an encoding.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        for part in [self.tenant, self.table, self.row, self.field] {
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out.extend_from_slice(&self.version.to_be_bytes());
    }

    /// The encoding as a fresh vector (see [`Binding::encode_into`]).
    #[cfg(test)]
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b<'a>(tenant: &'a str, table: &'a str, row: &'a str, field: &'a str) -> Binding<'a> {
        Binding { tenant, table, row, field, version: 1 }
    }

    #[test]
    fn shifting_bytes_between_fields_changes_the_encoding() {
        // A naive concatenation would make these equal.
        assert_ne!(b("ab", "c", "r", "f").encode(), b("a", "bc", "r", "f").encode());
        assert_ne!(b("t", "x", "", "f").encode(), b("t", "", "x", "f").encode());
    }

    #[test]
    fn encoding_layout_is_stable() {
        let enc = Binding { tenant: "t", table: "", row: "rw", field: "f", version: -2 }.encode();
        let mut want = Vec::new();
        want.extend_from_slice(&1u64.to_be_bytes());
        want.extend_from_slice(b"t");
        want.extend_from_slice(&0u64.to_be_bytes());
        want.extend_from_slice(&2u64.to_be_bytes());
        want.extend_from_slice(b"rw");
        want.extend_from_slice(&1u64.to_be_bytes());
        want.extend_from_slice(b"f");
        want.extend_from_slice(&(-2i64).to_be_bytes());
        assert_eq!(enc, want);
    }
}
