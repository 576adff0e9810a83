//! The agent's work: check-ins that report state and receive jobs, and the two phases of a
//! job (pending, then confirmed) or its failure.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use latchkey_core::rotation::is_support_account_name;
use latchkey_core::{Action, DeviceJob, JobKind, ObjectType, RotationPolicy};
use latchkey_proto as proto;
use latchkey_proto::ProblemCode;
use latchkey_store::{CheckInContext, CheckInWrite, Decide, LocalAdminWork, StoreError, TOO_MANY_CHECK_INS};
use zeroize::Zeroizing;

use super::agent_signed::{self, SignedRequest, replayed};
use crate::error::ApiError;
use crate::extract::RequestFacts;
use crate::state::AppState;
use crate::vault;

/// Longest password an agent may escrow, in bytes.
const MAX_PASSWORD_BYTES: usize = 256;

/// A signed check-in: the agent reports what it believes is set; the server records the time,
/// confirms a pending version the agent reports as set, queues what is due (rotation by age,
/// expiry or disagreement; removal of expired support accounts) and answers every open job.
#[utoipa::path(post, path = "/api/agent/v1/check-in", tag = "agent", request_body = proto::AgentCheckIn,
    params(
        ("x-latchkey-device" = String, Header, description = "device id"),
        ("x-latchkey-timestamp" = i64, Header, description = "Unix seconds"),
        ("x-latchkey-nonce" = String, Header, description = "single-use nonce"),
        ("x-latchkey-signature" = String, Header, description = "Ed25519 signature (base64url)"),
    ),
    responses((status = 200, body = proto::AgentCheckInResponse), (status = 400, body = proto::Problem),
        (status = 401, body = proto::Problem), (status = 413, body = proto::Problem), (status = 429, body = proto::Problem)))]
