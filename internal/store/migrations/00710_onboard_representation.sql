-- A representative's invitation carries the representation an application
-- admin checked (AZ-4): the represented patient (patient_id), its kind and,
-- for a parent, the child's birth date. It is recorded in access's table
-- in the activation's transaction, when the account becomes active.
-- Owned by internal/onboard.
-- +goose Up
ALTER TABLE onboard_invitations ADD COLUMN represent_kind TEXT NOT NULL DEFAULT '';
ALTER TABLE onboard_invitations ADD COLUMN represent_birth_date TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE onboard_invitations DROP COLUMN represent_birth_date;
ALTER TABLE onboard_invitations DROP COLUMN represent_kind;
