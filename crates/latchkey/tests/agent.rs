//! `latchkey agent`: enrollment with a one-time token, then signed check-ins, through the real
//! binary against a real server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, exec};

fn agent(server: &Server, state_dir: &std::path::Path, extra: &[&str]) -> common::Out {
    let mut cmd = server.bare_command();
    cmd.args(["agent", "--once", "--server", &server.url, "--state-dir"]).arg(state_dir).args(extra);
    exec(cmd, None)
}

#[test]
fn agent_enrolls_once_then_checks_in_with_its_key() {
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
}
