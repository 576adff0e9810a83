//! `latchkey login`, `whoami`, `logout` and `user set-password` against a real `latchkey serve`.

// Test code: helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{Out, Server, exec};

const PW: &str = "correct horse battery staple";

/// The CLI with no token (unless given) and optional stdin.
fn cli(s: &Server, args: &[&str], token: Option<&str>, input: Option<&str>) -> Out {
    let mut cmd = s.bare_command();
    if let Some(t) = token {
        cmd.env("LATCHKEY_TOKEN", t);
    }
    cmd.args(args);
    exec(cmd, input)
}

/// A user `alice` with the password `PW`, set through the CLI.
fn alice(s: &Server) {
    s.run(&["user", "add", "Alice"]).ok();
    let set = s.run_stdin(&["user", "set-password", "alice", "--password-stdin"], &format!("{PW}\n")).ok();
    assert!(set.stdout.contains("password of Alice"), "{set:#?}");
    assert!(!set.stdout.contains("horse") && !set.stderr.contains("horse"), "{set:#?}");
}

/// A server that answers one request with 401 and hands back the request's head.
fn one_shot_401_server() -> (String, std::thread::JoinHandle<String>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).expect("read") == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let body = r#"{"type":"urn:latchkey:problem:unauthenticated","title":"Authentication required","status":401,"code":"unauthenticated"}"#;
        let answer = format!(
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/problem+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        (&stream).write_all(answer.as_bytes()).expect("answer");
        head
    });
    (url, handle)
}

fn session_file(s: &Server) -> std::path::PathBuf {
    s.tmp_path().join("session.json")
}

#[test]
fn login_prints_a_token_that_whoami_and_logout_use() {
    let s = Server::start();
    alice(&s);
    let login = cli(&s, &["login", "--user", "DEV1\\alice", "--password-stdin"], None, Some(&format!("{PW}\n"))).ok();
    let token = login.stdout.trim().to_owned();
    assert!(token.starts_with("lk_session_") && !token.contains(' '), "stdout holds only the token: {login:#?}");
    assert!(login.stderr.contains("signed in as Alice in default"), "{login:#?}");
    assert!(!session_file(&s).exists(), "nothing saved without --save");

    let who = cli(&s, &["whoami"], Some(&token), None).ok();
    assert!(who.stdout.contains("Alice") && who.stdout.contains("local"), "{who:#?}");
    let json = cli(&s, &["whoami", "--json"], Some(&token), None).ok().json();
    assert_eq!(json["user"]["name"], "Alice");
    assert_eq!(json["user"]["tenant"], "default");

    let out = cli(&s, &["logout"], Some(&token), None).ok();
    assert_eq!(out.stdout.trim(), "signed out");
    let after = cli(&s, &["whoami"], Some(&token), None);
    assert_eq!(after.code, 1, "{after:#?}");
    assert!(after.stderr.starts_with("error: Authentication required"), "{after:#?}");
}

#[test]
fn login_save_keeps_a_private_session_until_logout() {
    let s = Server::start();
    alice(&s);
    let login =
        cli(&s, &["login", "--user", "alice", "--password-stdin", "--save"], None, Some(&format!("{PW}\n"))).ok();
    assert!(!login.stdout.contains("lk_session_"), "the token was printed: {login:#?}");
    assert!(login.stdout.contains("session saved to"), "{login:#?}");
    let path = session_file(&s);
    let mode = std::fs::metadata(&path).expect("session file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read session")).expect("JSON");
    assert_eq!(saved["url"], s.url.as_str());
    assert!(saved["token"].as_str().is_some_and(|t| t.starts_with("lk_session_")));

    // Commands without a token use the saved session, for this server only.
    let who = cli(&s, &["whoami"], None, None).ok();
    assert!(who.stdout.contains("Alice"), "{who:#?}");
    let (other_url, seen) = one_shot_401_server();
    let mut elsewhere = s.bare_command();
    elsewhere.env("LATCHKEY_URL", &other_url).args(["whoami"]);
    let elsewhere = exec(elsewhere, None);
    assert_eq!(elsewhere.code, 1);
    let head = seen.join().expect("the other server saw a request");
    assert!(!head.contains("lk_session_"), "the session went to another server: {head}");
    assert!(elsewhere.stderr.contains("no admin token given"), "{elsewhere:#?}");

    let out = cli(&s, &["logout"], None, None).ok();
    assert_eq!(out.stdout.trim(), "signed out");
    assert!(!path.exists(), "the saved session is removed");
    let after = cli(&s, &["whoami"], None, None);
    assert_eq!(after.code, 1, "{after:#?}");
    let again = cli(&s, &["logout"], None, None);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("not signed in"), "{again:#?}");
}

