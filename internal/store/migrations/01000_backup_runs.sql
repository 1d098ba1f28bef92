-- The backup schedule's runs (DP-5): each time slot is claimed by the one
-- replica whose insert succeeds, so the schedule runs once across replicas;
-- the row then records the backup and its restore test (the evidence).
-- +goose Up
CREATE TABLE backup_runs (
    slot        TEXT PRIMARY KEY,   -- the slot's start, RFC 3339 UTC
    host        TEXT NOT NULL,      -- the replica that ran it
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    backup      TEXT NOT NULL DEFAULT '',
    bytes       BIGINT NOT NULL DEFAULT 0,
    tested_ok   BOOLEAN,            -- NULL: not restore-tested (yet)
    detail      TEXT NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE backup_runs;
