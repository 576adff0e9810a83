//! The application credential API: applications, account policies, permissions, approvals,
//! account SSH keys (native API), and the Axidian-compatible calls an application makes.

use latchkey_proto as proto;
use reqwest::Method;

use crate::{Client, ClientError, Result, seg};

impl Client {
    /// Create an application; the answer holds its password, shown once.
    pub async fn create_application(&self, tenant: &str, name: &str) -> Result<proto::ApplicationCreated> {
        let body = proto::ApplicationCreate { name: name.to_owned() };
        self.call(Method::POST, &format!("/api/v1/tenants/{}/applications", seg(tenant)), Some(&body)).await
    }

    /// A tenant's applications.
    pub async fn list_applications(&self, tenant: &str) -> Result<proto::ListResponse<proto::Application>> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/tenants/{}/applications", seg(tenant)), None).await
    }

    /// Enable (`true`) or disable an application (by id or name).
    pub async fn set_application_enabled(&self, tenant: &str, app: &str, enabled: bool) -> Result<proto::Application> {
        let verb = if enabled { "enable" } else { "disable" };
        let path = format!("/api/v1/tenants/{}/applications/{}/{verb}", seg(tenant), seg(app));
        self.call::<(), _>(Method::POST, &path, None).await
    }

    /// Delete an application (by id or name).
    pub async fn delete_application(&self, tenant: &str, app: &str) -> Result<()> {
        let path = format!("/api/v1/tenants/{}/applications/{}", seg(tenant), seg(app));
        self.call_empty::<()>(Method::DELETE, &path, None).await
    }

    /// Create an account policy.
    pub async fn create_account_policy(
        &self,
        tenant: &str,
        spec: &proto::AccountPolicySpec,
    ) -> Result<proto::AccountPolicy> {
        self.call(Method::POST, &format!("/api/v1/tenants/{}/account-policies", seg(tenant)), Some(spec)).await
    }

    /// Replace an account policy's settings (by id or name).
    pub async fn replace_account_policy(
        &self,
        tenant: &str,
        policy: &str,
        spec: &proto::AccountPolicySpec,
    ) -> Result<proto::AccountPolicy> {
        let path = format!("/api/v1/tenants/{}/account-policies/{}", seg(tenant), seg(policy));
        self.call(Method::PUT, &path, Some(spec)).await
    }

    /// A tenant's account policies.
    pub async fn list_account_policies(&self, tenant: &str) -> Result<proto::ListResponse<proto::AccountPolicy>> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/tenants/{}/account-policies", seg(tenant)), None).await
    }

    /// Delete an account policy (by id or name).
    pub async fn delete_account_policy(&self, tenant: &str, policy: &str) -> Result<()> {
        let path = format!("/api/v1/tenants/{}/account-policies/{}", seg(tenant), seg(policy));
        self.call_empty::<()>(Method::DELETE, &path, None).await
    }

    /// Attach a policy (by id or name) to an account, or detach it with `None`.
    pub async fn attach_account_policy(&self, tenant: &str, account_id: &str, policy: Option<&str>) -> Result<()> {
        let body = proto::AccountPolicyAttach { policy: policy.map(str::to_owned) };
        let path = format!("/api/v1/tenants/{}/accounts/{}/policy", seg(tenant), seg(account_id));
        self.call_empty(Method::PUT, &path, Some(&body)).await
    }

    /// Grant (or change) a permission on an account.
    pub async fn set_account_permission(
        &self,
        tenant: &str,
        account_id: &str,
        body: &proto::PermissionSet,
    ) -> Result<()> {
        let path = format!("/api/v1/tenants/{}/accounts/{}/permissions", seg(tenant), seg(account_id));
        self.call_empty(Method::PUT, &path, Some(body)).await
    }

    /// Remove a permission on an account.
    pub async fn remove_account_permission(
        &self,
        tenant: &str,
        account_id: &str,
        kind: proto::PrincipalKind,
        principal: &str,
    ) -> Result<()> {
        let kind = match kind {
            proto::PrincipalKind::Application => "application",
            proto::PrincipalKind::User => "user",
        };
        let path = format!(
            "/api/v1/tenants/{}/accounts/{}/permissions/{kind}/{}",
            seg(tenant),
            seg(account_id),
            seg(principal)
        );
        self.call_empty::<()>(Method::DELETE, &path, None).await
    }

    /// The permissions on an account.
    pub async fn account_permissions(
        &self,
        tenant: &str,
        account_id: &str,
    ) -> Result<proto::ListResponse<proto::AccountPermission>> {
        let path = format!("/api/v1/tenants/{}/accounts/{}/permissions", seg(tenant), seg(account_id));
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// Set an account's SSH key (generate or import).
    pub async fn set_account_ssh_key(
        &self,
        tenant: &str,
        account_id: &str,
        body: &proto::SshKeySet,
    ) -> Result<proto::SshKeyStored> {
        let path = format!("/api/v1/tenants/{}/accounts/{}/ssh-key", seg(tenant), seg(account_id));
        self.call(Method::PUT, &path, Some(body)).await
    }

    /// Approval requests, optionally in one state (`pending`, …).
    pub async fn list_approvals(
        &self,
        tenant: &str,
        state: Option<&str>,
    ) -> Result<proto::ListResponse<proto::Approval>> {
        let mut path = format!("/api/v1/tenants/{}/approvals", seg(tenant));
        if let Some(s) = state {
            path.push_str(&format!("?state={}", seg(s)));
        }
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// Approve (`true`) or deny a pending request.
    pub async fn decide_approval(
        &self,
        tenant: &str,
        id: &str,
        approve: bool,
        comment: Option<String>,
    ) -> Result<proto::Approval> {
        let verb = if approve { "approve" } else { "deny" };
        let path = format!("/api/v1/tenants/{}/approvals/{}/{verb}", seg(tenant), seg(id));
        self.call(Method::POST, &path, Some(&proto::ApprovalDecision { comment })).await
    }

    /// `POST /idp/connect/token` as an application: a bearer token for the `/core` calls.
    pub async fn axidian_token(&self, username: &str, password: &str) -> Result<proto::AxidianToken> {
        let form = [
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
            ("scope", "pam-api"),
            ("client_id", "aapm-tool"),
        ];
        let resp = self.http.post(format!("{}/idp/connect/token", self.base)).form(&form).send().await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| ClientError::Unexpected { status: status.as_u16(), message: e.to_string() });
        }
        let message = match serde_json::from_slice::<proto::OAuthError>(&bytes) {
            Ok(e) => format!("{}: {}", e.error, e.error_description),
            Err(_) => String::from_utf8_lossy(&bytes).chars().take(200).collect(),
        };
        Err(ClientError::Unexpected { status: status.as_u16(), message })
    }
}
