//! The Linux backend against the real shadow-utils tools, on a private root in a temporary
//! directory (`useradd --root DIR` and friends): the machine's own accounts are never touched,
//! and every test checks that the host's `/etc/{passwd,shadow,group,gshadow}` kept their bytes.
//!
//! Needs root (the tools refuse to write otherwise) and the packages `passwd` (shadow-utils) and
//! `perl-base` (for `verify_password`). Not root: each test is skipped with a note, unless
//! `LATCHKEY_REQUIRE_SERVICES=1` or `CI=true`, in which case it fails.

#![cfg(target_os = "linux")]
// Test code: helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};

use latchkey_agent::{AccountName, AccountNameError, LinuxAccounts, LocalAccounts, OsError, prepare_private_root};
use secrecy::SecretString;
use tempfile::TempDir;
use time::Date;
use time::macros::date;

const HOST_DATABASES: [&str; 4] = ["/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"];

/// The host's account databases, byte for byte.
struct HostSnapshot(Vec<(&'static str, Option<Vec<u8>>)>);

impl HostSnapshot {
    fn take() -> Self {
        Self(HOST_DATABASES.iter().map(|p| (*p, fs::read(p).ok())).collect())
    }

    fn assert_unchanged(&self) {
        for (path, before) in &self.0 {
            assert!(fs::read(path).ok() == *before, "the host's {path} changed");
        }
    }
}

/// A prepared private root, its backend, and the host snapshot taken before it was made.
struct Fixture {
    dir: TempDir,
    accounts: LinuxAccounts,
    host: HostSnapshot,
}

impl Fixture {
    /// `None` (with a note) when not running as root and services are not required.
    fn new() -> Option<Self> {
        if !is_root() {
            if services_required() {
                panic!("these tests need root (LATCHKEY_REQUIRE_SERVICES=1 or CI=true is set)");
            }
            eprintln!("note: not running as root; skipping the private-root account test");
            return None;
        }
        let host = HostSnapshot::take();
        let dir = tempfile::tempdir().unwrap();
        prepare_private_root(dir.path()).unwrap();
        let accounts = LinuxAccounts::new(dir.path()).unwrap();
        Some(Self { dir, accounts, host })
    }

    fn etc(&self, file: &str) -> String {
        fs::read_to_string(self.dir.path().join("etc").join(file)).unwrap()
    }

    /// The `:`-separated fields of `name`'s line in the root's `etc/<file>`.
    fn entry(&self, file: &str, name: &str) -> Option<Vec<String>> {
        self.etc(file)
            .lines()
            .find(|l| l.split(':').next() == Some(name))
            .map(|l| l.split(':').map(str::to_owned).collect())
    }

    fn members(&self, file: &str, group: &str) -> Vec<String> {
        let fields = self.entry(file, group).unwrap_or_else(|| panic!("no group {group} in {file}"));
        fields[3].split(',').filter(|m| !m.is_empty()).map(str::to_owned).collect()
    }

    fn finish(self) {
        self.host.assert_unchanged();
    }
}

fn is_root() -> bool {
    // The effective UID is the 2nd number of the `Uid:` line.
    fs::read_to_string("/proc/self/status").ok().is_some_and(|status| {
        status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1)) == Some("0")
    })
}

fn services_required() -> bool {
    std::env::var("LATCHKEY_REQUIRE_SERVICES").is_ok_and(|v| v.trim() == "1")
        || std::env::var("CI").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

fn name(s: &str) -> AccountName {
    AccountName::new(s).unwrap()
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s)
}

fn days_since_epoch(d: Date) -> i64 {
    (d - date!(1970 - 01 - 01)).whole_days()
}

#[test]
fn account_names_reject_option_like_and_unsafe_strings() {
    assert_eq!(AccountName::new("-rf"), Err(AccountNameError::LeadingHyphen));
    assert_eq!(AccountName::new(""), Err(AccountNameError::Empty));
    assert_eq!(AccountName::new("a".repeat(33)), Err(AccountNameError::TooLong { len: 33 }));
    assert!(matches!(AccountName::new("a b"), Err(AccountNameError::InvalidChar { ch: ' ', .. })));
    assert!(matches!(AccountName::new("x;y"), Err(AccountNameError::InvalidChar { ch: ';', .. })));
    assert!(AccountName::new("a".repeat(32)).is_ok());
    assert!(AccountName::new("ADM-1A2B3C4D").is_ok());
}

