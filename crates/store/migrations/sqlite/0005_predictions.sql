-- Prediction records: one row per scored (or abstained) row, active or shadow. Written in
-- batches (group commit) before the answer is sent; never changed afterwards.
CREATE TABLE predictions (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id      TEXT    NOT NULL,
    mode            TEXT    NOT NULL CHECK (mode IN ('active', 'shadow')),
    recorded_at     TEXT    NOT NULL,
    model           TEXT    NOT NULL REFERENCES models (name),
    release_id      TEXT    NOT NULL REFERENCES releases (id),
    channel         TEXT    NOT NULL,
    patient_key     TEXT,
    encounter_key   TEXT,
    features        TEXT    NOT NULL,
    score           REAL    CHECK (score IS NULL OR (score >= 0 AND score <= 1)),
    decision        TEXT,
    fallback_reason TEXT,
    latency_us      INTEGER NOT NULL,
    context         TEXT    NOT NULL,
    CHECK (score IS NOT NULL OR fallback_reason IS NOT NULL),
    UNIQUE (request_id, mode)
);
CREATE INDEX predictions_model_time ON predictions (model, recorded_at);
CREATE INDEX predictions_release_time ON predictions (release_id, mode, recorded_at);
CREATE INDEX predictions_encounter ON predictions (encounter_key);

CREATE TRIGGER predictions_no_update BEFORE UPDATE ON predictions
BEGIN SELECT RAISE(ABORT, 'prediction records are immutable'); END;
CREATE TRIGGER predictions_no_delete BEFORE DELETE ON predictions
BEGIN SELECT RAISE(ABORT, 'prediction records are immutable'); END;
