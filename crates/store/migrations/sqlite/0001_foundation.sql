-- Foundation: the audit chain, models, dataset snapshots and releases.
CREATE TABLE audit_events (
    seq        INTEGER PRIMARY KEY CHECK (seq > 0),
    at         TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL
);
CREATE INDEX audit_events_subject ON audit_events (subject, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: events cannot be changed'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: events cannot be deleted'); END;

CREATE TABLE models (
    name            TEXT    PRIMARY KEY,
    intended_use    TEXT    NOT NULL,
    risk_tier       INTEGER NOT NULL CHECK (risk_tier BETWEEN 1 AND 4),
    clinical_owner  TEXT    NOT NULL,
    technical_owner TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    created_by      TEXT    NOT NULL
);

CREATE TABLE dataset_snapshots (
    id             TEXT    PRIMARY KEY,
    name           TEXT    NOT NULL,
    content_digest TEXT    NOT NULL,
    format         TEXT    NOT NULL,
    n_rows         INTEGER NOT NULL,
    n_columns      INTEGER NOT NULL,
    snapshot       TEXT    NOT NULL,
    registered_at  TEXT    NOT NULL,
    registered_by  TEXT    NOT NULL
);
CREATE INDEX dataset_snapshots_name ON dataset_snapshots (name, registered_at);

CREATE TRIGGER dataset_snapshots_no_update BEFORE UPDATE ON dataset_snapshots
BEGIN SELECT RAISE(ABORT, 'dataset snapshots are immutable'); END;
CREATE TRIGGER dataset_snapshots_no_delete BEFORE DELETE ON dataset_snapshots
BEGIN SELECT RAISE(ABORT, 'dataset snapshots are immutable'); END;

CREATE TABLE releases (
    id              TEXT PRIMARY KEY,
    model           TEXT NOT NULL REFERENCES models (name),
    manifest        TEXT NOT NULL,
    artifact_digest TEXT NOT NULL,
    contract_digest TEXT NOT NULL,
    training_data   TEXT NOT NULL REFERENCES dataset_snapshots (id),
    registered_at   TEXT NOT NULL,
    registered_by   TEXT NOT NULL
);
CREATE INDEX releases_model ON releases (model, registered_at);

CREATE TRIGGER releases_no_update BEFORE UPDATE ON releases
BEGIN SELECT RAISE(ABORT, 'releases are immutable'); END;
CREATE TRIGGER releases_no_delete BEFORE DELETE ON releases
BEGIN SELECT RAISE(ABORT, 'releases are immutable'); END;
