//! Account policies (shared by many accounts), the policy of each account, and permissions of
//! applications and people on accounts; and the permitted-accounts view that combines them
//! with each account's secret and reset state.

use latchkey_core::NewAuditEvent;
use latchkey_core::clock::to_millis;
use latchkey_core::model::Account;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::accounts::account_from_row;
use crate::rows::{get, opt_time, tenant_row, time};
use crate::{Store, StoreError};

/// How an account's credentials may be viewed and changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPolicy {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub require_reason: bool,
    pub require_confirmation: bool,
    /// How long an approved request allows views, in seconds.
    pub confirmation_timeout_secs: i64,
    pub reset_after_showing: bool,
    /// Minutes after a view when the credentials are reset.
    pub reset_after_minutes: i64,
    /// Return SSH keys encrypted with a fresh passphrase.
    pub encrypt_key: bool,
    /// A permitted principal may set credentials while none are set.
    pub can_set_if_not_set: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Who a permission is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    Application,
    User,
}

impl PrincipalKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Application => "application",
            PrincipalKind::User => "user",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [PrincipalKind::Application, PrincipalKind::User].into_iter().find(|k| k.as_str() == s)
    }
}

/// A permission on an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPermission {
    pub account_id: String,
    pub principal_kind: PrincipalKind,
    pub principal_id: String,
    /// The application's or user's name.
    pub principal_name: String,
    pub view: bool,
    pub change: bool,
    pub updated_at: OffsetDateTime,
}

/// An account as a permitted principal sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PermittedAccount {
    pub account: Account,
    pub has_password: bool,
    pub has_key: bool,
    pub policy: Option<AccountPolicy>,
    pub view: bool,
    pub change: bool,
    /// When the open credential reset is due.
    pub next_reset: Option<OffsetDateTime>,
    /// A reset is being carried out (or a device rotation is queued for the agent).
    pub resetting_now: bool,
}

/// What decides a view by an application (see [`Store::view_rule`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewRule {
    pub account_name: String,
    pub view: bool,
    pub policy: Option<AccountPolicy>,
}

const POLICY_COLUMNS: &str = "id, tenant_id, name, require_reason, require_confirmation, confirmation_timeout_secs, \
     reset_after_showing, reset_after_minutes, encrypt_key, can_set_if_not_set, created_at, updated_at";

/// Everything [`PermittedAccount`] needs, for `concat!` with a WHERE clause on `p` (the
/// permission) and `a` (the account).
macro_rules! select_permitted {
    () => {
        "SELECT a.id, a.tenant_id, a.kind, a.name, a.device_id, a.description, a.created_at, \
         a.expires_at AS a_expires_at, p.can_view, p.can_change, \
         (SELECT COUNT(*) FROM secret_versions v WHERE v.account_id = a.id AND v.state = 'active' \
            AND v.password_envelope IS NOT NULL) AS has_password, \
         (SELECT COUNT(*) FROM secret_versions v WHERE v.account_id = a.id AND v.state = 'active' \
            AND v.ssh_key_envelope IS NOT NULL) AS has_key, \
         pol.id AS pol_id, pol.tenant_id AS pol_tenant_id, pol.name AS pol_name, pol.require_reason, \
         pol.require_confirmation, pol.confirmation_timeout_secs, pol.reset_after_showing, pol.reset_after_minutes, \
         pol.encrypt_key, pol.can_set_if_not_set, pol.created_at AS pol_created_at, pol.updated_at AS pol_updated_at, \
         r.due_at AS reset_due_at, r.state AS reset_state, \
         (SELECT COUNT(*) FROM device_jobs j WHERE j.device_id = a.device_id AND j.state = 'open' \
            AND j.kind = 'rotate_password') AS open_rotations \
         FROM account_permissions p \
         JOIN accounts a ON a.id = p.account_id AND a.tenant_id = p.tenant_id \
         LEFT JOIN account_policy_links l ON l.account_id = a.id \
         LEFT JOIN account_policies pol ON pol.id = l.policy_id \
         LEFT JOIN credential_resets r ON r.account_id = a.id AND r.state IN ('scheduled', 'running') \
         WHERE a.removed_at IS NULL AND p.tenant_id = $1 AND p.principal_kind = $2 AND p.principal_id = $3"
    };
}

