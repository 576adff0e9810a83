//! The `latchkey` CLI against a real `latchkey serve`.

// Test code: helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::expect_used)]

mod common;

use common::{Server, exec};

/// The id of a generic account created for the test.
fn new_account(s: &Server, name: &str) -> String {
    let a = s.json(&["account", "add", name, "--kind", "generic"]);
    a["id"].as_str().expect("account id").to_owned()
}

#[test]
fn device_add_list_show_remove() {
    let s = Server::start();
    let empty = s.run(&["device", "list"]).ok();
    assert_eq!(empty.stdout.trim(), "no devices in tenant default");

    let id = "0c9a5a4e-3d2b-4f7e-9a61-5b2f0d7c1e11";
    let added = s
        .run(&[
            "device",
            "add",
            "web01",
            "--device-id",
            id,
            "--os",
            "Linux",
            "--container-dn",
            "OU=Servers,DC=corp,DC=local",
        ])
        .ok();
    assert!(added.stdout.contains(id) && added.stdout.contains("web01"), "{added:#?}");
    assert!(added.stdout.contains("OU=Servers,DC=corp,DC=local"), "{added:#?}");
    let second = s.json(&["device", "add", "web02"]);
    let second_id = second["deviceId"].as_str().expect("generated device id").to_owned();
    assert_eq!(second["tenant"], "default");
    s.run(&["device", "add", "web03"]).ok();

    // A page size smaller than the list: every page is still fetched.
    let table = s.run(&["device", "list", "--limit", "2"]).ok();
    for name in ["web01", "web02", "web03"] {
        assert!(table.stdout.contains(name), "{name} missing: {table:#?}");
    }
    assert!(table.stdout.contains("DEVICE ID") && table.stdout.contains(id), "{table:#?}");
    let list = s.json(&["device", "list", "--limit", "1"]);
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 3, "{list:#}");
    assert!(list.get("next").is_none(), "the combined list has no next: {list:#}");

    let shown = s.json(&["device", "show", id]);
    assert_eq!(shown["deviceId"], id);
    assert_eq!(shown["name"], "web01");
    assert_eq!(shown["os"], "Linux");
    assert_eq!(shown["containerDn"], "OU=Servers,DC=corp,DC=local");
    let shown_table = s.run(&["device", "show", &second_id]).ok();
    assert!(shown_table.stdout.contains("web02") && shown_table.stdout.contains("poll interval"), "{shown_table:#?}");

    let removed = s.run(&["device", "remove", id]).ok();
    assert!(removed.stdout.contains(id), "{removed:#?}");
    let gone = s.run(&["device", "show", id]);
    assert_eq!(gone.code, 1, "{gone:#?}");
    assert!(gone.stderr.starts_with("error: Not found: no such device"), "{gone:#?}");
    assert!(gone.stdout.is_empty());
    let after = s.json(&["device", "list"]);
    let ids: Vec<&str> =
        after["items"].as_array().expect("items").iter().filter_map(|d| d["deviceId"].as_str()).collect();
    assert_eq!(ids.len(), 2);
    assert!(!ids.contains(&id));

    // A bad id is refused by the server with its message.
    let bad = s.run(&["device", "show", "not-a-uuid"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.starts_with("error: Invalid parameter:"), "{bad:#?}");
}

#[test]
fn set_password_from_stdin_then_read_it_with_a_reason() {
    let s = Server::start();
    let id = new_account(&s, "root");
    // Only the first line counts, without its line ending; spaces are part of the password.
    let password = " correct horse\tbattery staple ";
    let set = s.run_stdin(&["account", "set-password", &id], &format!("{password}\r\nsecond line\n")).ok();
    assert!(set.stdout.contains("secret version 1 is active"), "{set:#?}");
    assert!(!set.stdout.contains("horse") && !set.stderr.contains("horse"), "the password was printed: {set:#?}");

    let got = s.run(&["account", "get-password", &id, "--reason", "restore backups", "--ticket", "CHG-42"]).ok();
    assert_eq!(got.stdout, format!("{password}\n"));
    assert!(got.stderr.is_empty(), "{got:#?}");

    let revealed = s.json(&["account", "get-password", &id, "--reason", "second look"]);
    assert_eq!(revealed["password"], password);
    assert_eq!(revealed["version"], 1);
    assert_eq!(revealed["accountName"], "root");

    let table = s.run(&["audit", "list", "--action", "secret.read"]).ok();
    assert!(table.stdout.contains("restore backups") && table.stdout.contains("second look"), "{table:#?}");
    assert!(table.stdout.contains("REASON") && table.stdout.contains(&id), "{table:#?}");
    assert!(!table.stdout.contains("horse"));
    let events = s.json(&["audit", "list", "--action", "secret.read"]);
    let events = events["items"].as_array().expect("items");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["reason"], "restore backups");
    assert_eq!(events[0]["ticket"], "CHG-42");
    assert_eq!(events[0]["outcome"], "success");
    assert_eq!(events[0]["objectId"], id.as_str());

    // A new version replaces the old one.
    s.run_stdin(&["account", "set-password", &id], "n3w-password\n").ok();
    let got = s.run(&["account", "get-password", &id, "--reason", "after change"]).ok();
    assert_eq!(got.stdout, "n3w-password\n");
    let versions = s.json(&["account", "versions", &id]);
    assert_eq!(versions["items"].as_array().expect("items").len(), 2);
    let account = s.json(&["account", "show", &id]);
    assert_eq!(account["activeVersion"], 2);
}

