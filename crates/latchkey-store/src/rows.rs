//! Reading typed records out of rows.

use latchkey_core::clock::from_millis;
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::StoreError;

/// Read a column, mapping a decode failure to a corrupt-row error naming the column.
pub(crate) fn get<'r, T>(row: &'r AnyRow, col: &'static str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(col).map_err(|_| StoreError::Corrupt(col))
}

/// Read a millisecond timestamp column.
pub(crate) fn time(row: &AnyRow, col: &'static str) -> Result<OffsetDateTime, StoreError> {
    get::<i64>(row, col).map(from_millis)
}

/// Read an optional millisecond timestamp column.
pub(crate) fn opt_time(row: &AnyRow, col: &'static str) -> Result<Option<OffsetDateTime>, StoreError> {
    get::<Option<i64>>(row, col).map(|v| v.map(from_millis))
}

/// The one row `sql` selects with `$1` = `tenant_id` and `$2` = `key`; `NotFound` when none.
pub(crate) async fn tenant_row(
    pool: &sqlx::AnyPool,
    sql: String,
    tenant_id: &str,
    key: &str,
) -> Result<AnyRow, StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id.to_owned())
        .bind(key.to_owned())
        .fetch_optional(pool)
        .await
        .map_err(StoreError::db)?
        .ok_or(StoreError::NotFound)
}
