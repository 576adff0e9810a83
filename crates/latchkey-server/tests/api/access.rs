//! Access targets over the API: the ordered list and its bad input, people reading device
//! passwords through the targets (expire-after, denials, audit, notices), explain,
//! who-can-read and the Lithnet import.

use latchkey_client::{AuditQuery, Client};
use latchkey_proto as proto;
use proto::ProblemCode;

use crate::both;
use crate::device_agent::{Agent, Kind, align_clock, job_of};
use crate::helpers::{TestApp, audit_count};

const PW: &str = "a long enough password 1";

fn spec(kind: &str, name: &str, readers: &[&str]) -> proto::TargetSpec {
    proto::TargetSpec {
        kind: kind.into(),
        name: name.into(),
        expire_after: None,
        readers: readers.iter().map(|r| (*r).to_owned()).collect(),
        grants: None,
        audit: proto::TargetAudit::default(),
        enabled: true,
        description: None,
        position: None,
    }
}

async fn user(app: &TestApp, name: &str) -> String {
    let u = app
        .client
        .create_user("default", &proto::UserCreate { name: name.into(), display_name: None, email: None })
        .await
        .unwrap();
    app.client.set_user_password("default", &u.id, &proto::PasswordSetRequest { password: PW.into() }).await.unwrap();
    u.id
}

async fn group(app: &TestApp, name: &str, members: &[(proto::MemberKind, &str)]) -> String {
    let g =
        app.client.create_group("default", &proto::GroupCreate { name: name.into(), description: None }).await.unwrap();
    for (kind, id) in members {
        let m = proto::GroupMember { kind: *kind, id: (*id).to_owned() };
        app.client.add_group_member("default", &g.id, &m).await.unwrap();
    }
    g.id
}

async fn signed_in(app: &TestApp, name: &str) -> Client {
    let req = proto::SignInRequest { tenant: "default".into(), username: name.into(), password: PW.into() };
    let session = app.client_with(None).sign_in(&req).await.unwrap();
    app.client_with(Some(&session.token))
}

fn read(reason: &str) -> proto::DevicePasswordRequest {
    proto::DevicePasswordRequest { reason: reason.into(), ticket: Some("T-1".into()), version: None }
}

async fn events(app: &TestApp, action: &str) -> Vec<proto::AuditEvent> {
    let q = AuditQuery { action: Some(action.into()), limit: Some(1000), ..Default::default() };
    app.client.list_audit(&q).await.unwrap().items
}

