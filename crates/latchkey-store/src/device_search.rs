//! Finding a tenant's devices by part of their name, deviceId or container.

use latchkey_core::model::Device;

use crate::devices::device_from_row;
use crate::{Store, StoreError};

/// The `LIKE` pattern matching `text` anywhere, with `%`, `_` and `\` taken literally
/// (escaped with `\`) and letters in lower case.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Store {
    /// The tenant's devices whose name, deviceId or container DN contains `text`, ignoring
    /// case (names through their stored lower-case key; in containers only ASCII letters fold
    /// on SQLite), ordered by name then id, at most `limit`.
    pub async fn search_devices(&self, tenant_id: &str, text: &str, limit: i64) -> Result<Vec<Device>, StoreError> {
        sqlx::query(concat!(
            select_devices!(),
            " WHERE tenant_id = $1 AND (name_key LIKE $2 ESCAPE '\\' OR LOWER(id) LIKE $2 ESCAPE '\\' \
             OR LOWER(COALESCE(container_dn, '')) LIKE $2 ESCAPE '\\') ORDER BY name, id LIMIT $3"
        ))
        .bind(tenant_id.to_owned())
        .bind(contains_pattern(text))
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::db)?
        .iter()
        .map(device_from_row)
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_are_taken_literally() {
        assert_eq!(contains_pattern("PC-1"), "%pc-1%");
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
        assert_eq!(contains_pattern(""), "%%");
    }
}
