-- Data checks: the result of `vigil dataset check` on a snapshot, with its report as a blob.
CREATE TABLE data_checks (
    id                TEXT    PRIMARY KEY,
    snapshot_id       TEXT    NOT NULL REFERENCES dataset_snapshots (id),
    contract_digest   TEXT    NOT NULL,
    options           TEXT    NOT NULL,
    report_digest     TEXT    NOT NULL,
    passed            INTEGER NOT NULL,
    blocking_failures TEXT    NOT NULL,
    created_at        TEXT    NOT NULL,
    created_by        TEXT    NOT NULL
);
CREATE INDEX data_checks_snapshot ON data_checks (snapshot_id, created_at);

CREATE TRIGGER data_checks_no_update BEFORE UPDATE ON data_checks
BEGIN SELECT RAISE(ABORT, 'data check results are immutable'); END;
CREATE TRIGGER data_checks_no_delete BEFORE DELETE ON data_checks
BEGIN SELECT RAISE(ABORT, 'data check results are immutable'); END;
