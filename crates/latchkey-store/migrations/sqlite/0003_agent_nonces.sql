-- Nonces of signed agent requests, kept until their timestamps can no longer be accepted.
CREATE TABLE agent_nonces (
    device_id   TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (device_id, nonce)
);
