-- fieldsync: questionnaire editor, versions and targeting (PostgreSQL). Never edit once landed; add a new file instead.

-- Versions: a questionnaire that has answers is not rewritten; an edit of its questions makes
-- a new row (version + 1, same family) and the old one points at it by superseded_by. Old
-- answers keep pointing at the old version's questions. The back office lists the versions
-- that are not superseded; a superseded one stays active so that answers a phone filled
-- before its next pull are still accepted against the questions it was shown.
ALTER TABLE questionnaires ADD COLUMN family_id BIGINT;
ALTER TABLE questionnaires ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE questionnaires ADD COLUMN superseded_by BIGINT REFERENCES questionnaires(id);
-- Validity, ISO dates "YYYY-MM-DD" in the distributor's calendar; '' = open-ended.
ALTER TABLE questionnaires ADD COLUMN valid_from TEXT NOT NULL DEFAULT '';
ALTER TABLE questionnaires ADD COLUMN valid_to TEXT NOT NULL DEFAULT '';
UPDATE questionnaires SET family_id = id;
CREATE INDEX questionnaires_family ON questionnaires (family_id);

-- Whom a questionnaire targets. No org unit: every phone of the distributor pulls it; else
-- only the phones of these territories or positions (the change log's scopes). No channel:
-- every outlet; else the phone offers it only at outlets of these channels.
CREATE TABLE questionnaire_org_units (
    questionnaire_id BIGINT NOT NULL REFERENCES questionnaires(id),
    org_unit_id      BIGINT NOT NULL REFERENCES org_units(id),
    PRIMARY KEY (questionnaire_id, org_unit_id)
);
CREATE TABLE questionnaire_channels (
    questionnaire_id BIGINT NOT NULL REFERENCES questionnaires(id),
    channel          TEXT NOT NULL,
    PRIMARY KEY (questionnaire_id, channel)
);
