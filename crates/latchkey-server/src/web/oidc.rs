//! Single sign-on to the web UI with OpenID Connect: the authorization code flow with PKCE
//! (S256), state and nonce, against the providers of `[[web.oidc]]`.
//!
//! `GET /sign-in/oidc/{id}` sends the browser to the provider; what the callback needs to check
//! the answer (state, nonce, PKCE verifier, where to go next) travels in a short-lived HttpOnly
//! cookie MAC'ed with the server key. `GET /sign-in/oidc/callback` checks the state, exchanges
//! the code, verifies the ID token (signature, issuer, audience, expiry, nonce, access token
//! hash) and opens a session for the person the provider names, creating the user on first
//! sign-in. Every refusal shows an error page, changes nothing and is audited for the
//! provider's tenant.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_core::{Action, DisplayName, ObjectType, Outcome};
use latchkey_store::{NewSession, OidcSignIn, SignInMethod, StoreError};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClientAuthMethod, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreRevocableToken, CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenClaims, IdTokenFields, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, Scope, StandardErrorResponse, StandardTokenResponse,
    TokenResponse,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::auth::{SESSION_TOKEN_PREFIX, session_token_hash, user_actor};
use crate::extract::RequestFacts;
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::oidc_config::OidcProvider;
use crate::web::page::html;
use crate::web::session::{is_local_path, session_cookie};

/// The cookie that carries a sign-in in progress.
const PENDING_COOKIE: &str = "lk_oidc";
/// Where that cookie is sent: the start and the callback.
const PENDING_PATH: &str = "/sign-in/oidc";
/// How long a person may take at the provider.
const PENDING_LIFETIME: time::Duration = time::Duration::minutes(10);
/// The label of the pending cookie's MAC.
const PENDING_MAC_LABEL: &str = "web-oidc-pending";
/// How long discovered provider metadata (endpoints, signing keys) is used.
const DISCOVERY_TTL: Duration = Duration::from_secs(300);
/// Time limit of each request to a provider.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// ID token claims beyond the standard ones (the groups claim, or a custom user name claim).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OtherClaims {
    #[serde(flatten)]
    claims: HashMap<String, serde_json::Value>,
}

impl AdditionalClaims for OtherClaims {}

type OidcIdTokenFields = IdTokenFields<
    OtherClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type OidcTokenResponse = StandardTokenResponse<OidcIdTokenFields, CoreTokenType>;
type OidcClaims = IdTokenClaims<OtherClaims, CoreGenderClaim>;

/// A client of one provider, built from its discovery document.
type OidcClient = openidconnect::Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    OidcTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Providers' discovery documents and signing keys, fetched on first use and for a few
/// minutes after, and the HTTP client that fetches them.
#[derive(Default)]
pub struct OidcDiscovery {
    documents: RwLock<HashMap<String, (Instant, CoreProviderMetadata)>>,
    http: OnceLock<openidconnect::reqwest::Client>,
}

impl OidcDiscovery {
    /// The HTTP client for providers: no redirects (they would open the server to SSRF).
    fn http(&self) -> Result<&openidconnect::reqwest::Client, String> {
        if let Some(c) = self.http.get() {
            return Ok(c);
        }
        let client = openidconnect::reqwest::Client::builder()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(self.http.get_or_init(|| client))
    }

    /// The provider's metadata, from the cache while fresh.
    async fn metadata(&self, provider: &OidcProvider) -> Result<CoreProviderMetadata, String> {
        {
            let cache = self.documents.read().unwrap_or_else(|e| e.into_inner());
            if let Some((at, doc)) = cache.get(&provider.id)
                && at.elapsed() < DISCOVERY_TTL
            {
                return Ok(doc.clone());
            }
        }
        let doc = CoreProviderMetadata::discover_async(provider.issuer.clone(), self.http()?)
            .await
            .map_err(|e| format!("discovery of {}: {}", provider.issuer.as_str(), error_chain(&e)))?;
        self.documents
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(provider.id.clone(), (Instant::now(), doc.clone()));
        Ok(doc)
    }

