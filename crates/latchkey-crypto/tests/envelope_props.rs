//! Property tests of envelope encryption: round trips, tamper detection and
//! binding enforcement.

use latchkey_crypto::{Binding, CryptoError, Keyring, envelope_key_id, open, rewrap, seal};
use proptest::prelude::*;
use proptest::sample::Index;

/// Owned binding fields, so strategies can generate them.
#[derive(Debug, Clone, PartialEq)]
struct Fields {
    tenant: String,
    table: String,
    row: String,
    field: String,
    version: i64,
}

impl Fields {
    fn binding(&self) -> Binding<'_> {
        Binding { tenant: &self.tenant, table: &self.table, row: &self.row, field: &self.field, version: self.version }
    }
}

fn fields() -> impl Strategy<Value = Fields> {
    let s = || "\\PC{0,24}";
    (s(), s(), s(), s(), any::<i64>()).prop_map(|(tenant, table, row, field, version)| Fields {
        tenant,
        table,
        row,
        field,
        version,
    })
}

/// One binding field changed to a different value.
fn change_one(f: &Fields, which: usize, text: String, version: i64) -> Fields {
    let mut g = f.clone();
    match which {
        0 => g.tenant = text,
        1 => g.table = text,
        2 => g.row = text,
        3 => g.field = text,
        _ => g.version = version,
    }
    g
}

proptest! {
    #[test]
    fn seal_open_round_trip(
        plaintext in prop::collection::vec(any::<u8>(), 0..4096),
        f in fields(),
    ) {
        let ring = Keyring::ephemeral();
        let env = seal(&ring, &f.binding(), &plaintext).unwrap();
        prop_assert_eq!(envelope_key_id(&env).unwrap(), latchkey_crypto::KeyProvider::active_key_id(&ring));
        let opened = open(&ring, &f.binding(), &env).unwrap();
        prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
        // The plaintext does not appear in the envelope.
        if plaintext.len() >= 16 {
            prop_assert!(!env.windows(plaintext.len()).any(|w| w == plaintext.as_slice()));
        }
    }

    #[test]
    fn any_single_bit_flip_is_detected(
        plaintext in prop::collection::vec(any::<u8>(), 0..256),
        f in fields(),
        bit in any::<Index>(),
    ) {
        let ring = Keyring::ephemeral();
        let env = seal(&ring, &f.binding(), &plaintext).unwrap();
        let mut bad = env.clone();
        let i = bit.index(env.len() * 8);
        bad[i / 8] ^= 1 << (i % 8);
        prop_assert!(open(&ring, &f.binding(), &bad).is_err(), "bit {} of {}", i, env.len() * 8);
        prop_assert!(rewrap(&ring, &f.binding(), &bad).is_err());
    }

    #[test]
    fn changing_any_binding_field_fails(
        plaintext in prop::collection::vec(any::<u8>(), 0..256),
        f in fields(),
        which in 0usize..5,
        text in "\\PC{0,24}",
        version in any::<i64>(),
    ) {
        let g = change_one(&f, which, text, version);
        prop_assume!(g != f);
        let ring = Keyring::ephemeral();
        let env = seal(&ring, &f.binding(), &plaintext).unwrap();
        prop_assert!(matches!(open(&ring, &g.binding(), &env), Err(CryptoError::Decrypt)));
        prop_assert!(matches!(rewrap(&ring, &g.binding(), &env), Err(CryptoError::Decrypt)));
        let opened = open(&ring, &f.binding(), &env).unwrap();
        prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
    }

    #[test]
    fn envelope_copied_to_another_binding_fails(
        plaintext in prop::collection::vec(any::<u8>(), 0..256),
        f in fields(),
        g in fields(),
    ) {
        prop_assume!(f != g);
        let ring = Keyring::ephemeral();
        let env = seal(&ring, &f.binding(), &plaintext).unwrap();
        prop_assert!(matches!(open(&ring, &g.binding(), &env), Err(CryptoError::Decrypt)));
    }

    #[test]
    fn envelope_from_another_keyring_fails(
        plaintext in prop::collection::vec(any::<u8>(), 0..64),
        f in fields(),
    ) {
        let a = Keyring::ephemeral();
        let b = Keyring::ephemeral();
        let env = seal(&a, &f.binding(), &plaintext).unwrap();
        prop_assert!(matches!(open(&b, &f.binding(), &env), Err(CryptoError::UnknownKey(_))));
    }
}

#[test]
fn shifting_text_between_fields_is_a_different_binding() {
    let ring = Keyring::ephemeral();
    let a = Binding { tenant: "ab", table: "c", row: "r", field: "f", version: 0 };
    let b = Binding { tenant: "a", table: "bc", row: "r", field: "f", version: 0 };
    let env = seal(&ring, &a, b"v").unwrap();
    assert!(matches!(open(&ring, &b, &env), Err(CryptoError::Decrypt)));
}
