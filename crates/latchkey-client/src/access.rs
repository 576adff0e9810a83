//! Access targets, decisions and the Lithnet import.

use latchkey_proto as proto;
use reqwest::Method;

use crate::{Client, ClientError, Result, seg};

impl Client {
    /// A tenant's targets in list order.
    pub async fn list_targets(&self, tenant: &str) -> Result<proto::ListResponse<proto::TargetView>> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/tenants/{}/access/targets", seg(tenant)), None).await
    }

    /// One target.
    pub async fn target(&self, tenant: &str, id: &str) -> Result<proto::TargetView> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/tenants/{}/access/targets/{}", seg(tenant), seg(id)), None)
            .await
    }

    /// Add a target (at `spec.position` or the end).
    pub async fn create_target(&self, tenant: &str, spec: &proto::TargetSpec) -> Result<proto::TargetView> {
        self.call(Method::POST, &format!("/api/v1/tenants/{}/access/targets", seg(tenant)), Some(spec)).await
    }

    /// Replace a target's settings and readers.
    pub async fn replace_target(&self, tenant: &str, id: &str, spec: &proto::TargetSpec) -> Result<proto::TargetView> {
        self.call(Method::PUT, &format!("/api/v1/tenants/{}/access/targets/{}", seg(tenant), seg(id)), Some(spec)).await
    }

    /// Move a target to `position` (from 1).
    pub async fn move_target(&self, tenant: &str, id: &str, position: i64) -> Result<proto::TargetView> {
        let body = proto::TargetMove { position };
        let path = format!("/api/v1/tenants/{}/access/targets/{}/move", seg(tenant), seg(id));
        self.call(Method::POST, &path, Some(&body)).await
    }

    /// Delete a target.
    pub async fn delete_target(&self, tenant: &str, id: &str) -> Result<()> {
        let path = format!("/api/v1/tenants/{}/access/targets/{}", seg(tenant), seg(id));
        self.call_empty::<()>(Method::DELETE, &path, None).await
    }

    /// Import a Lithnet web.config's targets. A file with problems answers 422 with the report,
    /// which this returns as `Ok` too (check `imported` and `problems`).
    pub async fn import_lithnet(
        &self,
        tenant: &str,
        body: &proto::LithnetImportRequest,
    ) -> Result<proto::LithnetImportReport> {
        let path = format!("/api/v1/tenants/{}/access/import/lithnet", seg(tenant));
        let mut req = self.http.post(format!("{}{}", self.base, path)).json(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        if status.is_success() || status == reqwest::StatusCode::UNPROCESSABLE_ENTITY {
            return serde_json::from_slice(&bytes)
                .map_err(|e| ClientError::Unexpected { status: status.as_u16(), message: e.to_string() });
        }
        Err(match serde_json::from_slice::<proto::Problem>(&bytes) {
            Ok(problem) => ClientError::Api { problem },
            Err(_) => ClientError::Unexpected {
                status: status.as_u16(),
                message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            },
        })
    }

    /// Which target decides a user's access to a device, and why.
    pub async fn explain_access(
        &self,
        tenant: &str,
        user: &str,
        device: &str,
        operation: Option<&str>,
    ) -> Result<proto::AccessExplanation> {
        let mut path =
            format!("/api/v1/tenants/{}/access/explain?user={}&device={}", seg(tenant), seg(user), seg(device));
        if let Some(op) = operation {
            path.push_str(&format!("&operation={}", seg(op)));
        }
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// The readers of the target that decides access to a device.
    pub async fn who_can_read(&self, tenant: &str, device: &str) -> Result<proto::WhoCanRead> {
        let path = format!("/api/v1/tenants/{}/access/who-can-read?device={}", seg(tenant), seg(device));
        self.call::<(), _>(Method::GET, &path, None).await
    }
}