    /// A client of the provider.
    async fn client(&self, provider: &OidcProvider) -> Result<OidcClient, String> {
        let doc = self.metadata(provider).await?;
        // Client secret in the request body only for providers that take nothing else.
        let post_only = doc.token_endpoint_auth_methods_supported().is_some_and(|m| {
            m.contains(&CoreClientAuthMethod::ClientSecretPost) && !m.contains(&CoreClientAuthMethod::ClientSecretBasic)
        });
        let client = OidcClient::from_provider_metadata(
            doc,
            ClientId::new(provider.client_id.clone()),
            Some(ClientSecret::new(provider.client_secret.expose().to_owned())),
        )
        .set_redirect_uri(provider.redirect_url.clone());
        Ok(if post_only { client.set_auth_type(AuthType::RequestBody) } else { client })
    }
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// The single sign-on buttons of the sign-in page.
pub fn links(state: &AppState) -> Vec<crate::web::sign_in::ProviderLink> {
    state
        .config()
        .web
        .oidc
        .iter()
        .map(|p| crate::web::sign_in::ProviderLink { id: p.id.clone(), label: p.label.clone() })
        .collect()
}

fn provider<'a>(state: &'a AppState, id: &str) -> Option<&'a OidcProvider> {
    state.config().web.oidc.iter().find(|p| p.id == id)
}

// ---------------------------------------------------------------------------------------------
// The pending sign-in cookie

/// What the callback needs to check the provider's answer.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    /// The provider's id.
    provider: String,
    /// The `state` the provider must send back.
    state: String,
    nonce: String,
    /// The PKCE code verifier.
    verifier: String,
    /// Where to go once signed in (a path of this site).
    next: String,
    /// Unix seconds after which the sign-in is void.
    expires: i64,
}

impl Pending {
    /// The cookie value: the fields, then a MAC of them with the server key.
    fn seal(&self, state: &AppState) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default());
        let mac = state.keyring().keyed_hash(PENDING_MAC_LABEL, body.as_bytes());
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    /// The fields of a cookie value whose MAC is right.
    fn open(state: &AppState, value: &str) -> Option<Pending> {
        let (body, mac) = value.split_once('.')?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        let expected = state.keyring().keyed_hash(PENDING_MAC_LABEL, body.as_bytes());
        if !latchkey_crypto::ct_eq(&expected, &mac) {
            return None;
        }
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()
    }
}

/// The pending cookie: HttpOnly, SameSite=Lax (it must come back with the provider's redirect),
/// only for the sign-in paths, ten minutes.
fn pending_cookie(state: &AppState, value: String) -> Cookie<'static> {
    let mut c = Cookie::new(PENDING_COOKIE, value);
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_path(PENDING_PATH);
    c.set_secure(state.config().tls.is_some());
    c.set_max_age(PENDING_LIFETIME);
    c
}

/// The cookie that removes the pending cookie (each sign-in attempt is used once).
fn removed_pending_cookie(state: &AppState) -> Cookie<'static> {
    let mut c = pending_cookie(state, String::new());
    c.make_removal();
    c
}

// ---------------------------------------------------------------------------------------------
// GET /sign-in/oidc/{id}

/// The query of the start: where to go once signed in.
#[derive(Debug, Default, Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

/// `GET /sign-in/oidc/{id}`: off to the provider.
pub async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<StartQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    let provider = provider(&state, &id).ok_or_else(|| WebError::not_found("single sign-on provider"))?;
    let next = query.ok().and_then(|Query(q)| q.next).filter(|n| is_local_path(n)).unwrap_or_else(|| "/".into());
    let client = state.web().oidc().client(provider).await.map_err(|cause| unreachable_provider(provider, &cause))?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scopes(provider.scopes.iter().filter(|s| *s != "openid").cloned().map(Scope::new))
        .set_pkce_challenge(challenge)
        .url();
    let pending = Pending {
        provider: provider.id.clone(),
        state: csrf.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
        next,
        expires: (state.clock().now() + PENDING_LIFETIME).unix_timestamp(),
    };
    let jar = CookieJar::new().add(pending_cookie(&state, pending.seal(&state)));
    Ok((jar, Redirect::to(url.as_str())).into_response())
}

