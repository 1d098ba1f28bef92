-- The monthly review of the admin and operator log (LOG-7, MedMij
-- A.12.4.3): a report per tenant and month of every event by an account
-- acting in an admin, security-officer or operator role; a reviewer other
-- than the actor marks each line's finding and follow-up; the closed
-- report is kept as JSON with the SHA-256 its closing log event names.
-- +goose Up
CREATE TABLE gov_adminlog_reports (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    period        TEXT NOT NULL,              -- YYYY-MM
    opened_by     TEXT NOT NULL,
    opened_at     BIGINT NOT NULL,
    finding       TEXT NOT NULL DEFAULT '',   -- the report's own finding
    follow_up     TEXT NOT NULL DEFAULT '',
    closed_by     TEXT NOT NULL DEFAULT '',
    closed_at     BIGINT,
    close_event   TEXT NOT NULL DEFAULT '',   -- the access-log event of the closing
    evidence      TEXT NOT NULL DEFAULT '',   -- the closed report as JSON
    evidence_hash TEXT NOT NULL DEFAULT '',
    UNIQUE (tenant_id, period)
);

CREATE TABLE gov_adminlog_lines (
    report_id   TEXT NOT NULL REFERENCES gov_adminlog_reports (id),
    line        INTEGER NOT NULL,
    event_id    TEXT NOT NULL,                -- the access-log event reviewed
    at          BIGINT NOT NULL,
    actor_id    TEXT NOT NULL,
    actor_name  TEXT NOT NULL,
    role        TEXT NOT NULL,
    action      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    what        TEXT NOT NULL,                -- resources and query of the event
    finding     TEXT NOT NULL DEFAULT '',     -- ok, unjustified, unnecessary, question
    follow_up   TEXT NOT NULL DEFAULT '',
    reviewed_by TEXT NOT NULL DEFAULT '',
    reviewed_at BIGINT,
    PRIMARY KEY (report_id, line)
);

-- A closed access review names the log event that closed it, so the
-- compliance report can give its inclusion proof.
ALTER TABLE gov_reviews ADD COLUMN close_event TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE gov_reviews DROP COLUMN close_event;
DROP TABLE gov_adminlog_lines;
DROP TABLE gov_adminlog_reports;
