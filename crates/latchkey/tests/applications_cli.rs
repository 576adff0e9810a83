//! The application credential API's commands against a real `latchkey serve`: applications,
//! account policies, permissions, SSH keys and approvals.

// Test code: helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::expect_used)]

mod common;

use common::Server;

#[test]
fn applications_policies_permissions_and_keys() {
    let s = Server::start();
    let created = s.run(&["app", "create", "billing"]).ok();
    assert!(created.stdout.contains("created application billing"), "{created:#?}");
    assert!(created.stdout.contains("token endpoint user name: billing"), "{created:#?}");
    assert!(created.stderr.contains("shown once"), "{created:#?}");
    let password = created.stdout.lines().last().expect("the password line").trim().to_owned();
    assert!(password.starts_with("lkp_"), "{created:#?}");
    let listed = s.run(&["app", "list"]).ok();
    assert!(listed.stdout.contains("billing") && !listed.stdout.contains(&password), "{listed:#?}");
    assert!(s.run(&["app", "create", "BILLING"]).code != 0, "duplicate names are refused");

    let account = s.json(&["account", "add", "db-root", "--kind", "generic"]);
    let id = account["id"].as_str().expect("account id").to_owned();
    let policy = s
        .run(&[
            "account-policy",
            "create",
            "Strict",
            "--require-reason",
            "--require-confirmation",
            "00:07:00",
            "--reset-after",
            "30",
        ])
        .ok();
    assert!(policy.stdout.contains("account policy Strict"), "{policy:#?}");
    let table = s.run(&["account-policy", "list"]).ok();
    assert!(table.stdout.contains("00:07:00") && table.stdout.contains("30 min"), "{table:#?}");
    s.run(&["account-policy", "set", "strict", "--encrypt-key"]).ok();
    let list = s.json(&["account-policy", "list"]);
    assert_eq!(list["items"][0]["encryptKeyBeforeShowing"], true, "{list:#}");
    assert_eq!(list["items"][0]["requireReason"], false, "set replaces every setting: {list:#}");
    s.run(&["account-policy", "attach", &id, "Strict"]).ok();
    assert!(s.run(&["account-policy", "delete", "Strict"]).code != 0, "an attached policy stays");

    let granted = s.run(&["account", "grant", &id, "--app", "billing", "--view"]).ok();
    assert!(granted.stdout.contains("granted billing view"), "{granted:#?}");
    assert!(s.run(&["account", "grant", &id, "--app", "billing"]).code != 0, "--view or --change is needed");
    assert!(s.run(&["account", "grant", &id, "--app", "nope", "--view"]).code != 0);
    let perms = s.json(&["account", "permissions", &id]);
    assert_eq!(perms["items"][0]["principalName"], "billing", "{perms:#}");

    let key = s.run(&["account", "ssh-key", "generate", &id]).ok();
    assert!(key.stdout.starts_with("ssh-ed25519 "), "{key:#?}");
    assert!(key.stderr.contains("SHA256:"), "{key:#?}");

    let none = s.run(&["approvals", "list"]).ok();
    assert!(none.stdout.contains("no pending approval requests"), "{none:#?}");

    s.run(&["account", "revoke", &id, "--app", "billing"]).ok();
    assert!(s.run(&["account", "revoke", &id, "--app", "billing"]).code != 0, "nothing left to revoke");
    let off = s.run(&["app", "disable", "billing"]).ok();
    assert!(off.stdout.contains("is disabled"), "{off:#?}");
    s.run(&["app", "enable", "billing"]).ok();
    s.run(&["account-policy", "detach", &id]).ok();
    s.run(&["account-policy", "delete", "Strict"]).ok();
    s.run(&["app", "delete", "billing"]).ok();
    assert!(s.run(&["app", "list"]).ok().stdout.contains("no applications"));
}
