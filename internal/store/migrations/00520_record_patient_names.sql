-- Records: each patient's display name ("J. de Vries (1984)"), derived from
-- the Patient resource when record writes it and sealed with the patient's
-- data key (keys.PatientNameAD), so a shredded patient's name is unreadable
-- too. The security officer's log pages name patients from it, through
-- record.Store.PatientNames with a logged log reading; nothing else reads
-- it. Owned by internal/record.
-- +goose Up
CREATE TABLE record_patient_names (
    tenant_id  TEXT   NOT NULL,
    patient_id TEXT   NOT NULL,
    name       BYTEA  NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, patient_id)
);

-- +goose Down
DROP TABLE record_patient_names;
