//! The Linux backend: shadow-utils (`useradd`, `usermod`, `userdel`, `gpasswd`, `chpasswd`,
//! `chage`, Debian package `passwd`) on the real system or on a private root.
//!
//! # Roots
//!
//! [`LinuxAccounts::system`] (root `/`, the agent's default) runs the tools as an administrator
//! would. [`LinuxAccounts::new`] with another directory passes `--root DIR` to every tool: the
//! tool `chroot`s into `DIR` before touching any file, so only `DIR/etc/{passwd,shadow,group,
//! gshadow}` change and the machine's `/etc` never does. [`prepare_private_root`] creates the
//! files such a tree needs. Both need root (the tools refuse to write otherwise).
//!
//! Facts this relies on (shadow-utils 4.13, Debian 12), checked by `tests/linux_private_root.rs`:
//!
//! - `chpasswd --root DIR` fails unless it hashes itself (`-c YESCRYPT`) or gets a hash (`-e`):
//!   without those it goes through PAM, whose configuration is not inside `DIR`. With `-c` it
//!   never uses PAM, on `/` too, so both roots share one code path. It reads `name:password`
//!   lines on stdin; everything after the first `:` is the password, up to the end of the line.
//! - `gpasswd` has `--root` (short `-Q`, not `-R`); `gpasswd -d` exits 3 when the account is not
//!   a member, so membership is checked first.
//! - `useradd` exits 9 when the name is taken (and also when a group of that name exists);
//!   `userdel` exits 6 when the account is missing; `userdel -r` only warns (exit 0) when the home
//!   or the mail spool is missing.
//! - `chage -E YYYY-MM-DD` turns the date into days with the time zone of the tool; it runs with
//!   `TZ=UTC` here so the stored day is exactly the date given. `chage -E -1` clears the expiry.
//!
//! # Running tools
//!
//! Tools are found in a fixed path (`/usr/sbin:/usr/bin:/sbin:/bin`) and run with an empty
//! environment plus `PATH` (that same path), `LC_ALL=C` and `TZ=UTC`. Account and group names
//! are [`AccountName`]-checked (never an option) and follow `--`. Passwords go to the tool's
//! standard input only; the buffers holding them are zeroized. Calls block until the tool exits:
//! async callers run them on a blocking thread. The changes made through one [`LinuxAccounts`]
//! are serialized (shadow-utils also locks the databases, but fails instead of waiting).
//!
//! # Verifying a password
//!
//! No crate of the workspace verifies yescrypt, and no shadow-utils tool verifies a password
//! without PAM (which a private root lacks). `mkpasswd` (package `whois`) can only re-hash with a
//! salt and cost given apart, which means re-deriving yescrypt's parameter string. So
//! [`LinuxAccounts::verify_password`] asks the system's `crypt(3)` (libxcrypt, the library that
//! made the hash) through Perl's `crypt` builtin: `perl` (package `perl-base`, Essential on Debian
//! and Ubuntu) reads the stored hash and the candidate on stdin and exits 0 (match), 1 (no match)
//! or 2 (crypt failed). Nothing secret is on its command line.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};

use secrecy::{ExposeSecret, SecretString};
use time::macros::date;
use time::{Date, Duration};
use zeroize::Zeroizing;

use super::{AccountName, LocalAccounts, OsError, UserInfo};

/// Where tools are looked for, and the `PATH` they run with.
const TOOL_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
/// The longest password [`LinuxAccounts::set_password`] accepts, in bytes.
const MAX_PASSWORD_BYTES: usize = 256;
/// libxcrypt refuses longer passphrases (`CRYPT_MAX_PASSPHRASE_SIZE`): no hash can match one.
const CRYPT_MAX_PASSPHRASE_BYTES: usize = 512;
/// How much of a tool's stderr an error keeps.
const MAX_STDERR_CHARS: usize = 4096;
/// Day 0 of the shadow format.
const EPOCH: Date = date!(1970 - 01 - 01);

/// `useradd`: the user name (or a group of that name) is already in use.
const USERADD_NAME_IN_USE: i32 = 9;
/// `userdel`: the account does not exist.
const USERDEL_NO_SUCH_USER: i32 = 6;

