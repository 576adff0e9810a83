-- Check-ins look up a device's accounts (admin password state, expired support accounts).
CREATE INDEX accounts_by_device ON accounts (device_id, kind);
