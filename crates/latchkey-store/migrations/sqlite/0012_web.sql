-- The web UI: when a session was last used (idle timeout) and the roles people hold.

-- Unix ms of the session's last request through the web UI; NULL until then.
ALTER TABLE user_sessions ADD COLUMN last_seen_at INTEGER;

-- What a person may do beyond their access targets: 'admin' (the admin pages), 'auditor'
-- (the audit log and who can read what) and 'approver' (the approvals inbox).
CREATE TABLE user_roles (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role       TEXT NOT NULL,
    PRIMARY KEY (user_id, role)
);
