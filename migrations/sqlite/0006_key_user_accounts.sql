-- Key-user accounts can be disabled: a disabled login cannot log in and its sessions end.
ALTER TABLE key_users ADD COLUMN disabled_at_ms BIGINT;
