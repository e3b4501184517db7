-- Foundation: the audit chain, models, dataset snapshots and releases.
CREATE TABLE audit_events (
    seq        BIGINT PRIMARY KEY CHECK (seq > 0),
    at         TEXT   NOT NULL,
    actor      TEXT   NOT NULL,
    action     TEXT   NOT NULL,
    subject    TEXT   NOT NULL,
    payload    TEXT   NOT NULL,
    prev_hash  TEXT   NOT NULL,
    hash       TEXT   NOT NULL
);
CREATE INDEX audit_events_subject ON audit_events (subject, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);

CREATE FUNCTION vigil_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: rows cannot be changed or deleted', TG_TABLE_NAME;
END
$$;

CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_refuse_change();

CREATE TABLE models (
    name            TEXT   PRIMARY KEY,
    intended_use    TEXT   NOT NULL,
    risk_tier       BIGINT NOT NULL CHECK (risk_tier BETWEEN 1 AND 4),
    clinical_owner  TEXT   NOT NULL,
    technical_owner TEXT   NOT NULL,
    created_at      TEXT   NOT NULL,
    created_by      TEXT   NOT NULL
);

CREATE TABLE dataset_snapshots (
    id             TEXT   PRIMARY KEY,
    name           TEXT   NOT NULL,
    content_digest TEXT   NOT NULL,
    format         TEXT   NOT NULL,
    n_rows         BIGINT NOT NULL,
    n_columns      BIGINT NOT NULL,
    snapshot       TEXT   NOT NULL,
    registered_at  TEXT   NOT NULL,
    registered_by  TEXT   NOT NULL
);
CREATE INDEX dataset_snapshots_name ON dataset_snapshots (name, registered_at);
CREATE TRIGGER dataset_snapshots_no_change BEFORE UPDATE OR DELETE ON dataset_snapshots
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();

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
CREATE TRIGGER releases_no_change BEFORE UPDATE OR DELETE ON releases
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();
