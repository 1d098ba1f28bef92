-- The version of the sessions as a whole: every change that can make a
-- cached session wrong (log-off, role choice, acting for a patient, step-up,
-- password change, deactivation) adds one to it in the change's own
-- transaction. Each replica keeps its sessions in memory and polls this one
-- row; a new version empties its cache, so a change made on one replica
-- holds on every other within a second (AUTH-4, ID-5). No row until the
-- first change (a restore then brings back the one it had). Owned by
-- internal/authn.
-- +goose Up
CREATE TABLE authn_session_changes (
    id      BIGINT PRIMARY KEY,
    version BIGINT NOT NULL
);

-- +goose Down
DROP TABLE authn_session_changes;
