//! The HTTP routes. Each handler authenticates (extractor), authorizes (tenant scope),
//! validates (parses into domain types), calls the store, and maps the result to a DTO.

mod access;
mod account_keys;
mod account_policies;
mod accounts;
mod agent;
mod agent_jobs;
mod agent_signed;
mod applications;
mod approvals;
mod audit;
mod axidian_core;
mod axidian_token;
mod credentials;
mod device_access;
mod devices;
mod directory;
mod directory_sync;
mod dto;
mod governed_read;
mod health;
mod jit;
mod keys;
mod notifications;
mod realmjoin;
mod rotation_policy;
mod sign_in;
mod support_account;
mod tenants;
mod tickets;
mod user_roles;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::{delete, get, post, put};
use latchkey_proto::ProblemCode;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::problem_response;
use crate::state::AppState;

pub(crate) use access::*;
pub(crate) use account_keys::*;
pub(crate) use account_policies::*;
pub(crate) use accounts::*;
pub(crate) use agent::*;
pub(crate) use agent_jobs::*;
pub(crate) use applications::*;
pub(crate) use approvals::*;
pub(crate) use audit::*;
pub(crate) use axidian_core::*;
pub(crate) use axidian_token::*;
pub(crate) use credentials::*;
pub(crate) use device_access::*;
pub(crate) use devices::*;
pub(crate) use directory::*;
pub(crate) use directory_sync::*;
pub(crate) use health::*;
pub(crate) use jit::*;
pub(crate) use keys::*;
pub(crate) use notifications::*;
pub(crate) use realmjoin::*;
pub(crate) use rotation_policy::*;
pub(crate) use sign_in::*;
pub(crate) use support_account::*;
pub(crate) use tenants::*;
pub(crate) use tickets::*;
pub(crate) use user_roles::*;