#[test]
fn get_password_without_reason_fails_clearly_and_reads_nothing() {
    let s = Server::start();
    let id = new_account(&s, "svc");
    s.run_stdin(&["account", "set-password", &id], "topsecret\n").ok();
    for args in
        [vec!["account", "get-password", id.as_str()], vec!["account", "get-password", id.as_str(), "--reason", "   "]]
    {
        let out = s.run(&args);
        assert_eq!(out.code, 1, "{out:#?}");
        assert!(out.stdout.is_empty(), "{out:#?}");
        assert!(out.stderr.starts_with("error: a reason is required"), "{out:#?}");
        assert!(out.stderr.contains("--reason"), "{out:#?}");
    }
    let reads = s.run(&["audit", "list", "--action", "secret.read"]).ok();
    assert_eq!(reads.stdout.trim(), "no matching audit events");
}

#[test]
fn set_password_needs_input_and_generate_prints_what_is_stored() {
    let s = Server::start();
    let id = new_account(&s, "admin");
    // Nothing on stdin: refused, nothing stored.
    let none = s.run_stdin(&["account", "set-password", &id], "");
    assert_eq!(none.code, 1, "{none:#?}");
    assert!(none.stderr.contains("no password on stdin"), "{none:#?}");
    let blank = s.run_stdin(&["account", "set-password", &id], "\n");
    assert_eq!(blank.code, 1, "{blank:#?}");
    assert!(s.json(&["account", "show", &id])["activeVersion"].is_null());

    let generated = s.run(&["account", "set-password", &id, "--generate", "--length", "32"]).ok();
    let lines: Vec<&str> = generated.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout holds only the password: {generated:#?}");
    let password = lines[0];
    assert_eq!(password.chars().count(), 32);
    assert!(generated.stderr.contains("shown once"), "{generated:#?}");
    assert!(!generated.stderr.contains(password));

    let got = s.run(&["account", "get-password", &id, "--reason", "check generated"]).ok();
    assert_eq!(got.stdout.trim_end_matches('\n'), password);

    // Another generated password differs, and the default length is 24.
    let again = s.run(&["account", "set-password", &id, "--generate"]).ok();
    let second = again.stdout.trim_end_matches('\n');
    assert_eq!(second.chars().count(), 24);
    assert_ne!(second, password);
    let got = s.run(&["account", "get-password", &id, "--reason", "check again"]).ok();
    assert_eq!(got.stdout.trim_end_matches('\n'), second);

    let too_short = s.run(&["account", "set-password", &id, "--generate", "--length", "4"]);
    assert_ne!(too_short.code, 0);
}

#[test]
fn audit_verify_counts_every_event() {
    let s = Server::start();
    s.run(&["device", "add", "pc1"]).ok();
    s.run(&["group", "add", "ops"]).ok();
    let all = s.json(&["audit", "list", "--all-tenants", "--limit", "1000"]);
    let n = all["items"].as_array().expect("items").len();
    assert!(n >= 4, "bootstrap (2) + device + group: {all:#}");
    let verify = s.run(&["audit", "verify"]).ok();
    assert_eq!(verify.stdout.trim(), format!("audit chain OK: {n} events verified"));
    let v = s.json(&["audit", "verify"]);
    assert_eq!(v["ok"], true);
    assert_eq!(v["checked"], n);
}

#[test]
fn audit_verify_reports_a_tampered_chain() {
    let mut s = Server::start();
    s.run(&["device", "add", "pc1"]).ok();
    s.run(&["device", "add", "pc2"]).ok();
    s.stop();
    let db = s.data_dir.join("latchkey.db");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::sqlite::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .expect("open the store");
        let done = sqlx::query("UPDATE audit_events SET actor = 'someone-else' WHERE seq = 3")
            .execute(&mut conn)
            .await
            .expect("tamper");
        assert_eq!(done.rows_affected(), 1);
        conn.close().await.expect("close");
    });
    s.restart();
    let out = s.run(&["audit", "verify"]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out.stderr.starts_with("error: audit chain BROKEN at event 3: "), "{out:#?}");
    assert!(!out.stdout.contains("OK"));
}

