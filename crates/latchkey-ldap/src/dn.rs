//! Distinguished names as directories write them: split at unescaped commas, compared by a
//! key that ignores case and the spaces around `,` and `=`.

/// Split a DN at unescaped commas.
pub(crate) fn split(dn: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in dn.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            ',' if !escaped => {
                parts.push(&dn[start..i]);
                start = i + 1;
            }
            _ => escaped = false,
        }
    }
    parts.push(&dn[start..]);
    parts
}

/// The comparison key of a DN: every `attribute=value` trimmed and lower-cased, joined by
/// commas. `CN=WS1, OU=Workstations,DC=Dev1` and `cn=ws1,ou=workstations,dc=dev1` share a key.
pub fn key(dn: &str) -> String {
    split(dn.trim())
        .iter()
        .map(|rdn| match rdn.split_once('=') {
            Some((attr, value)) => format!("{}={}", attr.trim().to_lowercase(), value.trim().to_lowercase()),
            None => rdn.trim().to_lowercase(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The DN of the container holding an entry (the DN without its first component), as written.
pub fn parent(dn: &str) -> Option<String> {
    let parts = split(dn.trim());
    if parts.len() < 2 {
        return None;
    }
    Some(parts[1..].iter().map(|p| p.trim()).collect::<Vec<_>>().join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_case_and_spacing() {
        assert_eq!(key("CN=WS1, OU=Workstations,DC=Dev1 "), "cn=ws1,ou=workstations,dc=dev1");
        assert_eq!(key("cn=Smith\\, John,ou=People"), "cn=smith\\, john,ou=people");
    }

    #[test]
    fn parent_drops_the_first_component() {
        assert_eq!(parent("CN=WS1,OU=Workstations,DC=x").as_deref(), Some("OU=Workstations,DC=x"));
        assert_eq!(parent("CN=Smith\\, John, OU=People,DC=x").as_deref(), Some("OU=People,DC=x"));
        assert_eq!(parent("DC=x"), None);
    }
}
