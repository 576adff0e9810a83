//! Spelling a password aloud: the NATO alphabet for letters (with their case), "digit N"
//! for digits and a name for every symbol, one entry per character.

/// The NATO spelling alphabet, `a` to `z`.
const NATO: [&str; 26] = [
    "alfa", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett", "kilo", "lima",
    "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey", "x-ray",
    "yankee", "zulu",
];

/// The spoken name of a printable ASCII symbol.
fn symbol_name(c: char) -> Option<&'static str> {
    Some(match c {
        ' ' => "space",
        '!' => "exclamation mark",
        '"' => "double quote",
        '#' => "hash",
        '$' => "dollar sign",
        '%' => "percent sign",
        '&' => "ampersand",
        '\'' => "apostrophe",
        '(' => "opening parenthesis",
        ')' => "closing parenthesis",
        '*' => "asterisk",
        '+' => "plus sign",
        ',' => "comma",
        '-' => "hyphen",
        '.' => "full stop",
        '/' => "slash",
        ':' => "colon",
        ';' => "semicolon",
        '<' => "less-than sign",
        '=' => "equals sign",
        '>' => "greater-than sign",
        '?' => "question mark",
        '@' => "at sign",
        '[' => "opening square bracket",
        '\\' => "backslash",
        ']' => "closing square bracket",
        '^' => "caret",
        '_' => "underscore",
        '`' => "backtick",
        '{' => "opening curly brace",
        '|' => "vertical bar",
        '}' => "closing curly brace",
        '~' => "tilde",
        _ => return None,
    })
}

/// How to say one character.
pub fn say(c: char) -> String {
    if c.is_ascii_lowercase() {
        format!("lower-case {}", NATO[usize::from(c as u8 - b'a')])
    } else if c.is_ascii_uppercase() {
        format!("upper-case {}", NATO[usize::from(c as u8 - b'A')].to_uppercase())
    } else if c.is_ascii_digit() {
        format!("digit {c}")
    } else if let Some(name) = symbol_name(c) {
        name.to_owned()
    } else {
        format!("character U+{:04X}", u32::from(c))
    }
}

/// How to say each character of `text`, in order.
pub fn spell(text: &str) -> Vec<String> {
    text.chars().map(say).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_say_their_case_and_nato_word() {
        assert_eq!(spell("aZ"), ["lower-case alfa", "upper-case ZULU"]);
        assert_eq!(say('j'), "lower-case juliett");
        assert_eq!(say('X'), "upper-case X-RAY");
    }

    #[test]
    fn digits_and_symbols_have_names() {
        assert_eq!(spell("07"), ["digit 0", "digit 7"]);
        assert_eq!(spell("$ -"), ["dollar sign", "space", "hyphen"]);
        assert_eq!(say('\\'), "backslash");
        assert_eq!(say('"'), "double quote");
    }

    #[test]
    fn every_printable_ascii_character_has_a_plain_name() {
        for c in ' '..='~' {
            assert!(!say(c).starts_with("character"), "{c:?} has no name");
        }
        assert_eq!(say('é'), "character U+00E9");
        assert_eq!(spell("").len(), 0);
    }

    #[test]
    fn one_entry_per_character() {
        assert_eq!(spell("Pa$$w0rd!").len(), 9);
        assert_eq!(spell("Pa$$w0rd!")[5], "digit 0");
    }
}
