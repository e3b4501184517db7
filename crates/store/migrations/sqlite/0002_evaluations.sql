-- Evaluations: a release scored on a dataset snapshot, with its JSON and HTML reports as blobs.
CREATE TABLE evaluations (
    id             TEXT PRIMARY KEY,
    release_id     TEXT NOT NULL REFERENCES releases (id),
    dataset_id     TEXT NOT NULL REFERENCES dataset_snapshots (id),
    options        TEXT NOT NULL,
    report_digest  TEXT NOT NULL,
    report_size    INTEGER NOT NULL,
    html_digest    TEXT NOT NULL,
    html_size      INTEGER NOT NULL,
    summary        TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    created_by     TEXT NOT NULL
);
CREATE INDEX evaluations_release ON evaluations (release_id, created_at);
CREATE INDEX evaluations_dataset ON evaluations (dataset_id, created_at);

CREATE TRIGGER evaluations_no_update BEFORE UPDATE ON evaluations
BEGIN SELECT RAISE(ABORT, 'evaluations are immutable'); END;
CREATE TRIGGER evaluations_no_delete BEFORE DELETE ON evaluations
BEGIN SELECT RAISE(ABORT, 'evaluations are immutable'); END;
