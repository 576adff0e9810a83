//! Importing the targets of a Lithnet LAPS web.config: upload the file, see the dry run's
//! report, then import exactly the text that was previewed.

use askama::Template;
use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Multipart, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use latchkey_proto as proto;
use serde::Deserialize;

use super::{admin_of, ticked};
use crate::extract::ApiJson;
use crate::routes::import_lithnet;
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{CSRF_FIELD, WebForm, check_same_origin, new_form_id};
use crate::web::page::{Chrome, Html};
use crate::web::session::WebUser;

/// The largest web.config accepted.
const MAX_FILE: usize = 1024 * 1024;

#[derive(Template)]
#[template(path = "admin_import.html")]
pub struct ImportPage {
    chrome: Chrome,
    admin_page: &'static str,
    /// The dry run's report, once a file was uploaded.
    report: Option<proto::LithnetImportReport>,
    /// The previewed text, sent again with "Import".
    web_config: String,
    replace: bool,
    form_id: String,
}

fn page(user: &WebUser, report: Option<proto::LithnetImportReport>, web_config: String, replace: bool) -> ImportPage {
    ImportPage {
        chrome: Chrome::new(user, "admin"),
        admin_page: "import",
        report,
        web_config,
        replace,
        form_id: new_form_id(),
    }
}

/// `GET /admin/targets/import`.
pub async fn form(user: WebUser) -> Result<Html<ImportPage>, WebError> {
    admin_of(&user)?;
    Ok(Html(page(&user, None, String::new(), false)))
}

/// What the upload form sent.
struct Upload {
    csrf: Option<String>,
    web_config: Option<String>,
    replace: bool,
}

async fn read_upload(mut multipart: Multipart) -> Result<Upload, WebError> {
    let unreadable = || WebError::bad_request("The upload could not be read. Nothing was changed.");
    let mut upload = Upload { csrf: None, web_config: None, replace: false };
    while let Some(field) = multipart.next_field().await.map_err(|_| unreadable())? {
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field.bytes().await.map_err(|_| unreadable())?;
        match name.as_str() {
            CSRF_FIELD => upload.csrf = Some(String::from_utf8_lossy(&bytes).into_owned()),
            "web_config" => {
                if bytes.len() > MAX_FILE {
                    return Err(WebError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "The file is larger than 1 MiB. Nothing was changed.",
                    ));
                }
                let text = String::from_utf8(bytes.to_vec())
                    .map_err(|_| WebError::bad_request("The file is not UTF-8 text. Nothing was changed."))?;
                upload.web_config = Some(text.trim_start_matches('\u{feff}').to_owned());
            }
            "replace" => upload.replace = !bytes.is_empty(),
            _ => return Err(WebError::bad_request("The upload has a field it should not have. Nothing was changed.")),
        }
    }
    Ok(upload)
}

/// `POST /admin/targets/import` (multipart): the dry run of an uploaded web.config.
pub async fn preview(State(state): State<AppState>, req: Request) -> Result<Response, WebError> {
    let (mut parts, body) = req.into_parts();
    check_same_origin(&parts)?;
    let user = match WebUser::from_request_parts(&mut parts, &state).await {
        Ok(u) => u,
        Err(no_session) => return Ok(no_session.into_response()),
    };
    let multipart = Multipart::from_request(Request::from_parts(parts, body), &state)
        .await
        .map_err(|_| WebError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Expected a file upload form."))?;
    let upload = read_upload(multipart).await?;
    let token_ok = upload.csrf.as_deref().is_some_and(|t| latchkey_crypto::ct_eq(t.as_bytes(), user.csrf.as_bytes()));
    if !token_ok {
        return Err(WebError::forbidden(
            "This form's security token is missing or out of date. Reload the page and try again. Nothing was changed.",
        ));
    }
    let (admin, slug) = admin_of(&user)?;
    let web_config = upload
        .web_config
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| WebError::bad_request("Choose a web.config file to upload. Nothing was changed."))?;
    let request =
        proto::LithnetImportRequest { web_config: web_config.clone(), dry_run: true, replace: upload.replace };
    let (_, Json(report)) = import_lithnet(State(state), admin, slug, ApiJson(request)).await?;
    Ok(Html(page(&user, Some(report), web_config, upload.replace)).into_response())
}

/// The "Import" form of the preview.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportForm {
    web_config: String,
    #[serde(default)]
    replace: Option<String>,
}

/// `POST /admin/targets/import/confirm`: import the previewed text.
pub async fn confirm(State(state): State<AppState>, form: WebForm<ImportForm>) -> Result<Response, WebError> {
    let (admin, slug) = admin_of(&form.user)?;
    if form.form.web_config.len() > MAX_FILE {
        return Err(WebError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The file is larger than 1 MiB. Nothing was changed.",
        ));
    }
    let replace = ticked(&form.form.replace);
    let request = proto::LithnetImportRequest { web_config: form.form.web_config.clone(), dry_run: false, replace };
    let (_, Json(report)) = import_lithnet(State(state), admin, Path(slug.0), ApiJson(request)).await?;
    if report.imported {
        return Ok(Redirect::to("/admin/targets?done=imported").into_response());
    }
    // Something changed since the preview (a reader was removed): show the problems.
    let mut resp = Html(page(&form.user, Some(report), form.form.web_config, replace)).into_response();
    *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    Ok(resp)
}