/// Perl program for [`LinuxAccounts::verify_password`]: stdin is the stored hash, a newline, then
/// the candidate password (every byte up to EOF). Exit 0: match; 1: no match; 2: crypt failed
/// (libxcrypt returns a failure token starting with `*` for unusable settings).
const VERIFY_SCRIPT: &str = r#"binmode STDIN;
my $h = <STDIN>; exit 2 unless defined $h; chomp $h;
my $p = do { local $/; <STDIN> }; $p = "" unless defined $p;
my $c = crypt($p, $h);
exit 2 unless defined $c && $c ne "" && substr($c, 0, 1) ne "*";
exit($c eq $h ? 0 : 1);"#;

/// Local accounts of a Linux system (root `/`) or of a private root directory.
#[derive(Debug)]
pub struct LinuxAccounts {
    root: PathBuf,
    /// Serializes this instance's changes.
    changes: Mutex<()>,
}

impl LinuxAccounts {
    /// The accounts under `root` (absolute; `/` is the real system, anything else a private root
    /// the tools get as `--root`).
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, OsError> {
        let root = root.into();
        if !root.is_absolute() {
            return Err(OsError::InvalidArgument(format!("root {} is not an absolute path", root.display())));
        }
        Ok(Self { root, changes: Mutex::new(()) })
    }