#[test]
fn wrong_token_is_an_authentication_error() {
    let s = Server::start();
    for token in ["lk_admin_not-a-real-token", "garbage"] {
        let mut cmd = s.bare_command();
        cmd.env("LATCHKEY_TOKEN", token).args(["device", "list"]);
        let out = exec(cmd, None);
        assert_eq!(out.code, 1, "{out:#?}");
        assert!(out.stdout.is_empty(), "{out:#?}");
        assert!(out.stderr.starts_with("error: Authentication required"), "{out:#?}");
        assert!(!out.stderr.contains(token), "the token was echoed: {out:#?}");
    }
    // --token overrides the variable.
    let mut cmd = s.bare_command();
    cmd.env("LATCHKEY_TOKEN", "lk_admin_wrong").args(["device", "list", "--token", &s.token]);
    exec(cmd, None).ok();
}

#[test]
fn token_falls_back_to_the_data_dir() {
    let s = Server::start();
    // LATCHKEY_DATA_DIR names the data directory.
    let mut cmd = s.bare_command();
    cmd.env("LATCHKEY_DATA_DIR", &s.data_dir).args(["device", "add", "from-env-dir"]);
    exec(cmd, None).ok();
    // ./latchkey-data in the working directory.
    let mut cmd = s.bare_command();
    cmd.current_dir(s.tmp_path()).args(["device", "list"]);
    let out = exec(cmd, None).ok();
    assert!(out.stdout.contains("from-env-dir"), "{out:#?}");
    // Neither: the server refuses, and the message says how to give a token.
    let mut cmd = s.bare_command();
    cmd.args(["device", "list"]);
    let out = exec(cmd, None);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out.stderr.starts_with("error: Authentication required"), "{out:#?}");
    assert!(out.stderr.contains("no admin token given"), "{out:#?}");
}

