//! Rendering pages: the chrome every page shares (who is signed in, what they may open, the
//! form token) and the HTML response.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::Role;

use crate::web::session::WebUser;

/// What the layout shows around every page of a signed-in person.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub user_name: String,
    pub tenant: String,
    pub admin: bool,
    pub auditor: bool,
    pub approver: bool,
    /// The form token every form carries.
    pub csrf: String,
    /// Which top-level section is open (for the navigation).
    pub section: &'static str,
    /// A one-line notice at the top ("Target added.").
    pub notice: Option<String>,
}

impl Chrome {
    /// The chrome of `user`'s page in `section`.
    pub fn new(user: &WebUser, section: &'static str) -> Self {
        Chrome {
            user_name: user.name().to_owned(),
            tenant: user.tenant.slug.clone(),
            admin: user.has(Role::Admin),
            auditor: user.has(Role::Auditor),
            approver: user.has(Role::Approver),
            csrf: user.csrf.clone(),
            section,
            notice: None,
        }
    }

    /// With a notice.
    pub fn notice(mut self, notice: impl Into<String>) -> Self {
        self.notice = Some(notice.into());
        self
    }
}

/// A rendered template as an HTML response (500 when rendering fails).
pub fn html<T: Template>(page: &T) -> Response {
    match page.render() {
        Ok(body) => {
            let mut resp = body.into_response();
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

/// An HTML page as a handler's answer.
pub struct Html<T: Template>(pub T);

impl<T: Template> IntoResponse for Html<T> {
    fn into_response(self) -> Response {
        html(&self.0)
    }
}
