-- +goose Up
CREATE TABLE care_relationships (id TEXT);
CREATE TABLE access_teams (id TEXT);
