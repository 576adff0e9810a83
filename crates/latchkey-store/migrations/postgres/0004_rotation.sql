-- Rotation of device passwords, support accounts and the jobs agents carry out.

-- Support accounts live for a limited time; removed ones stay for the record.
ALTER TABLE accounts ADD COLUMN expires_at BIGINT;
ALTER TABLE accounts ADD COLUMN removed_at BIGINT;

-- What the agent last reported, and when a rotation was last confirmed.
ALTER TABLE devices ADD COLUMN reported_version BIGINT;
ALTER TABLE devices ADD COLUMN last_rotated_at BIGINT;

-- Rotation policy of a tenant (scope_key '') or of a device group (scope_key = group id).
CREATE TABLE rotation_policies (
    tenant_id              TEXT NOT NULL REFERENCES tenants(id),
    scope_key              TEXT NOT NULL,
    group_id               TEXT REFERENCES groups(id) ON DELETE CASCADE,
    priority               BIGINT NOT NULL,
    max_age_secs           BIGINT NOT NULL,
    length                 BIGINT NOT NULL,
    classes                TEXT NOT NULL,
    passphrase_words       BIGINT,
    history                BIGINT NOT NULL,
    support_lifetime_secs  BIGINT NOT NULL,
    poll_interval_secs     BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, scope_key)
);

-- Work queued for a device agent. Open jobs are sent at every check-in until done or failed.
CREATE TABLE device_jobs (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    device_id   TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL,
    cause       TEXT NOT NULL,
    account_id  TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    error       TEXT
);
CREATE INDEX device_jobs_open ON device_jobs (device_id, created_at) WHERE state = 'open';
CREATE INDEX device_jobs_by_account ON device_jobs (account_id);
