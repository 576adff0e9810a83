-- Access rules, directory sync, people signing in and notifications.

-- Where a directory object comes from: 'local' (built-in) or 'ldap' (synced; external_id is
-- its objectGUID or entryUUID and dn its distinguished name).
ALTER TABLE users ADD COLUMN upn TEXT;
ALTER TABLE users ADD COLUMN upn_key TEXT;
ALTER TABLE users ADD COLUMN password_hash TEXT;
ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local';
ALTER TABLE users ADD COLUMN external_id TEXT;
ALTER TABLE users ADD COLUMN dn TEXT;
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
CREATE INDEX users_by_upn ON users (tenant_id, upn_key);
CREATE INDEX users_by_external_id ON users (tenant_id, external_id);

ALTER TABLE groups ADD COLUMN source TEXT NOT NULL DEFAULT 'local';
ALTER TABLE groups ADD COLUMN external_id TEXT;
ALTER TABLE groups ADD COLUMN dn TEXT;
CREATE INDEX groups_by_external_id ON groups (tenant_id, external_id);

ALTER TABLE devices ADD COLUMN source TEXT NOT NULL DEFAULT 'local';
ALTER TABLE devices ADD COLUMN external_id TEXT;
CREATE INDEX devices_by_external_id ON devices (tenant_id, external_id);

-- Bumped in the same transaction as any change to targets, groups or group membership, so
-- every server knows when its cached rule index is stale.
ALTER TABLE tenants ADD COLUMN access_generation INTEGER NOT NULL DEFAULT 0;

-- Access targets: an ordered list per tenant (position ascending).
CREATE TABLE access_targets (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants(id),
    position            INTEGER NOT NULL,
    kind                TEXT NOT NULL,
    name                TEXT NOT NULL,
    name_key            TEXT NOT NULL,
    expire_after_ticks  INTEGER,
    grants              TEXT NOT NULL,
    email_on_success    INTEGER NOT NULL,
    email_on_failure    INTEGER NOT NULL,
    email_addresses     TEXT NOT NULL,
    enabled             INTEGER NOT NULL,
    description         TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX access_targets_by_tenant ON access_targets (tenant_id, position);

-- A target's readers, as written (principal) and as resolved (a user or a group).
CREATE TABLE access_target_readers (
    target_id    TEXT NOT NULL REFERENCES access_targets(id) ON DELETE CASCADE,
    principal    TEXT NOT NULL,
    member_kind  TEXT NOT NULL,
    member_id    TEXT NOT NULL,
    PRIMARY KEY (target_id, member_kind, member_id)
);
CREATE INDEX access_target_readers_by_member ON access_target_readers (member_kind, member_id);

-- Sessions of people signed in (bearer tokens, stored as keyed hashes).
CREATE TABLE user_sessions (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash  BLOB NOT NULL UNIQUE,
    method      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

-- Failed sign-ins per normalized principal and UTC day, shared by every sign-in path.
CREATE TABLE sign_in_failures (
    tenant_id        TEXT NOT NULL,
    principal_key    TEXT NOT NULL,
    day              INTEGER NOT NULL,
    failures         INTEGER NOT NULL,
    last_failure_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, principal_key, day)
);

-- Notifications to deliver (e-mail, webhook), written in the same transaction as the audit
-- event they report; delivered at least once, retried with backoff.
CREATE TABLE outbox (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT,
    channel          TEXT NOT NULL,
    payload          TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    delivered_at     INTEGER,
    last_error       TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL;

-- Directory sync runs: when, how it ended, what changed.
CREATE TABLE directory_sync_runs (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER NOT NULL,
    outcome      TEXT NOT NULL,
    summary      TEXT NOT NULL,
    error        TEXT
);
CREATE INDEX directory_sync_runs_by_tenant ON directory_sync_runs (tenant_id, started_at);
