-- Audit: the NEN 7513 access log. Owned by internal/audit. Append-only: the
-- code has no UPDATE or DELETE for events. body is the canonical JSON of the
-- whole event; the other columns are copies for querying.
-- +goose Up
CREATE TABLE audit_events (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,          -- '' for platform events
    time         BIGINT NOT NULL,
    action       TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    patient_id   TEXT NOT NULL,
    emergency    BOOLEAN NOT NULL,
    body         TEXT NOT NULL
);
CREATE INDEX audit_events_patient ON audit_events(tenant_id, patient_id, time);
CREATE INDEX audit_events_user ON audit_events(tenant_id, user_id, time);

-- +goose Down
DROP TABLE audit_events;
