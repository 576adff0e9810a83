-- A check-in's nonce is kept in its device's row instead (devices.check_in_nonces), written
-- by the statement that records the check-in; the table keeps the other agent requests'.
DROP INDEX agent_nonces_by_expiry;

-- The nonces a device spent on check-ins whose requests could still be accepted, with when
-- each stops mattering: a JSON array of [nonce, expires (Unix ms)].
ALTER TABLE devices ADD COLUMN check_in_nonces TEXT;

-- A check-in finds the device's newest admin account without sorting.
CREATE INDEX accounts_newest_by_device ON accounts (device_id, kind, created_at DESC, id);
