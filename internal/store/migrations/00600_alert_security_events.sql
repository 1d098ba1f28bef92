-- The one security-event queue (LOG-9), owned by internal/alert. It
-- replaces access_security_events (access) and auth_security_events
-- (authn), which kept two lists, the second without a tenant. An event
-- belongs to the tenant it concerns; one that concerns no tenant (a burst of
-- log-ons for an unknown user name, an operator without one) is in the
-- operators' queue, tenant_id ''.
-- +goose Up
CREATE TABLE alert_security_events (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,            -- '' for the operators' queue
    kind       TEXT NOT NULL,
    account_id TEXT NOT NULL DEFAULT '', -- who acted, or whose log-on was attacked
    subject_id TEXT NOT NULL DEFAULT '', -- patient or account concerned
    source     TEXT NOT NULL DEFAULT '', -- source address of a log-on attack
    ref        TEXT NOT NULL DEFAULT '', -- the emergency, request or right
    detail     TEXT NOT NULL DEFAULT '', -- free text; stays in the queue, never in an alert
    created_at BIGINT NOT NULL
);
CREATE INDEX alert_security_events_tenant ON alert_security_events(tenant_id, created_at);

INSERT INTO alert_security_events (id, tenant_id, kind, account_id, subject_id, source, ref, detail, created_at)
SELECT id, tenant_id, kind, account_id, subject_id, '', ref, detail, created_at FROM access_security_events;

-- Log-on events had no tenant: they get their account's (read once here from
-- identity's accounts), the operators' queue without one. The typed user
-- name had a column of its own; it moves into the detail, as authn now
-- writes it, because the detail never leaves the queue.
INSERT INTO alert_security_events (id, tenant_id, kind, account_id, subject_id, source, ref, detail, created_at)
SELECT e.id, COALESCE(a.tenant_id, ''), e.kind, COALESCE(e.account_id, ''), '', e.source, '',
       CASE WHEN e.username = '' THEN e.detail ELSE e.detail || ' (user name ' || e.username || ')' END, e.created_at
FROM auth_security_events e LEFT JOIN accounts a ON a.id = e.account_id;

DROP TABLE access_security_events;
DROP TABLE auth_security_events;

-- +goose Down
CREATE TABLE access_security_events (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    account_id TEXT NOT NULL,
    subject_id TEXT NOT NULL DEFAULT '',
    ref        TEXT NOT NULL DEFAULT '',
    detail     TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);
CREATE INDEX access_security_events_tenant ON access_security_events(tenant_id, created_at);
CREATE TABLE auth_security_events (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    account_id TEXT,
    username   TEXT NOT NULL,
    source     TEXT NOT NULL,
    detail     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX auth_security_events_time ON auth_security_events(created_at);

-- The kinds authn raises go back to its table (the user name stays in the
-- detail), the rest to access's.
INSERT INTO auth_security_events (id, kind, account_id, username, source, detail, created_at)
SELECT id, kind, CASE WHEN account_id = '' THEN NULL ELSE account_id END, '', source, detail, created_at
FROM alert_security_events WHERE kind IN ('account-attack', 'source-attack', 'privilege-mix', 'webauthn-sign-count');
INSERT INTO access_security_events (id, tenant_id, kind, account_id, subject_id, ref, detail, created_at)
SELECT id, tenant_id, kind, account_id, subject_id, ref, detail, created_at
FROM alert_security_events WHERE kind NOT IN ('account-attack', 'source-attack', 'privilege-mix', 'webauthn-sign-count');

DROP TABLE alert_security_events;
