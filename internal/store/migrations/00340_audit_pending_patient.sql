-- The patient of each event waiting for the sequencer, so that a person's
-- view of their log (audit/viewcache.go) finds the patient's waiting events
-- in the index alone instead of looking up every waiting event of the
-- tenant. '' for events without a patient. Owned by internal/audit.
-- +goose Up
ALTER TABLE audit_pending ADD COLUMN patient_id TEXT NOT NULL DEFAULT '';
UPDATE audit_pending SET patient_id = COALESCE((SELECT e.patient_id FROM audit_events e WHERE e.id = audit_pending.event_id), '');
CREATE INDEX audit_pending_patient ON audit_pending(tenant_id, patient_id, event_id);

-- +goose Down
DROP INDEX audit_pending_patient;
ALTER TABLE audit_pending DROP COLUMN patient_id;
