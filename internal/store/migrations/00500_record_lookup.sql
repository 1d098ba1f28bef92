-- Records: find a resource's patient by type and id without a tenant (the
-- operator procedure reaches across tenants). Owned by internal/record.
-- +goose Up
CREATE INDEX resources_type_id ON resources(type, id);

-- +goose Down
DROP INDEX resources_type_id;
