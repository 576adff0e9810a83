//! The generated OpenAPI document of the native API. The committed `openapi.json` at the
//! repository root is checked against it.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;
use latchkey_proto as proto;

#[derive(OpenApi)]
#[openapi(
    info(title = "Latchkey", description = "Privileged-access manager: native API."),
    paths(
        routes::healthz, routes::readyz, routes::metrics, routes::openapi_json,
        routes::create_tenant, routes::list_tenants, routes::get_tenant,
        routes::create_device, routes::list_devices, routes::create_enrollment_token, routes::enroll, routes::check_in, routes::post_pending, routes::confirm_job, routes::fail_job, routes::get_device, routes::delete_device,
        routes::rotate_device, routes::list_device_jobs, routes::reveal_device_password, routes::device_password_history,
        routes::request_device_support_account, routes::reveal_device_support_account,
        routes::list_targets, routes::get_target, routes::create_target, routes::replace_target, routes::move_target,
        routes::delete_target, routes::import_lithnet, routes::explain_access, routes::who_can_read,
        routes::set_tenant_rotation_policy, routes::set_group_rotation_policy, routes::list_rotation_policies,
        routes::create_group, routes::list_groups, routes::get_group,
        routes::list_members, routes::add_member, routes::remove_member,
        routes::create_user, routes::list_users,
        routes::run_directory_sync, routes::directory_sync_status,
        routes::sign_in, routes::sign_out, routes::me, routes::set_user_password, routes::get_user_roles, routes::set_user_roles,
        routes::create_account, routes::list_accounts, routes::get_account,
        routes::list_secret_versions, routes::set_secret, routes::reveal_secret,
        routes::create_api_client, routes::list_api_clients, routes::create_admin_token,
        routes::list_audit, routes::verify_audit,
        routes::list_notifications,
        routes::request_jit, routes::list_jit, routes::get_jit, routes::approve_jit, routes::deny_jit, routes::revoke_jit,
        routes::extend_jit, routes::recover_jit_password,
        routes::create_ticket, routes::list_tickets, routes::close_ticket, routes::list_ticket_comments,
        routes::vault_status, routes::add_vault_key, routes::rewrap_vault, routes::retire_vault_key,
        routes::create_application, routes::list_applications, routes::enable_application, routes::disable_application,
        routes::delete_application, routes::create_account_policy, routes::list_account_policies, routes::get_account_policy,
        routes::replace_account_policy, routes::delete_account_policy, routes::attach_account_policy,
        routes::list_account_permissions, routes::set_account_permission, routes::remove_account_permission,
        routes::set_account_ssh_key, routes::list_approvals, routes::approve_approval, routes::deny_approval,
        routes::axidian_token, routes::axidian_permitted_accounts, routes::axidian_credentials_view,
        routes::axidian_set_credentials,
    ),
    components(schemas(proto::Problem, proto::ProblemCode, proto::RevealedSecret, proto::SecretSetRequest, proto::SecretReadRequest,
        proto::DevicePasswordRequest, proto::RevealedSupportAccount)),
    modifiers(&BearerAuth),
    tags(
        (name = "health"), (name = "tenants"), (name = "devices"), (name = "agent"), (name = "directory"),
        (name = "access"), (name = "accounts"), (name = "credentials"), (name = "audit"), (name = "vault"), (name = "sessions"), (name = "notifications"),
        (name = "applications"), (name = "axidian"), (name = "jit"), (name = "tickets"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document as pretty JSON.
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.to_pretty_json().unwrap_or_default()
}
