-- Factors named by their owner (issue 20): an authenticator app gets a
-- label, set at enrolment and renamable, so pages and log lines name it in
-- the owner's words, never by its id. Security keys already have one
-- (webauthn_credentials.name). Existing apps are named by their kind and
-- their place in the order they were added, as the factors page numbered
-- them ("Authenticator-app 2"); revoked ones after the usable ones.
-- Owned by internal/authn.
-- +goose Up
ALTER TABLE totp_credentials ADD COLUMN label TEXT NOT NULL DEFAULT '';

UPDATE totp_credentials SET label = 'Authenticator-app ' || CAST((
    SELECT r.n FROM (
        SELECT id, ROW_NUMBER() OVER (PARTITION BY account_id ORDER BY CASE WHEN revoked_at IS NULL THEN 0 ELSE 1 END, created_at, id) AS n
        FROM totp_credentials
    ) r WHERE r.id = totp_credentials.id) AS TEXT);

-- +goose Down
ALTER TABLE totp_credentials DROP COLUMN label;