    /// The real system's accounts (root `/`): the agent's default.
    pub fn system() -> Self {
        Self { root: PathBuf::from("/"), changes: Mutex::new(()) }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn is_system(&self) -> bool {
        self.root == Path::new("/")
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.changes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `DIR/etc/<file>`.
    fn db_path(&self, file: &str) -> PathBuf {
        self.root.join("etc").join(file)
    }

    /// The root's account database `file`, as text (invalid UTF-8, e.g. in a GECOS field, is
    /// replaced: names are ASCII).
    fn read_db(&self, file: &str) -> Result<Zeroizing<String>, OsError> {
        let path = self.db_path(file);
        let bytes = Zeroizing::new(fs::read(&path).map_err(|source| OsError::Io { path, source })?);
        Ok(Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// The tool invocation prefix: `--root DIR`, or nothing for `/`.
    fn invocation(&self, tool: &'static str) -> Invocation {
        let mut args = Vec::new();
        if !self.is_system() {
            args.push(OsString::from("--root"));
            args.push(self.root.clone().into_os_string());
        }
        Invocation { tool, args, stdin: None }
    }

    fn passwd_entry(&self, name: &AccountName) -> Result<Option<PasswdEntry>, OsError> {
        let text = self.read_db("passwd")?;
        let Some((line_no, line)) = find_line(&text, name.as_str()) else {
            return Ok(None);
        };
        let malformed = |reason| OsError::Malformed { path: self.db_path("passwd"), line: line_no, reason };
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() != 7 {
            return Err(malformed("expected 7 fields"));
        }
        let uid = fields[2].parse().map_err(|_| malformed("UID is not a number"))?;
        Ok(Some(PasswdEntry { uid, home: fields[5].to_owned() }))
    }

    fn supplementary_groups(&self, name: &AccountName) -> Result<Vec<String>, OsError> {
        let text = self.read_db("group")?;
        Ok(groups_naming(&text, name.as_str()))
    }

    fn is_member(&self, name: &AccountName, group: &str) -> Result<bool, OsError> {
        let text = self.read_db("group")?;
        Ok(find_line(&text, group).is_some_and(|(_, line)| line_members(line).any(|m| m == name.as_str())))
    }

    /// Whether `userdel` should get `-r`: the home is a real directory (not a symlink, not the
    /// root itself) inside the root, owned by the account.
    fn home_to_remove(&self, entry: &PasswdEntry) -> bool {
        let relative = entry.home.trim_start_matches('/');
        if !entry.home.starts_with('/') || relative.is_empty() || relative.split('/').any(|c| c == "..") {
            return false;
        }
        fs::symlink_metadata(self.root.join(relative)).is_ok_and(|m| m.is_dir() && m.uid() == entry.uid)
    }

    fn set_password_invocation(&self, name: &AccountName, password: &SecretString) -> Result<Invocation, OsError> {
        let password = password.expose_secret();
        check_password(password)?;
        let mut inv = self.invocation("chpasswd");
        inv.args.extend(["-c", "YESCRYPT"].map(OsString::from));
        let mut input = Zeroizing::new(Vec::with_capacity(name.as_str().len() + password.len() + 2));
        input.extend_from_slice(name.as_str().as_bytes());
        input.push(b':');
        input.extend_from_slice(password.as_bytes());
        input.push(b'\n');
        inv.stdin = Some(input);
        Ok(inv)
    }

    fn set_expiry_invocation(&self, name: &AccountName, date: Option<Date>) -> Result<Invocation, OsError> {
        let value = match date {
            None => "-1".to_owned(),
            Some(d) if d > EPOCH => format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
            Some(d) => return Err(OsError::InvalidArgument(format!("expiry date {d} is not after 1970-01-01"))),
        };
        let mut inv = self.invocation("chage");
        inv.args.extend([OsString::from("-E"), OsString::from(value), OsString::from("--"), name.as_str().into()]);
        Ok(inv)
    }
}

impl LocalAccounts for LinuxAccounts {
    fn ensure_user(&self, name: &AccountName) -> Result<(), OsError> {
        let _changes = self.lock();
        if self.passwd_entry(name)?.is_some() {
            return Ok(());
        }
        // No home (-M); shell, groups and UID from the root's login.defs and default/useradd.
        let mut inv = self.invocation("useradd");
        inv.args.extend(["-M", "--", name.as_str()].map(OsString::from));
        match inv.run_checked() {
            Err(OsError::ToolFailed { status, .. })
                if status.code() == Some(USERADD_NAME_IN_USE) && self.passwd_entry(name)?.is_some() =>
            {
                Ok(())
            }
            other => other,
        }
    }

    fn set_password(&self, name: &AccountName, password: &SecretString) -> Result<(), OsError> {
        let inv = self.set_password_invocation(name, password)?;
        let _changes = self.lock();
        inv.run_checked()
    }

    fn add_to_group(&self, name: &AccountName, group: &str) -> Result<(), OsError> {
        check_group(group)?;
        let _changes = self.lock();
        if self.is_member(name, group)? {
            return Ok(());
        }
        let mut inv = self.invocation("usermod");
        inv.args.extend(["-a", "-G", group, "--", name.as_str()].map(OsString::from));
        inv.run_checked()
    }

    fn remove_from_group(&self, name: &AccountName, group: &str) -> Result<(), OsError> {
        check_group(group)?;
        let _changes = self.lock();
        if !self.is_member(name, group)? {
            return Ok(());
        }
        let mut inv = self.invocation("gpasswd");
        inv.args.extend(["-d", name.as_str(), "--", group].map(OsString::from));
        match inv.run_checked() {
            Err(_) if !self.is_member(name, group)? => Ok(()),
            other => other,
        }
    }

    fn set_expiry(&self, name: &AccountName, date: Option<Date>) -> Result<(), OsError> {
        let inv = self.set_expiry_invocation(name, date)?;
        let _changes = self.lock();
        inv.run_checked()
    }

    fn delete_user(&self, name: &AccountName) -> Result<(), OsError> {
        let _changes = self.lock();
        let Some(entry) = self.passwd_entry(name)? else {
            return Ok(());
        };
        if entry.uid == 0 {
            return Err(OsError::Refused(format!("{name} has UID 0")));
        }
        let mut inv = self.invocation("userdel");
        if self.home_to_remove(&entry) {
            inv.args.push("-r".into());
        }
        inv.args.extend(["--", name.as_str()].map(OsString::from));
        match inv.run_checked() {
            Err(OsError::ToolFailed { status, .. })
                if status.code() == Some(USERDEL_NO_SUCH_USER) && self.passwd_entry(name)?.is_none() =>
            {
                Ok(())
            }
            other => other,
        }
    }

    fn user_info(&self, name: &AccountName) -> Result<Option<UserInfo>, OsError> {
        if self.passwd_entry(name)?.is_none() {
            return Ok(None);
        }
        let groups = self.supplementary_groups(name)?;
        let shadow = self.read_db("shadow")?;
        let (expires, locked) = match find_line(&shadow, name.as_str()) {
            // In passwd but not in shadow: no hash to lock, no expiry.
            None => (None, false),
            Some((line_no, line)) => {
                let fields: Vec<&str> = line.split(':').collect();
                let malformed = |reason| OsError::Malformed { path: self.db_path("shadow"), line: line_no, reason };
                if fields.len() < 8 {
                    return Err(malformed("expected 9 fields"));
                }
                (parse_expiry(fields[7]).map_err(malformed)?, fields[1].starts_with('!'))
            }
        };
        Ok(Some(UserInfo { name: name.clone(), groups, expires, locked }))
    }

    fn users_with_prefix(&self, prefix: &str) -> Result<Vec<AccountName>, OsError> {
        let text = self.read_db("passwd")?;
        let mut found = Vec::new();
        for field in text.lines().filter_map(|line| line.split(':').next()) {
            if !field.starts_with(prefix) || field.is_empty() {
                continue;
            }
            match AccountName::new(field) {
                Ok(name) => found.push(name),
                Err(e) => tracing::warn!(account = field, error = %e, "skipping an account with an unusable name"),
            }
        }
        Ok(found)
    }

    fn verify_password(&self, name: &AccountName, password: &SecretString) -> Result<bool, OsError> {
        let shadow = self.read_db("shadow")?;
        let Some((line_no, line)) = find_line(&shadow, name.as_str()) else {
            return Ok(false);
        };
        let Some(stored) = line.split(':').nth(1) else {
            return Err(OsError::Malformed {
                path: self.db_path("shadow"),
                line: line_no,
                reason: "no password field",
            });
        };
        let hash = stored.trim_start_matches('!');
        let password = password.expose_secret();
        if hash.is_empty()
            || hash.starts_with('*')
            || password.is_empty()
            || password.contains('\0')
            || password.len() > CRYPT_MAX_PASSPHRASE_BYTES
        {
            return Ok(false);
        }
        let mut input = Zeroizing::new(Vec::with_capacity(hash.len() + password.len() + 1));
        input.extend_from_slice(hash.as_bytes());
        input.push(b'\n');
        input.extend_from_slice(password.as_bytes());
        let inv = Invocation { tool: "perl", args: vec!["-e".into(), VERIFY_SCRIPT.into()], stdin: Some(input) };
        let out = inv.run()?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(OsError::ToolFailed { tool: "perl", status: out.status, stderr: out.stderr }),
        }
    }
}

/// The fields of an account's `/etc/passwd` line that the backend uses.
struct PasswdEntry {
    uid: u32,
    home: String,
}

/// One run of a system tool.
struct Invocation {
    tool: &'static str,
    /// Never holds a secret (readable by any local user in `/proc/PID/cmdline`).
    args: Vec<OsString>,
    /// Written to the tool's stdin, then closed; `None`: stdin is `/dev/null`.
    stdin: Option<Zeroizing<Vec<u8>>>,
}

/// How a tool ended.
struct Finished {
    status: ExitStatus,
    stderr: String,
}

impl Invocation {
    /// Runs the tool to its end (see the module doc for its environment).
    fn run(&self) -> Result<Finished, OsError> {
        let tool = self.tool;
        let program = find_tool(tool)?;
        tracing::debug!(tool, args = ?self.args, "running");
        let mut child = Command::new(&program)
            .args(&self.args)
            .env_clear()
            .env("PATH", TOOL_PATH)
            .env("LC_ALL", "C")
            .env("TZ", "UTC")
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| OsError::Spawn { tool, source })?;
        if let (Some(input), Some(mut pipe)) = (&self.stdin, child.stdin.take()) {
            // The input is far below a pipe's capacity: writing it all before reading any output
            // cannot deadlock. A tool that exits without reading gives EPIPE: its status tells.
            match pipe.write_all(input) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                Err(source) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(OsError::Spawn { tool, source });
                }
            }
        }
        // stdout is read (a full pipe would block the tool) and dropped: no tool here reports
        // anything but progress notes there.
        let output = child.wait_with_output().map_err(|source| OsError::Spawn { tool, source })?;
        Ok(Finished { status: output.status, stderr: stderr_text(&output.stderr) })
    }

