//! The RealmJoin-compatible LAPS API: `POST /api/external/LocalAdmin/RequestSupportAccount`
//! and `…/RetrieveSupportAccountPassword`, both with `?deviceID=<GUID>` and no body,
//! authenticated with HTTP Basic (an API client's id and secret; the client's tenant scopes
//! every device). Answers and errors have the peer's shapes: ASP.NET Core problem bodies for
//! 400 and 404, an empty 401 with a `WWW-Authenticate` challenge.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use latchkey_core::model::ApiClient;
use latchkey_core::{Action, NewAuditEvent, ObjectType};
use latchkey_proto as proto;
use latchkey_store::StoreError;
use zeroize::Zeroizing;

use super::credentials::API_CLIENT_LABEL;
use super::support_account;
use crate::error::ApiError;
use crate::extract::RequestFacts;
use crate::state::AppState;

/// The query parameter naming the device (matched without regard to case, as ASP.NET does).
const DEVICE_PARAM: &str = "deviceID";
/// The Basic challenge of a 401.
const CHALLENGE: &str = "Basic realm=\"latchkey\"";
/// ASP.NET Core's problem content type.
const PROBLEM_CONTENT_TYPE: &str = "application/problem+json; charset=utf-8";
/// Longest `Authorization` value considered.
const MAX_AUTHORIZATION: usize = 1024;

/// Why a request is refused.
enum Refusal {
    /// Missing or wrong Basic credentials.
    Unauthorized,
    /// The `deviceID` parameter is missing or malformed; the message says which.
    InvalidDevice(&'static str),
    /// Unknown device, another tenant's device, or no live support account.
    NotFound,
    /// A failure on the server side.
    Api(ApiError),
}

impl Refusal {
    fn into_response(self, trace_id: String) -> Response {
        match self {
            Refusal::Unauthorized => {
                let mut resp = StatusCode::UNAUTHORIZED.into_response();
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
                resp
            }
            Refusal::InvalidDevice(message) => problem(
                StatusCode::BAD_REQUEST,
                &proto::AspNetProblem::validation(trace_id, DEVICE_PARAM, vec![message.to_owned()]),
            ),
            Refusal::NotFound => problem(StatusCode::NOT_FOUND, &proto::AspNetProblem::not_found(trace_id)),
            Refusal::Api(e) => e.into_response(),
        }
    }
}

fn problem(status: StatusCode, body: &proto::AspNetProblem) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = (status, bytes).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
    resp
}

/// A W3C trace id (`00-<32 hex>-<16 hex>-00`) built on the request id when it is a UUID, so
/// the answer can be matched with the server's log.
fn trace_id(facts: &RequestFacts) -> String {
    let trace =
        facts.request_id.as_deref().and_then(|r| uuid::Uuid::parse_str(r).ok()).unwrap_or_else(uuid::Uuid::new_v4);
    let span = uuid::Uuid::new_v4().simple().to_string();
    format!("00-{}-{}-00", trace.simple(), &span[..16])
}

/// The API client named by HTTP Basic credentials. The keyed hash of the secret is computed
/// and looked up whether or not the client id is well-formed or known, so refusals take the
/// same work.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<ApiClient, Refusal> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= MAX_AUTHORIZATION)
        .ok_or(Refusal::Unauthorized)?;
    let (scheme, encoded) = value.trim().split_once(' ').ok_or(Refusal::Unauthorized)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Refusal::Unauthorized);
    }
    let decoded = Zeroizing::new(
        base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| Refusal::Unauthorized)?,
    );
    let colon = decoded.iter().position(|b| *b == b':').ok_or(Refusal::Unauthorized)?;
    let (id, secret) = (&decoded[..colon], &decoded[colon + 1..]);
    let hash = state.keyring().keyed_hash(API_CLIENT_LABEL, secret);
    let id = std::str::from_utf8(id)
        .ok()
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
        .map(|u| u.to_string())
        .unwrap_or_default();
    match state.store().api_client_by_secret(&id, &hash).await {
        Ok(client) => Ok(client),
        Err(StoreError::NotFound) => Err(Refusal::Unauthorized),
        Err(e) => Err(Refusal::Api(ApiError::store("API client", e))),
    }
}

