-- One-time, expiring enrollment tokens for device agents (stored as keyed hashes).
CREATE TABLE enrollment_tokens (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    token_hash      BYTEA NOT NULL UNIQUE,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT,
    used_by_device  TEXT
);
