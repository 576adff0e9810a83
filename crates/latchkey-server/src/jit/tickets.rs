//! Ticket adapters: built-in tickets (in the store) and a generic PSA over HTTP (GET a
//! ticket to see that it is open, POST a comment).

use futures::future::BoxFuture;
use secrecy::ExposeSecret;

use super::config::{PsaAuth, PsaConfig, TicketsConfig};
use crate::state::AppState;

/// Why a ticket cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketError {
    /// No such ticket.
    Unknown(String),
    /// The ticket is closed.
    Closed(String),
    /// The ticket system could not be asked.
    Unavailable(String),
}

/// Where tickets live.
pub trait TicketAdapter: Send + Sync {
    /// `builtin` or `psa`: stored with each comment.
    fn name(&self) -> &'static str;

    /// Succeeds when the ticket exists and is open.
    fn check_open<'a>(
        &'a self,
        state: &'a AppState,
        tenant_id: &'a str,
        ticket: &'a str,
    ) -> BoxFuture<'a, Result<(), TicketError>>;

    /// Add a comment to the ticket (built-in comments are stored with the change, so this does
    /// nothing for them).
    fn post_comment<'a>(&'a self, ticket: &'a str, body: &'a str) -> BoxFuture<'a, Result<(), String>>;
}

/// The adapter for a tenant's ticket settings.
pub fn adapter(config: &TicketsConfig) -> Box<dyn TicketAdapter> {
    match config {
        TicketsConfig::Builtin => Box::new(Builtin),
        TicketsConfig::Psa(psa) => Box::new(Psa(psa.clone())),
    }
}

/// Built-in tickets, numbered per tenant.
pub struct Builtin;

impl TicketAdapter for Builtin {
    fn name(&self) -> &'static str {
        "builtin"
    }

    fn check_open<'a>(
        &'a self,
        state: &'a AppState,
        tenant_id: &'a str,
        ticket: &'a str,
    ) -> BoxFuture<'a, Result<(), TicketError>> {
        Box::pin(async move {
            let number: i64 =
                ticket.trim().trim_start_matches('#').parse().map_err(|_| TicketError::Unknown(ticket.to_owned()))?;
            match state.store().ticket(tenant_id, number).await {
                Ok(t) if t.open => Ok(()),
                Ok(_) => Err(TicketError::Closed(ticket.to_owned())),
                Err(latchkey_store::StoreError::NotFound) => Err(TicketError::Unknown(ticket.to_owned())),
                Err(e) => Err(TicketError::Unavailable(e.to_string())),
            }
        })
    }

    fn post_comment<'a>(&'a self, _ticket: &'a str, _body: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// A PSA over HTTP.
pub struct Psa(pub PsaConfig);

impl Psa {
    fn url(template: &str, ticket: &str) -> String {
        let encoded: String = ticket
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        template.replace("{ticket}", &encoded)
    }

    fn request(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.0.auth {
            PsaAuth::None => builder,
            PsaAuth::Bearer(token) => builder.bearer_auth(token.expose_secret()),
            PsaAuth::Basic { username, password } => builder.basic_auth(username, Some(password.expose_secret())),
        }
    }

    fn client(&self) -> Result<reqwest::Client, String> {
        reqwest::Client::builder().timeout(self.0.timeout).build().map_err(|e| e.to_string())
    }
}

impl TicketAdapter for Psa {
    fn name(&self) -> &'static str {
        "psa"
    }

    fn check_open<'a>(
        &'a self,
        _state: &'a AppState,
        _tenant_id: &'a str,
        ticket: &'a str,
    ) -> BoxFuture<'a, Result<(), TicketError>> {
        Box::pin(async move {
            let client = self.client().map_err(TicketError::Unavailable)?;
            let url = Self::url(&self.0.ticket_url, ticket);
            let resp = self
                .request(client.get(&url))
                .send()
                .await
                .map_err(|e| TicketError::Unavailable(format!("the PSA did not answer: {}", e.without_url())))?;
            let status = resp.status();
            if status == reqwest::StatusCode::NOT_FOUND {
                return Err(TicketError::Unknown(ticket.to_owned()));
            }
            if !status.is_success() {
                return Err(TicketError::Unavailable(format!("the PSA answered {status}")));
            }
            let Some(pointer) = &self.0.open_pointer else { return Ok(()) };
            let body: serde_json::Value =
                resp.json().await.map_err(|_| TicketError::Unavailable("the PSA's answer is not JSON".into()))?;
            let value = match body.pointer(pointer) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => return Err(TicketError::Unavailable(format!("the PSA's answer has nothing at {pointer}"))),
            };
            if self.0.open_values.iter().any(|v| v.eq_ignore_ascii_case(&value)) {
                Ok(())
            } else {
                Err(TicketError::Closed(ticket.to_owned()))
            }
        })
    }

    fn post_comment<'a>(&'a self, ticket: &'a str, body: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let client = self.client()?;
            let url = Self::url(&self.0.comment_url, ticket);
            let mut payload = serde_json::Map::new();
            payload.insert(self.0.comment_field.clone(), serde_json::Value::String(body.to_owned()));
            let resp = self
                .request(client.post(&url))
                .json(&payload)
                .send()
                .await
                .map_err(|e| format!("the PSA did not answer: {}", e.without_url()))?;
            if resp.status().is_success() { Ok(()) } else { Err(format!("the PSA answered {}", resp.status())) }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_is_encoded_into_the_url() {
        assert_eq!(Psa::url("https://p/t/{ticket}/notes", "12 34/5"), "https://p/t/12%2034%2F5/notes");
    }
}
