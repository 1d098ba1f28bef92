-- The patient of each event waiting for the sequencer, so that a person's
-- view of their log (audit/viewcache.go) finds the patient's waiting events
-- in the queue's own small rows instead of looking up every waiting event
-- of the tenant. No index: the queue holds about a second of events, and
-- an index cost every append more (7 % fewer appends per second) than the
-- scan costs the view. '' for events without a patient. Owned by
-- internal/audit.
-- +goose Up
ALTER TABLE audit_pending ADD COLUMN patient_id TEXT NOT NULL DEFAULT '';
UPDATE audit_pending SET patient_id = COALESCE((SELECT e.patient_id FROM audit_events e WHERE e.id = audit_pending.event_id), '');

-- +goose Down
ALTER TABLE audit_pending DROP COLUMN patient_id;
