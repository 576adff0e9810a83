//! `latchkey agent`: enrollment with a one-time token, then signed check-ins and the jobs they
//! bring (password rotation, support accounts), through the real binary against a real server,
//! with the real account tools on a private account root.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::device::{ADMIN, Device, can_manage_accounts, reveal, versions};
use common::{Server, exec};
use latchkey_agent::{AccountName, LocalAccounts};

/// `latchkey agent --once` with the state in `state_dir` and a private account root beside it.
fn agent(server: &Server, state_dir: &std::path::Path, extra: &[&str]) -> common::Out {
    let root = state_dir.with_extension("root");
    if !root.join("etc/passwd").exists() {
        latchkey_agent::prepare_private_root(&root).unwrap();
    }
    let mut cmd = server.bare_command();
    cmd.args(["agent", "--once", "--server", &server.url, "--state-dir"])
        .arg(state_dir)
        .arg("--root")
        .arg(&root)
        .args(extra);
    exec(cmd, None)
}

#[test]
fn agent_enrolls_once_then_checks_in_with_its_key() {
    if !can_manage_accounts() {
        return;
    }
    let host = host_databases();
    let server = Server::start();
    let token = server.run(&["device", "enroll-token"]).ok().stdout.lines().last().unwrap().trim().to_owned();
    assert!(token.starts_with("lk_enroll_"), "{token}");
    let state = server.tmp_path().join("agent-state");
    let device_id = "5a2f2169-0000-4000-8000-0000000000aa";

    let first = agent(&server, &state, &["--enroll-token", &token, "--device-id", device_id]).ok();
    assert!(first.stdout.contains(&format!("enrolled as device {device_id}")), "{first:?}");
    assert!(first.stdout.contains("checked in"), "{first:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(state.join("device.key")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let shown = server.json(&["device", "show", device_id]);
    assert!(shown["enrolledAt"].is_string(), "{shown}");
    let first_seen = shown["lastSeenAt"].as_str().unwrap().to_owned();

    // Later runs need no token: the key in the state directory signs the check-in.
    std::thread::sleep(std::time::Duration::from_millis(20));
    agent(&server, &state, &[]).ok();
    let again = server.json(&["device", "show", device_id]);
    assert_ne!(again["lastSeenAt"].as_str().unwrap(), first_seen);

    // The token was spent: another state directory cannot enroll with it.
    let other = server.tmp_path().join("other-state");
    let reuse = agent(&server, &other, &["--enroll-token", &token]);
    assert_eq!(reuse.code, 1);
    assert!(reuse.stderr.contains("enrollment failed"), "{reuse:?}");
    // Without a token and without state, the agent says what it needs.
    let none = agent(&server, &server.tmp_path().join("empty-state"), &[]);
    assert_eq!(none.code, 1);
    assert!(none.stderr.contains("--enroll-token"), "{none:?}");

    let events = server.json(&["audit", "list", "--action", "device.enroll"]);
    assert_eq!(events["items"].as_array().map(Vec::len), Some(1), "{events}");
    assert_eq!(host_databases(), host, "the host's account databases changed");
}

/// The host's account databases, to check that no test touched them.
fn host_databases() -> Vec<Option<Vec<u8>>> {
    ["/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"].iter().map(|p| std::fs::read(p).ok()).collect()
}

#[test]
fn the_first_run_rotates_the_admin_password_in_two_phases() {
    if !can_manage_accounts() {
        return;
    }
    let host = host_databases();
    let server = Server::start();
    let (device, first) = Device::enroll(&server, "pc1", &[]);
    let first = first.ok();
    assert!(first.stdout.contains(&format!("the password of {ADMIN} is now version 1")), "{first:#?}");

    // The device's password is the one the server reveals, and the only version is active.
    let account = device.admin_account_id(&server);
    let password = reveal(&server, &account);
    assert!(password.len() >= 8);
    assert!(device.has_password(ADMIN, &password));
    assert!(!device.has_password(ADMIN, "not-the-password"));
    assert_eq!(versions(&server, &account), vec![(1, "active".to_owned())]);
    assert_eq!(device.state()["passwordVersion"], 1);
    // Never printed.
    assert!(!first.stdout.contains(password.as_str()) && !first.stderr.contains(password.as_str()));

    // An administrator: in the admin group of the private root.
    let info = device.accounts.user_info(&AccountName::new(ADMIN).unwrap()).unwrap().unwrap();
    assert!(info.groups.iter().any(|g| g == "sudo"), "{info:?}");

    let shown = server.json(&["device", "show", &device.id]);
    assert!(shown["lastRotatedAt"].is_string(), "{shown}");
    assert_eq!(shown["openJobs"], 0, "{shown}");
    // The check-in reported the state before the rotation.
    assert_eq!(shown["passwordVersion"], serde_json::Value::Null, "{shown}");

    // The next run reports version 1 and agrees with the server: nothing to do.
    let second = device.agent(&server).ok();
    assert!(second.stdout.contains("0 job(s)"), "{second:#?}");
    let shown = server.json(&["device", "show", &device.id]);
    assert_eq!(shown["passwordVersion"], 1, "{shown}");
    assert_eq!(versions(&server, &account), vec![(1, "active".to_owned())]);
    assert!(device.has_password(ADMIN, &reveal(&server, &account)));
    assert_eq!(host_databases(), host, "the host's account databases changed");
}

#[test]
fn an_agent_that_lost_its_record_rotates_again() {
    if !can_manage_accounts() {
        return;
    }
    let server = Server::start();
    let (device, first) = Device::enroll(&server, "pc1", &[]);
    first.ok();
    let account = device.admin_account_id(&server);
    let before = reveal(&server, &account);

    // A state file of an earlier agent (no password version, no support accounts).
    device.edit_state(|s| {
        let map = s.as_object_mut().unwrap();
        map.remove("passwordVersion");
        map.remove("supportAccounts");
    });
    let again = device.agent(&server).ok();
    assert!(again.stdout.contains("is now version 2"), "{again:#?}");
    let after = reveal(&server, &account);
    assert_ne!(*before, *after);
    assert!(device.has_password(ADMIN, &after));
    assert_eq!(versions(&server, &account), vec![(2, "active".to_owned()), (1, "retired".to_owned())]);
    assert_eq!(device.state()["passwordVersion"], 2);
}

/// Ask for a support account on the device (the native API).
fn request_support(server: &Server, device: &Device) -> serde_json::Value {
    let (status, body) =
        server.api("POST", &format!("/api/v1/tenants/default/devices/{}/support-account", device.id), None);
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["state"], "queued", "{body}");
    body
}