/// The page for a provider that could not be reached.
fn unreachable_provider(provider: &OidcProvider, cause: &str) -> WebError {
    tracing::error!(provider = %provider.id, %cause, "single sign-on provider unreachable");
    WebError::new(
        StatusCode::BAD_GATEWAY,
        format!("{} did not answer; try again, or sign in with a password.", provider.label),
    )
}

// ---------------------------------------------------------------------------------------------
// GET /sign-in/oidc/callback

/// The provider's answer.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Why a sign-in through a provider was refused.
#[derive(Debug)]
enum Refusal {
    /// The provider said no (`error=` in the callback).
    ProviderError(String),
    /// The pending sign-in is older than ten minutes.
    Expired,
    /// The `state` is not the one sent.
    StateMismatch,
    /// No code in the callback.
    MissingCode,
    /// The provider did not take the code (or could not be reached).
    Exchange(String),
    /// The ID token is missing, or its signature or claims are wrong.
    IdToken(String),
    /// The ID token has no usable user name claim.
    MissingClaim,
    /// The user is disabled.
    Disabled,
}

impl Refusal {
    fn reason(&self) -> &'static str {
        match self {
            Refusal::ProviderError(_) => "provider_error",
            Refusal::Expired => "expired",
            Refusal::StateMismatch => "state_mismatch",
            Refusal::MissingCode => "missing_code",
            Refusal::Exchange(_) => "exchange_failed",
            Refusal::IdToken(_) => "id_token_invalid",
            Refusal::MissingClaim => "missing_claim",
            Refusal::Disabled => "disabled",
        }
    }

    /// Denied: the answer was wrong; failed: the provider could not be used.
    fn outcome(&self) -> Outcome {
        match self {
            Refusal::Exchange(_) => Outcome::Failed,
            _ => Outcome::Denied,
        }
    }

    fn page(&self, provider: &OidcProvider) -> WebError {
        let label = &provider.label;
        match self {
            Refusal::ProviderError(code) => {
                WebError::forbidden(format!("{label} did not sign you in ({code}). Start again from the sign-in page."))
            }
            Refusal::Expired => WebError::bad_request("The single sign-on took longer than ten minutes. Start again."),
            Refusal::StateMismatch | Refusal::MissingCode => WebError::bad_request(
                "This single sign-on answer does not belong to the sign-in started in this browser. Start again.",
            ),
            Refusal::Exchange(_) => WebError::new(
                StatusCode::BAD_GATEWAY,
                format!("{label} did not confirm the sign-in. Start again from the sign-in page."),
            ),
            Refusal::IdToken(_) => {
                WebError::forbidden(format!("The identity from {label} could not be verified. Start again."))
            }
            Refusal::MissingClaim => WebError::forbidden(format!(
                "{label} did not send a user name ({}). Ask an administrator to check the single sign-on settings.",
                provider.username_claim
            )),
            Refusal::Disabled => WebError::forbidden("This user is disabled."),
        }
    }
}

/// `GET /sign-in/oidc/callback`: the provider's answer.
pub async fn callback(
    State(state): State<AppState>,
    facts: RequestFacts,
    jar: CookieJar,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let removed = CookieJar::new().add(removed_pending_cookie(&state));
    let pending = jar.get(PENDING_COOKIE).and_then(|c| Pending::open(&state, c.value()));
    let Some((pending, provider)) = pending.and_then(|p| provider(&state, &p.provider).map(|prov| (p, prov))) else {
        let page = WebError::bad_request(
            "No single sign-on was started in this browser, or it was started too long ago. Start again from the sign-in page.",
        );
        return (removed, page).into_response();
    };
    let query = query.map(|Query(q)| q).unwrap_or_default();
    match finish(&state, &facts, provider, pending, query).await {
        Ok(resp) => resp,
        Err((refusal, actor)) => {
            match &refusal {
                Refusal::Exchange(cause) | Refusal::IdToken(cause) => {
                    tracing::warn!(provider = %provider.id, reason = refusal.reason(), %cause, "single sign-on refused");
                }
                _ => tracing::info!(provider = %provider.id, reason = refusal.reason(), "single sign-on refused"),
            }
            if let Err(e) = audit_refusal(&state, &facts, provider, &refusal, actor).await {
                return (removed, e).into_response();
            }
            (removed, refusal.page(provider)).into_response()
        }
    }
}

