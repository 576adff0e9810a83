//! An account's SSH key (generated or imported, stored encrypted like every secret version),
//! and storing new credentials while keeping the field not given.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use latchkey_core::model::{AccountKind, SecretState, SecretVersion};
use latchkey_core::{Action, NewAuditEvent, ObjectType};
use latchkey_proto::{self as proto, ProblemCode};
use latchkey_store::StoreError;
use zeroize::Zeroizing;

use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::ssh_keys::{self, KeyAlgorithm};
use crate::state::AppState;
use crate::vault;

/// Longest private key accepted.
const MAX_KEY: usize = 16 * 1024;

/// Store a new active version of an account's credentials: the given fields, and the active
/// version's value of a field not given. `event` is written with it.
pub(crate) async fn store_credentials(
    state: &AppState,
    tenant_id: &str,
    account_id: &str,
    password: Option<Zeroizing<String>>,
    key: Option<Zeroizing<String>>,
    event: NewAuditEvent,
) -> Result<SecretVersion, ApiError> {
    let (mut password, mut key) = (password, key);
    if password.is_none() || key.is_none() {
        match state.store().active_secret(tenant_id, account_id).await {
            Ok((_, active)) => {
                let opened = vault::open_version(&state.keyring(), &active)
                    .map_err(|e| ApiError::Internal(format!("account {account_id} cannot be opened: {e}")))?;
                password = password.or(opened.password);
                key = key.or(opened.ssh_key);
            }
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(ApiError::store("account", e)),
        }
    }
    let seal = vault::seal_fn(state.keyring_handle(), tenant_id.to_owned(), account_id.to_owned(), password, key);
    state
        .store()
        .add_secret_version(tenant_id, account_id, SecretState::Active, None, seal, event)
        .await
        .map_err(|e| ApiError::store("account", e))
}

fn parse_account_id(raw: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(raw.trim())
        .map(|u| u.to_string())
        .map_err(|_| ApiError::bad_param("account id is not a valid UUID"))
}

/// Set an account's SSH key: generate one (Ed25519, or RSA 3072) or import an unencrypted
/// OpenSSH private key. The account's password is kept. Generic accounts only.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/accounts/{account_id}/ssh-key", tag = "applications",
    request_body = proto::SshKeySet, security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("account_id" = String, Path, description = "account id")),
    responses((status = 201, body = proto::SshKeyStored), (status = 400, body = proto::Problem),
        (status = 404, body = proto::Problem), (status = 409, body = proto::Problem, description = "not a generic account")))]
pub async fn set_account_ssh_key(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, account_id)): Path<(String, String)>,
    ApiJson(mut body): ApiJson<proto::SshKeySet>,
) -> Result<(StatusCode, Json<proto::SshKeyStored>), ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let id = parse_account_id(&account_id)?;
    let imported = body.private_key.take().map(Zeroizing::new);
    let (account, _) = state.store().account(&tenant.id, &id).await.map_err(|e| ApiError::store("account", e))?;
    if account.kind != AccountKind::Generic {
        return Err(ApiError::Client(ProblemCode::Conflict, "only generic accounts hold an SSH key".into()));
    }
    let comment = account.name.clone();
    let pem = match (body.generate, imported) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(ApiError::invalid("give either generate or privateKey"));
        }
        (Some(alg), None) => {
            let alg = match alg {
                proto::SshKeyAlgorithm::Ed25519 => KeyAlgorithm::Ed25519,
                proto::SshKeyAlgorithm::Rsa3072 => KeyAlgorithm::Rsa3072,
            };
            tokio::task::spawn_blocking(move || ssh_keys::generate(alg, &comment))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?
                .map_err(|e| ApiError::Internal(e.to_string()))?
        }
        (None, Some(text)) => {
            if text.len() > MAX_KEY {
                return Err(ApiError::invalid("privateKey is longer than 16 KiB"));
            }
            ssh_keys::import(&text).map_err(|e| ApiError::invalid(format!("privateKey: {e}")))?
        }
    };
    let facts = ssh_keys::public_facts(&pem).map_err(|e| ApiError::Internal(e.to_string()))?;
    let event = admin
        .event(&state, Action::CredentialsSet, ObjectType::Account)
        .tenant(tenant.id.clone())
        .object(id.clone())
        .details(&serde_json::json!({ "sshKey": facts.algorithm, "fingerprint": facts.fingerprint }));
    let stored = store_credentials(&state, &tenant.id, &id, None, Some(pem), event).await?;
    Ok((
        StatusCode::CREATED,
        Json(proto::SshKeyStored {
            account_id: id,
            version: stored.version,
            algorithm: facts.algorithm,
            public_key: facts.public_key,
            fingerprint: facts.fingerprint,
        }),
    ))
}