/// The device's live support account with its password; `None` when there is none.
fn reveal_support(server: &Server, device: &Device) -> Option<serde_json::Value> {
    let body = serde_json::json!({"reason": "agent test checks the support account"});
    let (status, answer) = server.api(
        "POST",
        &format!("/api/v1/tenants/default/devices/{}/support-account/reveal", device.id),
        Some(&body),
    );
    match status {
        200 => Some(answer),
        404 => None,
        other => panic!("support account reveal answered {other}: {answer}"),
    }
}

fn support_name(username: &str) -> AccountName {
    assert!(latchkey_core::rotation::is_support_account_name(username), "{username}");
    AccountName::new(username).unwrap()
}

#[test]
fn support_accounts_are_created_in_two_phases_and_removed_when_the_server_says() {
    if !can_manage_accounts() {
        return;
    }
    let host = host_databases();
    let mut server = Server::start();
    let (device, first) = Device::enroll(&server, "pc1", &[]);
    first.ok();
    assert!(reveal_support(&server, &device).is_none());

    request_support(&server, &device);
    let created = device.agent(&server).ok();
    assert!(created.stdout.contains("created support account ADM-"), "{created:#?}");
    let live = reveal_support(&server, &device).expect("a live support account");
    let username = live["username"].as_str().unwrap().to_owned();
    let password = live["password"].as_str().unwrap().to_owned();
    assert!(!created.stdout.contains(&password) && !created.stderr.contains(&password));

    // On the device: the password the server reveals, an administrator, with an expiry date
    // on the day after the server's expiry (rounded up).
    assert!(device.has_password(&username, &password));
    let info = device.accounts.user_info(&support_name(&username)).unwrap().unwrap();
    assert!(info.groups.iter().any(|g| g == "sudo"), "{info:?}");
    let expires_at = time::OffsetDateTime::parse(
        live["expiresAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(info.expires, Some(expires_at.date().next_day().unwrap()), "{info:?} {live}");
    let state = device.state();
    let records = state["supportAccounts"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{state}");
    assert_eq!(records[0]["username"], username.as_str());
    assert_eq!(records[0]["confirmed"], true);
    assert_eq!(device.accounts.users_with_prefix("ADM-").unwrap(), vec![support_name(&username)]);

    // The next run finds nothing to do, and the account stays.
    let calm = device.agent(&server).ok();
    assert!(calm.stdout.contains("0 job(s)"), "{calm:#?}");
    assert!(device.has_password(&username, &password));

    // The server's lifetime of the account ends (moved into the past in its store): the next
    // check-in brings a removal job, which the agent carries out and confirms.
    server.stop();
    expire_support_accounts(&server);
    server.restart();
    let removed = device.agent(&server).ok();
    assert!(removed.stdout.contains(&format!("removed support account {username}")), "{removed:#?}");
    assert_eq!(device.accounts.user_info(&support_name(&username)).unwrap(), None);
    assert!(device.state()["supportAccounts"].as_array().unwrap().is_empty());
    assert!(reveal_support(&server, &device).is_none());
    let calm = device.agent(&server).ok();
    assert!(calm.stdout.contains("0 job(s)"), "{calm:#?}");
    assert_eq!(host_databases(), host, "the host's account databases changed");
}

#[test]
fn the_agent_removes_expired_and_unfinished_support_accounts_on_its_own() {
    if !can_manage_accounts() {
        return;
    }
    let mut server = Server::start();
    let (device, first) = Device::enroll(&server, "pc1", &[]);
    first.ok();
    request_support(&server, &device);
    device.agent(&server).ok();
    let live = reveal_support(&server, &device).expect("a live support account");
    let username = live["username"].as_str().unwrap().to_owned();

    // An account whose creation was interrupted (recorded, never confirmed) and one whose
    // lifetime ended, with the server out of reach: both are gone after the next run.
    let unfinished = support_name("ADM-0000ABCD");
    device.accounts.ensure_user(&unfinished).unwrap();
    device.edit_state(|s| {
        let records = s["supportAccounts"].as_array_mut().unwrap();
        records[0]["expiresAt"] = "2001-01-01T00:00:00Z".into();
        records.push(serde_json::json!({"username": "ADM-0000ABCD", "jobId": "j-unfinished", "confirmed": false}));
    });
    server.stop();
    let offline = device.agent(&server);
    assert_eq!(offline.code, 1, "{offline:#?}");
    assert!(offline.stderr.contains("check-in failed"), "{offline:#?}");
    assert!(offline.stdout.contains(&format!("removed support account {username}")), "{offline:#?}");
    assert_eq!(device.accounts.user_info(&support_name(&username)).unwrap(), None);
    assert_eq!(device.accounts.user_info(&unfinished).unwrap(), None);
    assert!(device.state()["supportAccounts"].as_array().unwrap().is_empty());
    assert!(device.accounts.users_with_prefix("ADM-").unwrap().is_empty());
}

/// Move the end of every support account's lifetime into the past, in the stopped server's
/// store.
fn expire_support_accounts(server: &Server) {
    use sqlx::Connection;
    let db = server.data_dir.join("latchkey.db");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut conn = sqlx::sqlite::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.unwrap();
        let past = (time::OffsetDateTime::now_utc() - time::Duration::minutes(1)).unix_timestamp() * 1000;
        let done = sqlx::query("UPDATE accounts SET expires_at = $1 WHERE kind = 'support' AND removed_at IS NULL")
            .bind(past)
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 1);
        conn.close().await.unwrap();
    });
}

#[test]
fn a_passphrase_policy_gives_the_device_a_passphrase() {
    if !can_manage_accounts() {
        return;
    }
    let server = Server::start();
    let policy = serde_json::json!({"passphraseWords": 6});
    let (status, body) = server.api("PUT", "/api/v1/tenants/default/rotation-policy", Some(&policy));
    assert_eq!(status, 200, "{body}");
    let (device, first) = Device::enroll(&server, "pc1", &[]);
    first.ok();
    let password = reveal(&server, &device.admin_account_id(&server));
    // EFF words (some hold a hyphen themselves) joined by hyphens.
    assert!(password.split('-').count() >= 6, "not a passphrase of 6 words");
    assert!(password.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'));
    assert!(device.has_password(ADMIN, &password));
}
