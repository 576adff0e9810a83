//! The home page.

use askama::Template;

use crate::web::page::{Chrome, Html};
use crate::web::session::WebUser;

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    chrome: Chrome,
}

/// `GET /`.
pub async fn home(user: WebUser) -> Html<HomePage> {
    Html(HomePage { chrome: Chrome::new(&user, "home") })
}