#[test]
fn prepare_private_root_refuses_the_real_root_and_existing_roots() {
    let err = prepare_private_root(Path::new("/")).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let dir = tempfile::tempdir().unwrap();
    prepare_private_root(dir.path()).unwrap();
    let err = prepare_private_root(dir.path()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    let passwd = fs::read_to_string(dir.path().join("etc/passwd")).unwrap();
    assert!(passwd.starts_with("root:x:0:0:"));
    assert!(fs::read_to_string(dir.path().join("etc/group")).unwrap().contains("\nsudo:x:27:\n"));
}

#[test]
fn ensure_user_is_idempotent_and_shows_in_user_info() {
    let Some(fx) = Fixture::new() else { return };
    let alice = name("alice");
    assert_eq!(fx.accounts.user_info(&alice).unwrap(), None);

    fx.accounts.ensure_user(&alice).unwrap();
    let passwd_after_first = fx.etc("passwd");
    fx.accounts.ensure_user(&alice).unwrap();
    assert_eq!(fx.etc("passwd"), passwd_after_first, "the second ensure_user changed passwd");
    assert_eq!(passwd_after_first.lines().filter(|l| l.starts_with("alice:")).count(), 1);

    let info = fx.accounts.user_info(&alice).unwrap().unwrap();
    assert_eq!(info.name, alice);
    assert!(info.groups.is_empty(), "{:?}", info.groups);
    assert_eq!(info.expires, None);
    assert!(info.locked, "a new account has no usable password (!)");
    let uid: u32 = fx.entry("passwd", "alice").unwrap()[2].parse().unwrap();
    assert!(uid >= 1000);
    assert!(!fx.dir.path().join("home/alice").exists(), "no home directory is created");
    fx.finish();
}

#[test]
fn set_password_hashes_with_yescrypt_and_verifies() {
    let Some(fx) = Fixture::new() else { return };
    let bob = name("bob");
    fx.accounts.ensure_user(&bob).unwrap();
    assert!(!fx.accounts.verify_password(&bob, &secret("anything")).unwrap(), "no password yet");

    // A colon and a space are part of the password (chpasswd splits at the first ':').
    let password = secret("Rotated: Secret-1!");
    fx.accounts.set_password(&bob, &password).unwrap();
    let hash = fx.entry("shadow", "bob").unwrap()[1].clone();
    assert!(hash.starts_with("$y$"), "not yescrypt: {hash}");
    assert!(fx.accounts.verify_password(&bob, &password).unwrap());
    assert!(!fx.accounts.verify_password(&bob, &secret("Rotated: Secret-2!")).unwrap());
    assert!(!fx.accounts.verify_password(&bob, &secret("Rotated")).unwrap());
    assert!(!fx.accounts.user_info(&bob).unwrap().unwrap().locked);

    // Rotation: the old password stops working.
    fx.accounts.set_password(&bob, &secret("Rotated-Secret-3")).unwrap();
    assert!(fx.accounts.verify_password(&bob, &secret("Rotated-Secret-3")).unwrap());
    assert!(!fx.accounts.verify_password(&bob, &password).unwrap());

    // A locked hash still verifies (lock state is reported apart).
    let shadow = fx.etc("shadow").replace("bob:$y$", "bob:!$y$");
    fs::write(fx.dir.path().join("etc/shadow"), shadow).unwrap();
    assert!(fx.accounts.user_info(&bob).unwrap().unwrap().locked);
    assert!(fx.accounts.verify_password(&bob, &secret("Rotated-Secret-3")).unwrap());

    assert!(!fx.accounts.verify_password(&name("nobody-here"), &password).unwrap());
    fx.finish();
}

#[test]
fn a_failing_set_password_never_shows_the_password() {
    let Some(fx) = Fixture::new() else { return };
    let password = "Very-Distinctive-Secret-7f3a";
    let err = fx.accounts.set_password(&name("ghost"), &secret(password)).unwrap_err();
    let OsError::ToolFailed { tool, status, stderr } = &err else {
        panic!("expected a tool failure, got {err:?}");
    };
    assert_eq!(*tool, "chpasswd");
    assert!(!status.success());
    assert!(stderr.contains("ghost"), "stderr: {stderr}");
    for text in [err.to_string(), format!("{err:?}"), stderr.clone()] {
        assert!(!text.contains(password), "password leaked: {text}");
        assert!(!text.contains("Distinctive"), "password leaked: {text}");
    }
    // Rejected before any tool: the text names the rule, not the password.
    let err = fx.accounts.set_password(&name("ghost"), &secret("Zq9Xw\nVt4Rk")).unwrap_err();
    assert!(matches!(err, OsError::InvalidPassword(_)), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("Zq9Xw"));
    fx.finish();
}

#[test]
fn group_membership_is_idempotent_and_lands_in_the_root() {
    let Some(fx) = Fixture::new() else { return };
    let carol = name("carol");
    fx.accounts.ensure_user(&carol).unwrap();

    fx.accounts.add_to_group(&carol, "sudo").unwrap();
    fx.accounts.add_to_group(&carol, "sudo").unwrap();
    assert_eq!(fx.members("group", "sudo"), ["carol"]);
    assert_eq!(fx.members("gshadow", "sudo"), ["carol"]);
    assert_eq!(fx.accounts.user_info(&carol).unwrap().unwrap().groups, ["sudo"]);

    fx.accounts.add_to_group(&carol, "users").unwrap();
    assert_eq!(fx.accounts.user_info(&carol).unwrap().unwrap().groups, ["sudo", "users"]);

    fx.accounts.remove_from_group(&carol, "sudo").unwrap();
    fx.accounts.remove_from_group(&carol, "sudo").unwrap();
    assert!(fx.members("group", "sudo").is_empty());
    assert!(fx.members("gshadow", "sudo").is_empty());
    assert_eq!(fx.accounts.user_info(&carol).unwrap().unwrap().groups, ["users"]);
    fx.accounts.remove_from_group(&name("nobody-here"), "sudo").unwrap();

    // Errors name the tool and its exit status.
    let err = fx.accounts.add_to_group(&carol, "no-such-group").unwrap_err();
    assert!(matches!(&err, OsError::ToolFailed { tool: "usermod", status, .. } if status.code() == Some(6)), "{err:?}");
    let err = fx.accounts.add_to_group(&carol, "-G").unwrap_err();
    assert!(matches!(err, OsError::InvalidArgument(_)), "{err:?}");
    fx.finish();
}

#[test]
fn expiry_is_set_in_shadow_and_cleared() {
    let Some(fx) = Fixture::new() else { return };
    let dave = name("dave");
    fx.accounts.ensure_user(&dave).unwrap();

    let day = date!(2030 - 01 - 15);
    fx.accounts.set_expiry(&dave, Some(day)).unwrap();
    assert_eq!(fx.entry("shadow", "dave").unwrap()[7], days_since_epoch(day).to_string());
    assert_eq!(fx.entry("shadow", "dave").unwrap()[7], "21929");
    assert_eq!(fx.accounts.user_info(&dave).unwrap().unwrap().expires, Some(day));

    let tomorrow = time::OffsetDateTime::now_utc().date().next_day().unwrap();
    fx.accounts.set_expiry(&dave, Some(tomorrow)).unwrap();
    assert_eq!(fx.accounts.user_info(&dave).unwrap().unwrap().expires, Some(tomorrow));

    fx.accounts.set_expiry(&dave, None).unwrap();
    assert_eq!(fx.entry("shadow", "dave").unwrap()[7], "");
    assert_eq!(fx.accounts.user_info(&dave).unwrap().unwrap().expires, None);
    fx.accounts.set_expiry(&dave, None).unwrap();

    let err = fx.accounts.set_expiry(&name("nobody-here"), Some(day)).unwrap_err();
    assert!(matches!(err, OsError::ToolFailed { tool: "chage", .. }), "{err:?}");
    fx.finish();
}

#[test]
fn delete_user_is_idempotent_and_removes_the_home() {
    let Some(fx) = Fixture::new() else { return };
    let erin = name("erin");
    fx.accounts.ensure_user(&erin).unwrap();
    fx.accounts.add_to_group(&erin, "sudo").unwrap();
    let fields = fx.entry("passwd", "erin").unwrap();
    let (uid, gid): (u32, u32) = (fields[2].parse().unwrap(), fields[3].parse().unwrap());
    let home: PathBuf = fx.dir.path().join(fields[5].trim_start_matches('/'));
    fs::create_dir_all(&home).unwrap();
    fs::write(home.join(".profile"), "# erin\n").unwrap();
    chown(&home, Some(uid), Some(gid)).unwrap();

    fx.accounts.delete_user(&erin).unwrap();
    assert_eq!(fx.accounts.user_info(&erin).unwrap(), None);
    for file in ["passwd", "shadow", "group", "gshadow"] {
        assert!(!fx.etc(file).contains("erin"), "erin still in {file}");
    }
    assert!(!home.exists(), "the home directory was not removed");
    fx.accounts.delete_user(&erin).unwrap();

    // Without a home directory.
    let frank = name("frank");
    fx.accounts.ensure_user(&frank).unwrap();
    fx.accounts.delete_user(&frank).unwrap();
    assert_eq!(fx.accounts.user_info(&frank).unwrap(), None);

    let err = fx.accounts.delete_user(&name("root")).unwrap_err();
    assert!(matches!(err, OsError::Refused(_)), "{err:?}");
    assert!(fx.etc("passwd").starts_with("root:"));
    fx.finish();
}

#[test]
fn users_with_prefix_finds_support_accounts() {
    let Some(fx) = Fixture::new() else { return };
    for n in ["ADM-1A2B3C4D", "grace", "ADM-0F0F0F0F", "ADMIN"] {
        fx.accounts.ensure_user(&name(n)).unwrap();
    }
    assert_eq!(fx.accounts.users_with_prefix("ADM-").unwrap(), [name("ADM-1A2B3C4D"), name("ADM-0F0F0F0F")]);
    assert!(fx.accounts.users_with_prefix("SUP-").unwrap().is_empty());
    fx.accounts.delete_user(&name("ADM-1A2B3C4D")).unwrap();
    assert_eq!(fx.accounts.users_with_prefix("ADM-").unwrap(), [name("ADM-0F0F0F0F")]);
    fx.finish();
}

/// The whole life of a support account, then the host's databases compared byte for byte.
#[test]
fn support_account_lifecycle_leaves_the_host_untouched() {
    let Some(fx) = Fixture::new() else { return };
    let host_passwd = fs::read("/etc/passwd").unwrap();
    let adm = name("ADM-1A2B3C4D");
    let password = secret("Support-Session-Pw-42");
    fx.accounts.ensure_user(&adm).unwrap();
    fx.accounts.set_password(&adm, &password).unwrap();
    fx.accounts.add_to_group(&adm, "sudo").unwrap();
    fx.accounts.set_expiry(&adm, Some(date!(2031 - 06 - 30))).unwrap();
    let info = fx.accounts.user_info(&adm).unwrap().unwrap();
    assert_eq!(info.groups, ["sudo"]);
    assert_eq!(info.expires, Some(date!(2031 - 06 - 30)));
    assert!(!info.locked);
    assert!(fx.accounts.verify_password(&adm, &password).unwrap());
    assert_eq!(fx.accounts.users_with_prefix("ADM-").unwrap(), std::slice::from_ref(&adm));
    fx.accounts.remove_from_group(&adm, "sudo").unwrap();
    fx.accounts.delete_user(&adm).unwrap();
    assert!(fx.accounts.users_with_prefix("ADM-").unwrap().is_empty());

    assert!(fs::read("/etc/passwd").unwrap() == host_passwd, "the host's /etc/passwd changed");
    assert!(!String::from_utf8_lossy(&host_passwd).contains("ADM-1A2B3C4D"));
    fx.finish();
}
