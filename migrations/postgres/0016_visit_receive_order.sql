-- fieldsync: the receive order of visits, for the field-truth signals (PostgreSQL). Never edit once landed; add a new file instead.

-- A visit's previous visit is the same mobile user's visit the server received before it:
-- by receive time, then by the start's sequence number on its device (not by the device's
-- clock, which can be moved to back-date a visit). Visits stored before this migration have
-- no sequence number and are not ordered among visits received in the same millisecond.
ALTER TABLE visits ADD COLUMN started_seq BIGINT;
CREATE INDEX visits_user_received ON visits (mobile_user_id, started_received_ms, started_seq);
