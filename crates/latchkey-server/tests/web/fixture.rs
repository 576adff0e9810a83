//! A server with a tenant and people to sign in as.

use latchkey_proto as proto;

use crate::helpers::{Backend, TestApp, spawn_app};

/// The password every person of the fixture has.
pub const PASSWORD: &str = "correct horse battery staple";

/// A running app with tenant `acme` and people: `helen` (no role), `alice` (admin, auditor,
/// approver) and `bob` (approver).
pub struct WebApp {
    pub app: TestApp,
    pub tenant: String,
    /// User ids by name.
    pub users: std::collections::HashMap<String, String>,
}

impl WebApp {
    pub async fn start() -> WebApp {
        WebApp::with_people(spawn_app(Backend::Sqlite).await.unwrap()).await
    }

    /// Tenant `acme` and its people on a running app.
    async fn with_people(app: TestApp) -> WebApp {
        let tenant = "acme".to_owned();
        app.client
            .create_tenant(&proto::TenantCreate { slug: tenant.clone(), name: Some("Acme Ltd".into()) })
            .await
            .unwrap();
        let mut web = WebApp { app, tenant, users: Default::default() };
        web.person("helen", &[]).await;
        web.person("alice", &["admin", "auditor", "approver"]).await;
        web.person("bob", &["approver"]).await;
        web
    }

    /// Add a local user with [`PASSWORD`] and roles.
    pub async fn person(&mut self, name: &str, roles: &[&str]) -> String {
        let c = &self.app.client;
        let user = c
            .create_user(
                &self.tenant,
                &proto::UserCreate { name: name.into(), display_name: None, email: Some(format!("{name}@acme.test")) },
            )
            .await
            .unwrap();
        c.set_user_password(&self.tenant, &user.id, &proto::PasswordSetRequest { password: PASSWORD.into() })
            .await
            .unwrap();
        if !roles.is_empty() {
            c.set_user_roles(&self.tenant, &user.id, roles).await.unwrap();
        }
        self.users.insert(name.to_owned(), user.id.clone());
        user.id
    }
}

/// A person's web session driven over plain HTTP: the session cookie and the form token.
pub struct HttpSession {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: String,
    pub csrf: String,
}

impl WebApp {
    /// Sign `name` in through the API and use the session as the web UI's cookie.
    pub async fn http_session(&self, name: &str) -> HttpSession {
        let signed = self
            .app
            .client_with(None)
            .sign_in(&proto::SignInRequest {
                tenant: self.tenant.clone(),
                username: name.into(),
                password: PASSWORD.into(),
            })
            .await
            .unwrap();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let mut s = HttpSession {
            http,
            base: self.app.base.clone(),
            cookie: format!("lk_session={}", signed.token),
            csrf: String::new(),
        };
        let home = s.get("/").await;
        assert_eq!(home.status(), 200);
        s.csrf = hidden_field(&home.text().await.unwrap(), "csrf").expect("csrf field on the home page");
        s
    }
}

impl HttpSession {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{}", self.base, path)).header("cookie", &self.cookie).send().await.unwrap()
    }

    /// POST a form as a page of the site would (same origin), adding the form token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut all: Vec<(&str, &str)> = vec![("csrf", &self.csrf)];
        all.extend_from_slice(fields);
        self.post_raw(path, &all, Some(&self.base)).await
    }

    /// POST exactly these fields with this Origin (none when `None`).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)], origin: Option<&str>) -> reqwest::Response {
        let mut req = self.http.post(format!("{}{}", self.base, path)).header("cookie", &self.cookie).form(fields);
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        req.send().await.unwrap()
    }
}

/// The value of a hidden form field in a page.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

impl WebApp {
    /// Like [`WebApp::start`], on a server whose config `tweak` has changed first (just-in-time
    /// policies and the like).
    pub async fn start_with(tweak: impl FnOnce(&mut latchkey_server::Config)) -> WebApp {
        use std::sync::Arc;

        use latchkey_core::{Clock, ManualClock, SystemClock};
        use secrecy::ExposeSecret;

        let data_dir = Arc::new(tempfile::tempdir().unwrap());
        let db_url = format!("sqlite://{}", data_dir.path().join("latchkey.db").display());
        let mut config = crate::helpers::config_for(data_dir.path(), Backend::Sqlite, &db_url);
        tweak(&mut config);
        let clock = Arc::new(ManualClock::new(SystemClock.now()));
        let server = latchkey_server::start(config, clock.clone()).await.unwrap();
        let token = server.first_admin_token.as_ref().unwrap().expose_secret().to_owned();
        let base = format!("http://{}", server.addr);
        let client = latchkey_client::Client::new(&base, Some(token.clone())).unwrap();
        let app =
            TestApp { server: Some(server), client, token, base, clock, data_dir, db_url, backend: Backend::Sqlite };
        WebApp::with_people(app).await
    }
}
