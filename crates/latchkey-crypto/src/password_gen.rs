//! Random password and passphrase generation.

use rand::rngs::OsRng;
use rand::seq::SliceRandom;
use secrecy::SecretString;
use zeroize::{Zeroize, Zeroizing};

/// Lower-case letters.
const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
/// Upper-case letters.
const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// Decimal digits.
const DIGITS: &[u8] = b"0123456789";
/// Printable ASCII symbols, leaving out quotes, backslash, backtick and space,
/// which are awkward in shells and configuration files.
const SYMBOLS: &[u8] = b"!#$%&()*+,-./:;<=>?@[]^_{|}~";

/// Shortest password [`generate_password`] makes.
const MIN_LEN: usize = 8;
/// Longest password [`generate_password`] makes.
const MAX_LEN: usize = 256;

/// What [`generate_password`] makes: a length and the character classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordSpec {
    /// Number of characters, 8..=256.
    pub length: usize,
    /// Include `a`-`z`.
    pub lower: bool,
    /// Include `A`-`Z`.
    pub upper: bool,
    /// Include `0`-`9`.
    pub digits: bool,
    /// Include ASCII symbols (`!#$%&()*+,-./:;<=>?@[]^_{|}~`).
    pub symbols: bool,
}

impl Default for PasswordSpec {
    /// 24 characters from all classes.
    fn default() -> Self {
        PasswordSpec { length: 24, lower: true, upper: true, digits: true, symbols: true }
    }
}

/// Random password: `length` (8..=256, else `None`) characters from the
/// enabled classes (none enabled: `None`), with at least one character of
/// each enabled class. Every such password is equally likely: characters are
/// drawn uniformly from the union of the classes with the OS random source,
/// and draws that miss a class are discarded and redrawn.
pub fn generate_password(spec: &PasswordSpec) -> Option<SecretString> {
    if !(MIN_LEN..=MAX_LEN).contains(&spec.length) {
        return None;
    }
    let classes: Vec<&[u8]> =
        [(spec.lower, LOWER), (spec.upper, UPPER), (spec.digits, DIGITS), (spec.symbols, SYMBOLS)]
            .into_iter()
            .filter_map(|(on, class)| on.then_some(class))
            .collect();
    if classes.is_empty() {
        return None;
    }
    let alphabet: Vec<u8> = classes.concat();
    let mut buf = Zeroizing::new(Vec::with_capacity(spec.length));
    // Each draw covers every class with probability above 1/3 even in the
    // worst case (8 characters, all classes), so this ends quickly.
    loop {
        buf.zeroize();
        for _ in 0..spec.length {
            buf.push(*alphabet.choose(&mut OsRng)?);
        }
        if classes.iter().all(|class| buf.iter().any(|c| class.contains(c))) {
            break;
        }
    }
    let text = String::from_utf8(std::mem::take(&mut *buf)).ok()?;
    Some(SecretString::from(text))
}

/// Fewest words [`generate_passphrase`] takes.
pub const MIN_PASSPHRASE_WORDS: usize = 4;
/// Most words [`generate_passphrase`] takes.
pub const MAX_PASSPHRASE_WORDS: usize = 20;

/// Random passphrase: `words` (4..=20, else `None`) words of the EFF long wordlist (7,776
/// words, about 12.9 bits each), each drawn uniformly with the OS random source, joined by `-`.
/// At most 20 words of at most 9 characters: never longer than 199 bytes.
pub fn generate_passphrase(words: usize) -> Option<SecretString> {
    if !(MIN_PASSPHRASE_WORDS..=MAX_PASSPHRASE_WORDS).contains(&words) {
        return None;
    }
    let list: &[&str] = &diceware_wordlists::EFF_LONG_WORDLIST;
    let mut text = Zeroizing::new(String::with_capacity(words * 10));
    for i in 0..words {
        if i > 0 {
            text.push('-');
        }
        text.push_str(list.choose(&mut OsRng)?);
    }
    Some(SecretString::from(std::mem::take(&mut *text)))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn default_is_24_chars_of_every_class() {
        let spec = PasswordSpec::default();
        assert_eq!(spec.length, 24);
        assert!(spec.lower && spec.upper && spec.digits && spec.symbols);
        let pw = generate_password(&spec).unwrap();
        let s = pw.expose_secret();
        assert_eq!(s.len(), 24);
        for class in [LOWER, UPPER, DIGITS, SYMBOLS] {
            assert!(s.bytes().any(|c| class.contains(&c)), "{class:?}");
        }
    }

    #[test]
    fn classes_are_disjoint_printable_ascii() {
        let all = [LOWER, UPPER, DIGITS, SYMBOLS].concat();
        assert!(all.iter().all(u8::is_ascii_graphic));
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len());
    }

    #[test]
    fn every_symbol_eventually_appears() {
        // A uniform draw over the union must reach every character.
        let spec = PasswordSpec { length: 256, lower: false, upper: false, digits: false, symbols: true };
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            seen.extend(generate_password(&spec).unwrap().expose_secret().bytes());
        }
        assert_eq!(seen.len(), SYMBOLS.len());
    }

    #[test]
    fn passphrases_are_words_of_the_eff_list() {
        assert!(generate_passphrase(3).is_none());
        assert!(generate_passphrase(21).is_none());
        let list = &diceware_wordlists::EFF_LONG_WORDLIST;
        assert_eq!(list.len(), 7776);
        let longest = list.iter().map(|w| w.len()).max().unwrap();
        assert!(20 * longest + 19 <= MAX_LEN);
        for n in [MIN_PASSPHRASE_WORDS, 6, MAX_PASSPHRASE_WORDS] {
            let phrase = generate_passphrase(n).unwrap();
            let text = phrase.expose_secret();
            assert!(text.bytes().all(|b| b.is_ascii_graphic()), "{n} words");
            // Words of the list may hold a hyphen themselves; the phrase is at least n words.
            assert!(text.split('-').count() >= n);
        }
        assert_ne!(generate_passphrase(8).unwrap().expose_secret(), generate_passphrase(8).unwrap().expose_secret());
    }
}
