-- CDS Hooks: registered clients, token ids seen (replay refusal), cards shown (suppression,
-- daily budget, feedback links) and clinician feedback.
CREATE TABLE cds_clients (
    iss         TEXT PRIMARY KEY,
    jwks        TEXT,
    jku         TEXT,
    added_by    TEXT NOT NULL,
    added_at    TEXT NOT NULL,
    removed_by  TEXT,
    removed_at  TEXT,
    CHECK ((jwks IS NULL) <> (jku IS NULL))
);

CREATE TABLE cds_seen_jti (
    iss         TEXT NOT NULL,
    jti         TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    PRIMARY KEY (iss, jti)
);
CREATE INDEX cds_seen_jti_expiry ON cds_seen_jti (expires_at);

CREATE TABLE cds_cards (
    uuid           TEXT   PRIMARY KEY,
    model          TEXT   NOT NULL,
    release_id     TEXT   NOT NULL,
    request_id     TEXT   NOT NULL,
    hook_instance  TEXT   NOT NULL,
    patient_key    TEXT,
    kind           TEXT   NOT NULL,
    indicator      TEXT   NOT NULL,
    indicator_rank BIGINT NOT NULL,
    created_at     TEXT   NOT NULL
);
CREATE INDEX cds_cards_patient ON cds_cards (model, patient_key, created_at);
CREATE INDEX cds_cards_day ON cds_cards (model, kind, created_at);

CREATE TABLE cds_feedback (
    seq                  BIGSERIAL PRIMARY KEY,
    model                TEXT NOT NULL,
    card_uuid            TEXT NOT NULL,
    request_id           TEXT,
    release_id           TEXT,
    outcome              TEXT NOT NULL,
    override_code        TEXT,
    override_display     TEXT,
    user_comment         TEXT,
    accepted_suggestions TEXT NOT NULL,
    outcome_at           TEXT NOT NULL,
    received_at          TEXT NOT NULL,
    client_iss           TEXT NOT NULL
);
CREATE INDEX cds_feedback_model ON cds_feedback (model, outcome_at);

CREATE TRIGGER cds_cards_no_change BEFORE UPDATE OR DELETE ON cds_cards
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();
CREATE TRIGGER cds_feedback_no_change BEFORE UPDATE OR DELETE ON cds_feedback
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();
