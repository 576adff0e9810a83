//! People from a real directory signing in to the server: the tenant's `[[directory]]` is
//! synced, then `POST /api/v1/sign-in` binds to the directory as the person. Runs against the
//! Samba AD domain controller and against OpenLDAP (see `scripts/services/`); a case is skipped
//! only when its server's variables are absent and services are not required.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::{Service, Tree};
use latchkey_client::{AuditQuery, Client, ClientError};
use latchkey_proto as proto;
use latchkey_server::{Config, ConfigLayer, RunningServer, SignInLayer, SystemClock, TenantDirectory};
use secrecy::ExposeSecret;

macro_rules! both {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn samba() {
                let Some(s) = super::Service::samba() else { return };
                super::$case(s).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn openldap() {
                let Some(s) = super::Service::openldap() else { return };
                super::$case(s).await;
            }
        }
    )*};
}

both!(directory_users_sign_in_by_binding, directory_users_sign_in_to_the_web_ui);

const PASSWORD: &str = "Lk-Secret-42!x";

/// A server (embedded store) whose default tenant reads `service` below `base_dn`.
async fn server(service: &Service, base_dn: &str, dir: &tempfile::TempDir) -> (RunningServer, Client) {
    let config = Config::resolve(ConfigLayer {
        data_dir: Some(dir.path().to_owned()),
        listen: Some("127.0.0.1:0".into()),
        sign_in: Some(SignInLayer {
            failure_delay_ms: Some(1),
            failure_delay_max_ms: Some(2),
            max_failures_per_day: Some(50),
            ..Default::default()
        }),
        directory: Some(vec![TenantDirectory { tenant: "default".into(), config: service.config(base_dn) }]),
        ..Default::default()
    })
    .unwrap();
    let server = latchkey_server::start(config, Arc::new(SystemClock)).await.unwrap();
    let token = server.first_admin_token.as_ref().unwrap().expose_secret().to_owned();
    let client = Client::new(&format!("http://{}", server.addr), Some(token)).unwrap();
    (server, client)
}

async fn sign_in(client: &Client, username: &str, password: &str) -> Result<proto::SignInResponse, ClientError> {
    let anonymous = Client::new(client.base_url(), None).unwrap();
    let body = proto::SignInRequest { tenant: "default".into(), username: username.into(), password: password.into() };
    anonymous.sign_in(&body).await
}

fn is_401<T: std::fmt::Debug>(r: Result<T, ClientError>) -> bool {
    matches!(r, Err(ClientError::Api { ref problem }) if problem.status == 401)
}

/// Synced people sign in with their directory password under any spelling of their name; a
/// wrong password, an account disabled in the directory (at sync time or after it) and a
/// person who is not synced are refused alike and counted.
async fn directory_users_sign_in_by_binding(service: Service) {
    let mut t = Tree::new(&service).await;
    let (alice, dave) = (t.name("al"), t.name("dv"));
    let alice_dn = t.add_user(&alice, PASSWORD, false, None).await;
    t.add_user(&dave, PASSWORD, true, None).await;
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) = server(&service, &t.dn, &dir).await;
    admin.directory_sync("default").await.unwrap();

    let s = sign_in(&admin, &alice, PASSWORD).await.unwrap();
    assert_eq!(s.user.name, alice);
    let me = Client::new(admin.base_url(), Some(s.token.clone())).unwrap().me().await.unwrap();
    assert_eq!(me.method, "ldap");
    assert_eq!(me.user.display_name.as_deref(), Some(format!("User {alice}").as_str()));
    assert!(sign_in(&admin, &format!("SOMEDOMAIN\\{}", alice.to_uppercase()), PASSWORD).await.is_ok());
    if let Some(realm) = &service.realm {
        assert!(sign_in(&admin, &format!("{alice}@{realm}"), PASSWORD).await.is_ok());
    }

    assert!(is_401(sign_in(&admin, &alice, "Wrong-Passw0rd!").await), "wrong password");
    assert!(is_401(sign_in(&admin, &dave, PASSWORD).await), "disabled at sync");
    assert!(is_401(sign_in(&admin, &t.name("nobody"), PASSWORD).await), "not synced");
    // Disabled in the directory after the sync: the bind itself refuses.
    t.set_disabled(&alice_dn, true).await;
    assert!(is_401(sign_in(&admin, &alice, PASSWORD).await), "disabled after sync");
    t.set_disabled(&alice_dn, false).await;
    assert!(sign_in(&admin, &alice, PASSWORD).await.is_ok());

    let events = admin
        .list_audit(&AuditQuery { action: Some("sign_in".into()), limit: Some(1000), ..Default::default() })
        .await
        .unwrap()
        .items;
    let denied: Vec<(String, String)> = events
        .iter()
        .filter(|e| e.outcome == "denied")
        .map(|e| {
            (
                e.details["reason"].as_str().unwrap_or("").to_owned(),
                e.details["method"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let want =
        [("wrong_password", "ldap"), ("disabled", "local"), ("unknown_user", "local"), ("wrong_password", "ldap")];
    assert_eq!(denied, want.map(|(r, m)| (r.to_owned(), m.to_owned())));
    let alice_key = format!("user:{}", alice.to_lowercase());
    assert!(events.iter().filter(|e| e.outcome == "success").all(|e| e.actor == alice_key));
    let text = format!("{events:?}");
    assert!(!text.contains(PASSWORD) && !text.contains("Wrong-Passw0rd"), "a password is in the audit log");

    server.shutdown().await.unwrap();
    t.cleanup().await;
}

/// The web UI's sign-in form binds to the directory like the API: the right password opens a
/// session cookie that shows the person's pages; a wrong one shows the one refusal message.
async fn directory_users_sign_in_to_the_web_ui(service: Service) {
    let mut t = Tree::new(&service).await;
    let erin = t.name("er");
    t.add_user(&erin, PASSWORD, false, None).await;
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) = server(&service, &t.dn, &dir).await;
    admin.directory_sync("default").await.unwrap();
    let base = admin.base_url().trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    let post = |password: &'static str| {
        let (http, base, erin) = (http.clone(), base.clone(), erin.clone());
        async move {
            let page = http.get(format!("{base}/sign-in")).send().await.unwrap();
            let cookie = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
            let html = page.text().await.unwrap();
            let marker = "name=\"signin_token\" value=\"";
            let start = html.find(marker).unwrap() + marker.len();
            let token = html[start..start + html[start..].find('"').unwrap()].to_owned();
            let form = [
                ("signin_token", token.as_str()),
                ("next", "/"),
                ("tenant", "default"),
                ("username", erin.as_str()),
                ("password", password),
            ];
            http.post(format!("{base}/sign-in"))
                .header("cookie", cookie)
                .header("origin", &base)
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };

    let refused = post("Wrong-Passw0rd!").await;
    assert_eq!(refused.status(), 401);
    assert!(refused.text().await.unwrap().contains("The tenant, user name or password is not right."));

    let signed_in = post(PASSWORD).await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers()["location"], "/");
    let session = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("lk_session=lk_session_"))
        .expect("a session cookie");
    let home = http.get(format!("{base}/")).header("cookie", &session).send().await.unwrap();
    assert_eq!(home.status(), 200);
    assert!(home.text().await.unwrap().contains(&format!("{erin} · default")));
    server.shutdown().await.unwrap();
}
