-- Single sign-on per tenant (AUTH-3, internal/sso): the organisation's own
-- OpenID Connect providers, proposed by one application admin and approved
-- by another (GOV-1); the links of upstream identities (issuer, subject) to
-- accounts, made after a local log-on or by an admin, never by e-mail; and
-- the state of log-ons in flight (state, nonce, PKCE verifier), stored
-- hashed by state and used once.
-- +goose Up
CREATE TABLE sso_providers (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    name          TEXT NOT NULL,
    issuer        TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    secret_sealed BYTEA,                     -- the client secret under the master key
    secret_env    TEXT NOT NULL DEFAULT '',  -- or the environment variable holding it
    allowed_amr   TEXT NOT NULL DEFAULT '',  -- space-separated; '' any
    trust_mfa     BOOLEAN NOT NULL,          -- an amr proving two factors counts as two
    required_acr  TEXT NOT NULL DEFAULT '',
    max_age       BIGINT NOT NULL DEFAULT 0, -- seconds since the upstream authentication; 0 none
    status        TEXT NOT NULL,             -- proposed, active, rejected, disabled, expired
    proposed_by   TEXT NOT NULL,
    proposed_at   BIGINT NOT NULL,
    decided_by    TEXT NOT NULL DEFAULT '',
    decided_at    BIGINT
);
CREATE INDEX sso_providers_tenant ON sso_providers (tenant_id, status);

CREATE TABLE sso_links (
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    account_id TEXT NOT NULL,
    tenant_id  TEXT NOT NULL,
    linked_by  TEXT NOT NULL,                -- the account itself (after a local log-on) or an admin
    linked_at  BIGINT NOT NULL,
    last_mfa   BOOLEAN NOT NULL DEFAULT FALSE, -- the last upstream log-on proved two factors
    PRIMARY KEY (issuer, subject),
    UNIQUE (account_id, issuer)
);

CREATE TABLE sso_states (
    hash        BYTEA PRIMARY KEY,
    provider_id TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    verifier    TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

-- An upstream identity waiting for its first local log-on to be linked.
CREATE TABLE sso_pending_links (
    hash        BYTEA PRIMARY KEY,
    provider_id TEXT NOT NULL,
    issuer      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

-- +goose Down
DROP TABLE sso_pending_links;
DROP TABLE sso_states;
DROP TABLE sso_links;
DROP TABLE sso_providers;
