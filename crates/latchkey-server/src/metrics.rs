//! Prometheus metrics, kept in a registry owned by the server (no global state).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::state::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    action: String,
    outcome: String,
}

/// The server's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
    secret_reads: Family<OutcomeLabels, Counter>,
    check_ins: Counter,
    jit_overdue: Counter,
    jit_revoke_lateness: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("latchkey");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by route and status", requests.clone());
        let durations = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 18))
        });
        registry.register("http_request_duration_seconds", "HTTP request duration by route", durations.clone());
        let secret_reads = Family::<OutcomeLabels, Counter>::default();
        registry.register("secret_reads", "Audited secret reads by outcome", secret_reads.clone());
        let check_ins = Counter::default();
        registry.register("agent_check_ins", "Accepted agent check-ins", check_ins.clone());
        let jit_overdue = Counter::default();
        registry.register(
            "jit_overdue",
            "Just-in-time grants reported overdue (not revoked a minute after their end)",
            jit_overdue.clone(),
        );
        let jit_revoke_lateness = Histogram::new(exponential_buckets(0.01, 2.0, 16));
        registry.register(
            "jit_revoke_lateness_seconds",
            "How long after their end just-in-time grants were revoked",
            jit_revoke_lateness.clone(),
        );
        Self {
            registry: Arc::new(Mutex::new(registry)),
            requests,
            durations,
            secret_reads,
            check_ins,
            jit_overdue,
            jit_revoke_lateness,
        }
    }
}

impl Metrics {
    /// Count an audited secret read.
    pub fn secret_read(&self, outcome: &str) {
        self.secret_reads.get_or_create(&OutcomeLabels { action: "secret.read".into(), outcome: outcome.into() }).inc();
    }

    /// Count an accepted agent check-in.
    pub fn agent_check_in(&self) {
        self.check_ins.inc();
    }

    /// Count a just-in-time grant reported overdue.
    pub fn jit_overdue(&self) {
        self.jit_overdue.inc();
    }

    /// Record how late (ms after its end) a just-in-time grant was revoked.
    pub fn jit_revoked(&self, late_ms: i64) {
        self.jit_revoke_lateness.observe(late_ms.max(0) as f64 / 1000.0);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Middleware: count and time every routed request.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let m = state.metrics();
    m.requests.get_or_create(&RequestLabels { method, route: route.clone(), status: resp.status().as_u16() }).inc();
    m.durations.get_or_create(&RouteLabels { route }).observe(start.elapsed().as_secs_f64());
    resp
}
