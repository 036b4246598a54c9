//! Associated data: where a sealed value lives.

/// Binds a field's ciphertext to its table, row and field, so a value copied to another place fails to open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aad {
    table: &'static str,
    row: String,
    field: &'static str,
}

/// Separates field AAD from the AAD of wrapped keys, which are sealed by the same AEAD code.
const PURPOSE: &[u8] = b"zhangfang/field";

impl Aad {
    /// `table` and `field` are `'static` so they come from code, never from request input.
    pub fn new(table: &'static str, row: impl Into<String>, field: &'static str) -> Self {
        Self {
            table,
            row: row.into(),
            field,
        }
    }

    /// Length-prefixed purpose, table, row and field. Sealing and opening prepend the envelope header to these bytes, so
    /// the header is authenticated too.
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::encoding::length_prefixed(&[
            PURPOSE,
            self.table.as_bytes(),
            self.row.as_bytes(),
            self.field.as_bytes(),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifting_text_between_parts_changes_the_bytes() {
        let a = Aad::new("clients", "ab", "c");
        let b = Aad::new("clients", "a", "bc");
        assert_ne!(a.to_bytes(), b.to_bytes());
        assert_eq!(
            a.to_bytes(),
            Aad::new("clients", String::from("ab"), "c").to_bytes()
        );
    }
}
