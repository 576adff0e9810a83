//! Webhook delivery: the notice's JSON body POSTed to the configured URL, signed with
//! HMAC-SHA256 so the receiver can tell it came from this server and was not replayed late.
//!
//! Headers: `X-Latchkey-Timestamp: <Unix seconds>` and
//! `X-Latchkey-Signature: sha256=<hex of HMAC-SHA256(secret, timestamp + "." + body)>`.
//! A receiver recomputes the HMAC over the raw body it received, compares in constant time and
//! refuses timestamps far from its own clock.

use hmac::{Hmac, Mac};
use latchkey_core::Notification;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::config::{WebhookConfig, origin_of};

/// Header holding the signature.
pub const SIGNATURE_HEADER: &str = "x-latchkey-signature";
/// Header holding the signing time (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-latchkey-timestamp";

/// Posts signed notices to one URL.
pub struct WebhookSender {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: SecretString,
}

impl WebhookSender {
    /// A sender for these settings (redirects are not followed: the signature is for this URL).
    pub fn new(config: &WebhookConfig) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &config.ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|_| "notifications.webhook: ca_file holds no readable certificate".to_owned())?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client =
            builder.build().map_err(|e| format!("notifications.webhook: cannot build the HTTP client: {e}"))?;
        Ok(Self { client, url: config.url.clone(), secret: config.secret.clone() })
    }

    /// Post one notice, signed at `timestamp` (Unix seconds). Any 2xx answer is a delivery.
    /// The error names what failed, never the URL's path or query (they may hold a token).
    pub async fn send(&self, delivery_id: &str, notice: &Notification, timestamp: i64) -> Result<(), String> {
        let body = notice.webhook_body(delivery_id).to_string();
        let signature = sign(self.secret.expose_secret().as_bytes(), timestamp, body.as_bytes());
        let result = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await;
        let origin = origin_of(self.url.as_str());
        match result {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) => Err(format!("webhook at {origin} answered HTTP {}", resp.status().as_u16())),
            Err(e) if e.is_timeout() => Err(format!("webhook at {origin} did not answer in time")),
            Err(e) if e.is_connect() => Err(format!("cannot connect to the webhook at {origin}")),
            Err(e) => Err(format!("webhook request to {origin} failed: {}", e.without_url())),
        }
    }
}

/// `sha256=<hex>` of HMAC-SHA256(secret, `"<timestamp>.<body>"`).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(mac(secret, timestamp, body)))
}

/// Whether `signature` (the header value) signs `body` at `timestamp` with `secret`, compared
/// in constant time.
pub fn verify(secret: &[u8], timestamp: i64, body: &[u8], signature: &str) -> bool {
    let Some(hex_part) = signature.trim().strip_prefix("sha256=") else { return false };
    let Ok(given) = hex::decode(hex_part) else { return false };
    latchkey_crypto::ct_eq(&given, &mac(secret, timestamp, body))
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return Vec::new() };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_answer() {
        // printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'key-0123456789abcdef'
        let got = sign(b"key-0123456789abcdef", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(got, "sha256=8a091117e0b1ccf5034d0d8c06ab42b29a4451a72f95b56f22afaf6bfb7af0d3");
    }

    #[test]
    fn verify_accepts_only_the_exact_signature() {
        let (secret, ts, body) = (b"key-0123456789abcdef".as_slice(), 1_700_000_000, br#"{"a":1}"#.as_slice());
        let sig = sign(secret, ts, body);
        assert!(verify(secret, ts, body, &sig));
        assert!(!verify(b"another-key-0123456", ts, body, &sig));
        assert!(!verify(secret, ts + 1, body, &sig));
        assert!(!verify(secret, ts, br#"{"a":2}"#, &sig));
        assert!(!verify(secret, ts, body, &sig[7..]));
        assert!(!verify(secret, ts, body, "sha256=zz"));
        assert!(!verify(secret, ts, body, ""));
    }
}