    /// Runs the tool; a non-zero exit is [`OsError::ToolFailed`].
    fn run_checked(&self) -> Result<(), OsError> {
        let out = self.run()?;
        if out.status.success() {
            Ok(())
        } else {
            tracing::debug!(tool = self.tool, status = %out.status, stderr = %out.stderr, "tool failed");
            Err(OsError::ToolFailed { tool: self.tool, status: out.status, stderr: out.stderr })
        }
    }
}

/// The first executable `tool` in [`TOOL_PATH`].
fn find_tool(tool: &'static str) -> Result<PathBuf, OsError> {
    TOOL_PATH
        .split(':')
        .map(|dir| Path::new(dir).join(tool))
        .find(|path| fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
        .ok_or(OsError::ToolNotFound { tool, searched: TOOL_PATH })
}

fn stderr_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    match text.char_indices().nth(MAX_STDERR_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The first line (and its number, from 1) of a `name:…` database whose first field is `name`.
fn find_line<'a>(text: &'a str, name: &str) -> Option<(usize, &'a str)> {
    text.lines()
        .enumerate()
        .find(|(_, line)| line.split(':').next() == Some(name))
        .map(|(index, line)| (index + 1, line))
}

/// The members (4th field) of an `/etc/group` line.
fn line_members(line: &str) -> impl Iterator<Item = &str> {
    line.split(':').nth(3).unwrap_or("").split(',').map(str::trim).filter(|m| !m.is_empty())
}

/// The groups of an `/etc/group` text whose member list names `name`, in file order.
fn groups_naming(text: &str, name: &str) -> Vec<String> {
    text.lines()
        .filter(|line| line.split(':').count() >= 4 && line_members(line).any(|m| m == name))
        .filter_map(|line| line.split(':').next())
        .map(str::to_owned)
        .collect()
}

/// Field 8 of a shadow line: empty or negative is no expiry, otherwise days since 1970-01-01.
fn parse_expiry(field: &str) -> Result<Option<Date>, &'static str> {
    if field.is_empty() {
        return Ok(None);
    }
    let days: i64 = field.parse().map_err(|_| "account expiry is not a number")?;
    if days < 0 {
        return Ok(None);
    }
    EPOCH.checked_add(Duration::days(days)).map(Some).ok_or("account expiry is out of range")
}