pub async fn check_in(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    facts: RequestFacts,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<proto::AgentCheckInResponse>, ApiError> {
    let request = agent_signed::unverified(&state, &headers, body)?;
    let device_id = request.device_id().to_owned();
    let store = state.store();
    let mut key = store.agent_key(&device_id).await.map_err(agent_signed::unknown_device)?;
    let mut opened = request.open_with::<proto::AgentCheckIn>(key.verifying_key.as_ref(), &method, &uri);
    if opened.is_err() && key.cached {
        // The key kept in memory may be stale: read it again before refusing.
        store.forget_agent_key(&device_id);
        key = store.agent_key(&device_id).await.map_err(agent_signed::unknown_device)?;
        opened = request.open_with(key.verifying_key.as_ref(), &method, &uri);
    }
    let (nonce, report) = opened?;
    if report.managed_accounts.len() > 64 || report.managed_accounts.iter().any(|a| a.is_empty() || a.len() > 64) {
        return Err(ApiError::invalid("managedAccounts holds at most 64 names of 1-64 characters"));
    }
    if report.password_version.is_some_and(|v| v < 1) {
        return Err(ApiError::invalid("passwordVersion must be at least 1"));
    }
    let now = state.clock().now();
    let template = facts
        .event(now, format!("agent:{device_id}"), Action::RotationRequest, ObjectType::DeviceJob)
        .tenant(key.tenant_id.to_string());
    let reported = report.password_version;
    // Decided in the store's batch, from the device's state in the transaction that records it.
    let decision: Decide = Box::new(move |ctx| decide(ctx, nonce, reported, now));
    let (context, queued) = match store.check_in(&device_id, &key.public_key, now, template, decision).await {
        Ok(done) => done,
        Err(StoreError::Conflict(why)) if why == TOO_MANY_CHECK_INS => {
            return Err(ApiError::Client(ProblemCode::RateLimited, why.to_owned()));
        }
        Err(StoreError::Conflict(_)) => return Err(replayed()),
        // The device was removed (or enrolled again) since its key was read.
        Err(StoreError::NotFound) => return Err(agent_signed::unauthenticated("the signature does not verify")),
        Err(e) => return Err(ApiError::store("device", e)),
    };
    let confirmed = decide(&context, String::new(), reported, now).confirm.is_some();
    let CheckInContext { device, policy, snapshot } = context;
    let open: Vec<_> = snapshot
        .open_jobs
        .into_iter()
        // A confirmation by this check-in finished every open rotation.
        .filter(|(j, _)| !(confirmed && j.kind == JobKind::RotatePassword))
        .chain(queued)
        .collect();
    let local_admin = local_admin_work(&state, &open).await?;
    let jobs = open.into_iter().filter_map(|(job, account)| agent_job(&job, account, &policy, &local_admin)).collect();
    state.metrics().agent_check_in();
    Ok(Json(proto::AgentCheckInResponse {
        device_id: device.id,
        poll_interval_seconds: policy.poll_interval.whole_seconds(),
        server_time: now,
        jobs,
    }))
}

/// What a check-in changes, from what the agent reports and what the server holds.
fn decide(ctx: &CheckInContext, nonce: String, reported: Option<i64>, now: time::OffsetDateTime) -> CheckInWrite {
    let (policy, admin) = (&ctx.policy, ctx.snapshot.admin.as_ref());
    // The agent recorded a pending version as set before it could confirm: confirm it now.
    let confirm = admin
        .zip(reported)
        .filter(|(a, v)| a.pending.contains(v))
        .map(|(a, v)| (a.account_id.clone(), v, policy.history));
    let rotate = if confirm.is_some() {
        None
    } else {
        let active = admin.and_then(|a| a.active);
        policy.rotation_due(active.map(|(_, created, expires)| (created, expires)), now).or_else(|| {
            // The device may hold a version the agent did not record, or one the server does
            // not know as current: rotate to a state both sides know.
            let disagrees = admin.is_some_and(|a| !a.pending.is_empty() || a.active.map(|(v, _, _)| v) != reported);
            disagrees.then_some(latchkey_core::JobCause::Reconcile)
        })
    };
    CheckInWrite {
        device_id: ctx.device.id.clone(),
        tenant_id: ctx.device.tenant_id.clone(),
        nonce,
        nonce_expires_at: SignedRequest::<()>::nonce_expiry(now),
        reported_version: reported,
        poll_interval_secs: policy.poll_interval.whole_seconds(),
        confirm,
        rotate,
        remove_support: ctx.snapshot.expired_support.clone(),
    }
}

/// What the local admin jobs among `jobs` ask of the agent; read only when there are some.
async fn local_admin_work(
    state: &AppState,
    jobs: &[(DeviceJob, Option<String>)],
) -> Result<HashMap<String, LocalAdminWork>, ApiError> {
    let ids: Vec<&str> = jobs.iter().filter(|(j, _)| j.kind.is_local_admin()).map(|(j, _)| j.id.as_str()).collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    state.store().local_admin_work(&ids).await.map_err(|e| ApiError::store("job", e))
}

/// The job as the agent gets it; `None` for a local admin job that ended since it was read.
fn agent_job(
    job: &DeviceJob,
    account: Option<String>,
    policy: &RotationPolicy,
    local_admin: &HashMap<String, LocalAdminWork>,
) -> Option<proto::AgentJob> {
    let password_policy = proto::PasswordPolicy {
        length: policy.length,
        lower: policy.classes.lower,
        upper: policy.classes.upper,
        digits: policy.classes.digits,
        symbols: policy.classes.symbols,
        passphrase_words: policy.passphrase_words,
    };
    let work = match job.kind {
        JobKind::RotatePassword => proto::AgentWork::RotatePassword { policy: password_policy },
        JobKind::CreateSupportAccount => proto::AgentWork::CreateSupportAccount { policy: password_policy },
        JobKind::RemoveSupportAccount => {
            proto::AgentWork::RemoveSupportAccount { username: account.unwrap_or_default() }
        }
        JobKind::GrantLocalAdmin | JobKind::RevokeLocalAdmin => match local_admin.get(&job.id)?.clone() {
            LocalAdminWork::Grant { username, grant_id, sealed_password, until } => {
                proto::AgentWork::GrantLocalAdmin { username, grant_id, sealed_password, until }
            }
            LocalAdminWork::Revoke { username } => proto::AgentWork::RevokeLocalAdmin { username },
        },
    };
    Some(proto::AgentJob { id: job.id.clone(), work })
}

fn parse_job_id(raw: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(raw).map(|u| u.to_string()).map_err(|_| ApiError::bad_param("job id is not a valid UUID"))
}

fn no_such_job() -> ApiError {
    ApiError::Client(ProblemCode::NotFound, "no open job with this id for this device".into())
}

/// A local account name an agent may manage: 1-32 of `[A-Za-z0-9._-]`, not starting with `-`.
fn valid_local_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && !name.starts_with('-')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !name.bytes().all(|b| b.is_ascii_digit())
}

