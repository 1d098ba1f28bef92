-- Legal-hold register of the access log (LOG-6). Owned by internal/audit.
--
-- A hold keeps the events it names from being purged until until_time,
-- at most ten years after it was placed; placing it exports those lines
-- with their inclusion proofs. Times are Unix microseconds.
-- +goose Up
CREATE TABLE audit_holds (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    reason     TEXT NOT NULL,
    until_time BIGINT NOT NULL,
    placed_by  TEXT NOT NULL,
    placed_at  BIGINT NOT NULL
);

CREATE TABLE audit_hold_events (
    hold_id  TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (hold_id, event_id)
);
CREATE INDEX audit_hold_events_event ON audit_hold_events(event_id);

-- +goose Down
DROP TABLE audit_hold_events;
DROP TABLE audit_holds;
