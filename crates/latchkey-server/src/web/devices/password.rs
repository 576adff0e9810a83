//! Showing a device's admin password (the active one or a version from its history) and
//! listing its versions, through the API as the signed-in person.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use latchkey_proto as proto;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{phonetic, reauth_redirect, tenant_device, when};
use crate::auth::Caller;
use crate::extract::ApiJson;
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{WebForm, new_form_id};
use crate::web::page::{Chrome, Html};
use crate::web::session::WebUser;

/// The "show password" form. Empty fields are absent; the API checks the reason.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevealForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    ticket: String,
    /// A version number from the history; empty for the active password.
    #[serde(default)]
    version: String,
}

/// A form's optional text: `None` when blank.
pub fn optional(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// The version field: empty for the active password, else a whole number.
fn version_field(raw: &str) -> Result<Option<i64>, WebError> {
    match raw.trim() {
        "" => Ok(None),
        v => v.parse().map(Some).map_err(|_| WebError::bad_request("The version must be a whole number.")),
    }
}

#[derive(Template)]
#[template(path = "device_password.html")]
pub struct PasswordPage {
    chrome: Chrome,
    device_id: String,
    device_name: String,
    account_name: String,
    version: i64,
    /// Whether the version shown is an earlier one from the history.
    from_history: bool,
    password: Zeroizing<String>,
    spelled: Vec<String>,
    expires_at: Option<String>,
    rotation_expected_at: Option<String>,
}

/// `POST /devices/{device_id}/password`: show the password after the API's checks (reason,
/// access target, audit). A sign-in older than the policy allows goes to the sign-in page
/// first; a refusal is the API's message as an error page.
pub async fn reveal(
    State(state): State<AppState>,
    Path(device_id): Path<String>,
    WebForm { user, form }: WebForm<RevealForm>,
) -> Result<Response, WebError> {
    let device = tenant_device(&state, &user, &device_id).await?;
    if let Some(redirect) = reauth_redirect(&state, &user, &device.id) {
        return Ok(redirect);
    }
    let body = proto::DevicePasswordRequest {
        reason: form.reason,
        ticket: optional(&form.ticket),
        version: version_field(&form.version)?,
    };
    let from_history = body.version.is_some();
    let path = Path((user.tenant.slug.clone(), device.id.clone()));
    let caller = Caller::User(user.user.clone());
    let axum::Json(mut revealed) =
        crate::routes::reveal_device_password(State(state.clone()), caller, path, ApiJson(body)).await?;
    let password = Zeroizing::new(
        revealed.password.take().ok_or_else(|| WebError::not_found("password of this device's admin account"))?,
    );
    let page = PasswordPage {
        chrome: Chrome::new(&user, "devices"),
        spelled: phonetic::spell(&password),
        password,
        device_id: device.id,
        device_name: device.name,
        account_name: std::mem::take(&mut revealed.account_name),
        version: revealed.version,
        from_history,
        expires_at: revealed.expires_at.map(when),
        rotation_expected_at: revealed.rotation_expected_at.map(when),
    };
    Ok(Html(page).into_response())
}

/// One version in the history list.
pub struct VersionRow {
    pub version: i64,
    pub state: &'static str,
    pub created: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "device_history.html")]
pub struct HistoryPage {
    chrome: Chrome,
    device_id: String,
    device_name: String,
    versions: Vec<VersionRow>,
    form_id: String,
}

/// `GET /devices/{device_id}/history`: the versions of the admin password (facts only), each
/// with a form to show it, when the person's target grants history; otherwise the API's 403.
pub async fn history(
    State(state): State<AppState>,
    user: WebUser,
    Path(device_id): Path<String>,
) -> Result<Html<HistoryPage>, WebError> {
    let device = tenant_device(&state, &user, &device_id).await?;
    let path = Path((user.tenant.slug.clone(), device.id.clone()));
    let axum::Json(list) =
        crate::routes::device_password_history(State(state.clone()), Caller::User(user.user.clone()), path).await?;
    let versions = list
        .items
        .into_iter()
        .map(|v| VersionRow {
            version: v.version,
            state: match v.state {
                proto::SecretState::Pending => "pending",
                proto::SecretState::Active => "active",
                proto::SecretState::Retired => "retired",
            },
            created: when(v.created_at),
            expires: v.expires_at.map(when).unwrap_or_default(),
        })
        .collect();
    Ok(Html(HistoryPage {
        chrome: Chrome::new(&user, "devices"),
        device_id: device.id,
        device_name: device.name,
        versions,
        form_id: new_form_id(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_fields_are_absent_and_versions_are_numbers() {
        assert_eq!(optional("  "), None);
        assert_eq!(optional(" INC-1 ").as_deref(), Some("INC-1"));
        assert_eq!(version_field("").unwrap(), None);
        assert_eq!(version_field(" 3 ").unwrap(), Some(3));
        assert_eq!(version_field("three").unwrap_err().status, axum::http::StatusCode::BAD_REQUEST);
    }
}
