-- fieldsync: a questionnaire's revision (PostgreSQL). Never edit once landed; add a new file instead.

-- Counts the edits of a questionnaire version: every edit (in place or one that makes a new
-- version) adds one, in the edit's transaction. A push reads the questionnaires its answers
-- name before it takes the write lock; under the lock it compares their revisions and reads
-- again those an edit changed meanwhile, so answers are always checked against, and stored
-- for, the questions as they are when they are written.
ALTER TABLE questionnaires ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
-- On PostgreSQL the push holds FOR KEY SHARE on the questionnaires it checked until it
-- commits and an edit takes FOR UPDATE first, so an edit that counts the answers of a version
-- sees those of every push that checked it.
