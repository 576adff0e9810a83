-- Spent agent nonces are swept in bulk once their timestamps can no longer be accepted.
CREATE INDEX agent_nonces_by_expiry ON agent_nonces (expires_at);
