-- Evaluations: a release scored on a dataset snapshot, with its JSON and HTML reports as blobs.
CREATE TABLE evaluations (
    id             TEXT   PRIMARY KEY,
    release_id     TEXT   NOT NULL REFERENCES releases (id),
    dataset_id     TEXT   NOT NULL REFERENCES dataset_snapshots (id),
    options        TEXT   NOT NULL,
    report_digest  TEXT   NOT NULL,
    report_size    BIGINT NOT NULL,
    html_digest    TEXT   NOT NULL,
    html_size      BIGINT NOT NULL,
    summary        TEXT   NOT NULL,
    created_at     TEXT   NOT NULL,
    created_by     TEXT   NOT NULL
);
CREATE INDEX evaluations_release ON evaluations (release_id, created_at);
CREATE INDEX evaluations_dataset ON evaluations (dataset_id, created_at);
CREATE TRIGGER evaluations_no_change BEFORE UPDATE OR DELETE ON evaluations
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();