/// Open the sealed password of a pending post: bound to this device and job, UTF-8, 1-256
/// bytes, no NUL, CR or LF (the device's account tools could not take it).
fn open_sealed(state: &AppState, device_id: &str, job_id: &str, sealed: &str) -> Result<Zeroizing<String>, ApiError> {
    if sealed.len() > 4 * latchkey_crypto::MAX_SEALED_LEN / 3 + 4 {
        return Err(ApiError::invalid("sealedPassword is larger than 64 KiB"));
    }
    let blob = agent_signed::base64_url(sealed).ok_or_else(|| ApiError::invalid("sealedPassword is not base64url"))?;
    let aad = proto::password_seal_aad(device_id, job_id);
    let plain = state.sealing().open(proto::PASSWORD_SEAL_INFO, &aad, &blob).map_err(|e| match e {
        latchkey_crypto::CryptoError::Malformed(_) => ApiError::invalid("sealedPassword is not a sealed blob"),
        _ => ApiError::invalid("sealedPassword does not open with the server's key for this device and job"),
    })?;
    let text = String::from_utf8(plain.to_vec()).map_err(|e| {
        let mut bytes = e.into_bytes();
        zeroize::Zeroize::zeroize(&mut bytes);
        ApiError::invalid("the sealed password is not UTF-8")
    })?;
    let text = Zeroizing::new(text);
    if text.is_empty() || text.len() > MAX_PASSWORD_BYTES || text.contains(['\0', '\r', '\n']) {
        return Err(ApiError::invalid("the sealed password must be 1-256 bytes without NUL, CR or LF"));
    }
    Ok(text)
}

/// Phase one: store the password the agent generated for a job, sealed to the server, as a
/// pending version. Only after this answer does the agent set it on the device.
#[utoipa::path(post, path = "/api/agent/v1/jobs/{job_id}/pending", tag = "agent", request_body = proto::AgentPending,
    params(("job_id" = String, Path, description = "job id")),
    responses((status = 200, body = proto::AgentPendingAck), (status = 400, body = proto::Problem),
        (status = 401, body = proto::Problem), (status = 404, body = proto::Problem), (status = 409, body = proto::Problem)))]
