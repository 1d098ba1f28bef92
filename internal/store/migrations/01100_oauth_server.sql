-- The authorisation server for persons' apps (EX-1, internal/oauth): the
-- registered clients, the tenants' policy on public clients, authorization
-- requests (pushed and pending), consents, codes and tokens. Codes, tokens
-- and request references are stored only as SHA-256 hashes, each the
-- primary key of its table: the database refuses a second one (MedMij asks
-- the server to check uniqueness). jtis holds the ids of client assertions
-- and DPoP proofs until they expire, so neither can be replayed.
-- +goose Up
CREATE TABLE oauth_clients (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL DEFAULT '',   -- '': registered by an operator for every tenant
    name          TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,              -- space-separated, matched exactly
    auth_method   TEXT NOT NULL,              -- private_key_jwt or none (public, PKCE only)
    jwks          TEXT NOT NULL DEFAULT '',   -- the client's public keys (private_key_jwt)
    scopes        TEXT NOT NULL,              -- the SMART scopes it may ask for
    require_par   BOOLEAN NOT NULL DEFAULT FALSE,
    require_dpop  BOOLEAN NOT NULL DEFAULT FALSE,
    introspect    BOOLEAN NOT NULL DEFAULT FALSE, -- a resource server that may introspect tokens
    consent_days  INTEGER NOT NULL,
    status        TEXT NOT NULL,              -- active, deactivated
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE oauth_tenant_policies (
    tenant_id    TEXT PRIMARY KEY,
    allow_public BOOLEAN NOT NULL,
    set_by       TEXT NOT NULL,
    set_at       BIGINT NOT NULL
);

CREATE TABLE oauth_requests (
    hash           BYTEA PRIMARY KEY,
    kind           TEXT NOT NULL,             -- pushed (RFC 9126) or pending (waiting for the person)
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    state          TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    dpop_jkt       TEXT NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);

CREATE TABLE oauth_consents (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    client_id    TEXT NOT NULL REFERENCES oauth_clients (id),
    account_id   TEXT NOT NULL,              -- the person who agreed
    patient_id   TEXT NOT NULL,              -- whose record: their own or one they represent
    on_behalf    BOOLEAN NOT NULL,
    scopes       TEXT NOT NULL,
    assurance    TEXT NOT NULL,              -- of the log-on that agreed
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    revoked_why  TEXT NOT NULL DEFAULT '',
    reuse_at     BIGINT,                     -- a refresh token was used twice (stolen?)
    last_used_at BIGINT
);
CREATE INDEX oauth_consents_account ON oauth_consents (account_id, created_at);

CREATE TABLE oauth_codes (
    hash           BYTEA PRIMARY KEY,
    consent_id     TEXT NOT NULL REFERENCES oauth_consents (id),
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    dpop_jkt       TEXT NOT NULL DEFAULT '',
    family         TEXT NOT NULL,            -- the tokens issued from this code
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);

CREATE TABLE oauth_tokens (
    hash       BYTEA PRIMARY KEY,
    kind       TEXT NOT NULL,                -- access or refresh
    family     TEXT NOT NULL,
    consent_id TEXT NOT NULL REFERENCES oauth_consents (id),
    client_id  TEXT NOT NULL,
    dpop_jkt   TEXT NOT NULL DEFAULT '',
    parent     BYTEA,                        -- the refresh token this one was rotated from
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    rotated_at BIGINT,                       -- a refresh token's use
    revoked_at BIGINT
);
CREATE INDEX oauth_tokens_family ON oauth_tokens (family);
CREATE INDEX oauth_tokens_consent ON oauth_tokens (consent_id);

CREATE TABLE oauth_jtis (
    hash       BYTEA PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE oauth_jtis;
DROP TABLE oauth_tokens;
DROP TABLE oauth_codes;
DROP TABLE oauth_consents;
DROP TABLE oauth_requests;
DROP TABLE oauth_tenant_policies;
DROP TABLE oauth_clients;
