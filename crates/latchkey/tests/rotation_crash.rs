//! Never lose a password: a rotation interrupted by a crash at any point, of the agent or of
//! the server, leaves the device with a password the server holds, and the next runs of the
//! agent bring device and server back to one active password with nothing pending.
//!
//! Each test starts from a device whose first password is confirmed, asks for a rotation, runs
//! the agent (or the server) into a crash point (`LATCHKEY_CRASH_AT`), checks the device's
//! password against every version the server's store holds, then lets the agent recover.
//! At the points before the server's acknowledgement reached the agent, the device must still
//! hold the old password: an agent that set a password before the acknowledgement fails here.
//!
//! Real binary, real server (SQLite), real account tools on a private root; needs root.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::Server;
use common::device::{ADMIN, Device, can_manage_accounts, held_versions, reveal, versions};

/// Which process a crash point is in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Process {
    Agent,
    Server,
}

/// What the crash leaves on the device and in the agent's state.
struct Expect {
    /// The password version the device holds right after the crash.
    on_device: i64,
    /// The version recorded in the agent's state right after the crash.
    recorded: i64,
    /// Whether the server holds version 2 as active (else as pending) right after the crash.
    confirmed: bool,
}

#[test]
fn agent_crash_after_the_pending_post() {
    crash_and_recover(Process::Agent, "agent-after-pending", Expect { on_device: 1, recorded: 1, confirmed: false });
}

#[test]
fn agent_crash_after_setting_the_password() {
    crash_and_recover(Process::Agent, "agent-after-set", Expect { on_device: 2, recorded: 1, confirmed: false });
}

#[test]
fn agent_crash_after_recording_the_version() {
    crash_and_recover(Process::Agent, "agent-after-record", Expect { on_device: 2, recorded: 2, confirmed: false });
}

#[test]
fn server_crash_after_storing_the_pending_version() {
    crash_and_recover(Process::Server, "server-after-pending", Expect { on_device: 1, recorded: 1, confirmed: false });
}

#[test]
fn server_crash_after_the_confirmation() {
    crash_and_recover(Process::Server, "server-after-confirm", Expect { on_device: 2, recorded: 2, confirmed: true });
}

fn crash_and_recover(process: Process, point: &str, expect: Expect) {
    if !can_manage_accounts() {
        return;
    }
    let mut server = Server::start();
    let (device, first) = Device::enroll(&server, "pc1", &[]);
    first.ok();
    let account = device.admin_account_id(&server);
    let v1 = reveal(&server, &account);
    assert!(device.has_password(ADMIN, &v1));
    assert_eq!(versions(&server, &account), vec![(1, "active".to_owned())]);

    // An admin asks for a rotation.
    let (status, job) = server.api("POST", &format!("/api/v1/tenants/default/devices/{}/rotate", device.id), None);
    assert_eq!(status, 202, "{job}");

    // Run into the crash.
    let crashed = match process {
        Process::Agent => device.agent_with(&server, &[], &[("LATCHKEY_CRASH_AT", point)]),
        Process::Server => {
            server.restart_with_crash_point(Some(point));
            let out = device.agent(&server);
            wait_for_exit(&mut server, point);
            out
        }
    };
    assert_ne!(crashed.code, 0, "the run did not crash at {point}: {crashed:#?}");
    if process == Process::Agent {
        // Aborted by a signal, not an error exit.
        assert_eq!(crashed.code, -1, "the agent did not abort at {point}: {crashed:#?}");
    } else {
        server.restart_with_crash_point(None);
    }

    // Right after the crash: the device holds exactly one of the passwords the server holds,
    // and the expected one.
    let held = held_versions(&server.data_dir, &account);
    let states: Vec<(i64, &str)> = held.iter().map(|h| (h.version, h.state.as_str())).collect();
    let second = if expect.confirmed { "active" } else { "pending" };
    let first_state = if expect.confirmed { "retired" } else { "active" };
    assert_eq!(states, vec![(1, first_state), (2, second)], "at {point}");
    let on_device: Vec<i64> =
        held.iter().filter(|h| device.has_password(ADMIN, &h.password)).map(|h| h.version).collect();
    assert_eq!(on_device, vec![expect.on_device], "at {point}: the device holds versions {on_device:?}");
    assert_eq!(device.state()["passwordVersion"], expect.recorded, "at {point}");

    // Recovery: the next run (a second one at most) makes device and server agree.
    let mut runs = 0;
    loop {
        runs += 1;
        let out = device.agent(&server);
        assert_eq!(out.code, 0, "recovery run {runs} after {point}: {out:#?}");
        let listed = versions(&server, &account);
        if !listed.iter().any(|(_, s)| s == "pending") || runs == 2 {
            break;
        }
    }
    assert_converged(&server, &device, &account, point);
    // And stays so: a further run has nothing to do.
    let calm = device.agent(&server).ok();
    assert!(calm.stdout.contains("0 job(s)"), "after {point}: {calm:#?}");
    assert_converged(&server, &device, &account, point);
    let shown = server.json(&["device", "show", &device.id]);
    assert_eq!(shown["passwordVersion"], device.state()["passwordVersion"], "after {point}: {shown}");
}

/// The device's password is the server's active one, nothing is pending, and the agent's
/// record and the server's view of the device name the active version.
fn assert_converged(server: &Server, device: &Device, account: &str, point: &str) {
    let listed = versions(server, account);
    let active: Vec<i64> = listed.iter().filter(|(_, s)| s == "active").map(|(v, _)| *v).collect();
    assert_eq!(active.len(), 1, "after {point}: {listed:?}");
    assert!(!listed.iter().any(|(_, s)| s == "pending"), "after {point}: a version is still pending: {listed:?}");
    let password = reveal(server, account);
    assert!(device.has_password(ADMIN, &password), "after {point}: the device does not hold the active password");
    assert_eq!(device.state()["passwordVersion"], active[0], "after {point}");
    let shown = server.json(&["device", "show", &device.id]);
    assert_eq!(shown["openJobs"], 0, "after {point}: {shown}");
    // No stale version the device could hold is left as the only copy.
    let held = held_versions(&server.data_dir, account);
    assert!(held.iter().all(|h| h.state != "pending"), "after {point}");
}

/// The server aborts at its crash point while answering the agent.
fn wait_for_exit(server: &mut Server, point: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.has_exited() {
        assert!(Instant::now() < deadline, "the server did not abort at {point}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