/// The whole application router.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let api = Router::new()
        .route("/tenants", get(list_tenants).post(create_tenant))
        .route("/tenants/{tenant}", get(get_tenant))
        .route("/tenants/{tenant}/devices", get(list_devices).post(create_device))
        .route("/tenants/{tenant}/devices/{device_id}", get(get_device).delete(delete_device))
        .route("/tenants/{tenant}/devices/{device_id}/rotate", post(rotate_device))
        .route("/tenants/{tenant}/devices/{device_id}/jobs", get(list_device_jobs))
        .route("/tenants/{tenant}/devices/{device_id}/password/reveal", post(reveal_device_password))
        .route("/tenants/{tenant}/devices/{device_id}/password/history", get(device_password_history))
        .route("/tenants/{tenant}/devices/{device_id}/support-account", post(request_device_support_account))
        .route("/tenants/{tenant}/devices/{device_id}/support-account/reveal", post(reveal_device_support_account))
        .route("/tenants/{tenant}/access/targets", get(list_targets).post(create_target))
        .route(
            "/tenants/{tenant}/access/targets/{target_id}",
            get(get_target).put(replace_target).delete(delete_target),
        )
        .route("/tenants/{tenant}/access/targets/{target_id}/move", post(move_target))
        .route("/tenants/{tenant}/access/import/lithnet", post(import_lithnet))
        .route("/tenants/{tenant}/access/explain", get(explain_access))
        .route("/tenants/{tenant}/access/who-can-read", get(who_can_read))
        .route("/tenants/{tenant}/rotation-policy", put(set_tenant_rotation_policy))
        .route("/tenants/{tenant}/rotation-policies", get(list_rotation_policies))
        .route("/tenants/{tenant}/groups/{group_id}/rotation-policy", put(set_group_rotation_policy))
        .route("/tenants/{tenant}/enrollment-tokens", post(create_enrollment_token))
        .route("/tenants/{tenant}/groups", get(list_groups).post(create_group))
        .route("/tenants/{tenant}/groups/{group_id}", get(get_group))
        .route("/tenants/{tenant}/groups/{group_id}/members", get(list_members).post(add_member).delete(remove_member))
        .route("/tenants/{tenant}/users", get(list_users).post(create_user))
        .route("/tenants/{tenant}/directory/sync", get(directory_sync_status).post(run_directory_sync))
        .route("/tenants/{tenant}/users/{user_id}/password", put(set_user_password))
        .route("/tenants/{tenant}/users/{user_id}/roles", get(get_user_roles).put(set_user_roles))
        .route("/sign-in", post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/me", get(me))
        .route("/tenants/{tenant}/accounts", get(list_accounts).post(create_account))
        .route("/tenants/{tenant}/accounts/{account_id}", get(get_account))
        .route("/tenants/{tenant}/accounts/{account_id}/secret", get(list_secret_versions).put(set_secret))
        .route("/tenants/{tenant}/accounts/{account_id}/secret/reveal", post(reveal_secret))
        .route("/tenants/{tenant}/notifications", get(list_notifications))
        .route("/tenants/{tenant}/applications", get(list_applications).post(create_application))
        .route("/tenants/{tenant}/applications/{app}", delete(delete_application))
        .route("/tenants/{tenant}/applications/{app}/enable", post(enable_application))
        .route("/tenants/{tenant}/applications/{app}/disable", post(disable_application))
        .route("/tenants/{tenant}/account-policies", get(list_account_policies).post(create_account_policy))
        .route(
            "/tenants/{tenant}/account-policies/{policy}",
            get(get_account_policy).put(replace_account_policy).delete(delete_account_policy),
        )
        .route("/tenants/{tenant}/accounts/{account_id}/policy", put(attach_account_policy))
        .route(
            "/tenants/{tenant}/accounts/{account_id}/permissions",
            get(list_account_permissions).put(set_account_permission),
        )
        .route(
            "/tenants/{tenant}/accounts/{account_id}/permissions/{kind}/{principal}",
            delete(remove_account_permission),
        )
        .route("/tenants/{tenant}/accounts/{account_id}/ssh-key", put(set_account_ssh_key))
        .route("/tenants/{tenant}/approvals", get(list_approvals))
        .route("/tenants/{tenant}/approvals/{id}/approve", post(approve_approval))
        .route("/tenants/{tenant}/approvals/{id}/deny", post(deny_approval))
        .route("/tenants/{tenant}/jit/grants", get(list_jit).post(request_jit))
        .route("/tenants/{tenant}/jit/grants/{grant_id}", get(get_jit))
        .route("/tenants/{tenant}/jit/grants/{grant_id}/approve", post(approve_jit))
        .route("/tenants/{tenant}/jit/grants/{grant_id}/deny", post(deny_jit))
        .route("/tenants/{tenant}/jit/grants/{grant_id}/revoke", post(revoke_jit))
        .route("/tenants/{tenant}/jit/grants/{grant_id}/extend", post(extend_jit))
        .route("/tenants/{tenant}/jit/grants/{grant_id}/password/recover", post(recover_jit_password))
        .route("/tenants/{tenant}/tickets", get(list_tickets).post(create_ticket))
        .route("/tenants/{tenant}/tickets/{number}/close", post(close_ticket))
        .route("/tenants/{tenant}/tickets/{number}/comments", get(list_ticket_comments))
        .route("/tenants/{tenant}/api-clients", get(list_api_clients).post(create_api_client))
        .route("/admin-tokens", post(create_admin_token))
        .route("/audit", get(list_audit))
        .route("/audit/verify", get(verify_audit))
        .route("/vault", get(vault_status))
        .route("/vault/keys", post(add_vault_key))
        .route("/vault/keys/{key_id}", delete(retire_vault_key))
        .route("/vault/rewrap", post(rewrap_vault))
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    // The RealmJoin-compatible LAPS API.
    let external = Router::new()
        .route("/api/external/LocalAdmin/RequestSupportAccount", post(realmjoin_request_support_account))
        .route(
            "/api/external/LocalAdmin/RetrieveSupportAccountPassword",
            post(realmjoin_retrieve_support_account_password),
        )
        // The Axidian Privilege AAPM-compatible API.
        .route("/idp/connect/token", post(axidian_token))
        .route("/core/users/permitted-accounts", get(axidian_permitted_accounts))
        .route("/core/accounts/{id}/credentials-view", post(axidian_credentials_view))
        .route("/core/accounts/{id}/credentials", put(axidian_set_credentials))
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi_json))
        .route("/api/agent/v1/enroll", post(enroll))
        .route("/api/agent/v1/check-in", post(check_in))
        .route("/api/agent/v1/jobs/{job_id}/pending", post(post_pending))
        .route("/api/agent/v1/jobs/{job_id}/confirm", post(confirm_job))
        .route("/api/agent/v1/jobs/{job_id}/fail", post(fail_job))
        .nest("/api/v1", api)
        .merge(external)
        .merge(crate::web::router())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), crate::metrics::track))
        .fallback(|| async { problem_response(ProblemCode::NotFound, Some("no such route".into())) })
        .method_not_allowed_fallback(|| async {
            problem_response(ProblemCode::MethodNotAllowed, Some("method not allowed on this path".into()))
        })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn(crate::request_id::annotate))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ))
        .with_state(state)
}