impl Store {
    /// Create or replace a policy (by id). The name is unique in the tenant.
    pub async fn put_account_policy(
        &self,
        p: AccountPolicy,
        name_key: String,
        event: NewAuditEvent,
    ) -> Result<AccountPolicy, StoreError> {
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let existing = sqlx::query("SELECT created_at FROM account_policies WHERE tenant_id = $1 AND id = $2")
                        .bind(p.tenant_id.clone())
                        .bind(p.id.clone())
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    let created_at = match &existing {
                        Some(row) => time(row, "created_at")?,
                        None => p.created_at,
                    };
                    // The same thirteen values in the same order for both statements.
                    let sql = if existing.is_some() {
                        "UPDATE account_policies SET name = $3, name_key = $4, require_reason = $5, \
                         require_confirmation = $6, confirmation_timeout_secs = $7, reset_after_showing = $8, \
                         reset_after_minutes = $9, encrypt_key = $10, can_set_if_not_set = $11, created_at = $12, \
                         updated_at = $13 WHERE tenant_id = $1 AND id = $2"
                    } else {
                        "INSERT INTO account_policies (tenant_id, id, name, name_key, require_reason, require_confirmation, \
                         confirmation_timeout_secs, reset_after_showing, reset_after_minutes, encrypt_key, \
                         can_set_if_not_set, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                    };
                    sqlx::query(sql)
                        .bind(p.tenant_id.clone())
                        .bind(p.id.clone())
                        .bind(p.name.clone())
                        .bind(name_key)
                        .bind(i64::from(p.require_reason))
                        .bind(i64::from(p.require_confirmation))
                        .bind(p.confirmation_timeout_secs)
                        .bind(i64::from(p.reset_after_showing))
                        .bind(p.reset_after_minutes)
                        .bind(i64::from(p.encrypt_key))
                        .bind(i64::from(p.can_set_if_not_set))
                        .bind(to_millis(created_at))
                        .bind(to_millis(p.updated_at))
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    Ok(AccountPolicy { created_at, ..p })
                })
            })
            .await
    }

    /// A tenant's policies by name.
    pub async fn list_account_policies(&self, tenant_id: &str) -> Result<Vec<AccountPolicy>, StoreError> {
        let sql = format!("SELECT {POLICY_COLUMNS} FROM account_policies WHERE tenant_id = $1 ORDER BY name_key");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id.to_owned())
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::db)?
            .iter()
            .map(|r| policy_from_row(r, ""))
            .collect()
    }

    /// One policy of a tenant.
    pub async fn account_policy(&self, tenant_id: &str, id: &str) -> Result<AccountPolicy, StoreError> {
        let sql = format!("SELECT {POLICY_COLUMNS} FROM account_policies WHERE tenant_id = $1 AND id = $2");
        policy_from_row(&tenant_row(&self.read, sql, tenant_id, id).await?, "")
    }

    /// The policy of a tenant with this name key.
    pub async fn account_policy_by_name(&self, tenant_id: &str, name_key: &str) -> Result<AccountPolicy, StoreError> {
        let sql = format!("SELECT {POLICY_COLUMNS} FROM account_policies WHERE tenant_id = $1 AND name_key = $2");
        policy_from_row(&tenant_row(&self.read, sql, tenant_id, name_key).await?, "")
    }

    /// Delete a policy. A policy still attached to an account is a conflict.
    pub async fn delete_account_policy(
        &self,
        tenant_id: &str,
        id: &str,
        event: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let (tenant_id, id) = (tenant_id.to_owned(), id.to_owned());
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let used = sqlx::query("SELECT COUNT(*) AS n FROM account_policy_links WHERE policy_id = $1")
                        .bind(id.clone())
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    if get::<i64>(&used, "n")? > 0 {
                        return Err(StoreError::Conflict("the policy is attached to accounts; detach it first"));
                    }
                    let done = sqlx::query("DELETE FROM account_policies WHERE tenant_id = $1 AND id = $2")
                        .bind(tenant_id)
                        .bind(id)
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound);
                    }
                    Ok(())
                })
            })
            .await
    }

    /// Attach a policy to an account (replacing its policy), or detach it with `None`. Both
    /// must be in the tenant.
    pub async fn attach_account_policy(
        &self,
        tenant_id: &str,
        account_id: &str,
        policy_id: Option<String>,
        event: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let (tenant_id, account_id) = (tenant_id.to_owned(), account_id.to_owned());
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    crate::directory::require_in_tenant(
                        conn,
                        "SELECT 1 FROM accounts WHERE tenant_id = $1 AND id = $2",
                        &tenant_id,
                        &account_id,
                    )
                    .await?;
                    sqlx::query("DELETE FROM account_policy_links WHERE account_id = $1")
                        .bind(account_id.clone())
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    if let Some(policy_id) = policy_id {
                        crate::directory::require_in_tenant(
                            conn,
                            "SELECT 1 FROM account_policies WHERE tenant_id = $1 AND id = $2",
                            &tenant_id,
                            &policy_id,
                        )
                        .await
                        .map_err(|_| StoreError::Invalid("no such account policy in this tenant".into()))?;
                        sqlx::query(
                            "INSERT INTO account_policy_links (account_id, tenant_id, policy_id) VALUES ($1, $2, $3)",
                        )
                        .bind(account_id)
                        .bind(tenant_id)
                        .bind(policy_id)
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    }
                    Ok(())
                })
            })
            .await
    }

    /// The policy attached to an account, if any.
    pub async fn policy_of_account(
        &self,
        tenant_id: &str,
        account_id: &str,
    ) -> Result<Option<AccountPolicy>, StoreError> {
        let sql = format!(
            "SELECT {} FROM account_policies p JOIN account_policy_links l ON l.policy_id = p.id \
             WHERE l.tenant_id = $1 AND l.account_id = $2",
            POLICY_COLUMNS.split(", ").map(|c| format!("p.{c}")).collect::<Vec<_>>().join(", ")
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id.to_owned())
            .bind(account_id.to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?
            .map(|r| policy_from_row(&r, ""))
            .transpose()
    }

    /// Grant (or change) a principal's permission on an account. The account and the
    /// principal must be in the tenant; `Invalid` names a missing principal.
    #[allow(clippy::too_many_arguments)]
    pub async fn set_account_permission(
        &self,
        tenant_id: &str,
        account_id: &str,
        kind: PrincipalKind,
        principal_id: &str,
        view: bool,
        change: bool,
        now: OffsetDateTime,
        event: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let (tenant_id, account_id, principal_id) =
            (tenant_id.to_owned(), account_id.to_owned(), principal_id.to_owned());
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    crate::directory::require_in_tenant(
                        conn,
                        "SELECT 1 FROM accounts WHERE tenant_id = $1 AND id = $2",
                        &tenant_id,
                        &account_id,
                    )
                    .await?;
                    let exists = match kind {
                        PrincipalKind::Application => "SELECT 1 FROM applications WHERE tenant_id = $1 AND id = $2",
                        PrincipalKind::User => "SELECT 1 FROM users WHERE tenant_id = $1 AND id = $2",
                    };
                    crate::directory::require_in_tenant(conn, exists, &tenant_id, &principal_id)
                        .await
                        .map_err(|_| StoreError::Invalid(format!("no such {} in this tenant", kind.as_str())))?;
                    sqlx::query(
                        "INSERT INTO account_permissions (account_id, tenant_id, principal_kind, principal_id, can_view, \
                         can_change, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         ON CONFLICT (account_id, principal_kind, principal_id) DO UPDATE \
                         SET can_view = excluded.can_view, can_change = excluded.can_change, updated_at = excluded.updated_at",
                    )
                    .bind(account_id)
                    .bind(tenant_id)
                    .bind(kind.as_str())
                    .bind(principal_id)
                    .bind(i64::from(view))
                    .bind(i64::from(change))
                    .bind(to_millis(now))
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    Ok(())
                })
            })
            .await
    }

    /// Remove a principal's permission on an account. `NotFound` when there is none.
    pub async fn remove_account_permission(
        &self,
        tenant_id: &str,
        account_id: &str,
        kind: PrincipalKind,
        principal_id: &str,
        event: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let (tenant_id, account_id, principal_id) =
            (tenant_id.to_owned(), account_id.to_owned(), principal_id.to_owned());
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "DELETE FROM account_permissions WHERE tenant_id = $1 AND account_id = $2 \
                         AND principal_kind = $3 AND principal_id = $4",
                    )
                    .bind(tenant_id)
                    .bind(account_id)
                    .bind(kind.as_str())
                    .bind(principal_id)
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound);
                    }
                    Ok(())
                })
            })
            .await
    }

    /// The permissions on an account, applications first, then by name.
    pub async fn account_permissions(
        &self,
        tenant_id: &str,
        account_id: &str,
    ) -> Result<Vec<AccountPermission>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.account_id, p.principal_kind, p.principal_id, p.can_view, p.can_change, p.updated_at, \
             COALESCE(ap.name, u.name, '') AS principal_name FROM account_permissions p \
             LEFT JOIN applications ap ON p.principal_kind = 'application' AND ap.id = p.principal_id \
             LEFT JOIN users u ON p.principal_kind = 'user' AND u.id = p.principal_id \
             WHERE p.tenant_id = $1 AND p.account_id = $2 ORDER BY p.principal_kind, principal_name",
        )
        .bind(tenant_id.to_owned())
        .bind(account_id.to_owned())
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::db)?;
        rows.iter()
            .map(|r| {
                let kind: String = get(r, "principal_kind")?;
                Ok(AccountPermission {
                    account_id: get(r, "account_id")?,
                    principal_kind: PrincipalKind::parse(&kind).ok_or(StoreError::Corrupt("principal_kind"))?,
                    principal_id: get(r, "principal_id")?,
                    principal_name: get(r, "principal_name")?,
                    view: get::<i64>(r, "can_view")? != 0,
                    change: get::<i64>(r, "can_change")? != 0,
                    updated_at: time(r, "updated_at")?,
                })
            })
            .collect()
    }

    /// The accounts a principal may view or change, by name, with their policies and reset
    /// state.
    pub async fn permitted_accounts(
        &self,
        tenant_id: &str,
        kind: PrincipalKind,
        principal_id: &str,
    ) -> Result<Vec<PermittedAccount>, StoreError> {
        let rows = sqlx::query(concat!(
            select_permitted!(),
            " AND (p.can_view = 1 OR p.can_change = 1) ORDER BY a.name_key, a.id"
        ))
        .bind(tenant_id.to_owned())
        .bind(kind.as_str())
        .bind(principal_id.to_owned())
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::db)?;
        rows.iter().map(permitted_from_row).collect()
    }

    /// What decides a view by an application, in one indexed read: the account's name, whether
    /// the application may view it, and its policy. `NotFound` without a permission (or account).
    /// Kept in memory until anything is committed through this store, and for at most a second
    /// (changes made by another server sharing the database).
    pub async fn view_rule(
        &self,
        tenant_id: &str,
        application_id: &str,
        account_id: &str,
    ) -> Result<ViewRule, StoreError> {
        let key = (tenant_id.to_owned(), application_id.to_owned(), account_id.to_owned());
        let generation = self.writer.generation();
        if let Some(rule) = self.view_rules.get(&key, generation) {
            return Ok(rule);
        }
        let rule = self.read_view_rule(tenant_id, application_id, account_id).await?;
        self.view_rules.put(key, generation, rule.clone());
        Ok(rule)
    }

    async fn read_view_rule(
        &self,
        tenant_id: &str,
        application_id: &str,
        account_id: &str,
    ) -> Result<ViewRule, StoreError> {
        let row = sqlx::query(
            "SELECT a.name AS account_name, p.can_view, pol.id AS pol_id, pol.tenant_id AS pol_tenant_id, \
             pol.name AS pol_name, pol.require_reason, pol.require_confirmation, pol.confirmation_timeout_secs, \
             pol.reset_after_showing, pol.reset_after_minutes, pol.encrypt_key, pol.can_set_if_not_set, \
             pol.created_at AS pol_created_at, pol.updated_at AS pol_updated_at \
             FROM account_permissions p JOIN accounts a ON a.id = p.account_id AND a.tenant_id = p.tenant_id \
             LEFT JOIN account_policy_links l ON l.account_id = a.id \
             LEFT JOIN account_policies pol ON pol.id = l.policy_id \
             WHERE a.removed_at IS NULL AND p.account_id = $1 AND p.principal_kind = 'application' \
             AND p.principal_id = $2 AND p.tenant_id = $3",
        )
        .bind(account_id.to_owned())
        .bind(application_id.to_owned())
        .bind(tenant_id.to_owned())
        .fetch_optional(&self.read)
        .await
        .map_err(StoreError::db)?
        .ok_or(StoreError::NotFound)?;
        let policy = match get::<Option<String>>(&row, "pol_id")? {
            Some(_) => Some(policy_from_row(&row, "pol_")?),
            None => None,
        };
        Ok(ViewRule { account_name: get(&row, "account_name")?, view: get::<i64>(&row, "can_view")? != 0, policy })
    }

    /// One account as a principal sees it; `NotFound` when the principal has no permission on
    /// it (or it does not exist).
    pub async fn permitted_account(
        &self,
        tenant_id: &str,
        kind: PrincipalKind,
        principal_id: &str,
        account_id: &str,
    ) -> Result<PermittedAccount, StoreError> {
        let row = sqlx::query(concat!(select_permitted!(), " AND a.id = $4"))
            .bind(tenant_id.to_owned())
            .bind(kind.as_str())
            .bind(principal_id.to_owned())
            .bind(account_id.to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?
            .ok_or(StoreError::NotFound)?;
        permitted_from_row(&row)
    }
}

