-- The application credential API (Axidian AAPM-compatible): applications and their access
-- tokens, failed token requests, account policies and permissions, approval requests and
-- scheduled credential resets. Times are Unix milliseconds; flags are 0/1.

-- Machine clients of the token endpoint. The password is stored as an Argon2id PHC string.
CREATE TABLE applications (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    name           TEXT NOT NULL,
    name_key       TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    enabled        BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (tenant_id, name_key)
);

-- Opaque bearer tokens of applications, stored as keyed hashes.
CREATE TABLE app_tokens (
    id              TEXT PRIMARY KEY,
    token_hash      BYTEA NOT NULL UNIQUE,
    tenant_id       TEXT NOT NULL,
    application_id  TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      BIGINT
);
CREATE INDEX app_tokens_by_application ON app_tokens (application_id);
CREATE INDEX app_tokens_by_expiry ON app_tokens (expires_at);

-- Failed token requests per scope (`app:<tenant id>:<name key>` or `addr:<client address>`),
-- for the progressive delay and the lockout.
CREATE TABLE app_token_failures (
    scope            TEXT PRIMARY KEY,
    failures         BIGINT NOT NULL,
    first_failure_at BIGINT NOT NULL,
    last_failure_at  BIGINT NOT NULL,
    locked_until     BIGINT
);

-- Policies shared by many accounts.
CREATE TABLE account_policies (
    id                          TEXT PRIMARY KEY,
    tenant_id                   TEXT NOT NULL REFERENCES tenants(id),
    name                        TEXT NOT NULL,
    name_key                    TEXT NOT NULL,
    require_reason              BIGINT NOT NULL,
    require_confirmation        BIGINT NOT NULL,
    confirmation_timeout_secs   BIGINT NOT NULL,
    reset_after_showing         BIGINT NOT NULL,
    reset_after_minutes         BIGINT NOT NULL,
    encrypt_key                 BIGINT NOT NULL,
    can_set_if_not_set          BIGINT NOT NULL,
    created_at                  BIGINT NOT NULL,
    updated_at                  BIGINT NOT NULL,
    UNIQUE (tenant_id, name_key)
);

-- The policy governing an account (at most one).
CREATE TABLE account_policy_links (
    account_id  TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    tenant_id   TEXT NOT NULL,
    policy_id   TEXT NOT NULL REFERENCES account_policies(id)
);
CREATE INDEX account_policy_links_by_policy ON account_policy_links (policy_id);

-- Who may view or change an account: applications and people.
CREATE TABLE account_permissions (
    account_id      TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    tenant_id       TEXT NOT NULL,
    principal_kind  TEXT NOT NULL,
    principal_id    TEXT NOT NULL,
    can_view        BIGINT NOT NULL,
    can_change      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (account_id, principal_kind, principal_id)
);
CREATE INDEX account_permissions_by_principal ON account_permissions (principal_kind, principal_id);

-- Requests to view an account whose policy requires confirmation.
CREATE TABLE approval_requests (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    account_id      TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    requester_kind  TEXT NOT NULL,
    requester_id    TEXT NOT NULL,
    on_behalf_of    TEXT NOT NULL,
    reason          TEXT,
    state           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    decided_by      TEXT,
    decided_at      BIGINT,
    comment         TEXT,
    valid_until     BIGINT,
    views           BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX approval_requests_by_requester ON approval_requests (account_id, requester_id, state);
CREATE INDEX approval_requests_by_tenant ON approval_requests (tenant_id, state, created_at);

-- Credential resets scheduled after a view; at most one open (scheduled or running) per account.
CREATE TABLE credential_resets (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    due_at       BIGINT NOT NULL,
    state        TEXT NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    last_error   TEXT,
    lease_until  BIGINT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX credential_resets_one_open ON credential_resets (account_id) WHERE state IN ('scheduled', 'running');
CREATE INDEX credential_resets_due ON credential_resets (due_at) WHERE state IN ('scheduled', 'running');
