-- Four eyes (GOV-1, internal/change): one table of change requests for every
-- security-relevant setting. One admin proposes, another approves; the
-- owning package applies the change in the approval's transaction and keeps
-- writing its own tables. The payload never holds a secret in clear.
-- +goose Up
CREATE TABLE change_requests (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,               -- '' for a platform-wide change (operators)
    kind        TEXT NOT NULL,               -- the owner's registered kind, e.g. access.role
    payload     TEXT NOT NULL,               -- JSON for the owner's apply
    summary     TEXT NOT NULL,               -- for the people who decide
    subject_id  TEXT NOT NULL DEFAULT '',    -- the account the change gives rights to: never its approver
    proposed_by TEXT NOT NULL,
    proposed_at BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    status      TEXT NOT NULL,               -- pending, approved, rejected, expired, failed
    decided_by  TEXT NOT NULL DEFAULT '',
    decided_at  BIGINT,
    note        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX change_requests_tenant ON change_requests (tenant_id, status, proposed_at);
CREATE INDEX change_requests_expiry ON change_requests (status, expires_at);

-- The role definitions, right requests and CA requests pending before this migration
-- become change requests with the same id, so they can still be decided
-- (the owner's row keeps the details; the payload is empty).
INSERT INTO change_requests (id, tenant_id, kind, payload, summary, subject_id, proposed_by, proposed_at, expires_at, status)
SELECT id, tenant_id, 'access.role', '{}', 'role ' || name || ': ' || actions || ' on ' || categories, '', proposed_by, proposed_at,
       proposed_at + 604800000000, 'pending'
FROM access_role_defs WHERE status = 'pending';
INSERT INTO change_requests (id, tenant_id, kind, payload, summary, subject_id, proposed_by, proposed_at, expires_at, status)
SELECT id, tenant_id, 'access.right', '{}', 'role ' || role || ' for account ' || account_id, account_id, requested_by, requested_at,
       requested_at + 604800000000, 'pending'
FROM access_right_requests WHERE status = 'pending';
INSERT INTO change_requests (id, tenant_id, kind, payload, summary, subject_id, proposed_by, proposed_at, expires_at, status)
SELECT id, tenant_id, 'pki.' || kind, detail, 'CA ' || kind || ' for ' || tenant_id, '', proposed_by, proposed_at,
       proposed_at + 604800000000, 'pending'
FROM pki_requests WHERE status = 'pending';

-- +goose Down
DROP TABLE change_requests;
