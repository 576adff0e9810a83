-- Just-in-time elevation: grants (persisted desired state for the engine), the owner of each
-- tech account name, built-in tickets and ticket comments (delivered by the ticket worker).
CREATE TABLE jit_grants (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants(id),
    provider           TEXT NOT NULL,
    device_id          TEXT,
    scope_key          TEXT NOT NULL,
    requester          TEXT NOT NULL,
    requester_key      TEXT NOT NULL,
    account_name       TEXT NOT NULL,
    account_key        TEXT NOT NULL,
    ticket             TEXT NOT NULL,
    reason             TEXT NOT NULL,
    minutes            INTEGER NOT NULL,
    state              TEXT NOT NULL,
    approver           TEXT,
    created_at         INTEGER NOT NULL,
    start_at           INTEGER,
    end_at             INTEGER NOT NULL,
    revoked_at         INTEGER,
    password_envelope  BLOB NOT NULL,
    key_id             TEXT NOT NULL,
    next_step_at       INTEGER NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT,
    claimed_by         TEXT,
    claimed_until      INTEGER,
    overdue_at         INTEGER,
    provider_job       TEXT
);
CREATE INDEX jit_grants_due ON jit_grants (next_step_at) WHERE state IN ('approved', 'active', 'revoking');
CREATE INDEX jit_grants_by_tenant ON jit_grants (tenant_id, created_at);
-- One open grant per tech account: a second would lose its access when the first is revoked.
CREATE UNIQUE INDEX jit_grants_one_open ON jit_grants (tenant_id, provider, scope_key, account_key)
    WHERE state IN ('requested', 'approved', 'active', 'revoking');

CREATE TABLE jit_accounts (
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    provider       TEXT NOT NULL,
    account_key    TEXT NOT NULL,
    requester_key  TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, provider, account_key)
);

CREATE TABLE tickets (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    number      INTEGER NOT NULL,
    title       TEXT NOT NULL,
    state       TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    closed_at   INTEGER,
    UNIQUE (tenant_id, number)
);

CREATE TABLE ticket_comments (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    ticket           TEXT NOT NULL,
    grant_id         TEXT,
    adapter          TEXT NOT NULL,
    body             TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    delivered_at     INTEGER,
    last_error       TEXT
);
CREATE INDEX ticket_comments_due ON ticket_comments (next_attempt_at) WHERE delivered_at IS NULL;
CREATE INDEX ticket_comments_by_ticket ON ticket_comments (tenant_id, ticket, created_at);
