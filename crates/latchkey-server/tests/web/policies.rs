//! The admin's policies page: the tenant's rotation policy, account policies, and refusals.

use latchkey_proto as proto;

use crate::fixture::{HttpSession, WebApp, hidden_field};

/// The tenant's own rotation policy, if one is set.
async fn tenant_rotation(web: &WebApp) -> Option<proto::RotationPolicy> {
    web.app.client.rotation_policies("acme").await.unwrap().items.into_iter().find(|p| p.group_id.is_none())
}

async fn account_policies(web: &WebApp) -> Vec<proto::AccountPolicy> {
    web.app.client.list_account_policies("acme").await.unwrap().items
}

/// A rotation form with `length` and otherwise valid values.
fn rotation_fields(length: &str) -> Vec<(&'static str, String)> {
    [
        ("max_age_hours", "48"),
        ("length", length),
        ("lower", "on"),
        ("digits", "on"),
        ("passphrase_words", ""),
        ("history", "5"),
        ("support_lifetime_minutes", "120"),
        ("poll_interval_seconds", "600"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect()
}

async fn post_owned(s: &HttpSession, path: &str, fields: &[(&'static str, String)]) -> reqwest::Response {
    let borrowed: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    s.post(path, &borrowed).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sets_the_rotation_policy_and_refused_values_change_nothing() {
    let web = WebApp::start().await;
    let s = web.http_session("alice").await;

    let page = s.get("/admin/policies").await.text().await.unwrap();
    assert!(page.contains("id=\"no-rotation-policies\"") && page.contains("aria-current=\"page\">Policies<"));
    let form_id = hidden_field(&page, "form_id").unwrap();
    let mut fields = rotation_fields("32");
    fields.push(("form_id", form_id.clone()));
    let resp = post_owned(&s, "/admin/policies/rotation", &fields).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/admin/policies?done=rotation");

    let set = tenant_rotation(&web).await.expect("the tenant's policy is set");
    assert_eq!(
        (set.max_age_seconds, set.length, set.classes.as_str(), set.passphrase_words, set.history),
        (48 * 3600, 32, "lower,digits", None, 5)
    );
    assert_eq!((set.support_lifetime_seconds, set.poll_interval_seconds), (7200, 600));
    let page = s.get("/admin/policies?done=rotation").await.text().await.unwrap();
    assert!(page.contains("Rotation policy saved.") && page.contains("32 characters: lower, digits"), "{page}");
    assert!(page.contains("id=\"rotation-length\" value=\"32\""), "the form starts with the current policy");

    // The same form sent again is refused and changes nothing.
    let mut again = rotation_fields("40");
    again.push(("form_id", form_id));
    assert_eq!(post_owned(&s, "/admin/policies/rotation", &again).await.status(), 409);
    assert_eq!(tenant_rotation(&web).await.unwrap().length, 32);

    // A length that is not a number, and one out of range (the API's message).
    let resp = post_owned(&s, "/admin/policies/rotation", &rotation_fields("lots")).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("Length must be a whole number. Nothing was changed."));
    let resp = post_owned(&s, "/admin/policies/rotation", &rotation_fields("4")).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("Length must be between 8 and 256."));
    let mut no_class = rotation_fields("16");
    no_class.retain(|(k, _)| *k != "lower" && *k != "digits");
    assert_eq!(post_owned(&s, "/admin/policies/rotation", &no_class).await.status(), 400);
    assert_eq!(tenant_rotation(&web).await.unwrap(), set, "refused forms change nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_creates_and_deletes_an_account_policy() {
    let web = WebApp::start().await;
    let s = web.http_session("alice").await;

    let page = s.get("/admin/policies").await.text().await.unwrap();
    assert!(page.contains("id=\"no-account-policies\""));
    let account_form = page.find("id=\"account-policy-form\"").unwrap();
    let form_id = hidden_field(&page[account_form..], "form_id").unwrap();
    let fields = [
        ("form_id", form_id.as_str()),
        ("name", "Break <glass>"),
        ("require_reason", "on"),
        ("require_confirmation", "on"),
        ("confirmation_minutes", "7"),
        ("reset_after_showing", "on"),
        ("reset_after_minutes", "30"),
    ];
    let resp = s.post("/admin/policies/account", &fields).await;
    assert_eq!(resp.status(), 303);
    let list = account_policies(&web).await;
    assert_eq!(list.len(), 1);
    let p = &list[0];
    assert_eq!(p.name, "Break <glass>");
    assert!(p.require_reason && p.require_confirmation && p.reset_after_showing);
    assert!(!p.encrypt_key_before_showing && !p.can_set_if_not_set, "unticked boxes are off");
    assert_eq!((p.confirmation_timeout.as_str(), p.reset_after_minutes), ("00:07:00", 30));

    let page = s.get("/admin/policies?done=created").await.text().await.unwrap();
    assert!(page.contains("Account policy created.") && page.contains("Break &#60;glass&#62;"), "{page}");
    assert!(page.contains("required, within 00:07:00") && page.contains("after 30 min"));
    assert_eq!(s.post("/admin/policies/account", &fields).await.status(), 409, "the same form twice");
    assert_eq!(account_policies(&web).await.len(), 1);

    // A bad number is refused here, a missing timeout by the API.
    let resp = s.post("/admin/policies/account", &[("name", "Other"), ("reset_after_minutes", "soon")]).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("Reset after must be a whole number. Nothing was changed."));
    let resp = s.post("/admin/policies/account", &[("name", "Other"), ("require_confirmation", "on")]).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("ConfirmationTimeout is required with requireConfirmation."));
    assert_eq!(account_policies(&web).await.len(), 1);

    let resp = s.post(&format!("/admin/policies/account/{}/delete", p.id), &[]).await;
    assert_eq!(resp.status(), 303);
    assert!(account_policies(&web).await.is_empty());
    let page = s.get("/admin/policies?done=deleted").await.text().await.unwrap();
    assert!(page.contains("Account policy deleted.") && page.contains("id=\"no-account-policies\""));
    assert_eq!(s.post(&format!("/admin/policies/account/{}/delete", p.id), &[]).await.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_without_the_admin_role_can_neither_see_nor_change_policies() {
    let web = WebApp::start().await;
    let spec = proto::AccountPolicySpec { name: "Kept".into(), require_reason: true, ..Default::default() };
    let kept = web.app.client.create_account_policy("acme", &spec).await.unwrap();
    let helen = web.http_session("helen").await;

    assert_eq!(helen.get("/admin/policies").await.status(), 403);
    assert_eq!(post_owned(&helen, "/admin/policies/rotation", &rotation_fields("32")).await.status(), 403);
    let resp = helen.post("/admin/policies/account", &[("name", "Mine"), ("require_reason", "on")]).await;
    assert_eq!(resp.status(), 403);
    let resp = helen.post(&format!("/admin/policies/account/{}/delete", kept.id), &[]).await;
    assert_eq!(resp.status(), 403);

    assert!(tenant_rotation(&web).await.is_none());
    let names: Vec<String> = account_policies(&web).await.into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["Kept"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_an_account_uses_is_not_deleted() {
    let web = WebApp::start().await;
    let spec = proto::AccountPolicySpec { name: "Used".into(), require_reason: true, ..Default::default() };
    let used = web.app.client.create_account_policy("acme", &spec).await.unwrap();
    let account = crate::helpers::account_with_password(&web.app, "acme", "db-root", "db password 1").await;
    web.app.client.attach_account_policy("acme", &account, Some(&used.id)).await.unwrap();
    let s = web.http_session("alice").await;

    let resp = s.post(&format!("/admin/policies/account/{}/delete", used.id), &[]).await;
    assert_eq!(resp.status(), 409);
    assert!(resp.text().await.unwrap().contains("id=\"error-message\""));
    assert_eq!(account_policies(&web).await.len(), 1);
}
