//! Vault keys: add a key-encryption key, re-wrap every data key under it, retire old keys.

use axum::Json;
use axum::extract::{Path, State};
use latchkey_core::{Action, ObjectType};
use latchkey_crypto::KeyProvider;
use latchkey_proto as proto;
use serde::Deserialize;

use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::state::AppState;
use crate::vault;

async fn status(state: &AppState) -> Result<proto::VaultStatus, ApiError> {
    let counts = state.store().envelopes_per_key().await.map_err(|e| ApiError::store("vault", e))?;
    let (active, keys) = {
        let ring = state.keyring();
        (ring.active_key_id(), ring.keys())
    };
    let count_of = |id: &str| counts.iter().find(|(k, _)| k == id).map(|(_, n)| *n).unwrap_or(0);
    let remaining = counts.iter().filter(|(k, _)| *k != active).map(|(_, n)| n).sum();
    Ok(proto::VaultStatus {
        active_key_id: active.clone(),
        keys: keys
            .into_iter()
            .map(|k| proto::VaultKey { envelopes: count_of(&k.id), active: k.active, id: k.id })
            .collect(),
        remaining,
    })
}

/// The vault's keys and how many secret versions still need re-wrapping.
#[utoipa::path(get, path = "/api/v1/vault", tag = "vault", security(("bearer" = [])),
    responses((status = 200, body = proto::VaultStatus), (status = 403, body = proto::Problem)))]
pub async fn vault_status(State(state): State<AppState>, admin: Admin) -> Result<Json<proto::VaultStatus>, ApiError> {
    admin.require_global()?;
    Ok(Json(status(&state).await?))
}

/// Add a new key-encryption key and make it active (new secrets use it at once).
#[utoipa::path(post, path = "/api/v1/vault/keys", tag = "vault", security(("bearer" = [])),
    responses((status = 200, body = proto::VaultStatus), (status = 403, body = proto::Problem)))]
pub async fn add_vault_key(State(state): State<AppState>, admin: Admin) -> Result<Json<proto::VaultStatus>, ApiError> {
    admin.require_global()?;
    let now = state.clock().now();
    let key_id = {
        let mut ring = state.keyring_mut();
        let mut next = ring.clone();
        let id = next.add_key(now.unix_timestamp());
        next.save(state.key_file()).map_err(|e| ApiError::Internal(format!("cannot write the key file: {e}")))?;
        *ring = next;
        id
    };
    let event = admin.event(&state, Action::VaultKeyAdd, ObjectType::Vault).object(key_id);
    state.store().append_audit(vec![event]).await.map_err(|e| ApiError::store("audit", e))?;
    Ok(Json(status(&state).await?))
}

/// How much to re-wrap in one call.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RewrapQuery {
    /// Secret versions per call (1–5000, default 500).
    pub limit: Option<i64>,
}

/// Re-wrap up to `limit` envelopes under the active key: secret versions first, then grants'
/// temporary passwords. Call until `remaining` is 0; safe to interrupt and resume.
#[utoipa::path(post, path = "/api/v1/vault/rewrap", tag = "vault", security(("bearer" = [])), params(RewrapQuery),
    responses((status = 200, body = proto::RewrapProgress), (status = 400, body = proto::Problem), (status = 403, body = proto::Problem)))]
