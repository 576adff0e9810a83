//! TLS with rustls: the server answers over HTTPS to a client that trusts its CA.

use std::sync::Arc;

use latchkey_core::{Clock, ManualClock, SystemClock};
use latchkey_server::{Config, ConfigLayer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let config = Config::resolve(ConfigLayer {
        data_dir: Some(dir.path().join("data")),
        listen: Some("127.0.0.1:0".into()),
        tls_cert: Some(cert_path),
        tls_key: Some(key_path),
        ..Default::default()
    })
    .unwrap();
    let server = latchkey_server::start(config, Arc::new(ManualClock::new(SystemClock.now()))).await.unwrap();
    assert!(server.tls);
    let base = format!("https://127.0.0.1:{}", server.addr.port());
    let trusting = latchkey_client::Client::builder(&base, None, Some(cert.cert.pem().as_bytes())).unwrap();
    assert_eq!(trusting.health().await.unwrap().status, "ok");
    // A client without the CA refuses the connection; plain HTTP gets no answer.
    let untrusting = latchkey_client::Client::new(&base, None).unwrap();
    assert!(untrusting.health().await.is_err());
    let plain = latchkey_client::Client::new(&format!("http://127.0.0.1:{}", server.addr.port()), None).unwrap();
    assert!(plain.health().await.is_err());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn missing_certificate_files_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::resolve(ConfigLayer {
        data_dir: Some(dir.path().join("data")),
        listen: Some("127.0.0.1:0".into()),
        tls_cert: Some(dir.path().join("missing.pem")),
        tls_key: Some(dir.path().join("missing-key.pem")),
        ..Default::default()
    })
    .unwrap();
    let e = latchkey_server::start(config, Arc::new(ManualClock::new(SystemClock.now())))
        .await
        .err()
        .expect("started without certificates");
    assert!(e.to_string().contains("TLS"), "{e}");
}