/// Record a refused sign-in for the provider's tenant.
async fn audit_refusal(
    state: &AppState,
    facts: &RequestFacts,
    provider: &OidcProvider,
    refusal: &Refusal,
    actor: Option<String>,
) -> Result<(), WebError> {
    let tenant = match state.tenant_by_slug(&provider.tenant).await {
        Ok(t) => t,
        Err(StoreError::NotFound) => return Ok(()),
        Err(e) => return Err(WebError::from_store("tenant", e)),
    };
    let mut details = serde_json::json!({ "reason": refusal.reason(), "method": "oidc", "provider": provider.id });
    if let Refusal::ProviderError(code) = refusal {
        details["error"] = serde_json::Value::String(code.clone());
    }
    let event = facts
        .event(
            state.clock().now(),
            actor.unwrap_or_else(|| format!("oidc:{}", provider.id)),
            Action::SignIn,
            ObjectType::Session,
        )
        .tenant(tenant.id)
        .outcome(refusal.outcome())
        .details(&details);
    state.store().append_audit(vec![event]).await.map_err(|e| WebError::from_store("audit", e))
}

/// A refusal and the actor to audit it as, when the person is known.
type Refused = (Refusal, Option<String>);

/// Check the answer, verify the ID token and open the session.
async fn finish(
    state: &AppState,
    facts: &RequestFacts,
    provider: &OidcProvider,
    pending: Pending,
    query: CallbackQuery,
) -> Result<Response, Refused> {
    let now = state.clock().now();
    if now.unix_timestamp() > pending.expires {
        return Err((Refusal::Expired, None));
    }
    let state_ok =
        query.state.as_deref().is_some_and(|s| latchkey_crypto::ct_eq(s.as_bytes(), pending.state.as_bytes()));
    if let Some(error) = query.error {
        // The provider's error code, only if the answer is the one this browser waits for.
        let code: String = error.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect();
        return Err((if state_ok { Refusal::ProviderError(code) } else { Refusal::StateMismatch }, None));
    }
    if !state_ok {
        return Err((Refusal::StateMismatch, None));
    }
    let code = query.code.filter(|c| !c.is_empty()).ok_or((Refusal::MissingCode, None))?;

    let discovery = state.web().oidc();
    let client = discovery.client(provider).await.map_err(|e| (Refusal::Exchange(e), None))?;
    let http = discovery.http().map_err(|e| (Refusal::Exchange(e), None))?;
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| (Refusal::Exchange(e.to_string()), None))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
        .request_async(http)
        .await
        .map_err(|e| (Refusal::Exchange(error_chain(&e)), None))?;
    let claims = verified_claims(&client, &token, pending.nonce).map_err(|e| (Refusal::IdToken(e), None))?;

    let name = claim_text(&claims, &provider.username_claim)
        .and_then(|raw| DisplayName::parse("user name", &raw).ok())
        .ok_or((Refusal::MissingClaim, None))?;
    let key = name.key();
    let actor = user_actor(&key);
    let roles = provider.roles.is_set().then(|| provider.roles.roles(&groups(&claims, &provider.groups_claim)));
    let who = OidcSignIn {
        name: name.as_str().to_owned(),
        name_key: key,
        display_name: claim_text(&claims, "name").filter(|n| n != name.as_str()),
        email: claim_text(&claims, "email").filter(|e| e.contains('@') && e.len() <= 320),
        roles,
    };
    open_session(state, facts, provider, who, &actor, &pending.next).await.map_err(|r| (r, Some(actor)))
}

/// The ID token's claims once its signature, issuer, audience, expiry, nonce and access token
/// hash are checked.
fn verified_claims(client: &OidcClient, token: &OidcTokenResponse, nonce: String) -> Result<OidcClaims, String> {
    let id_token = token.id_token().ok_or("the token response has no ID token")?;
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, &Nonce::new(nonce)).map_err(|e| error_chain(&e))?;
    if let Some(expected) = claims.access_token_hash() {
        let alg = id_token.signing_alg().map_err(|e| error_chain(&e))?;
        let key = id_token.signing_key(&verifier).map_err(|e| error_chain(&e))?;
        let actual = AccessTokenHash::from_token(token.access_token(), alg, key).map_err(|e| error_chain(&e))?;
        if actual != *expected {
            return Err("the access token hash (at_hash) does not match".into());
        }
    }
    Ok(claims.clone())
}

