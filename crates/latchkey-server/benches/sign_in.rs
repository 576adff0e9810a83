//! Does a sign-in answer tell who exists? Compares the latency of refused sign-ins of a known
//! user (wrong password), an unknown user, a disabled user and a user without a password,
//! with a successful one for reference, over real HTTP on loopback.
//!
//! `cargo bench -p latchkey-server --bench sign_in` starts the server in process on the
//! embedded SQLite store, with the failure delay and the daily cap turned out of the way (so
//! only the checking itself is measured), then sends `LATCHKEY_BENCH_SAMPLES` (default 60)
//! sign-ins per kind, interleaved, one at a time. It prints the median and p90 of each kind and
//! the ratio of each refusal's median to the wrong-password median; a refusal more than 25 %
//! away from it is flagged.

// A benchmark reports by printing and stops loudly on a broken setup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use latchkey_client::Client;
use latchkey_proto as proto;
use latchkey_server::{Config, ConfigLayer, SignInLayer, SystemClock};
use secrecy::ExposeSecret;
use sqlx::{AnyConnection, Connection};

const PASSWORD: &str = "correct horse battery staple";

fn main() {
    let samples: usize = std::env::var("LATCHKEY_BENCH_SAMPLES").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(run(samples.max(5)));
}

async fn run(samples: usize) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::resolve(ConfigLayer {
        data_dir: Some(dir.path().to_owned()),
        listen: Some("127.0.0.1:0".into()),
        sign_in: Some(SignInLayer {
            free_failures: Some(u32::MAX),
            failure_delay_ms: Some(0),
            failure_delay_max_ms: Some(0),
            max_failures_per_day: Some(100_000),
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap();
    let server = latchkey_server::start(config, Arc::new(SystemClock)).await.unwrap();
    let base = format!("http://{}", server.addr);
    let admin =
        Client::new(&base, Some(server.first_admin_token.as_ref().unwrap().expose_secret().to_owned())).unwrap();
    let mut ids = Vec::new();
    for name in ["alice", "dave", "nopw"] {
        let u = admin
            .create_user("default", &proto::UserCreate { name: name.into(), display_name: None, email: None })
            .await
            .unwrap();
        if name != "nopw" {
            let body = proto::PasswordSetRequest { password: PASSWORD.into() };
            admin.set_user_password("default", &u.id, &body).await.unwrap();
        }
        ids.push(u.id);
    }
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}", dir.path().join("latchkey.db").display());
    let mut db = AnyConnection::connect(&url).await.unwrap();
    sqlx::query("UPDATE users SET disabled_at = 1 WHERE id = $1").bind(ids[1].clone()).execute(&mut db).await.unwrap();
    db.close().await.unwrap();

    let anonymous = Client::new(&base, None).unwrap();
    let kinds: [(&str, &str, &str, bool); 5] = [
        ("known user, wrong password", "alice", "not the password", false),
        ("unknown user", "ghost", PASSWORD, false),
        ("disabled user", "dave", PASSWORD, false),
        ("user without a password", "nopw", PASSWORD, false),
        ("right password (reference)", "alice", PASSWORD, true),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(samples); kinds.len()];
    for round in 0..samples + 3 {
        for (i, (_, user, password, ok)) in kinds.iter().enumerate() {
            let body = proto::SignInRequest {
                tenant: "default".into(),
                username: (*user).into(),
                password: (*password).into(),
            };
            let start = Instant::now();
            let r = anonymous.sign_in(&body).await;
            let took = start.elapsed();
            assert_eq!(r.is_ok(), *ok, "{user}: {:?}", r.err());
            // The first rounds warm up connections and caches.
            if round >= 3 {
                times[i].push(took);
            }
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort_unstable();
        (v[v.len() / 2], v[v.len() * 9 / 10])
    };
    let (base_median, _) = median(&mut times[0].clone());
    println!("sign-in latency over {samples} samples each (SQLite, in-process server, loopback HTTP):");
    println!("{:<30} {:>10} {:>10} {:>8}", "kind", "median", "p90", "ratio");
    let mut flagged = false;
    for (i, (label, ..)) in kinds.iter().enumerate() {
        let (p50, p90) = median(&mut times[i]);
        let ratio = p50.as_secs_f64() / base_median.as_secs_f64();
        let refusal = i < 4;
        let off = refusal && !(0.75..=1.25).contains(&ratio);
        flagged |= off;
        println!(
            "{label:<30} {:>8.1}ms {:>8.1}ms {ratio:>8.2}{}",
            p50.as_secs_f64() * 1e3,
            p90.as_secs_f64() * 1e3,
            if off { "  <-- differs from a wrong password" } else { "" }
        );
    }
    if flagged {
        println!("\nWARNING: a refusal takes measurably different time from a wrong password.");
    } else {
        println!("\nevery refusal is within 25 % of a wrong password's median");
    }
    server.shutdown().await.unwrap();
}
