//! Signed agent requests: every request after enrollment carries the device id, a timestamp,
//! a single-use nonce and an Ed25519 signature over all of them and the body.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use latchkey_core::model::Device;
use latchkey_core::{Action, DeviceId, NewAuditEvent, ObjectType};
use latchkey_crypto::DeviceVerifyingKey;
use latchkey_proto::ProblemCode;
use latchkey_store::StoreError;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::extract::RequestFacts;
use crate::state::AppState;

/// How far a signed request's timestamp may be from the server's clock.
pub(crate) const MAX_SKEW_SECS: i64 = 300;

pub(crate) fn unauthenticated(why: &str) -> ApiError {
    ApiError::Client(ProblemCode::Unauthenticated, why.to_owned())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| unauthenticated(&format!("the {name} header is required on agent requests")))
}

/// A request whose signature verified and whose body parsed; its nonce is not yet spent.
pub(crate) struct SignedRequest<T> {
    pub device: Device,
    pub nonce: String,
    pub body: T,
    pub facts: RequestFacts,
}

impl<T> SignedRequest<T> {
    /// When the nonce can no longer be replayed (its timestamp is out of the window).
    pub fn nonce_expiry(now: OffsetDateTime) -> OffsetDateTime {
        now + time::Duration::seconds(2 * MAX_SKEW_SECS)
    }

    /// The audit event template of this agent's actions.
    pub fn event(&self, state: &AppState, action: Action, object_type: ObjectType) -> NewAuditEvent {
        self.facts
            .event(state.clock().now(), format!("agent:{}", self.device.id), action, object_type)
            .tenant(self.device.tenant_id.clone())
    }

    /// Spend the nonce (a replay is refused). Called after the body is validated, so a
    /// refused request changes nothing.
    pub async fn spend_nonce(&self, state: &AppState) -> Result<(), ApiError> {
        let now = state.clock().now();
        match state.store().spend_agent_nonce(&self.device.id, &self.nonce, now, Self::nonce_expiry(now)).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict(_)) => Err(replayed()),
            Err(e) => Err(ApiError::store("device", e)),
        }
    }
}

pub(crate) fn replayed() -> ApiError {
    unauthenticated("replayed request: the nonce was used before")
}

/// A signed agent request whose headers are well formed and whose timestamp is within
/// 5 minutes; the signature is not checked yet.
pub(crate) struct Unverified {
    device_id: String,
    timestamp: i64,
    nonce: String,
    signature: Vec<u8>,
    body: Bytes,
}

impl Unverified {
    /// The device the request claims to come from.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// Check the signature over the request with `device`'s key and parse the JSON body.
    /// Nothing is written.
    pub fn verify<T: DeserializeOwned>(
        self,
        device: Device,
        method: &Method,
        uri: &Uri,
        facts: RequestFacts,
    ) -> Result<SignedRequest<T>, ApiError> {
        let key = device.agent_public_key.clone().unwrap_or_default();
        let (nonce, body) = self.open(&key, method, uri)?;
        Ok(SignedRequest { device, nonce, body, facts })
    }

    /// Check the signature over the request with the device's public key (base64url) and
    /// parse the JSON body; returns the nonce and the body. Nothing is written.
    pub fn open<T: DeserializeOwned>(&self, key: &str, method: &Method, uri: &Uri) -> Result<(String, T), ApiError> {
        let key = DeviceVerifyingKey::from_base64url(key)
            .map_err(|_| ApiError::Internal(format!("device {} has an unreadable public key", self.device_id)))?;
        self.open_with(Some(&key), method, uri)
    }

    /// [`Unverified::open`] with the device's key already parsed (`None`: the stored key is
    /// unreadable).
    pub fn open_with<T: DeserializeOwned>(
        &self,
        key: Option<&DeviceVerifyingKey>,
        method: &Method,
        uri: &Uri,
    ) -> Result<(String, T), ApiError> {
        let key =
            key.ok_or_else(|| ApiError::Internal(format!("device {} has an unreadable public key", self.device_id)))?;
        let path = uri.path_and_query().map_or_else(|| uri.path(), |pq| pq.as_str());
        let signed = latchkey_crypto::request_signing_bytes(
            method.as_str(),
            path,
            &self.device_id,
            self.timestamp,
            &self.nonce,
            &self.body,
        );
        if !key.verify(&signed, &self.signature) {
            return Err(unauthenticated("the signature does not verify"));
        }
        let body: T = serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::Client(ProblemCode::MalformedBody, crate::extract::redact_values(&e.to_string())))?;
        Ok((self.nonce.clone(), body))
    }
}

/// Check a signed agent request's headers and timestamp (within 5 minutes of the server's
/// clock). Nothing is read or written.
pub(crate) fn unverified(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Unverified, ApiError> {
    use latchkey_proto::agent_headers as h;
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::Client(ProblemCode::PayloadTooLarge, "the request body is larger than the limit".into())
        } else {
            ApiError::Client(ProblemCode::MalformedBody, r.body_text())
        }
    })?;
    let device_id =
        DeviceId::parse(header(headers, h::DEVICE)?).map_err(|_| unauthenticated("the device id is not a UUID"))?;
    let timestamp: i64 =
        header(headers, h::TIMESTAMP)?.parse().map_err(|_| unauthenticated("the timestamp is not Unix seconds"))?;
    let nonce = header(headers, h::NONCE)?;
    if !(16..=64).contains(&nonce.len()) || !nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(unauthenticated("the nonce must be 16-64 characters of A-Z, a-z, 0-9, - and _"));
    }
    let signature =
        base64_url(header(headers, h::SIGNATURE)?).ok_or_else(|| unauthenticated("the signature is not base64url"))?;
    let now = state.clock().now();
    if (now.unix_timestamp() - timestamp).abs() > MAX_SKEW_SECS {
        return Err(unauthenticated("the request timestamp is more than 5 minutes off the server's clock"));
    }
    Ok(Unverified { device_id: device_id.to_string(), timestamp, nonce: nonce.to_owned(), signature, body })
}

/// The answer to a request from a device that is not enrolled: the same as a bad signature,
/// so an unknown device id reveals nothing.
pub(crate) fn unknown_device(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => unauthenticated("the signature does not verify"),
        e => ApiError::store("device", e),
    }
}

/// Check a signed agent request and parse its JSON body: the device is enrolled, the
/// timestamp is within 5 minutes, the signature over the request verifies with the device's
/// key. Nothing is written.
pub(crate) async fn verify<T: DeserializeOwned>(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    facts: RequestFacts,
    body: Result<Bytes, BytesRejection>,
) -> Result<SignedRequest<T>, ApiError> {
    let request = unverified(state, headers, body)?;
    let device = state.store().device_for_agent(request.device_id()).await.map_err(unknown_device)?;
    request.verify(device, method, uri, facts)
}

pub(crate) fn base64_url(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok()
}
