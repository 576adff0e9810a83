//! Property tests of password and token generation.

use std::collections::HashSet;

use latchkey_crypto::{PasswordSpec, generate_password, generate_token};
use proptest::prelude::*;
use secrecy::ExposeSecret;

/// Whether a class is enabled, and its membership test.
type Class = (bool, fn(&u8) -> bool);

fn classes(spec: &PasswordSpec) -> [Class; 4] {
    [
        (spec.lower, u8::is_ascii_lowercase),
        (spec.upper, u8::is_ascii_uppercase),
        (spec.digits, u8::is_ascii_digit),
        (spec.symbols, u8::is_ascii_punctuation),
    ]
}

fn valid_spec() -> impl Strategy<Value = PasswordSpec> {
    (8usize..=256, any::<[bool; 4]>())
        .prop_filter("some class enabled", |(_, c)| c.iter().any(|&b| b))
        .prop_map(|(length, [lower, upper, digits, symbols])| PasswordSpec { length, lower, upper, digits, symbols })
}

proptest! {
    #[test]
    fn password_honours_length_and_classes(spec in valid_spec()) {
        let pw = generate_password(&spec).unwrap();
        let s = pw.expose_secret().as_bytes();
        prop_assert_eq!(s.len(), spec.length);
        for c in s {
            prop_assert!(
                classes(&spec).iter().any(|(on, is)| *on && is(c)),
                "{:?} is not in an enabled class of {:?}", *c as char, spec
            );
        }
        for (on, is) in classes(&spec) {
            if on {
                prop_assert!(s.iter().any(is), "an enabled class is missing");
            }
        }
    }

    #[test]
    fn bad_length_gives_none(
        length in prop_oneof![0usize..8, 257usize..10_000],
        flags in any::<[bool; 4]>(),
    ) {
        let [lower, upper, digits, symbols] = flags;
        let spec = PasswordSpec { length, lower, upper, digits, symbols };
        prop_assert!(generate_password(&spec).is_none());
    }

    #[test]
    fn no_class_gives_none(length in 0usize..300) {
        let spec = PasswordSpec { length, lower: false, upper: false, digits: false, symbols: false };
        prop_assert!(generate_password(&spec).is_none());
    }

    #[test]
    fn token_has_prefix_and_43_char_body(prefix in "[a-z_]{0,16}") {
        let t = generate_token(&prefix);
        let s = t.expose_secret();
        let body = s.strip_prefix(&format!("{prefix}_")).unwrap();
        prop_assert_eq!(body.len(), 43);
        prop_assert!(body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
}

#[test]
fn passwords_and_tokens_do_not_repeat() {
    let spec = PasswordSpec { length: 8, ..PasswordSpec::default() };
    let pws: HashSet<String> = (0..500).map(|_| generate_password(&spec).unwrap().expose_secret().to_owned()).collect();
    assert_eq!(pws.len(), 500);
    let tokens: HashSet<String> = (0..500).map(|_| generate_token("lk").expose_secret().to_owned()).collect();
    assert_eq!(tokens.len(), 500);
}

#[test]
fn boundary_lengths() {
    for length in [8, 256] {
        let spec = PasswordSpec { length, ..PasswordSpec::default() };
        assert_eq!(generate_password(&spec).unwrap().expose_secret().len(), length);
    }
    for length in [7, 257] {
        let spec = PasswordSpec { length, ..PasswordSpec::default() };
        assert!(generate_password(&spec).is_none());
    }
}
