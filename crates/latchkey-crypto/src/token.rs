//! High-entropy bearer tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::SecretString;
use zeroize::Zeroizing;

/// A high-entropy bearer secret: `<prefix>_` + 43 chars base64url-no-pad of
/// 32 random bytes.
pub fn generate_token(prefix: &str) -> SecretString {
    let mut bytes = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(bytes.as_mut());
    // Exact capacity: no reallocation leaves copies behind, and the
    // conversion to a boxed str does not need to shrink (copy) the buffer.
    let mut token = String::with_capacity(prefix.len() + 1 + 43);
    token.push_str(prefix);
    token.push('_');
    URL_SAFE_NO_PAD.encode_string(bytes.as_ref(), &mut token);
    SecretString::from(token)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn shape_prefix_and_decoding() {
        let t = generate_token("lk_admin");
        let s = t.expose_secret();
        let body = s.strip_prefix("lk_admin_").unwrap();
        assert_eq!(body.len(), 43);
        assert!(body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(URL_SAFE_NO_PAD.decode(body).unwrap().len(), 32);
        assert_eq!(generate_token("").expose_secret().len(), 44);
    }

    #[test]
    fn tokens_are_unique_and_not_debug_printed() {
        let set: HashSet<String> = (0..1000).map(|_| generate_token("t").expose_secret().to_owned()).collect();
        assert_eq!(set.len(), 1000);
        let t = generate_token("t");
        assert!(!format!("{t:?}").contains(&t.expose_secret()[2..]));
    }
}
