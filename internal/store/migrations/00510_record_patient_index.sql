-- Records: a patient's resources by (tenant, patient, type, id, version).
-- The old index (tenant_id, patient_id, type) tied with the primary key
-- (tenant_id, type, id, version) for a patient's search, and SQLite without
-- planner statistics chose the primary key, walking every resource of the
-- type in the tenant. This index matches the search's equality columns and
-- its window ordering, so it wins without statistics. Owned by
-- internal/record.
-- +goose Up
CREATE INDEX resources_patient_v ON resources(tenant_id, patient_id, type, id, version);
DROP INDEX resources_patient;

-- +goose Down
CREATE INDEX resources_patient ON resources(tenant_id, patient_id, type);
DROP INDEX resources_patient_v;