/// The `deviceID` query parameter as a canonical UUID.
fn device_param(query: Result<Query<Vec<(String, String)>>, QueryRejection>) -> Result<String, Refusal> {
    let Query(pairs) = query.map_err(|_| Refusal::InvalidDevice("The query string is not valid."))?;
    let mut values = pairs.iter().filter(|(k, _)| k.eq_ignore_ascii_case(DEVICE_PARAM)).map(|(_, v)| v.trim());
    let value =
        values.next().filter(|v| !v.is_empty()).ok_or(Refusal::InvalidDevice("The deviceID field is required."))?;
    if values.next().is_some() {
        return Err(Refusal::InvalidDevice("The deviceID field must be given once."));
    }
    uuid::Uuid::parse_str(value)
        .map(|u| u.to_string())
        .map_err(|_| Refusal::InvalidDevice("The value is not valid for deviceID: expected a GUID."))
}

/// An audit event by this API client, with the request's facts.
fn event(
    state: &AppState,
    client: &ApiClient,
    facts: &RequestFacts,
    action: Action,
    object: ObjectType,
) -> NewAuditEvent {
    facts
        .event(state.clock().now(), format!("api-client:{}", client.id), action, object)
        .tenant(client.tenant_id.clone())
}

/// `RequestSupportAccount`: queue a support account on the device (nothing new while one is
/// queued or live) and answer the estimated wait.
pub async fn realmjoin_request_support_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    facts: RequestFacts,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let trace = trace_id(&facts);
    match request(&state, &headers, &facts, query).await {
        Ok(answer) => Json(answer).into_response(),
        Err(refusal) => refusal.into_response(trace),
    }
}

async fn request(
    state: &AppState,
    headers: &HeaderMap,
    facts: &RequestFacts,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<proto::RealmJoinSupportRequested, Refusal> {
    let client = authenticate(state, headers).await?;
    let device_id = device_param(query)?;
    let device = state.store().device(&client.tenant_id, &device_id).await.map_err(|e| match e {
        StoreError::NotFound => Refusal::NotFound,
        e => Refusal::Api(ApiError::store("device", e)),
    })?;
    let event = event(state, &client, facts, Action::SupportAccountRequest, ObjectType::Device);
    let (_, wait) = support_account::request(state, &device, event).await.map_err(|e| match e {
        StoreError::NotFound => Refusal::NotFound,
        e => Refusal::Api(ApiError::store("device", e)),
    })?;
    Ok(proto::RealmJoinSupportRequested { estimated_wait_time: wait.map(|w| w.to_string()) })
}

/// `RetrieveSupportAccountPassword`: the live support account through the audited read, or
/// 404 while there is none.
pub async fn realmjoin_retrieve_support_account_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    facts: RequestFacts,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let trace = trace_id(&facts);
    match retrieve(&state, &headers, &facts, query).await {
        Ok(answer) => Json(answer).into_response(),
        Err(refusal) => refusal.into_response(trace),
    }
}

async fn retrieve(
    state: &AppState,
    headers: &HeaderMap,
    facts: &RequestFacts,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<proto::RealmJoinSupportPassword, Refusal> {
    let client = authenticate(state, headers).await?;
    let device_id = device_param(query)?;
    let event = event(state, &client, facts, Action::SecretRead, ObjectType::Account);
    let live = support_account::read_live(state, &client.tenant_id, &device_id, event)
        .await
        .map_err(|e| match e {
            StoreError::Seal(why) => Refusal::Api(ApiError::Internal(format!(
                "support account of device {device_id} cannot be opened: {why}"
            ))),
            e => Refusal::Api(ApiError::store("support account", e)),
        })?
        .ok_or(Refusal::NotFound)?;
    Ok(proto::RealmJoinSupportPassword {
        password: live.password.as_str().to_owned(),
        username: live.username.clone(),
        account_expiration_date: live.expires_at,
    })
}