#[test]
fn wrong_password_and_missing_input_fail_clearly() {
    let s = Server::start();
    alice(&s);
    let wrong = cli(&s, &["login", "--user", "alice", "--password-stdin", "--save"], None, Some("not it\n"));
    assert_eq!(wrong.code, 1, "{wrong:#?}");
    assert_eq!(wrong.stderr.trim(), "error: Authentication required: the tenant, user name or password is not right");
    assert!(wrong.stdout.is_empty());
    assert!(!session_file(&s).exists());

    let no_tty = cli(&s, &["login", "--user", "alice"], None, None);
    assert_eq!(no_tty.code, 1);
    assert!(no_tty.stderr.contains("--password-stdin"), "{no_tty:#?}");
    let empty = cli(&s, &["login", "--user", "alice", "--password-stdin"], None, Some(""));
    assert_eq!(empty.code, 1);
    assert!(empty.stderr.contains("no password on stdin"), "{empty:#?}");
    let other_tenant = cli(&s, &["login", "--tenant", "nope", "--user", "alice", "--password-stdin"], None, Some(PW));
    assert_eq!(other_tenant.code, 1);
    assert!(other_tenant.stderr.contains("not right"), "{other_tenant:#?}");
}

#[test]
fn set_password_refuses_bad_passwords_and_unknown_users() {
    let s = Server::start();
    alice(&s);
    let short = s.run_stdin(&["user", "set-password", "alice", "--password-stdin"], "too short\n");
    assert_eq!(short.code, 1);
    assert!(short.stderr.contains("at least 12 characters"), "{short:#?}");
    let nobody = s.run_stdin(&["user", "set-password", "bob", "--password-stdin"], &format!("{PW}\n"));
    assert_eq!(nobody.code, 1);
    assert!(nobody.stderr.contains("no user bob"), "{nobody:#?}");
    // The old password still works.
    cli(&s, &["login", "--user", "alice", "--password-stdin"], None, Some(PW)).ok();
}

#[test]
fn user_roles_are_set_shown_and_checked() {
    let s = Server::start();
    alice(&s);
    let none = s.run(&["user", "roles", "alice"]).ok();
    assert!(none.stdout.contains("roles of Alice") && none.stdout.trim_end().ends_with("none"), "{none:#?}");
    let set = s.run(&["user", "roles", "alice", "--set", "Auditor,approver"]).ok();
    assert!(set.stdout.trim_end().ends_with("auditor, approver"), "{set:#?}");
    let shown = s.run(&["user", "roles", "alice", "--json"]).ok().json();
    assert_eq!(shown["roles"], serde_json::json!(["auditor", "approver"]));
    let bad = s.run(&["user", "roles", "alice", "--set", "root"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("role must be admin, auditor or approver"), "{bad:#?}");
    // A refused change leaves the roles as they were.
    let after = s.run(&["user", "roles", "alice", "--json"]).ok().json();
    assert_eq!(after["roles"], serde_json::json!(["auditor", "approver"]));
    let cleared = s.run(&["user", "roles", "alice", "--set", ""]).ok();
    assert!(cleared.stdout.trim_end().ends_with("none"), "{cleared:#?}");
}
