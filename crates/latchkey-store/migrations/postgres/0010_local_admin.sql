-- Just-in-time local administrators on devices: what a grant or revoke job of the agent is
-- about. The job itself is a row of device_jobs (kind grant_local_admin or revoke_local_admin).

CREATE TABLE local_admin_jobs (
    job_id           TEXT PRIMARY KEY REFERENCES device_jobs(id) ON DELETE CASCADE,
    tenant_id        TEXT NOT NULL,
    device_id        TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    grant_id         TEXT NOT NULL,
    -- 'grant' or 'revoke'.
    kind             TEXT NOT NULL,
    username         TEXT NOT NULL,
    -- Grants: the temporary password sealed (HPKE) to the device's key, base64url; only the
    -- device can open it. Cleared once the job has ended.
    sealed_password  TEXT,
    -- Grants: when the account stops being an administrator (Unix ms).
    until_at         BIGINT,
    created_at       BIGINT NOT NULL
);
-- Finding a grant's jobs (idempotent queueing, superseding on revoke).
CREATE INDEX local_admin_jobs_by_grant ON local_admin_jobs (grant_id, kind, until_at);
