-- Governance: users and roles, gate policies, release stages, promotions, sign-offs,
-- exceptions, rollback drills and structured case reviews.
CREATE TABLE users (
    name        TEXT PRIMARY KEY,
    roles       TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    revoked_at  TEXT,
    revoked_by  TEXT
);

CREATE TABLE gate_policies (
    version     INTEGER PRIMARY KEY CHECK (version > 0),
    digest      TEXT NOT NULL,
    source      TEXT NOT NULL,
    applied_at  TEXT NOT NULL,
    applied_by  TEXT NOT NULL
);
CREATE TRIGGER gate_policies_no_update BEFORE UPDATE ON gate_policies
BEGIN SELECT RAISE(ABORT, 'gate policies are immutable: apply a new version'); END;
CREATE TRIGGER gate_policies_no_delete BEFORE DELETE ON gate_policies
BEGIN SELECT RAISE(ABORT, 'gate policies are immutable: apply a new version'); END;

-- The current stage of each release that has left `registered`.
CREATE TABLE release_stages (
    release_id  TEXT PRIMARY KEY REFERENCES releases (id),
    model       TEXT NOT NULL REFERENCES models (name),
    stage       TEXT NOT NULL CHECK (stage IN ('registered', 'validated', 'approved', 'shadow', 'production', 'retired')),
    since       TEXT NOT NULL
);
-- At most one release of a model in production, and one in shadow.
CREATE UNIQUE INDEX release_stages_one_production ON release_stages (model) WHERE stage = 'production';
CREATE UNIQUE INDEX release_stages_one_shadow ON release_stages (model) WHERE stage = 'shadow';

CREATE TABLE promotions (
    id              INTEGER PRIMARY KEY,
    model           TEXT NOT NULL REFERENCES models (name),
    release_id      TEXT NOT NULL REFERENCES releases (id),
    from_stage      TEXT NOT NULL,
    to_stage        TEXT NOT NULL,
    kind            TEXT NOT NULL,
    related_release TEXT,
    reason          TEXT NOT NULL,
    exceptions      TEXT NOT NULL,
    actor           TEXT NOT NULL,
    at              TEXT NOT NULL
);
CREATE INDEX promotions_model ON promotions (model, id);
CREATE TRIGGER promotions_no_update BEFORE UPDATE ON promotions
BEGIN SELECT RAISE(ABORT, 'promotions are append-only'); END;
CREATE TRIGGER promotions_no_delete BEFORE DELETE ON promotions
BEGIN SELECT RAISE(ABORT, 'promotions are append-only'); END;

CREATE TABLE sign_offs (
    id              INTEGER PRIMARY KEY,
    release_id      TEXT NOT NULL REFERENCES releases (id),
    role            TEXT NOT NULL,
    user_name       TEXT NOT NULL,
    decision        TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')),
    comment         TEXT NOT NULL,
    evidence_digest TEXT NOT NULL,
    at              TEXT NOT NULL
);
CREATE INDEX sign_offs_release ON sign_offs (release_id, id);
CREATE TRIGGER sign_offs_no_update BEFORE UPDATE ON sign_offs
BEGIN SELECT RAISE(ABORT, 'sign-offs are append-only'); END;
CREATE TRIGGER sign_offs_no_delete BEFORE DELETE ON sign_offs
BEGIN SELECT RAISE(ABORT, 'sign-offs are append-only'); END;

CREATE TABLE gate_exceptions (
    id          INTEGER PRIMARY KEY,
    release_id  TEXT NOT NULL REFERENCES releases (id),
    gate        TEXT NOT NULL,
    rationale   TEXT NOT NULL,
    granted_by  TEXT NOT NULL,
    granted_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
CREATE INDEX gate_exceptions_release ON gate_exceptions (release_id, id);
CREATE TRIGGER gate_exceptions_no_update BEFORE UPDATE ON gate_exceptions
BEGIN SELECT RAISE(ABORT, 'exceptions are append-only'); END;
CREATE TRIGGER gate_exceptions_no_delete BEFORE DELETE ON gate_exceptions
BEGIN SELECT RAISE(ABORT, 'exceptions are append-only'); END;

CREATE TABLE rollback_drills (
    id           INTEGER PRIMARY KEY,
    model        TEXT NOT NULL REFERENCES models (name),
    from_release TEXT NOT NULL,
    to_release   TEXT,
    reason       TEXT NOT NULL,
    actor        TEXT NOT NULL,
    at           TEXT NOT NULL
);
CREATE INDEX rollback_drills_model ON rollback_drills (model, id);

CREATE TABLE review_samples (
    id          INTEGER PRIMARY KEY,
    release_id  TEXT NOT NULL REFERENCES releases (id),
    dataset_id  TEXT NOT NULL REFERENCES dataset_snapshots (id),
    method      TEXT NOT NULL,
    cases       TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    at          TEXT NOT NULL
);

CREATE TABLE case_reviews (
    id          INTEGER PRIMARY KEY,
    release_id  TEXT NOT NULL REFERENCES releases (id),
    dataset_id  TEXT NOT NULL REFERENCES dataset_snapshots (id),
    case_row    INTEGER NOT NULL CHECK (case_row >= 0),
    verdict     TEXT NOT NULL CHECK (verdict IN ('plausible', 'implausible', 'unsafe')),
    comment     TEXT NOT NULL,
    reviewer    TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX case_reviews_release ON case_reviews (release_id, id);
CREATE TRIGGER case_reviews_no_update BEFORE UPDATE ON case_reviews
BEGIN SELECT RAISE(ABORT, 'case reviews are append-only'); END;
CREATE TRIGGER case_reviews_no_delete BEFORE DELETE ON case_reviews
BEGIN SELECT RAISE(ABORT, 'case reviews are append-only'); END;
