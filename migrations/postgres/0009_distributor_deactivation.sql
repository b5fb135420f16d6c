-- fieldsync: distributors deactivated in the back office (PostgreSQL). Never edit once landed; add a
-- new file instead.

-- A deactivated distributor (sync point) keeps all its data; while this is set its phones'
-- syncs and activations are refused (DISTRIBUTOR_INACTIVE), its API keys are refused, it leaves
-- its key users' scope and every picker. NULL: active.
ALTER TABLE distributors ADD COLUMN deactivated_at_ms BIGINT;
