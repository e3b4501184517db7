-- Prediction records: one row per scored (or abstained) row, active or shadow. Written in
-- batches (group commit) before the answer is sent; never changed afterwards.
CREATE TABLE predictions (
    seq             BIGSERIAL PRIMARY KEY,
    request_id      TEXT    NOT NULL,
    mode            TEXT    NOT NULL CHECK (mode IN ('active', 'shadow')),
    recorded_at     TEXT    NOT NULL,
    model           TEXT    NOT NULL REFERENCES models (name),
    release_id      TEXT    NOT NULL REFERENCES releases (id),
    channel         TEXT    NOT NULL,
    patient_key     TEXT,
    encounter_key   TEXT,
    features        TEXT    NOT NULL,
    score           DOUBLE PRECISION CHECK (score IS NULL OR (score >= 0 AND score <= 1)),
    decision        TEXT,
    fallback_reason TEXT,
    latency_us      BIGINT  NOT NULL,
    context         TEXT    NOT NULL,
    CHECK (score IS NOT NULL OR fallback_reason IS NOT NULL),
    UNIQUE (request_id, mode)
);
CREATE INDEX predictions_model_time ON predictions (model, recorded_at);
CREATE INDEX predictions_release_time ON predictions (release_id, mode, recorded_at);
CREATE INDEX predictions_encounter ON predictions (encounter_key);

CREATE TRIGGER predictions_no_change BEFORE UPDATE OR DELETE ON predictions
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();
CREATE TRIGGER predictions_no_truncate BEFORE TRUNCATE ON predictions
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_refuse_change();
