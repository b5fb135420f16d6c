-- fieldsync: hardening (SQLite). Never edit once landed; add a new file instead.

-- Attempts at a secret (a back-office password, a PIN, the current password of a password
-- change) per subject, counted whether or not the subject exists, so that a lockout tells
-- nothing about which logins exist. One atomic upsert claims an attempt and decides whether
-- the secret may be checked at all (see store/throttle.rs). The older counters on key_users
-- and mobile_users are no longer used.
CREATE TABLE auth_attempts (
    kind            TEXT NOT NULL,
    subject         TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    last_attempt_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, subject)
);
CREATE INDEX auth_attempts_age ON auth_attempts (last_attempt_ms);

-- A webhook delivery is leased by one server process: it is posted by whoever set the lease
-- and handed on when the lease runs out (a server killed mid-delivery).
ALTER TABLE webhooks ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN lease_until_ms INTEGER NOT NULL DEFAULT 0;

-- An import job is leased by the server running it and renewed while it runs; a job whose
-- lease ran out (its server died) is marked failed by any server.
ALTER TABLE import_jobs ADD COLUMN lease_until_ms INTEGER NOT NULL DEFAULT 0;
CREATE INDEX import_jobs_running ON import_jobs (status, lease_until_ms);