fn check_password(password: &str) -> Result<(), OsError> {
    if password.is_empty() {
        return Err(OsError::InvalidPassword("empty"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(OsError::InvalidPassword("longer than 256 bytes"));
    }
    if password.contains(['\n', '\r', '\0']) {
        return Err(OsError::InvalidPassword("contains a line break or NUL"));
    }
    Ok(())
}

fn check_group(group: &str) -> Result<(), OsError> {
    AccountName::new(group).map(drop).map_err(|e| OsError::InvalidArgument(format!("group {group:?}: {e}")))
}

/// Creates the minimal tree that the account tools need under `dir` (created if missing), for a
/// private root: `etc/passwd`, `etc/shadow`, `etc/group`, `etc/gshadow` (account `root`, groups
/// `root`, `sudo` (GID 27, as on Debian) and `users`), a minimal `etc/login.defs` (UIDs and GIDs
/// from 1000, user groups, yescrypt), `etc/default/useradd` (shell `/bin/sh`, no mail spool),
/// empty `etc/skel` and `home` directories, and a placeholder executable `bin/sh` (`useradd`
/// warns when the shell is missing inside the root).
///
/// The files are fixed, not copied from the host, so a root is the same on every machine.
/// Refuses `/` (and any `dir` that resolves to it), and fails with
/// [`io::ErrorKind::AlreadyExists`] when `dir/etc/passwd` exists: it never overwrites accounts.
pub fn prepare_private_root(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let root = dir.canonicalize()?;
    if root == Path::new("/") {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "refusing to prepare the real root directory /"));
    }
    for sub in ["etc/default", "etc/skel", "home", "bin"] {
        fs::create_dir_all(root.join(sub))?;
    }
    // passwd first: if it exists, nothing is written.
    for (file, text, mode) in [
        ("etc/passwd", PASSWD, 0o644),
        ("etc/group", GROUP, 0o644),
        ("etc/shadow", SHADOW, 0o600),
        ("etc/gshadow", GSHADOW, 0o600),
        ("etc/login.defs", LOGIN_DEFS, 0o644),
        ("etc/default/useradd", USERADD_DEFAULTS, 0o644),
    ] {
        write_new(&root.join(file), text.as_bytes(), mode)?;
    }
    let shell = root.join("bin/sh");
    if fs::symlink_metadata(&shell).is_err() {
        write_new(&shell, b"", 0o755)?;
    }
    Ok(())
}