#[test]
fn rekey_retire_old_keeps_secrets_readable() {
    let mut s = Server::start();
    let a = new_account(&s, "a");
    let b = new_account(&s, "b");
    s.run_stdin(&["account", "set-password", &a], "alpha-pass\n").ok();
    s.run_stdin(&["account", "set-password", &b], "bravo-pass\n").ok();
    let before = s.json(&["admin", "vault-status"]);
    let old_key = before["activeKeyId"].as_str().expect("active key").to_owned();

    let out = s.run(&["admin", "rekey", "--batch", "1", "--retire-old"]).ok();
    assert!(out.stdout.contains("re-wrapped 1, 1 remaining"), "{out:#?}");
    assert!(out.stdout.contains("re-wrapped 2, 0 remaining"), "{out:#?}");
    assert!(out.stdout.contains(&format!("retired key {old_key}")), "{out:#?}");

    let status = s.json(&["admin", "vault-status"]);
    let keys = status["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "{status:#}");
    assert_ne!(keys[0]["id"], old_key.as_str());
    assert_eq!(keys[0]["active"], true);
    assert_eq!(keys[0]["envelopes"], 2);
    assert_eq!(status["remaining"], 0);
    let table = s.run(&["admin", "vault-status"]).ok();
    assert_eq!(table.stdout.matches("| yes").count(), 1, "{table:#?}");
    assert!(!table.stdout.contains(&old_key));

    for (id, want) in [(&a, "alpha-pass"), (&b, "bravo-pass")] {
        let got = s.run(&["account", "get-password", id, "--reason", "after rekey"]).ok();
        assert_eq!(got.stdout, format!("{want}\n"));
    }

    // --resume adds no key and has nothing left to do.
    let resumed = s.run(&["admin", "rekey", "--resume"]).ok();
    assert!(resumed.stdout.contains("nothing to re-wrap"), "{resumed:#?}");
    assert_eq!(s.json(&["admin", "vault-status"])["keys"].as_array().expect("keys").len(), 1);

    // The new key file is what a restarted server uses.
    s.restart();
    let got = s.run(&["account", "get-password", &a, "--reason", "after restart"]).ok();
    assert_eq!(got.stdout, "alpha-pass\n");
}

#[test]
fn api_client_secret_is_printed_once() {
    let s = Server::start();
    let out = s.run(&["api-client", "create", "ci-runner"]).ok();
    let secret = out
        .stdout
        .lines()
        .find(|l| l.starts_with("lk_client"))
        .unwrap_or_else(|| panic!("no lk_client secret: {out:#?}"))
        .to_owned();
    assert!(secret.len() > "lk_client_".len() + 16, "{secret}");
    assert!(out.stderr.contains("shown once"), "{out:#?}");
    let list = s.run(&["api-client", "list"]).ok();
    assert!(list.stdout.contains("ci-runner"), "{list:#?}");
    assert!(!list.stdout.contains(&secret));
    let json = s.run(&["api-client", "list", "--json"]).ok();
    assert!(!json.stdout.contains(&secret));
}

#[test]
fn tenant_scoped_token_from_token_create() {
    let s = Server::start();
    s.run(&["tenant", "add", "acme", "--name", "Acme Corp"]).ok();
    let tenants = s.run(&["tenant", "list"]).ok();
    assert!(tenants.stdout.contains("acme") && tenants.stdout.contains("Acme Corp"), "{tenants:#?}");

    let out = s.run(&["token", "create", "helpdesk", "--tenant-scope", "acme", "--expires-in", "3600"]).ok();
    let token = out.stdout.lines().last().expect("token line").to_owned();
    assert!(token.starts_with("lk_admin"), "{out:#?}");
    assert!(out.stdout.contains("tenant acme"), "{out:#?}");

    let mut cmd = s.bare_command();
    cmd.env("LATCHKEY_TOKEN", &token).env("LATCHKEY_TENANT", "acme").args(["device", "add", "kiosk"]);
    exec(cmd, None).ok();
    // The scoped token sees only its tenant and cannot create tenants.
    let mut cmd = s.bare_command();
    cmd.env("LATCHKEY_TOKEN", &token).args(["device", "list", "--tenant", "default"]);
    let other = exec(cmd, None);
    assert_eq!(other.code, 1);
    assert!(other.stderr.contains("no such tenant"), "{other:#?}");
    let mut cmd = s.bare_command();
    cmd.env("LATCHKEY_TOKEN", &token).args(["tenant", "add", "evil"]);
    let forbidden = exec(cmd, None);
    assert_eq!(forbidden.code, 1);
    assert!(forbidden.stderr.starts_with("error: Forbidden:"), "{forbidden:#?}");

    let acme = s.json(&["device", "list", "--tenant", "acme"]);
    assert_eq!(acme["items"][0]["name"], "kiosk");
    assert_eq!(s.json(&["device", "list"])["items"].as_array().expect("items").len(), 0);
}

#[test]
fn group_membership() {
    let s = Server::start();
    let group = s.json(&["group", "add", "ops", "--description", "operations"]);
    let gid = group["id"].as_str().expect("group id").to_owned();
    let user = s.json(&["user", "add", "alice", "--display-name", "Alice", "--email", "alice@example.com"]);
    let uid = user["id"].as_str().expect("user id").to_owned();
    let device = s.json(&["device", "add", "pc1"]);
    let did = device["deviceId"].as_str().expect("device id").to_owned();

    assert_eq!(s.run(&["group", "members", &gid]).ok().stdout.trim(), format!("group {gid} has no members"));
    s.run(&["group", "add-member", &gid, "--user", &uid]).ok();
    s.run(&["group", "add-member", &gid, "--device", &did]).ok();
    let members = s.json(&["group", "members", &gid]);
    let members = members["items"].as_array().expect("items");
    assert_eq!(members.len(), 2);
    assert!(members.iter().any(|m| m["kind"] == "user" && m["id"] == uid.as_str()));
    assert!(members.iter().any(|m| m["kind"] == "device" && m["id"] == did.as_str()));

    s.run(&["group", "remove-member", &gid, "--user", &uid]).ok();
    let table = s.run(&["group", "members", &gid]).ok();
    assert!(table.stdout.contains(&did) && !table.stdout.contains(&uid), "{table:#?}");

    // Exactly one member kind.
    let both = s.run(&["group", "add-member", &gid, "--user", &uid, "--device", &did]);
    assert_ne!(both.code, 0);
    let users = s.run(&["user", "list"]).ok();
    assert!(users.stdout.contains("alice@example.com"), "{users:#?}");
}

#[test]
fn unreachable_server_is_reported() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut cmd = std::process::Command::new(common::BIN);
    cmd.env_remove("LATCHKEY_TOKEN")
        .env("LATCHKEY_URL", format!("http://127.0.0.1:{port}"))
        .env("LATCHKEY_DATA_DIR", "/nonexistent-latchkey-dir")
        .args(["health"]);
    let out = exec(cmd, None);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out.stderr.starts_with("error: cannot reach the server"), "{out:#?}");
}

