//! Signing in to the web UI (local users and directory binds; single sign-on is in
//! [`crate::web::oidc`]) and signing out.
//!
//! The sign-in form has no session to bind a form token to, so it carries a random token that
//! must match a cookie set with the page (SameSite=Strict), besides the same-origin check.

use askama::Template;
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use latchkey_core::{Action, ObjectType};
use latchkey_proto::ProblemCode;
use latchkey_store::StoreError;
use secrecy::SecretString;
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::RequestFacts;
use crate::routes::{SignInResult, check_sign_in, sign_in_password};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{WebForm, check_same_origin, parse_fields};
use crate::web::page::html;
use crate::web::session::{cleared_cookie, is_local_path, session_cookie};

/// The cookie that carries the sign-in form's token.
const SIGN_IN_COOKIE: &str = "lk_signin";

/// A single sign-on button.
#[derive(Debug, Clone)]
pub struct ProviderLink {
    pub id: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    message: Option<String>,
    error: bool,
    signin_token: String,
    next: String,
    tenant: String,
    username: String,
    providers: Vec<ProviderLink>,
}

/// The query of the sign-in page.
#[derive(Debug, Default, Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
    ended: Option<String>,
    tenant: Option<String>,
}

/// What ended an earlier session, said on the sign-in page.
fn ended_message(ended: &str) -> Option<&'static str> {
    match ended {
        "idle" => Some("Your session ended after a while without activity. Sign in again."),
        "signed-out" => Some("You are signed out."),
        "reauth" => Some("Sign in again to show this secret: your sign-in is older than the policy allows."),
        "expired" => Some("Your session has ended. Sign in again."),
        _ => None,
    }
}

/// The single sign-on providers offered for sign-in.
fn providers(state: &AppState) -> Vec<ProviderLink> {
    crate::web::oidc_links(state)
}

/// Render the page with a fresh form token cookie.
fn render(
    state: &AppState,
    status: StatusCode,
    message: Option<String>,
    error: bool,
    next: &str,
    tenant: &str,
    username: &str,
) -> Response {
    let token = uuid::Uuid::new_v4().simple().to_string();
    let mut cookie = Cookie::new(SIGN_IN_COOKIE, token.clone());
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Strict);
    cookie.set_path("/sign-in");
    cookie.set_secure(state.config().tls.is_some());
    let page = SignInPage {
        message,
        error,
        signin_token: token,
        next: if is_local_path(next) { next.to_owned() } else { "/".to_owned() },
        tenant: tenant.to_owned(),
        username: username.to_owned(),
        providers: providers(state),
    };
    let mut resp = (CookieJar::new().add(cookie), html(&page)).into_response();
    *resp.status_mut() = status;
    resp
}

/// `GET /sign-in`.
pub async fn page(
    State(state): State<AppState>,
    query: Result<Query<SignInQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let message = q.ended.as_deref().and_then(ended_message).map(str::to_owned);
    let tenant = q.tenant.unwrap_or_default();
    let tenant = if tenant.len() <= 63 { tenant } else { String::new() };
    render(&state, StatusCode::OK, message, false, q.next.as_deref().unwrap_or("/"), &tenant, "")
}

/// The sign-in form.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignInForm {
    signin_token: String,
    #[serde(default)]
    next: String,
    tenant: String,
    username: String,
    password: String,
}

/// `POST /sign-in`.
pub async fn submit(State(state): State<AppState>, req: Request) -> Response {
    match try_submit(&state, req).await {
        Ok(resp) | Err(resp) => resp,
    }
}

async fn try_submit(state: &AppState, req: Request) -> Result<Response, Response> {
    let (mut parts, body) = req.into_parts();
    check_same_origin(&parts).map_err(IntoResponse::into_response)?;
    let Ok(facts) = RequestFacts::from_request_parts(&mut parts, state).await;
    let Ok(jar) = CookieJar::from_request_parts(&mut parts, state).await;
    let body = axum::body::to_bytes(body, state.config().max_body_bytes).await.map_err(|_| {
        WebError::new(StatusCode::PAYLOAD_TOO_LARGE, "The form is larger than the limit.").into_response()
    })?;
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|_| WebError::bad_request("The form could not be read.").into_response())?;
    let mut form: SignInForm = parse_fields(&fields).map_err(IntoResponse::into_response)?;
    let expected = jar.get(SIGN_IN_COOKIE).map(|c| c.value().to_owned()).unwrap_or_default();
    if expected.is_empty() || !latchkey_crypto::ct_eq(expected.as_bytes(), form.signin_token.as_bytes()) {
        return Err(render(
            state,
            StatusCode::FORBIDDEN,
            Some("The sign-in form was out of date; it has been reloaded. Sign in again.".into()),
            true,
            &form.next,
            &form.tenant,
            &form.username,
        ));
    }
    let again = |status: StatusCode, message: String, form: &SignInForm| {
        render(state, status, Some(message), true, &form.next, &form.tenant, &form.username)
    };
    let password: SecretString = match sign_in_password(&mut form.password) {
        Ok(p) => p,
        Err(e) => return Err(again(StatusCode::BAD_REQUEST, WebError::from(e).message, &form)),
    };
    match check_sign_in(state, &facts, &form.tenant, &form.username, password).await {
        Ok(SignInResult::Opened(session)) => {
            let next = if is_local_path(&form.next) { form.next.clone() } else { "/".to_owned() };
            let jar = CookieJar::new().add(session_cookie(state, session.token.clone())).add(removed_sign_in_cookie());
            Ok((jar, Redirect::to(&next)).into_response())
        }
        Ok(SignInResult::Limited { retry_after_secs }) => {
            let mut resp = again(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed sign-ins for this user today; try again after midnight UTC.".into(),
                &form,
            );
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, retry_after_secs.into());
            Err(resp)
        }
        Err(ApiError::Client(ProblemCode::Unauthenticated, _)) => {
            Err(again(StatusCode::UNAUTHORIZED, "The tenant, user name or password is not right.".into(), &form))
        }
        Err(e) => {
            let e = WebError::from(e);
            Err(again(e.status, e.message, &form))
        }
    }
}

fn removed_sign_in_cookie() -> Cookie<'static> {
    let mut c = Cookie::new(SIGN_IN_COOKIE, "");
    c.set_path("/sign-in");
    c.make_removal();
    c
}

/// The sign-out form: only the form token.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignOutForm {}

/// `POST /sign-out`: the session ends and its cookie is removed.
pub async fn sign_out(State(state): State<AppState>, form: WebForm<SignOutForm>) -> Result<Response, WebError> {
    let user = form.user.user;
    let event = user.event(&state, Action::SignOut, ObjectType::Session).object(user.session_id.clone());
    match state.store().revoke_session(&user.session_id, state.clock().now(), event).await {
        Ok(()) | Err(StoreError::NotFound) => {}
        Err(e) => return Err(WebError::from_store("session", e)),
    }
    Ok((CookieJar::new().add(cleared_cookie(&state)), Redirect::to("/sign-in?ended=signed-out")).into_response())
}
