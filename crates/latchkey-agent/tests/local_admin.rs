//! Just-in-time local administrators against the real shadow-utils tools on a private root:
//! granted (created, password set, in the admin group, expiry date set, recorded), extended,
//! revoked, removed at the end time by the agent on its own; accounts the agent did not create
//! are never touched. Every test checks that the host's account databases kept their bytes.
//!
//! Needs root: otherwise each test is skipped with a note, unless `LATCHKEY_REQUIRE_SERVICES=1`
//! or `CI=true`, in which case it fails.

#![cfg(target_os = "linux")]
// Test code: helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::os::unix::fs::PermissionsExt;

use latchkey_agent::local_admin::{Grant, LocalAdminError, LocalAdmins, Revoked, expiry_date};
use latchkey_agent::{AccountName, LinuxAccounts, LocalAccounts, prepare_private_root};
use secrecy::SecretString;
use tempfile::TempDir;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const HOST_DATABASES: [&str; 4] = ["/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"];
const NOW: OffsetDateTime = datetime!(2030-01-02 03:04:05 UTC);

/// A private root, a state directory, and the host's databases before the test.
struct Fixture {
    root: TempDir,
    state: TempDir,
    accounts: LinuxAccounts,
    host: Vec<Option<Vec<u8>>>,
}

impl Fixture {
    fn new() -> Option<Self> {
        if !is_root() {
            let required = std::env::var("LATCHKEY_REQUIRE_SERVICES").is_ok_and(|v| v.trim() == "1")
                || std::env::var("CI").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
            assert!(!required, "these tests need root (LATCHKEY_REQUIRE_SERVICES=1 or CI=true is set)");
            eprintln!("note: not running as root; skipping the just-in-time administrator test");
            return None;
        }
        let host = HOST_DATABASES.iter().map(|p| fs::read(p).ok()).collect();
        let root = tempfile::tempdir().unwrap();
        prepare_private_root(root.path()).unwrap();
        let accounts = LinuxAccounts::new(root.path()).unwrap();
        Some(Self { root, state: tempfile::tempdir().unwrap(), accounts, host })
    }

    fn admins(&self) -> LocalAdmins {
        LocalAdmins::load(self.state.path()).unwrap()
    }

    fn etc(&self, file: &str) -> String {
        fs::read_to_string(self.root.path().join("etc").join(file)).unwrap()
    }

    fn exists(&self, name: &str) -> bool {
        self.etc("passwd").lines().any(|l| l.split(':').next() == Some(name))
    }

    fn sudo_members(&self) -> Vec<String> {
        let group = self.etc("group");
        let line = group.lines().find(|l| l.starts_with("sudo:")).unwrap();
        line.split(':').nth(3).unwrap().split(',').filter(|m| !m.is_empty()).map(str::to_owned).collect()
    }