both!(targets_are_an_ordered_list, |app: TestApp| async move {
    let c = &app.client;
    user(&app, "alice").await;
    group(&app, "Helpdesk", &[]).await;
    let a = c.create_target("default", &spec("Computer", "PC-1", &["DEV1\\alice"])).await.unwrap();
    let b = c.create_target("default", &spec("group", "Helpdesk", &["helpdesk"])).await.unwrap();
    let mut first = spec("Container", "OU=Workstations,DC=dev1,DC=local", &["alice@dev1.local"]);
    first.position = Some(1);
    first.expire_after = Some("6:12".into());
    first.grants = Some(vec!["password".into(), "history".into()]);
    first.audit.email_addresses = vec!["sec@dev1.local".into()];
    let c1 = c.create_target("default", &first).await.unwrap();
    assert_eq!((c1.position, c1.kind.as_str()), (1, "Container"));
    assert_eq!(c1.expire_after.as_deref(), Some("06:12:00"));
    assert_eq!(c1.grants, ["password", "history"]);
    assert_eq!(b.kind, "Group");
    assert_eq!(b.readers[0].kind, "group");
    let names = |l: Vec<proto::TargetView>| l.into_iter().map(|t| (t.position, t.name)).collect::<Vec<_>>();
    let listed = names(c.list_targets("default").await.unwrap().items);
    assert_eq!(listed, [(1, c1.name.clone()), (2, "PC-1".into()), (3, "Helpdesk".into())]);

    c.move_target("default", &c1.id, 99).await.unwrap();
    let mut changed = spec("Computer", "PC-2", &["alice"]);
    changed.enabled = false;
    let replaced = c.replace_target("default", &a.id, &changed).await.unwrap();
    assert_eq!((replaced.position, replaced.name.as_str(), replaced.enabled), (1, "PC-2", false));
    c.delete_target("default", &b.id).await.unwrap();
    let listed = names(c.list_targets("default").await.unwrap().items);
    assert_eq!(listed, [(1, "PC-2".into()), (2, c1.name.clone())]);
    assert_eq!(c.target("default", &c1.id).await.unwrap().position, 2);

    // Bad input: a clear 4xx naming the problem, and nothing changes (no event either).
    let before = (c.list_targets("default").await.unwrap().items, audit_count(&app).await);
    let bad = |f: fn(&mut proto::TargetSpec)| {
        let mut s = spec("Computer", "PC-9", &["alice"]);
        f(&mut s);
        s
    };
    for (body, needle) in [
        (bad(|s| s.kind = "Printer".into()), "Printer"),
        (bad(|s| s.name = "  ".into()), "name"),
        (bad(|s| s.name = "x".repeat(2000)), "name"),
        (bad(|s| *s = spec("Container", "Workstations", &[])), "distinguished name"),
        (bad(|s| s.expire_after = Some("1:60".into())), "expireAfter"),
        (bad(|s| s.expire_after = Some("0".into())), "expireAfter"),
        (bad(|s| s.expire_after = Some("99999".into())), "expireAfter"),
        (bad(|s| s.readers = vec!["nobody".into()]), "nobody"),
        (bad(|s| s.readers = vec!["a\\b\\c".into()]), "readers"),
        (bad(|s| s.grants = Some(vec!["write".into()])), "grants"),
        (bad(|s| s.audit.email_addresses = vec!["not an address".into()]), "emailAddresses"),
        (bad(|s| s.position = Some(0)), "position"),
    ] {
        let e = c.create_target("default", &body).await.unwrap_err();
        assert_eq!(e.code(), Some(ProblemCode::InvalidField), "{needle}: {e}");
        assert!(e.to_string().contains(needle), "{needle}: {e}");
    }
    let unknown = uuid::Uuid::new_v4().to_string();
    let e = c.replace_target("default", &unknown, &spec("Computer", "x", &[])).await.unwrap_err();
    assert_eq!(e.code(), Some(ProblemCode::NotFound));
    assert_eq!(c.delete_target("default", "not-a-uuid").await.unwrap_err().code(), Some(ProblemCode::InvalidParameter));
    assert_eq!(c.move_target("default", &unknown, 1).await.unwrap_err().code(), Some(ProblemCode::NotFound));
    let e = c.replace_target("default", &c1.id, &bad(|s| s.position = Some(1))).await.unwrap_err();
    assert!(e.to_string().contains("move"), "{e}");
    let resp = app
        .raw()
        .post(app.url("/api/v1/tenants/default/access/targets"))
        .bearer_auth(&app.token)
        .json(&serde_json::json!({ "type": "Computer", "name": "PC", "readerz": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = app
        .raw()
        .post(app.url("/api/v1/tenants/default/access/targets"))
        .bearer_auth(&app.token)
        .json(&serde_json::json!({ "type": "Computer", "name": 7 }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!((c.list_targets("default").await.unwrap().items, audit_count(&app).await), before);
    // Without a token, nothing.
    let e = app.client_with(None).list_targets("default").await.unwrap_err();
    assert_eq!(e.code(), Some(ProblemCode::Unauthenticated));
});

both!(people_read_through_targets_only, |app: TestApp| async move {
    align_clock(&app);
    let c = &app.client;
    let agent = Agent::enroll(&app, "default").await;
    let version = agent.rotate(None, "first-password-0001").await;
    let alice = user(&app, "alice").await;
    user(&app, "bob").await;
    group(&app, "Helpdesk", &[(proto::MemberKind::User, &alice)]).await;
    group(&app, "Workstations", &[(proto::MemberKind::Device, &agent.id)]).await;
    let mut target = spec("Group", "DEV1\\Workstations", &["Helpdesk"]);
    target.expire_after = Some("2:00:00".into());
    target.audit.email_addresses = vec!["sec@dev1.local".into()];
    target.audit.email_on_success = true;
    let target = c.create_target("default", &target).await.unwrap();

    // alice reads through the group target: the password, an expiry two hours out, and the
    // rotation expected at the first check-in after it.
    let as_alice = signed_in(&app, "alice").await;
    let now = latchkey_core::Clock::now(app.clock.as_ref());
    let got = as_alice.reveal_device_password("default", &agent.id, &read("printer fix")).await.unwrap();
    assert_eq!((got.password.as_deref(), got.version), (Some("first-password-0001"), version));
    let expires = got.expires_at.unwrap();
    assert_eq!(expires, now + time::Duration::hours(2));
    let expected = got.rotation_expected_at.unwrap();
    assert!(expected >= expires && expected <= expires + time::Duration::minutes(30), "{expected} vs {expires}");
    let reads = events(&app, "secret.read").await;
    let last = reads.last().unwrap();
    assert_eq!((last.actor.as_str(), last.outcome.as_str()), ("user:alice", "success"));
    assert_eq!((last.reason.as_deref(), last.ticket.as_deref()), (Some("printer fix"), Some("T-1")));
    assert!(!serde_json::to_string(&reads).unwrap().contains("first-password-0001"));

    // A second read does not push the expiry back.
    app.clock.advance(time::Duration::minutes(10));
    let again = as_alice.reveal_device_password("default", &agent.id, &read("again")).await.unwrap();
    assert_eq!(again.expires_at, Some(expires));

    // History needs a target granting it; bob is no reader; both are denied and audited.
    let mut history = read("history");
    history.version = Some(version);
    let e = as_alice.reveal_device_password("default", &agent.id, &history).await.unwrap_err();
    assert_eq!(e.code(), Some(ProblemCode::Forbidden), "{e}");
    let as_bob = signed_in(&app, "bob").await;
    let e = as_bob.reveal_device_password("default", &agent.id, &read("curious")).await.unwrap_err();
    assert_eq!(e.code(), Some(ProblemCode::Forbidden));
    assert!(e.to_string().contains("does not list"), "{e}");
    let reads = events(&app, "secret.read").await;
    let outcomes: Vec<(&str, &str)> = reads.iter().map(|e| (e.actor.as_str(), e.outcome.as_str())).collect();
    assert_eq!(
        &outcomes[outcomes.len() - 4..],
        [("user:alice", "success"), ("user:alice", "success"), ("user:alice", "denied"), ("user:bob", "denied")]
    );

    // Each read queued its notices in the same transaction: e-mail to the target's address
    // for every outcome (both flags are on), and the webhook row.
    let queued = c.list_notifications("default", None, Some(100)).await.unwrap().items;
    let mails: Vec<_> = queued.iter().filter(|n| n.channel == proto::NotificationChannel::Email).collect();
    assert_eq!(mails.len(), 4, "{queued:?}");
    assert!(queued.iter().all(|n| n.event.as_deref() == Some("password.read")), "{queued:?}");
    assert!(mails.iter().all(|m| m.recipients == ["sec@dev1.local"]));

    // History and support accounts need their grants too.
    let e = as_alice.device_password_history("default", &agent.id).await.unwrap_err();
    assert_eq!(e.code(), Some(ProblemCode::Forbidden));
    let e = as_alice.request_support_account("default", &agent.id).await.unwrap_err();
    assert_eq!(e.code(), Some(ProblemCode::Forbidden));
    assert_eq!(events(&app, "access.denied").await.len(), 2);
    let mut wider = spec("Group", "DEV1\\Workstations", &["Helpdesk"]);
    wider.grants = Some(vec!["password".into(), "history".into(), "support-account".into()]);
    wider.expire_after = Some("2:00:00".into());
    wider.audit.email_addresses = vec!["sec@dev1.local".into()];
    c.replace_target("default", &target.id, &wider).await.unwrap();
    assert_eq!(as_alice.device_password_history("default", &agent.id).await.unwrap().items.len(), 1);
    let requested = as_alice.request_support_account("default", &agent.id).await.unwrap();
    assert_eq!(requested.state, proto::SupportAccountState::Queued);
    let old = as_alice.reveal_device_password("default", &agent.id, &history).await.unwrap();
    assert_eq!(old.version, version);

    // A user of another tenant cannot even name this one.
    c.create_tenant(&proto::TenantCreate { slug: "other".into(), name: Some("Other".into()) }).await.unwrap();
    let e = as_alice.reveal_device_password("other", &agent.id, &read("x")).await.unwrap_err();
    assert_eq!(e.code(), Some(ProblemCode::NotFound));

    // After the expiry the agent's next check-in rotates the password.
    app.clock.advance(time::Duration::hours(2));
    let r = agent.check_in(Some(version)).await;
    assert!(job_of(&r, Kind::Rotate).is_some(), "no rotation after expire-after: {r:?}");

    // Disabling the target denies everyone.
    let mut off = spec("Group", "Workstations", &["Helpdesk"]);
    off.enabled = false;
    c.replace_target("default", &target.id, &off).await.unwrap();
    // (The first session has expired by now.)
    let as_alice = signed_in(&app, "alice").await;
    let e = as_alice.reveal_device_password("default", &agent.id, &read("x")).await.unwrap_err();
    assert!(e.to_string().contains("no target"), "{e}");
});

both!(explain_and_who_can_read, |app: TestApp| async move {
    let c = &app.client;
    let device = c
        .create_device(
            "default",
            &proto::DeviceCreate {
                name: "PC-CEO".into(),
                device_id: None,
                container_dn: Some("OU=Laptops,OU=Computers,DC=dev1,DC=local".into()),
                os: None,
            },
        )
        .await
        .unwrap();
    let carol = user(&app, "carol").await;
    let dave = user(&app, "dave").await;
    let tier1 = group(&app, "Tier1", &[(proto::MemberKind::User, &carol)]).await;
    group(&app, "Helpdesk", &[(proto::MemberKind::Group, &tier1)]).await;
    c.create_target("default", &spec("Container", "OU=Computers,DC=dev1,DC=local", &["Helpdesk"])).await.unwrap();

    let e = c.explain_access("default", "carol", "pc-ceo", None).await.unwrap();
    assert!(e.allowed, "{e:?}");
    assert_eq!(e.target.as_ref().map(|t| t.position), Some(1));
    assert_eq!(e.matched_by.as_deref(), Some("the device is in container ou=computers,dc=dev1,dc=local"));
    assert_eq!(e.reader_by.as_deref(), Some("carol is a member of group `Helpdesk`, a reader"), "{e:?}");
    let e = c.explain_access("default", "dave", &device.device_id, Some("history")).await.unwrap();
    assert!(!e.allowed);
    assert!(e.summary.starts_with("Denied: target 1"), "{}", e.summary);

    // A Computer target comes first whatever its place, and does not list carol.
    let ceo = c.create_target("default", &spec("Computer", "DEV1\\PC-CEO$", &["dave"])).await.unwrap();
    let e = c.explain_access("default", &carol, "PC-CEO", None).await.unwrap();
    assert_eq!((e.allowed, e.target.map(|t| t.id)), (false, Some(ceo.id.clone())));
    assert_eq!(e.denied_because.as_deref(), Some("the matching target does not list the user as a reader"));
    let who = c.who_can_read("default", "PC-CEO").await.unwrap();
    assert_eq!(who.target.map(|t| t.id), Some(ceo.id));
    assert_eq!(who.readers.len(), 1);
    assert_eq!((who.readers[0].kind.as_str(), who.readers[0].id.as_str()), ("user", dave.as_str()));
    assert_eq!(who.grants, ["password"]);

    for (u, d, code) in [
        ("nobody", "PC-CEO", ProblemCode::NotFound),
        ("carol", "no-such-pc", ProblemCode::NotFound),
        ("a\\b\\c", "PC-CEO", ProblemCode::InvalidParameter),
        ("Tier1", "PC-CEO", ProblemCode::NotFound),
    ] {
        assert_eq!(c.explain_access("default", u, d, None).await.unwrap_err().code(), Some(code), "{u} {d}");
    }
    let e = c.explain_access("default", "carol", "PC-CEO", Some("write")).await.unwrap_err();
    assert_eq!(e.code(), Some(ProblemCode::InvalidParameter));
});

const WEB_CONFIG: &str = r#"<?xml version="1.0"?>
<configuration>
  <lithnet-laps>
    <targets>
      <target name="DEV1\PC-7" type="Computer" expire-after="1.00:00:00">
        <readers><reader principal="DEV1\erin"/></readers>
      </target>
      <target name="OU=Computers,DC=dev1,DC=local" type="Container">
        <audit emailOnSuccess="false" emailAddresses="sec@dev1.local,it@dev1.local"/>
        <readers><reader principal="Helpdesk"/><reader principal="erin@dev1.local"/></readers>
      </target>
    </targets>
  </lithnet-laps>
</configuration>"#;

both!(lithnet_import, |app: TestApp| async move {
    let c = &app.client;
    user(&app, "erin").await;
    group(&app, "Helpdesk", &[]).await;
    let req = |text: &str, dry_run: bool| proto::LithnetImportRequest {
        web_config: text.to_owned(),
        dry_run,
        replace: false,
    };
    let dry = c.import_lithnet("default", &req(WEB_CONFIG, true)).await.unwrap();
    assert!(dry.dry_run && !dry.imported && dry.problems.is_empty(), "{dry:?}");
    assert_eq!(dry.targets.iter().map(|t| t.line).collect::<Vec<_>>(), [5, 8]);
    assert!(c.list_targets("default").await.unwrap().items.is_empty());

    // An unknown reader or type is reported with its line and nothing is imported.
    let before = audit_count(&app).await;
    let unknown = WEB_CONFIG.replace("DEV1\\erin", "DEV1\\zed");
    let report = c.import_lithnet("default", &req(&unknown, false)).await.unwrap();
    assert!(!report.imported);
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].line, 5);
    assert!(report.problems[0].message.contains("zed"));
    let bad_type = WEB_CONFIG.replace("type=\"Container\"", "type=\"OU\"");
    let report = c.import_lithnet("default", &req(&bad_type, false)).await.unwrap();
    assert_eq!((report.imported, report.problems[0].line), (false, 8));
    let report = c.import_lithnet("default", &req("<configuration><lithnet-laps>", false)).await.unwrap();
    assert!(report.problems[0].message.contains("not well-formed"));
    assert!(c.list_targets("default").await.unwrap().items.is_empty());
    assert_eq!(audit_count(&app).await, before);

    let done = c.import_lithnet("default", &req(WEB_CONFIG, false)).await.unwrap();
    assert!(done.imported);
    let listed = c.list_targets("default").await.unwrap().items;
    assert_eq!(
        listed.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        done.targets.iter().map(|t| t.id.clone().unwrap()).collect::<Vec<_>>()
    );
    assert_eq!(listed[0].expire_after.as_deref(), Some("1.00:00:00"));
    assert!(!listed[1].audit.email_on_success && listed[1].audit.email_on_failure);
    assert_eq!(listed[1].audit.email_addresses, ["sec@dev1.local", "it@dev1.local"]);
    assert_eq!(listed[1].readers.len(), 2);
    assert_eq!(events(&app, "target.import").await.len(), 1);
    // Replacing makes the file the whole list.
    let mut again = req(WEB_CONFIG, false);
    again.replace = true;
    c.import_lithnet("default", &again).await.unwrap();
    assert_eq!(c.list_targets("default").await.unwrap().items.len(), 2);
});
