-- Access rules beyond the direct care relationship: teams, delegations,
-- representation, emergency access, the operator procedure, tenant-defined
-- roles, approved rights and security events. Owned by internal/access.
-- Times are BIGINT Unix microseconds; lists are space separated.
-- +goose Up

-- Decide looks a relationship up by professional and patient (AZ-3); the
-- covering index answers it without touching the table.
CREATE INDEX access_rel_decide ON care_relationships(professional_id, patient_id, tenant_id, start_at, end_at, id);

-- Teams (workgroups) with members and assigned patients (AZ-3).
CREATE TABLE access_teams (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    name       TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX access_teams_name ON access_teams(tenant_id, name);

CREATE TABLE access_team_members (
    team_id    TEXT NOT NULL REFERENCES access_teams(id),
    account_id TEXT NOT NULL REFERENCES accounts(id),
    added_by   TEXT NOT NULL,
    added_at   BIGINT NOT NULL,
    removed_by TEXT,
    removed_at BIGINT
);
CREATE INDEX access_team_members_account ON access_team_members(account_id, team_id);

CREATE TABLE access_team_patients (
    team_id     TEXT NOT NULL REFERENCES access_teams(id),
    patient_id  TEXT NOT NULL REFERENCES patients(id),
    added_by    TEXT NOT NULL,
    added_at    BIGINT NOT NULL,
    removed_by  TEXT,
    removed_at  BIGINT
);
CREATE INDEX access_team_patients_patient ON access_team_patients(patient_id, team_id);

-- Delegation from a professional with a relationship to another
-- professional, time-limited and revocable (AZ-3).
CREATE TABLE access_delegations (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    from_id      TEXT NOT NULL REFERENCES accounts(id),
    to_id        TEXT NOT NULL REFERENCES accounts(id),
    patient_id   TEXT NOT NULL REFERENCES patients(id),
    reason       TEXT NOT NULL,
    start_at     BIGINT NOT NULL,
    end_at       BIGINT NOT NULL,
    revoked_by   TEXT,
    revoked_at   BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX access_delegations_decide ON access_delegations(to_id, patient_id);

-- Representation: a person acts for a patient (AZ-4).
CREATE TABLE access_representations (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    representative_id TEXT NOT NULL REFERENCES accounts(id),
    patient_id        TEXT NOT NULL REFERENCES patients(id),
    kind              TEXT NOT NULL,     -- parent, legal-representative, authorised
    categories        TEXT NOT NULL,     -- scope; '*' for every category
    start_at          BIGINT NOT NULL,
    end_at            BIGINT,
    recorded_by       TEXT NOT NULL,
    recorded_at       BIGINT NOT NULL,
    revoked_by        TEXT,
    revoked_at        BIGINT
);
CREATE INDEX access_representations_decide ON access_representations(representative_id, patient_id);

-- Emergency access (break-the-glass, AZ-5) and its review.
CREATE TABLE access_emergencies (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    professional_id TEXT NOT NULL REFERENCES accounts(id),
    patient_id      TEXT NOT NULL REFERENCES patients(id),
    reason          TEXT NOT NULL,
    start_at        BIGINT NOT NULL,
    end_at          BIGINT NOT NULL,
    review          TEXT NOT NULL DEFAULT 'pending', -- pending, justified, unjustified
    reviewed_by     TEXT,
    reviewed_at     BIGINT,
    review_note     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX access_emergencies_decide ON access_emergencies(professional_id, patient_id);
CREATE INDEX access_emergencies_review ON access_emergencies(tenant_id, review, start_at);

-- The operator procedure (AZ-6): request, decision by an officer of the
-- tenant, and the patients it covers.
CREATE TABLE access_operator_requests (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    operator_id   TEXT NOT NULL REFERENCES accounts(id),
    categories    TEXT NOT NULL,
    reason        TEXT NOT NULL,
    duration_us   BIGINT NOT NULL,
    requested_at  BIGINT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending', -- pending, approved, rejected
    decided_by    TEXT,
    decided_at    BIGINT,
    decision_note TEXT NOT NULL DEFAULT '',
    start_at      BIGINT,
    end_at        BIGINT
);
CREATE INDEX access_operator_requests_tenant ON access_operator_requests(tenant_id, requested_at);

CREATE TABLE access_operator_patients (
    request_id TEXT NOT NULL REFERENCES access_operator_requests(id),
    patient_id TEXT NOT NULL,
    PRIMARY KEY (request_id, patient_id)
);
CREATE INDEX access_operator_patients_patient ON access_operator_patients(patient_id);

-- Tenant-defined roles (AZ-2); every version is kept with who proposed and
-- who approved it. The newest approved version is in force.
CREATE TABLE access_role_defs (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    base        TEXT NOT NULL,           -- professional or assistant: which rules apply
    actions     TEXT NOT NULL,
    categories  TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending',
    proposed_by TEXT NOT NULL,
    proposed_at BIGINT NOT NULL,
    decided_by  TEXT,
    decided_at  BIGINT,
    note        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX access_role_defs_name ON access_role_defs(tenant_id, name, status, decided_at);

-- Requests for rights (AZ-7, AZ-8): requested by one person, approved by
-- another; privileged rights carry an end.
CREATE TABLE access_right_requests (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    role         TEXT NOT NULL,
    privileged   BOOLEAN NOT NULL,
    valid_until  BIGINT,
    reason       TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending', -- pending, approved, rejected, revoked
    decided_by   TEXT,
    decided_at   BIGINT,
    note         TEXT NOT NULL DEFAULT '',
    revoked_by   TEXT,
    revoked_at   BIGINT
);
CREATE INDEX access_right_requests_account ON access_right_requests(account_id, role, status);
CREATE INDEX access_right_requests_tenant ON access_right_requests(tenant_id, requested_at);

-- Security events for the security officer (LOG-9): emergency access,
-- privilege changes, operator access.
CREATE TABLE access_security_events (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,            -- '' for platform events
    kind       TEXT NOT NULL,
    account_id TEXT NOT NULL,
    subject_id TEXT NOT NULL DEFAULT '', -- patient or account concerned
    ref        TEXT NOT NULL DEFAULT '', -- the emergency, request or right
    detail     TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);
CREATE INDEX access_security_events_tenant ON access_security_events(tenant_id, created_at);

-- +goose Down
DROP TABLE access_security_events;
DROP TABLE access_right_requests;
DROP TABLE access_role_defs;
DROP TABLE access_operator_patients;
DROP TABLE access_operator_requests;
DROP TABLE access_emergencies;
DROP TABLE access_representations;
DROP TABLE access_delegations;
DROP TABLE access_team_patients;
DROP TABLE access_team_members;
DROP TABLE access_teams;
DROP INDEX access_rel_decide;
