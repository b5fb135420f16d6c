-- fieldsync: field-truth signals of visits (PostgreSQL). Never edit once landed; add a new file instead.

-- The signals a visit raised (protocol/src/signals.rs), computed at ingest when the visit is
-- started and again when it ends. `signals` lists their names between commas
-- (",off_site,short_stay,"; '' when none) for the visits list's filter; `visit_signals`
-- holds each one's evidence (its variant and its numbers, rendered through the catalogue).
-- Visits stored before this migration have no signals.
ALTER TABLE visits ADD COLUMN signals TEXT NOT NULL DEFAULT '';
-- The device time of the mutation the device recorded just before the visit's start, and
-- the same mobile user's previous visit (by device time of the start): what the clock and
-- travel signals compared it with, kept so that the evidence can be shown and recomputed.
ALTER TABLE visits ADD COLUMN preceding_device_ms BIGINT;
ALTER TABLE visits ADD COLUMN previous_visit_id TEXT;
-- The device time of the last mutation a device pushed: the preceding action of a batch's
-- first mutation.
ALTER TABLE devices ADD COLUMN last_device_ms BIGINT;

CREATE TABLE visit_signals (
    visit_id  TEXT NOT NULL,
    signal    TEXT NOT NULL,
    variant   TEXT NOT NULL,
    args      TEXT NOT NULL,
    PRIMARY KEY (visit_id, signal)
);