#[test]
fn https_needs_the_ca_certificate() {
    let s = Server::start_tls();
    assert!(s.url.starts_with("https://"));
    let ca = s.ca_cert.clone().expect("CA certificate");

    // Trusted through the variable: health and an authenticated call.
    let mut cmd = s.command();
    cmd.env("LATCHKEY_CA_CERT", &ca).arg("health");
    let out = exec(cmd, None).ok();
    assert!(out.stdout.contains("ready"), "{out:#?}");
    let mut cmd = s.command();
    cmd.args(["device", "add", "tls-host", "--ca-cert"]).arg(&ca);
    exec(cmd, None).ok();

    // Not trusted: the connection is refused, and the message says why.
    let out = s.run(&["device", "list"]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out.stderr.starts_with("error: cannot reach the server"), "{out:#?}");
    assert!(out.stderr.to_lowercase().contains("certificate"), "{out:#?}");

    let mut cmd = s.command();
    cmd.args(["device", "list", "--ca-cert", "/nonexistent/ca.pem"]);
    let out = exec(cmd, None);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out.stderr.starts_with("error: cannot read the CA certificate /nonexistent/ca.pem"), "{out:#?}");
}

/// A device registered for the test (no agent runs for it).
fn new_device(s: &Server, name: &str) -> String {
    let d = s.json(&["device", "add", name]);
    d["deviceId"].as_str().expect("device id").to_owned()
}

#[test]
fn device_rotate_jobs_password_and_history() {
    let s = Server::start();
    let id = new_device(&s, "pc-rotate");
    let queued = s.run(&["device", "rotate", &id]).ok();
    assert!(queued.stdout.contains("queued as job"), "{queued:#?}");
    let first = s.json(&["device", "rotate", &id]);
    let again = s.json(&["device", "rotate", &id]);
    assert_eq!(first["id"], again["id"], "one open rotation at a time");
    assert_eq!((first["kind"].as_str(), first["state"].as_str()), (Some("rotate_password"), Some("open")));

    let jobs = s.run(&["device", "jobs", &id]).ok();
    for text in ["JOB ID", "rotate_password", "open", "requested"] {
        assert!(jobs.stdout.contains(text), "{text} missing: {jobs:#?}");
    }
    assert_eq!(s.json(&["device", "jobs", &id])["items"].as_array().expect("items").len(), 1);

    // The list shows the new columns.
    let list = s.run(&["device", "list"]).ok();
    for header in ["LAST SEEN", "LAST ROTATION", "PW VERSION", "OPEN JOBS", "OVERDUE"] {
        assert!(list.stdout.contains(header), "{header} missing: {list:#?}");
    }
    let listed = s.json(&["device", "list"]);
    assert_eq!(listed["items"][0]["openJobs"], 1);
    let shown = s.run(&["device", "show", &id]).ok();
    assert!(shown.stdout.contains("open jobs") && shown.stdout.contains("password version"), "{shown:#?}");

    // No agent has escrowed a password yet.
    let no_reason = s.run(&["device", "password", &id]);
    assert_eq!(no_reason.code, 1, "{no_reason:#?}");
    assert!(no_reason.stderr.starts_with("error: a reason is required") && no_reason.stderr.contains("--reason"));
    let none = s.run(&["device", "password", &id, "--reason", "locked out"]);
    assert_eq!(none.code, 1, "{none:#?}");
    assert!(none.stderr.starts_with("error: Not found: no such escrowed admin password"), "{none:#?}");
    assert!(none.stdout.is_empty());
    let bad_version = s.run(&["device", "password", &id, "--reason", "x", "--version", "0"]);
    assert_ne!(bad_version.code, 0, "{bad_version:#?}");
    let history = s.run(&["device", "history", &id]).ok();
    assert_eq!(history.stdout.trim(), format!("no admin password escrowed for device {id} yet"));

    let unknown = s.run(&["device", "rotate", "0c9a5a4e-3d2b-4f7e-9a61-5b2f0d7c1e99"]);
    assert_eq!(unknown.code, 1, "{unknown:#?}");
    assert!(unknown.stderr.starts_with("error: Not found: no such device"), "{unknown:#?}");
    let reads = s.json(&["audit", "list", "--action", "secret.read"]);
    let reads = reads["items"].as_array().expect("items");
    assert_eq!(reads.len(), 1, "the refused read is audited once: {reads:?}");
    assert_eq!((reads[0]["outcome"].as_str(), reads[0]["reason"].as_str()), (Some("failed"), Some("locked out")));
}

