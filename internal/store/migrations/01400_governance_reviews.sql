-- Governance (internal/governance): the incident register with its 48-hour
-- reporting clock (GOV-4, LOG-9) and the monthly access-rights review
-- campaigns (GOV-2), whose closed evidence is kept with its hash.
-- +goose Up
CREATE TABLE gov_incidents (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    title         TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    source_event  TEXT NOT NULL DEFAULT '',   -- the security event it was opened from
    discovered_at BIGINT NOT NULL,
    deadline_at   BIGINT NOT NULL,            -- discovery + 48 h: reported to the authority by then
    status        TEXT NOT NULL,              -- open, reported, closed
    reported_at   BIGINT,
    reported_to   TEXT NOT NULL DEFAULT '',
    closed_at     BIGINT,
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    warned_at     BIGINT                      -- the deadline-near alert was raised
);
CREATE INDEX gov_incidents_tenant ON gov_incidents (tenant_id, status);

CREATE TABLE gov_incident_notes (
    id          TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES gov_incidents (id),
    at          BIGINT NOT NULL,
    by_account  TEXT NOT NULL,
    text        TEXT NOT NULL,
    evidence    TEXT NOT NULL DEFAULT ''      -- a reference: an audit event id, a document, a ticket
);

CREATE TABLE gov_reviews (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    period        TEXT NOT NULL,              -- YYYY-MM
    opened_by     TEXT NOT NULL,
    opened_at     BIGINT NOT NULL,
    closed_by     TEXT NOT NULL DEFAULT '',
    closed_at     BIGINT,
    evidence      TEXT NOT NULL DEFAULT '',   -- the closed campaign as JSON
    evidence_hash TEXT NOT NULL DEFAULT '',   -- its SHA-256, also in the closing log event
    UNIQUE (tenant_id, period)
);

CREATE TABLE gov_review_lines (
    review_id     TEXT NOT NULL REFERENCES gov_reviews (id),
    line          INTEGER NOT NULL,
    account_id    TEXT NOT NULL,
    account_name  TEXT NOT NULL,
    role          TEXT NOT NULL,
    request_id    TEXT NOT NULL DEFAULT '',   -- the approval it rests on, if any
    privileged    BOOLEAN NOT NULL,
    relationships BIGINT NOT NULL,
    last_use      BIGINT,                     -- the newest session in this role
    unused        BOOLEAN NOT NULL,           -- not used for 60 days
    decision      TEXT NOT NULL DEFAULT '',   -- keep, revoke
    decided_by    TEXT NOT NULL DEFAULT '',
    decided_at    BIGINT,
    note          TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (review_id, line)
);

-- A month whose review was overdue and reported as such, once.
CREATE TABLE gov_overdue (
    tenant_id TEXT NOT NULL,
    period    TEXT NOT NULL,
    raised_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, period)
);

-- +goose Down
DROP TABLE gov_overdue;
DROP TABLE gov_review_lines;
DROP TABLE gov_reviews;
DROP TABLE gov_incident_notes;
DROP TABLE gov_incidents;
