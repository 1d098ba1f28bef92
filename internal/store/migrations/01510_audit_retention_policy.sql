-- The retention in force (LOG-6), one row for the installation: changed only
-- through a four-eyes change request (GOV-1, internal/change) that a second
-- operator approves; `zorgkluis audit purge` never purges sooner. Owned by
-- internal/audit. Durations in seconds; no row: the defaults.
-- +goose Up
CREATE TABLE audit_retention_policy (
    id        TEXT PRIMARY KEY,   -- 'installation'
    technical BIGINT NOT NULL,
    chain     BIGINT NOT NULL,
    set_by    TEXT NOT NULL,      -- the proposer and the approver
    set_at    BIGINT NOT NULL
);

-- +goose Down
DROP TABLE audit_retention_policy;