pub async fn post_pending(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    facts: RequestFacts,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<proto::AgentPendingAck>, ApiError> {
    let signed: SignedRequest<proto::AgentPending> =
        agent_signed::verify(&state, &method, &uri, &headers, facts, body).await?;
    let job_id = parse_job_id(&job_id)?;
    let device = signed.device.clone();
    if !valid_local_name(&signed.body.account) {
        return Err(ApiError::invalid("account must be 1-32 characters of A-Z, a-z, 0-9, '.', '_', '-'"));
    }
    let password = open_sealed(&state, &device.id, &job_id, &signed.body.sealed_password)?;
    let policy = state
        .store()
        .effective_policy(&device.tenant_id, &device.id)
        .await
        .map_err(|e| ApiError::store("device", e))?;
    let name = signed.body.account.clone();
    let job = state.store().agent_job(&device.id, &job_id).await.map_err(|e| match e {
        StoreError::NotFound => no_such_job(),
        e => ApiError::store("job", e),
    })?;
    if job.kind == JobKind::CreateSupportAccount && !is_support_account_name(&name) {
        return Err(ApiError::invalid("a support account is named ADM- and 8 upper-case hex digits"));
    }
    signed.spend_nonce(&state).await?;
    let keyring = state.keyring_handle();
    let tenant_id = device.tenant_id.clone();
    let seal = Box::new(move |account_id: &str| {
        vault::seal_fn(keyring, tenant_id, account_id.to_owned(), Some(password), None)
    });
    let template = signed.event(&state, Action::RotationPending, ObjectType::Account);
    let name_key = name.to_lowercase();
    let stored = state
        .store()
        .post_pending(
            &device.id,
            &job_id,
            (name, name_key),
            policy.support_lifetime,
            state.clock().now(),
            seal,
            template,
        )
        .await
        .map_err(|e| match e {
            StoreError::NotFound => no_such_job(),
            e => ApiError::store("job", e),
        })?;
    latchkey_core::crashpoint("server-after-pending");
    Ok(Json(proto::AgentPendingAck { version: stored.version, expires_at: stored.expires_at }))
}

/// Phase two: the agent set the pending version on the device (or removed the support
/// account); the server makes it active and retires the older ones.
#[utoipa::path(post, path = "/api/agent/v1/jobs/{job_id}/confirm", tag = "agent", request_body = proto::AgentConfirm,
    params(("job_id" = String, Path, description = "job id")),
    responses((status = 200, body = proto::AgentJobDone), (status = 400, body = proto::Problem),
        (status = 401, body = proto::Problem), (status = 404, body = proto::Problem), (status = 409, body = proto::Problem)))]
pub async fn confirm_job(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    facts: RequestFacts,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<proto::AgentJobDone>, ApiError> {
    let signed: SignedRequest<proto::AgentConfirm> =
        agent_signed::verify(&state, &method, &uri, &headers, facts, body).await?;
    let job_id = parse_job_id(&job_id)?;
    if signed.body.version.is_some_and(|v| v < 1) {
        return Err(ApiError::invalid("version must be at least 1"));
    }
    let device = signed.device.clone();
    let policy = state
        .store()
        .effective_policy(&device.tenant_id, &device.id)
        .await
        .map_err(|e| ApiError::store("device", e))?;
    signed.spend_nonce(&state).await?;
    let template = signed.event(&state, Action::RotationConfirm, ObjectType::Account);
    let job = state
        .store()
        .confirm_job(&device.id, &job_id, signed.body.version, policy.history, state.clock().now(), template)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::Client(
                ProblemCode::NotFound,
                "no open job with this id for this device, or that version was never posted for it".into(),
            ),
            e => ApiError::store("job", e),
        })?;
    latchkey_core::crashpoint("server-after-confirm");
    Ok(Json(proto::AgentJobDone { id: job.id, state: job.state.as_str().to_owned() }))
}

/// The agent could not do a job: it is recorded as failed (and audited). A rotation that is
/// still due is queued again at the next check-in.
#[utoipa::path(post, path = "/api/agent/v1/jobs/{job_id}/fail", tag = "agent", request_body = proto::AgentFailure,
    params(("job_id" = String, Path, description = "job id")),
    responses((status = 200, body = proto::AgentJobDone), (status = 400, body = proto::Problem),
        (status = 401, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn fail_job(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    facts: RequestFacts,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<proto::AgentJobDone>, ApiError> {
    let signed: SignedRequest<proto::AgentFailure> =
        agent_signed::verify(&state, &method, &uri, &headers, facts, body).await?;
    let job_id = parse_job_id(&job_id)?;
    let error = signed.body.error.trim().to_owned();
    if error.is_empty() || error.chars().count() > 500 {
        return Err(ApiError::invalid("error must be 1-500 characters"));
    }
    signed.spend_nonce(&state).await?;
    let template = signed.event(&state, Action::RotationFail, ObjectType::DeviceJob);
    let job = state.store().fail_job(&signed.device.id, &job_id, error, state.clock().now(), template).await.map_err(
        |e| match e {
            StoreError::NotFound => no_such_job(),
            e => ApiError::store("job", e),
        },
    )?;
    Ok(Json(proto::AgentJobDone { id: job.id, state: job.state.as_str().to_owned() }))
}