    fn grant(
        &self,
        admins: &mut LocalAdmins,
        name: &str,
        password: &str,
        until: OffsetDateTime,
    ) -> Result<(), LocalAdminError> {
        let name = AccountName::new(name).unwrap();
        let password = SecretString::from(password);
        let grant = Grant {
            name: &name,
            password: &password,
            until,
            job_id: "job-1",
            admin_group: "sudo",
            reserved: &["latchkey-admin"],
        };
        admins.grant(&self.accounts, &grant, NOW)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let now: Vec<Option<Vec<u8>>> = HOST_DATABASES.iter().map(|p| fs::read(p).ok()).collect();
        if !std::thread::panicking() {
            assert!(now == self.host, "the host's account databases changed");
        }
    }
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

fn name(s: &str) -> AccountName {
    AccountName::new(s).unwrap()
}

#[test]
fn a_grant_makes_an_administrator_and_a_revoke_removes_it() {
    let Some(f) = Fixture::new() else { return };
    let mut admins = f.admins();
    let until = NOW + Duration::hours(2);
    f.grant(&mut admins, "alice-jit", "Temp-Pass-1", until).unwrap();

    assert!(f.exists("alice-jit"));
    assert!(f.accounts.verify_password(&name("alice-jit"), &SecretString::from("Temp-Pass-1")).unwrap());
    assert!(!f.accounts.verify_password(&name("alice-jit"), &SecretString::from("other")).unwrap());
    let info = f.accounts.user_info(&name("alice-jit")).unwrap().unwrap();
    assert_eq!(info.groups, ["sudo"]);
    assert_eq!(info.expires, Some(expiry_date(until)));
    // Recorded in the state directory, readable by root only, without the password.
    let file = f.state.path().join(LocalAdmins::FILE);
    assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let text = fs::read_to_string(&file).unwrap();
    assert!(text.contains("alice-jit") && !text.contains("Temp-Pass-1"), "{text}");
    assert_eq!(f.admins().records()[0].until, until);

    // Extended: the new password and end time, the same account.
    let later = until + Duration::days(2);
    f.grant(&mut admins, "alice-jit", "Temp-Pass-2", later).unwrap();
    assert!(f.accounts.verify_password(&name("alice-jit"), &SecretString::from("Temp-Pass-2")).unwrap());
    assert_eq!(f.accounts.user_info(&name("alice-jit")).unwrap().unwrap().expires, Some(expiry_date(later)));
    assert_eq!(f.admins().records().len(), 1);
    assert_eq!(f.admins().records()[0].until, later);
    // The grant's older job handed out after its extension does not move the end time back.
    f.grant(&mut admins, "alice-jit", "Temp-Pass-2", until).unwrap();
    assert_eq!(f.admins().records()[0].until, later);
    assert_eq!(f.accounts.user_info(&name("alice-jit")).unwrap().unwrap().expires, Some(expiry_date(later)));

    assert_eq!(admins.revoke(&f.accounts, &name("alice-jit")).unwrap(), Revoked::Removed);
    assert!(!f.exists("alice-jit"));
    assert!(f.sudo_members().is_empty());
    assert!(f.admins().records().is_empty());
    // Revoking again: nothing recorded, nothing to do.
    assert_eq!(admins.revoke(&f.accounts, &name("alice-jit")).unwrap(), Revoked::NotRecorded);
}

#[test]
fn the_agent_removes_accounts_at_their_end_time_on_its_own() {
    let Some(f) = Fixture::new() else { return };
    let mut admins = f.admins();
    f.grant(&mut admins, "early-jit", "Temp-Pass-1", NOW + Duration::minutes(30)).unwrap();
    f.grant(&mut admins, "late-jit", "Temp-Pass-2", NOW + Duration::hours(3)).unwrap();
    f.grant(&mut admins, "gone-jit", "Temp-Pass-3", NOW + Duration::minutes(10)).unwrap();
    // Someone deleted one by hand: its end still clears the record.
    f.accounts.delete_user(&name("gone-jit")).unwrap();

    let mut later = f.admins();
    let (removed, errors) = later.expire(&f.accounts, NOW + Duration::hours(1));
    assert!(errors.is_empty(), "{errors:?}");
    let mut removed = removed;
    removed.sort();
    assert_eq!(removed, ["early-jit", "gone-jit"]);
    assert!(!f.exists("early-jit") && f.exists("late-jit"));
    assert_eq!(f.sudo_members(), ["late-jit"]);
    let left: Vec<String> = f.admins().records().iter().map(|r| r.username.clone()).collect();
    assert_eq!(left, ["late-jit"]);
    // Nothing is due before its time.
    assert_eq!(later.expire(&f.accounts, NOW + Duration::hours(2)), (Vec::new(), Vec::new()));
}

#[test]
fn accounts_the_agent_did_not_create_are_never_touched() {
    let Some(f) = Fixture::new() else { return };
    // A person's own account on the device.
    f.accounts.ensure_user(&name("bob")).unwrap();
    f.accounts.set_password(&name("bob"), &SecretString::from("bobs-own")).unwrap();
    let before = (f.etc("passwd"), f.etc("shadow"), f.etc("group"));
    let mut admins = f.admins();

    let refused = f.grant(&mut admins, "bob", "Temp-Pass-1", NOW + Duration::hours(1));
    assert!(
        matches!(&refused, Err(LocalAdminError::Refused(why)) if why.contains("not created by Latchkey")),
        "{refused:?}"
    );
    assert_eq!(admins.revoke(&f.accounts, &name("bob")).unwrap(), Revoked::NotRecorded);
    for reserved in ["root", "latchkey-admin", "ADM-5A2F2169"] {
        let refused = f.grant(&mut admins, reserved, "Temp-Pass-1", NOW + Duration::hours(1));
        assert!(matches!(refused, Err(LocalAdminError::Refused(_))), "{reserved}: {refused:?}");
    }
    // A grant that already ended.
    let ended = f.grant(&mut admins, "carol-jit", "Temp-Pass-1", NOW);
    assert!(matches!(ended, Err(LocalAdminError::Refused(_))), "{ended:?}");

    assert_eq!((f.etc("passwd"), f.etc("shadow"), f.etc("group")), before);
    assert!(f.accounts.verify_password(&name("bob"), &SecretString::from("bobs-own")).unwrap());
    assert!(f.admins().records().is_empty());
}

#[test]
fn a_grant_that_fails_part_way_leaves_nothing_behind() {
    let Some(f) = Fixture::new() else { return };
    let mut admins = f.admins();
    let account = name("dave-jit");
    let password = SecretString::from("Temp-Pass-1");
    // No such group in the root: adding the account to it fails after it was created.
    let grant = Grant {
        name: &account,
        password: &password,
        until: NOW + Duration::hours(1),
        job_id: "job-1",
        admin_group: "wheel",
        reserved: &[],
    };
    let failed = admins.grant(&f.accounts, &grant, NOW);
    assert!(matches!(failed, Err(LocalAdminError::Os(_))), "{failed:?}");
    assert!(!f.exists("dave-jit"));
    assert!(f.admins().records().is_empty());
}

#[test]
fn an_interrupted_creation_is_finished_or_removed() {
    let Some(f) = Fixture::new() else { return };
    // Recorded, then the agent stopped before the account existed.
    fs::write(
        f.state.path().join(LocalAdmins::FILE),
        r#"[{"username":"erin-jit","until":"2030-01-02T05:00:00Z","group":"sudo","jobId":"job-1"}]"#,
    )
    .unwrap();
    let mut admins = f.admins();
    // The job comes again: the record is the agent's, so the account is created.
    f.grant(&mut admins, "erin-jit", "Temp-Pass-1", NOW + Duration::hours(2)).unwrap();
    assert!(f.accounts.verify_password(&name("erin-jit"), &SecretString::from("Temp-Pass-1")).unwrap());
    // Or its end comes first: removed on the agent's own.
    let (removed, errors) = f.admins().expire(&f.accounts, NOW + Duration::hours(3));
    assert_eq!((removed, errors), (vec!["erin-jit".to_owned()], Vec::<String>::new()));
    assert!(!f.exists("erin-jit"));
}