pub async fn rewrap_vault(
    State(state): State<AppState>,
    admin: Admin,
    ApiQuery(q): ApiQuery<RewrapQuery>,
) -> Result<Json<proto::RewrapProgress>, ApiError> {
    admin.require_global()?;
    let limit = q.limit.unwrap_or(500);
    if !(1..=5000).contains(&limit) {
        return Err(ApiError::bad_param("limit must be between 1 and 5000"));
    }
    let active = state.keyring().active_key_id();
    let batch = state.store().versions_to_rewrap(&active, limit).await.map_err(|e| ApiError::store("vault", e))?;
    if batch.is_empty() {
        return rewrap_grant_passwords(&state, &admin, &active, limit).await;
    }
    let mut rewrapped = Vec::with_capacity(batch.len());
    {
        let ring = state.keyring();
        for v in &batch {
            let new = vault::rewrap_version(&ring, v).map_err(|e| {
                ApiError::Internal(format!("cannot re-wrap account {} version {}: {e}", v.account_id, v.version))
            })?;
            rewrapped.push((new, v.key_id.clone()));
        }
    }
    let event = admin.event(&state, Action::VaultRewrap, ObjectType::Vault).object(active.clone());
    let done = if rewrapped.is_empty() {
        0
    } else {
        state.store().replace_envelopes(rewrapped, event).await.map_err(|e| ApiError::store("vault", e))?
    };
    let remaining = status(&state).await?.remaining;
    Ok(Json(proto::RewrapProgress { rewrapped: done as i64, remaining }))
}

/// Re-wrap up to `limit` grant passwords (once every secret version is done).
async fn rewrap_grant_passwords(
    state: &AppState,
    admin: &Admin,
    active: &str,
    limit: i64,
) -> Result<Json<proto::RewrapProgress>, ApiError> {
    let batch =
        state.store().grant_passwords_to_rewrap(active, limit).await.map_err(|e| ApiError::store("vault", e))?;
    let mut rewrapped = Vec::with_capacity(batch.len());
    {
        let ring = state.keyring();
        for g in &batch {
            let new = vault::rewrap_grant_password(&ring, g)
                .map_err(|e| ApiError::Internal(format!("cannot re-wrap the password of grant {}: {e}", g.grant_id)))?;
            rewrapped.push((new, g.key_id.clone()));
        }
    }
    let done = if rewrapped.is_empty() {
        0
    } else {
        let event = admin.event(state, Action::VaultRewrap, ObjectType::Vault).object(active.to_owned());
        state
            .store()
            .replace_grant_password_envelopes(rewrapped, event)
            .await
            .map_err(|e| ApiError::store("vault", e))?
    };
    let remaining = status(state).await?.remaining;
    Ok(Json(proto::RewrapProgress { rewrapped: done as i64, remaining }))
}

/// Retire a key. Refused for the active key and while any envelope (a secret version or a
/// grant's temporary password) still uses it.
#[utoipa::path(delete, path = "/api/v1/vault/keys/{key_id}", tag = "vault", security(("bearer" = [])),
    params(("key_id" = String, Path, description = "key id")),
    responses((status = 200, body = proto::VaultStatus), (status = 403, body = proto::Problem),
        (status = 404, body = proto::Problem), (status = 409, body = proto::Problem)))]
pub async fn retire_vault_key(
    State(state): State<AppState>,
    admin: Admin,
    Path(key_id): Path<String>,
) -> Result<Json<proto::VaultStatus>, ApiError> {
    admin.require_global()?;
    let before = status(&state).await?;
    let Some(key) = before.keys.iter().find(|k| k.id == key_id) else {
        return Err(ApiError::not_found("key"));
    };
    if key.active {
        return Err(ApiError::Client(latchkey_proto::ProblemCode::Conflict, "the active key cannot be retired".into()));
    }
    if key.envelopes > 0 {
        return Err(ApiError::Client(
            latchkey_proto::ProblemCode::Conflict,
            format!(
                "{} envelopes (secret versions and grant passwords) still use this key; re-wrap first",
                key.envelopes
            ),
        ));
    }
    {
        let mut ring = state.keyring_mut();
        let mut next = ring.clone();
        next.retire_key(&key_id).map_err(|e| ApiError::Client(latchkey_proto::ProblemCode::Conflict, e.to_string()))?;
        next.save(state.key_file()).map_err(|e| ApiError::Internal(format!("cannot write the key file: {e}")))?;
        *ring = next;
    }
    let event = admin.event(&state, Action::VaultKeyRetire, ObjectType::Vault).object(key_id);
    state.store().append_audit(vec![event]).await.map_err(|e| ApiError::store("audit", e))?;
    Ok(Json(status(&state).await?))
}
