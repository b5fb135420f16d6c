-- Accounts can be disabled. A disabled key user cannot log in and its sessions end; a disabled
-- mobile user's PINs and devices are revoked, so its phone is refused at once.
ALTER TABLE key_users ADD COLUMN disabled_at_ms BIGINT;
ALTER TABLE mobile_users ADD COLUMN disabled_at_ms BIGINT;