/// Read a policy from columns named as in [`POLICY_COLUMNS`], the identifying ones with
/// `prefix` (`pol_` in joined rows).
pub(crate) fn policy_from_row(row: &AnyRow, prefix: &str) -> Result<AccountPolicy, StoreError> {
    let (id, tenant_id, name, created, updated) = if prefix.is_empty() {
        ("id", "tenant_id", "name", "created_at", "updated_at")
    } else {
        ("pol_id", "pol_tenant_id", "pol_name", "pol_created_at", "pol_updated_at")
    };
    let flag = |col: &'static str| get::<i64>(row, col).map(|v| v != 0);
    Ok(AccountPolicy {
        id: get(row, id)?,
        tenant_id: get(row, tenant_id)?,
        name: get(row, name)?,
        require_reason: flag("require_reason")?,
        require_confirmation: flag("require_confirmation")?,
        confirmation_timeout_secs: get(row, "confirmation_timeout_secs")?,
        reset_after_showing: flag("reset_after_showing")?,
        reset_after_minutes: get(row, "reset_after_minutes")?,
        encrypt_key: flag("encrypt_key")?,
        can_set_if_not_set: flag("can_set_if_not_set")?,
        created_at: time(row, created)?,
        updated_at: time(row, updated)?,
    })
}

fn permitted_from_row(row: &AnyRow) -> Result<PermittedAccount, StoreError> {
    let policy = match get::<Option<String>>(row, "pol_id")? {
        Some(_) => Some(policy_from_row(row, "pol_")?),
        None => None,
    };
    let reset_state: Option<String> = get(row, "reset_state")?;
    Ok(PermittedAccount {
        account: account_from_row(row)?,
        has_password: get::<i64>(row, "has_password")? > 0,
        has_key: get::<i64>(row, "has_key")? > 0,
        policy,
        view: get::<i64>(row, "can_view")? != 0,
        change: get::<i64>(row, "can_change")? != 0,
        next_reset: opt_time(row, "reset_due_at")?,
        resetting_now: reset_state.as_deref() == Some("running") || get::<i64>(row, "open_rotations")? > 0,
    })
}
