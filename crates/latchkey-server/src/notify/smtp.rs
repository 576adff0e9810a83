//! E-mail delivery over SMTP (lettre): STARTTLS, implicit TLS or plain, with optional AUTH.
//! Certificates are always checked; a private CA can be added with `ca_file`.

use latchkey_core::{EmailAddress, Notification};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use super::config::{SmtpConfig, SmtpSecurity};

/// Sends notices as plain-text e-mails through one SMTP server.
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpSender {
    /// A sender for these settings. Connections are opened on first use and pooled.
    pub fn new(config: &SmtpConfig) -> Result<Self, String> {
        let tls = || -> Result<TlsParameters, String> {
            let mut params = TlsParameters::builder(config.host.clone());
            if let Some(pem) = &config.ca_pem {
                let cert = Certificate::from_pem(pem)
                    .map_err(|_| "notifications.smtp: ca_file holds no readable certificate".to_owned())?;
                params = params.add_root_certificate(cert);
            }
            params.build_rustls().map_err(|e| format!("notifications.smtp: TLS setup failed: {e}"))
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.clone())
            .port(config.port)
            .timeout(Some(config.timeout));
        builder = match config.security {
            SmtpSecurity::StartTls => builder.tls(Tls::Required(tls()?)),
            SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls()?)),
            SmtpSecurity::Plain => builder.tls(Tls::None),
        };
        if let Some((user, password)) = &config.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose_secret().to_owned()));
        }
        let from = Mailbox::new(Some("Latchkey".to_owned()), address(&config.from)?);
        Ok(Self { transport: builder.build(), from })
    }

    /// Send one notice to its recipients (all in `To`). The error says what failed (the SMTP
    /// server's answer or the connection problem), never a credential.
    pub async fn send(&self, delivery_id: &str, notice: &Notification) -> Result<(), String> {
        let mut message = Message::builder().from(self.from.clone()).subject(notice.subject());
        for recipient in notice.recipients() {
            message = message.to(Mailbox::new(None, address(recipient)?));
        }
        let message = message
            .message_id(Some(format!("<{delivery_id}@latchkey>")))
            .header(ContentType::TEXT_PLAIN)
            .body(notice.email_body())
            .map_err(|e| format!("cannot build the e-mail: {e}"))?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| format!("SMTP: {e}"))
    }
}

/// A parsed address as lettre's type (both parsers agree on what we accept).
fn address(a: &EmailAddress) -> Result<Address, String> {
    a.as_str().parse::<Address>().map_err(|_| "an e-mail address was refused by the mailer".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::Outcome;
    use latchkey_core::notification::PasswordReadNotice;

    #[test]
    fn every_address_we_accept_is_accepted_by_the_mailer() {
        for a in [
            "a@example.com",
            "first.last+tag@mail.example.co.uk",
            "x_y-z@localhost",
            "o'brien@example.org",
            "{}~!#$%&*=?^`|@a-b.c",
        ] {
            let parsed = EmailAddress::parse(a).unwrap();
            assert!(address(&parsed).is_ok(), "{a}");
        }
    }

    #[test]
    fn the_message_has_sender_recipients_subject_and_body() {
        let notice = Notification::PasswordRead(PasswordReadNotice {
            tenant_slug: "acme".into(),
            actor: "alice".into(),
            device_name: "PC-1".into(),
            device_id: "d".into(),
            at: time::macros::datetime!(2030-01-02 03:04:05 UTC),
            client_addr: None,
            reason: None,
            outcome: Outcome::Success,
            target_name: None,
            recipients: vec![
                EmailAddress::parse("a@example.com").unwrap(),
                EmailAddress::parse("b@example.com").unwrap(),
            ],
        });
        let from = Mailbox::new(Some("Latchkey".into()), "lk@example.com".parse().unwrap());
        let mut m = Message::builder().from(from).subject(notice.subject());
        for r in notice.recipients() {
            m = m.to(Mailbox::new(None, address(r).unwrap()));
        }
        let text = String::from_utf8(m.header(ContentType::TEXT_PLAIN).body(notice.email_body()).unwrap().formatted())
            .unwrap();
        assert!(text.contains("To: a@example.com, b@example.com"), "{text}");
        assert!(text.contains("From: Latchkey <lk@example.com>"), "{text}");
        assert!(text.contains("Subject: [Latchkey] alice read the password of PC-1"), "{text}");
    }
}
