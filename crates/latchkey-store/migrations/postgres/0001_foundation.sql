-- Latchkey foundation schema (PostgreSQL). Times are Unix milliseconds; ids are UUID text.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE devices (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants(id),
    name                TEXT NOT NULL,
    name_key            TEXT NOT NULL,
    container_dn        TEXT,
    os                  TEXT,
    agent_public_key    TEXT,
    enrolled_at         BIGINT,
    last_seen_at        BIGINT,
    poll_interval_secs  BIGINT NOT NULL DEFAULT 1800,
    created_at          BIGINT NOT NULL,
    UNIQUE (tenant_id, name_key)
);

CREATE TABLE groups (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    name         TEXT NOT NULL,
    name_key     TEXT NOT NULL,
    description  TEXT,
    created_at   BIGINT NOT NULL,
    UNIQUE (tenant_id, name_key)
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    name_key      TEXT NOT NULL,
    display_name  TEXT,
    email         TEXT,
    created_at    BIGINT NOT NULL,
    UNIQUE (tenant_id, name_key)
);

CREATE TABLE group_members (
    group_id     TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    member_kind  TEXT NOT NULL,
    member_id    TEXT NOT NULL,
    PRIMARY KEY (group_id, member_kind, member_id)
);
CREATE INDEX group_members_by_member ON group_members (member_kind, member_id);

CREATE TABLE accounts (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    name_key     TEXT NOT NULL,
    device_id    TEXT REFERENCES devices(id) ON DELETE CASCADE,
    scope_key    TEXT NOT NULL,
    description  TEXT,
    created_at   BIGINT NOT NULL,
    UNIQUE (tenant_id, scope_key, name_key)
);

CREATE TABLE secret_versions (
    tenant_id          TEXT NOT NULL,
    account_id         TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    version            BIGINT NOT NULL,
    state              TEXT NOT NULL,
    password_envelope  BYTEA,
    ssh_key_envelope   BYTEA,
    key_id             TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT,
    retired_at         BIGINT,
    PRIMARY KEY (account_id, version)
);
CREATE INDEX secret_versions_by_key ON secret_versions (key_id);
CREATE UNIQUE INDEX secret_versions_one_active ON secret_versions (account_id) WHERE state = 'active';

CREATE TABLE api_clients (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    name         TEXT NOT NULL,
    name_key     TEXT NOT NULL,
    secret_hash  BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    disabled_at  BIGINT,
    UNIQUE (tenant_id, name_key)
);

CREATE TABLE admin_tokens (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT REFERENCES tenants(id),
    name        TEXT NOT NULL,
    token_hash  BYTEA NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT
);

CREATE TABLE audit_events (
    seq          BIGINT PRIMARY KEY,
    at           BIGINT NOT NULL,
    tenant_id    TEXT,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    object_type  TEXT NOT NULL,
    object_id    TEXT,
    outcome      TEXT NOT NULL,
    reason       TEXT,
    ticket       TEXT,
    client_addr  TEXT,
    request_id   TEXT,
    details      TEXT NOT NULL,
    prev_hash    BYTEA NOT NULL,
    hash         BYTEA NOT NULL
);
CREATE INDEX audit_events_by_tenant ON audit_events (tenant_id, seq);
CREATE INDEX audit_events_by_object ON audit_events (object_id, seq);

CREATE TABLE audit_head (
    id    SMALLINT PRIMARY KEY CHECK (id = 1),
    seq   BIGINT NOT NULL,
    hash  BYTEA NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));
