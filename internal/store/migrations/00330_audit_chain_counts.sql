-- What remains of the MedMij chain log after its retention (LOG-6): counts
-- per tenant, month, step, app and outcome, without trace or session ids,
-- added to by audit.Purge in the transaction that removes the events.
-- +goose Up
CREATE TABLE audit_chain_counts (
    tenant_id TEXT NOT NULL,
    month     TEXT NOT NULL,   -- YYYY-MM, UTC
    step      TEXT NOT NULL,   -- authorize, consent, token, refresh, revoke, fhir, ...
    client    TEXT NOT NULL,   -- the app (OAuth client id)
    outcome   TEXT NOT NULL,
    n         BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, month, step, client, outcome)
);

-- +goose Down
DROP TABLE audit_chain_counts;