#[test]
fn policy_set_and_list() {
    let s = Server::start();
    let empty = s.run(&["policy", "list"]).ok();
    assert!(empty.stdout.starts_with("no rotation policies in tenant default"), "{empty:#?}");

    let set =
        s.run(&["policy", "set", "--length", "32", "--classes", "lower,digits", "--poll-interval-minutes", "10"]).ok();
    for text in ["tenant default", "32 chars lower,digits", "10m", "30d", "1d"] {
        assert!(set.stdout.contains(text), "{text} missing: {set:#?}");
    }
    s.run(&["group", "add", "kiosks"]).ok();
    let group = s.json(&["policy", "set", "--group", "kiosks", "--passphrase-words", "6", "--priority", "-5"]);
    assert_eq!((group["passphraseWords"].as_i64(), group["priority"].as_i64()), (Some(6), Some(-5)));

    let table = s.run(&["policy", "list"]).ok();
    for text in ["SCOPE", "tenant", "group kiosks", "6 words", "32 chars lower,digits", "-5"] {
        assert!(table.stdout.contains(text), "{text} missing: {table:#?}");
    }
    let listed = s.json(&["policy", "list"]);
    let items = listed["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["pollIntervalSeconds"], 600);
    assert_eq!(items[0]["length"], 32);

    // Bad values are refused and change nothing.
    let bad_class = s.run(&["policy", "set", "--classes", "lower,emoji"]);
    assert_eq!(bad_class.code, 1, "{bad_class:#?}");
    assert!(bad_class.stderr.starts_with("error: Invalid field: classes"), "{bad_class:#?}");
    for args in [
        vec!["policy", "set", "--length", "4"],
        vec!["policy", "set", "--priority", "5"],
        vec!["policy", "set", "--history", "0"],
    ] {
        let out = s.run(&args);
        assert_ne!(out.code, 0, "{args:?}: {out:#?}");
        assert!(out.stdout.is_empty(), "{out:#?}");
    }
    let no_group = s.run(&["policy", "set", "--group", "nosuch", "--length", "20"]);
    assert_eq!(no_group.code, 1, "{no_group:#?}");
    assert!(no_group.stderr.contains("no group named \"nosuch\""), "{no_group:#?}");
    assert_eq!(s.json(&["policy", "list"])["items"].as_array().expect("items"), &items);
    let sets = s.json(&["audit", "list", "--action", "rotation_policy.set"]);
    assert_eq!(sets["items"].as_array().expect("items").len(), 2);
}

#[test]
fn support_account_request_and_get() {
    let s = Server::start();
    let id = new_device(&s, "pc-support");
    let out = s.run(&["support-account", "request", &id]).ok();
    assert!(out.stdout.starts_with(&format!("support account queued on device {id}")), "{out:#?}");
    assert!(out.stdout.contains("has not checked in recently"), "{out:#?}");
    let again = s.json(&["support-account", "request", &id]);
    assert_eq!(again["state"], "queued");
    assert!(again["estimatedWaitTime"].is_null());
    let jobs = s.json(&["device", "jobs", &id]);
    let jobs = jobs["items"].as_array().expect("items");
    assert_eq!(jobs.len(), 1, "one job for both requests: {jobs:?}");
    assert_eq!(jobs[0]["kind"], "create_support_account");
    assert_eq!(jobs[0]["id"], again["jobId"]);

    let no_reason = s.run(&["support-account", "get", &id]);
    assert_eq!(no_reason.code, 1, "{no_reason:#?}");
    assert!(no_reason.stderr.contains("--reason"), "{no_reason:#?}");
    let not_ready = s.run(&["support-account", "get", &id, "--reason", "user locked out"]);
    assert_eq!(not_ready.code, 1, "{not_ready:#?}");
    assert!(not_ready.stderr.starts_with("error: Not found: no such live support account"), "{not_ready:#?}");
    let requests = s.json(&["audit", "list", "--action", "support_account.request"]);
    assert_eq!(requests["items"].as_array().expect("items").len(), 2);
}

#[test]
fn access_targets_import_explain_and_who_can_read() {
    let s = Server::start();
    let user = s.json(&["user", "add", "erin"]);
    let uid = user["id"].as_str().expect("user id").to_owned();
    let group = s.json(&["group", "add", "Helpdesk"]);
    let gid = group["id"].as_str().expect("group id").to_owned();
    s.run(&["group", "add-member", &gid, "--user", &uid]).ok();
    s.run(&["device", "add", "pc-7", "--container-dn", "OU=Laptops,OU=Computers,DC=dev1,DC=local"]).ok();
    let config = s.tmp_path().join("web.config");
    std::fs::write(
        &config,
        r#"<configuration><lithnet-laps><targets>
  <target name="OU=Computers,DC=dev1,DC=local" type="Container" expire-after="6:12">
    <audit emailOnSuccess="false" emailAddresses="sec@dev1.local"/>
    <readers><reader principal="DEV1\Helpdesk"/></readers>
  </target>
  <target name="PC-8" type="Computer"><readers><reader principal="DEV1\ghost"/></readers></target>
</targets></lithnet-laps></configuration>"#,
    )
    .expect("write web.config");
    let path = config.to_str().expect("utf-8 path");

    // An unknown reader: reported with its line, exit code 1, nothing imported.
    let refused = s.run(&["import", "lithnet-targets", path]);
    assert_eq!(refused.code, 1, "{refused:#?}");
    assert!(refused.stdout.contains("line 6: error: reader `DEV1\\ghost`"), "{refused:#?}");
    assert!(refused.stderr.contains("nothing was imported"), "{refused:#?}");
    assert!(s.run(&["access", "list"]).ok().stdout.contains("no targets"));

    let fixed = std::fs::read_to_string(&config).expect("read").replace("DEV1\\ghost", "erin@dev1.local");
    std::fs::write(&config, fixed).expect("write");
    let dry = s.run(&["import", "lithnet-targets", path, "--dry-run"]).ok();
    assert!(dry.stdout.contains("dry run: 2 target(s) would be imported"), "{dry:#?}");
    assert!(s.run(&["access", "list"]).ok().stdout.contains("no targets"));
    let done = s.run(&["import", "lithnet-targets", path]).ok();
    assert!(done.stdout.contains("imported 2 target(s)"), "{done:#?}");
    let list = s.json(&["access", "list"]);
    assert_eq!(list["items"][0]["expireAfter"], "06:12:00");

    let explain = s.run(&["access", "explain", "--user", "DEV1\\erin", "--device", "PC-7"]).ok();
    assert!(explain.stdout.contains("allowed"), "{explain:#?}");
    assert!(explain.stdout.contains("erin is a member of group `Helpdesk`, a reader"), "{explain:#?}");
    let who = s.json(&["access", "who-can-read", "pc-7"]);
    assert_eq!(who["readers"][0]["principal"], "DEV1\\Helpdesk");

    // Add a Computer target: it decides for pc-7 now, and lists nobody.
    let added = s.json(&["access", "add", "--type", "Computer", "--name", "pc-7", "--grant", "history"]);
    assert_eq!(added["position"], 3);
    let explain = s.json(&["access", "explain", "--user", "erin", "--device", "pc-7"]);
    assert_eq!(explain["allowed"], false);
    assert_eq!(explain["target"]["id"], added["id"]);
    let bad = s.run(&["access", "add", "--type", "Printer", "--name", "x"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("Printer"), "{bad:#?}");
    let id = added["id"].as_str().expect("id");
    s.run(&["access", "move", id, "--position", "1"]).ok();
    assert_eq!(s.json(&["access", "list"])["items"][0]["id"], added["id"]);
    s.run(&["access", "remove", id]).ok();
    assert_eq!(s.json(&["access", "list"])["items"].as_array().expect("items").len(), 2);
}