/// A claim as text: the standard ones by name, others from the token's extra claims.
fn claim_text(claims: &OidcClaims, name: &str) -> Option<String> {
    let text = match name {
        "sub" => Some(claims.subject().as_str().to_owned()),
        "preferred_username" => claims.preferred_username().map(|u| u.as_str().to_owned()),
        "email" => claims.email().map(|e| e.as_str().to_owned()),
        "name" => claims.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_owned()),
        "nickname" => claims.nickname().and_then(|n| n.get(None)).map(|n| n.as_str().to_owned()),
        other => match claims.additional_claims().claims.get(other) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            _ => None,
        },
    };
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

/// The groups in the groups claim (a list of names, or one name).
fn groups(claims: &OidcClaims, claim: &str) -> Vec<String> {
    match claims.additional_claims().claims.get(claim) {
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        Some(serde_json::Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

/// Open the session (creating the user on first sign-in), set its cookie and continue.
async fn open_session(
    state: &AppState,
    facts: &RequestFacts,
    provider: &OidcProvider,
    who: OidcSignIn,
    actor: &str,
    next: &str,
) -> Result<Response, Refusal> {
    let now = state.clock().now();
    let tenant = match state.tenant_by_slug(&provider.tenant).await {
        Ok(t) => t,
        Err(e) => {
            let e = WebError::from_store("tenant", e);
            return Ok(e.into_response());
        }
    };
    let token = latchkey_crypto::generate_token(SESSION_TOKEN_PREFIX);
    let lifetime = time::Duration::try_from(state.config().sign_in.session_lifetime).unwrap_or(time::Duration::HOUR);
    let session = NewSession {
        id: uuid::Uuid::new_v4().to_string(),
        tenant_id: tenant.id.clone(),
        user_id: uuid::Uuid::new_v4().to_string(),
        token_hash: session_token_hash(state, token.expose_secret()),
        method: SignInMethod::Oidc,
        created_at: now,
        expires_at: now + lifetime,
    };
    let sign_in = facts.event(now, actor.to_owned(), Action::SignIn, ObjectType::Session).tenant(tenant.id.clone());
    let created = facts
        .event(now, format!("oidc:{}", provider.id), Action::UserCreate, ObjectType::User)
        .tenant(tenant.id.clone())
        .details(&serde_json::json!({ "name": who.name, "source": "oidc", "provider": provider.id }));
    match state.store().open_oidc_session(who, session, sign_in, created).await {
        Ok(_) => {}
        Err(StoreError::NotFound) => return Err(Refusal::Disabled),
        Err(e) => return Ok(WebError::from_store("session", e).into_response()),
    }
    let jar = CookieJar::new()
        .add(session_cookie(state, token.expose_secret().to_owned()))
        .add(removed_pending_cookie(state));
    let next = if is_local_path(next) { next } else { "/" };
    Ok((jar, html(&ContinuePage { next: refresh_target(next) })).into_response())
}

/// The page that continues to `next` once signed in. A redirect would not do: the browser
/// arrives from the provider's site, and a SameSite=Strict session cookie is not sent along a
/// chain of redirects that started on another site; a refresh from this page is same-site.
#[derive(Template)]
#[template(path = "oidc_continue.html")]
struct ContinuePage {
    next: String,
}

/// `next` with every character that could end the refresh URL early percent-encoded.
fn refresh_target(next: &str) -> String {
    let mut out = String::with_capacity(next.len());
    for b in next.bytes() {
        if b.is_ascii_alphanumeric() || b"/?=&%._~+-".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_targets_stay_one_url() {
        assert_eq!(refresh_target("/devices?q=a+b&page=2"), "/devices?q=a+b&page=2");
        assert_eq!(refresh_target("/x;url='//evil'"), "/x%3Burl=%27//evil%27");
        assert_eq!(refresh_target("/é"), "/%C3%A9");
    }
}
