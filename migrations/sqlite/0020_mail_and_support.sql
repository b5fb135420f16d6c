-- fieldsync: e-mail (an outbox the housekeeping sends from, password-reset links, the morning
-- digest's claims) and support requests (sqlite). Never edit once landed; add a new file instead.

-- A key user's mail address ('' = no mail).
ALTER TABLE key_users ADD COLUMN email TEXT NOT NULL DEFAULT '';

-- Mail waiting to be sent, being sent, sent or given up. A server claims a due row by setting
-- lease_owner/lease_until_ms in one conditional UPDATE (state 'queued', lease run out), sends,
-- then marks it 'sent' (or back to 'queued' with the next attempt's time) only while it still
-- holds the lease. A row left 'sending' by a server that stopped mid-send is never sent again
-- (state 'failed'): a message is sent at most once.
-- kind: 'import' | 'rdc' | 'password_reset' | 'support' | 'digest'.
CREATE TABLE mail_outbox (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,
    to_addr         TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    attachment_name TEXT NOT NULL DEFAULT '',
    attachment      BLOB,
    state           TEXT NOT NULL DEFAULT 'queued',
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    lease_owner     TEXT NOT NULL DEFAULT '',
    lease_until_ms  BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at_ms   BIGINT NOT NULL,
    sent_at_ms      BIGINT
);
CREATE INDEX mail_outbox_due ON mail_outbox (state, next_attempt_ms);
CREATE INDEX mail_outbox_created ON mail_outbox (created_at_ms);

-- Password-reset links: the SHA-256 of the token (the token itself is only in the mail),
-- used once (used_at_ms set by one conditional UPDATE) before expires_at_ms.
CREATE TABLE password_resets (
    token_hash    TEXT PRIMARY KEY,
    key_user_id   BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    used_at_ms    BIGINT,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX password_resets_user ON password_resets (key_user_id);

-- One row per key user and local day the morning digest was queued: inserting it is the claim
-- (of several servers, one inserts; the others send nothing).
CREATE TABLE mail_digests (
    key_user_id BIGINT NOT NULL,
    day         TEXT NOT NULL,
    PRIMARY KEY (key_user_id, day)
);

-- Support requests: a key user of a distributor asks head office. state: 'open' (new or
-- reopened, head office to answer) | 'answered' (the requester to confirm or reopen) |
-- 'closed' (confirmed).
CREATE TABLE support_requests (
    id              INTEGER PRIMARY KEY,
    distributor_id  BIGINT NOT NULL,
    opened_by       BIGINT NOT NULL,
    subject         TEXT NOT NULL,
    page            TEXT NOT NULL DEFAULT '',
    state           TEXT NOT NULL DEFAULT 'open',
    attachment_name TEXT NOT NULL DEFAULT '',
    attachment_type TEXT NOT NULL DEFAULT '',
    attachment      BLOB,
    messages        BIGINT NOT NULL DEFAULT 1,
    created_at_ms   BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL
);
CREATE INDEX support_requests_distributor ON support_requests (distributor_id, updated_at_ms);
CREATE INDEX support_requests_state ON support_requests (state);

-- The thread of a request. kind: 'opened' | 'answer' | 'confirmed' | 'reopened'.
CREATE TABLE support_messages (
    id          INTEGER PRIMARY KEY,
    request_id  BIGINT NOT NULL,
    author_id   BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    body        TEXT NOT NULL,
    at_ms       BIGINT NOT NULL
);
CREATE INDEX support_messages_request ON support_messages (request_id, id);
