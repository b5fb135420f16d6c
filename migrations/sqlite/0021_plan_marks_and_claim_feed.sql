-- fieldsync: plans marked for the housekeeping to send again, and the claims feed in registration order (sqlite). Never edit once landed; add a new file instead.

-- 1: orders or sales counted toward the plan changed since its phones were last told; the
-- housekeeping sends such plans again (one claiming statement, whatever the servers).
ALTER TABLE plans ADD COLUMN dirty INTEGER NOT NULL DEFAULT 0;
CREATE INDEX plans_dirty ON plans (dirty);

-- A claim's place in the distributor's feed, given when it is registered (a draft has none):
-- a draft registered late still comes after every claim the feed already handed over.
ALTER TABLE claims ADD COLUMN feed_seq INTEGER;
-- Claims registered before this migration keep their number as their place (the feed paged by
-- number until now, so a distributor's cursor stays valid); new places follow the largest.
UPDATE claims SET feed_seq = number WHERE registered_at_ms IS NOT NULL;
INSERT INTO counters (name, value) SELECT 'claim_feed', COALESCE(MAX(number), 0) FROM claims;
CREATE INDEX claims_feed_seq ON claims (distributor_id, feed_seq);