/// Creates `path` (never overwrites) with `bytes` and exactly `mode`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
    file.write_all(bytes)?;
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.sync_all()
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n";
const SHADOW: &str = "root:*:19000:0:99999:7:::\n";
const GROUP: &str = "root:x:0:\nsudo:x:27:\nusers:x:100:\n";
const GSHADOW: &str = "root:*::\nsudo:*::\nusers:*::\n";
const LOGIN_DEFS: &str = "\
# Minimal login.defs of a Latchkey private account root (written by prepare_private_root).
MAIL_DIR        /var/mail
UMASK           022
HOME_MODE       0700
PASS_MAX_DAYS   99999
PASS_MIN_DAYS   0
PASS_WARN_AGE   7
UID_MIN         1000
UID_MAX         60000
SYS_UID_MIN     100
SYS_UID_MAX     999
GID_MIN         1000
GID_MAX         60000
SYS_GID_MIN     100
SYS_GID_MAX     999
USERGROUPS_ENAB yes
ENCRYPT_METHOD  YESCRYPT
YESCRYPT_COST_FACTOR 5
";
const USERADD_DEFAULTS: &str = "\
# useradd defaults of a Latchkey private account root (written by prepare_private_root).
SHELL=/bin/sh
CREATE_MAIL_SPOOL=no
";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn name(s: &str) -> AccountName {
        AccountName::new(s).unwrap()
    }

    fn args(inv: &Invocation) -> Vec<String> {
        inv.args.iter().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn password_goes_to_stdin_only() {
        let accounts = LinuxAccounts::new("/srv/root").unwrap();
        let password = SecretString::from("Sup3r:secret pw");
        let inv = accounts.set_password_invocation(&name("ADM-1A2B3C4D"), &password).unwrap();
        assert_eq!(inv.tool, "chpasswd");
        assert_eq!(args(&inv), ["--root", "/srv/root", "-c", "YESCRYPT"]);
        assert!(args(&inv).iter().all(|a| !a.contains("secret")));
        assert_eq!(inv.stdin.as_deref().map(Vec::as_slice), Some(&b"ADM-1A2B3C4D:Sup3r:secret pw\n"[..]));
    }

    #[test]
    fn the_system_root_gets_no_root_option() {
        let inv = LinuxAccounts::system().set_expiry_invocation(&name("alice"), None).unwrap();
        assert_eq!(args(&inv), ["-E", "-1", "--", "alice"]);
        let inv = LinuxAccounts::new("//").unwrap().set_expiry_invocation(&name("alice"), None).unwrap();
        assert_eq!(args(&inv)[0], "-E");
    }

    #[test]
    fn expiry_dates_are_iso_and_after_the_epoch() {
        let accounts = LinuxAccounts::new("/r").unwrap();
        let inv = accounts.set_expiry_invocation(&name("a"), Some(date!(2030 - 01 - 15))).unwrap();
        assert_eq!(args(&inv), ["--root", "/r", "-E", "2030-01-15", "--", "a"]);
        let inv = accounts.set_expiry_invocation(&name("a"), Some(date!(1970 - 01 - 02))).unwrap();
        assert_eq!(args(&inv)[3], "1970-01-02");
        for bad in [date!(1970 - 01 - 01), date!(1969 - 12 - 31)] {
            assert!(matches!(accounts.set_expiry_invocation(&name("a"), Some(bad)), Err(OsError::InvalidArgument(_))));
        }
    }

    #[test]
    fn unusable_passwords_are_rejected_before_any_tool() {
        let accounts = LinuxAccounts::new("/r").unwrap();
        for bad in ["", "a\nb:c", "a\rb", "a\0b", &"x".repeat(257)] {
            let result = accounts.set_password_invocation(&name("a"), &SecretString::from(bad));
            assert!(matches!(result, Err(OsError::InvalidPassword(_))), "{bad:?} accepted");
        }
        assert!(accounts.set_password_invocation(&name("a"), &SecretString::from("x".repeat(256))).is_ok());
    }

    #[test]
    fn relative_roots_are_rejected() {
        assert!(matches!(LinuxAccounts::new("tmp/root"), Err(OsError::InvalidArgument(_))));
    }

    #[test]
    fn database_parsing() {
        let group = "root:x:0:\nsudo:x:27:adm2,ADM-1\nadm:x:4:syslog, ADM-1\nbroken\nADM-1:x:1000:\n";
        assert_eq!(groups_naming(group, "ADM-1"), ["sudo", "adm"]);
        assert!(groups_naming(group, "ADM").is_empty());
        assert_eq!(find_line(group, "adm").map(|(n, _)| n), Some(3));
        assert_eq!(find_line(group, "ad"), None);
        assert_eq!(parse_expiry(""), Ok(None));
        assert_eq!(parse_expiry("-1"), Ok(None));
        assert_eq!(parse_expiry("21929"), Ok(Some(date!(2030 - 01 - 15))));
        assert!(parse_expiry("soon").is_err());
    }

    #[test]
    fn tool_errors_are_cut() {
        let long = "e".repeat(MAX_STDERR_CHARS + 10);
        assert_eq!(stderr_text(long.as_bytes()).chars().count(), MAX_STDERR_CHARS + 1);
        assert_eq!(stderr_text(b"  useradd: oops\n"), "useradd: oops");
    }

    #[test]
    fn groups_are_checked_like_names() {
        for bad in ["-G", "", "a b", "wheel;rm"] {
            assert!(matches!(check_group(bad), Err(OsError::InvalidArgument(_))));
        }
        assert!(check_group("sudo").is_ok());
    }
}
