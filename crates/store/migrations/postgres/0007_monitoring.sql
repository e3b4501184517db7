-- Monitoring: reference profiles, outcomes, monitor policies, rule states, firings and their
-- webhook deliveries, incidents with their timelines, deployment controls, revalidation
-- notices and rehearsals.

-- Computed once per release from its training snapshot; never changed.
CREATE TABLE reference_profiles (
    release_id  TEXT PRIMARY KEY REFERENCES releases (id),
    digest      TEXT NOT NULL,
    summary     TEXT NOT NULL,
    computed_at TEXT NOT NULL
);
CREATE TRIGGER reference_profiles_no_change BEFORE UPDATE OR DELETE ON reference_profiles
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();

CREATE TABLE outcome_imports (
    id          BIGSERIAL PRIMARY KEY,
    source      TEXT NOT NULL,
    digest      TEXT NOT NULL,
    report      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    at          TEXT NOT NULL
);

-- One label per key: a second label for the same key is reported, never stored over the first.
CREATE TABLE outcomes (
    id          BIGSERIAL PRIMARY KEY,
    key_kind    TEXT NOT NULL CHECK (key_kind IN ('encounter', 'request')),
    key         TEXT NOT NULL,
    label       BIGINT NOT NULL CHECK (label IN (0, 1)),
    observed_at TEXT,
    imported_at TEXT NOT NULL,
    import_id   BIGINT NOT NULL REFERENCES outcome_imports (id),
    UNIQUE (key_kind, key)
);
CREATE TRIGGER outcomes_no_change BEFORE UPDATE OR DELETE ON outcomes
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();

CREATE TABLE monitor_policies (
    version     BIGINT PRIMARY KEY CHECK (version > 0),
    digest      TEXT NOT NULL,
    source      TEXT NOT NULL,
    applied_at  TEXT NOT NULL,
    applied_by  TEXT NOT NULL
);
CREATE TRIGGER monitor_policies_no_change BEFORE UPDATE OR DELETE ON monitor_policies
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();

-- Where each rule stands for each deployment and subgroup.
CREATE TABLE monitor_rule_states (
    rule        TEXT NOT NULL,
    model       TEXT NOT NULL REFERENCES models (name),
    release_id  TEXT NOT NULL REFERENCES releases (id),
    grp         TEXT NOT NULL,
    state       TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (rule, model, release_id, grp)
);

-- Every firing with the numbers behind it. The idempotency key makes an action happen once
-- however many servers run the rules.
CREATE TABLE monitor_firings (
    id              BIGSERIAL PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    policy_version  BIGINT NOT NULL,
    rule            TEXT NOT NULL,
    model           TEXT NOT NULL REFERENCES models (name),
    release_id      TEXT NOT NULL REFERENCES releases (id),
    grp             TEXT NOT NULL,
    window_start    TEXT NOT NULL,
    window_end      TEXT NOT NULL,
    step            TEXT NOT NULL,
    action          TEXT NOT NULL,
    detail          TEXT NOT NULL,
    at              TEXT NOT NULL
);
CREATE INDEX monitor_firings_model ON monitor_firings (model, id);
CREATE TRIGGER monitor_firings_no_change BEFORE UPDATE OR DELETE ON monitor_firings
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();

CREATE TABLE webhook_deliveries (
    id          BIGSERIAL PRIMARY KEY,
    firing_id   BIGINT REFERENCES monitor_firings (id),
    url         TEXT NOT NULL,
    attempt     BIGINT NOT NULL,
    status      BIGINT,
    error       TEXT,
    at          TEXT NOT NULL
);

CREATE TABLE incidents (
    id          BIGSERIAL PRIMARY KEY,
    title       TEXT NOT NULL,
    severity    TEXT NOT NULL CHECK (severity IN ('SEV1', 'SEV2', 'SEV3', 'SEV4')),
    status      TEXT NOT NULL CHECK (status IN ('open', 'investigating', 'mitigated', 'closed')),
    owner       TEXT,
    model       TEXT REFERENCES models (name),
    releases    TEXT NOT NULL,
    firing_id   BIGINT REFERENCES monitor_firings (id),
    postmortem  TEXT,
    opened_by   TEXT NOT NULL,
    opened_at   TEXT NOT NULL,
    closed_at   TEXT
);

CREATE TABLE incident_events (
    id          BIGSERIAL PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL,
    data        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, id);
CREATE TRIGGER incident_events_no_change BEFORE UPDATE OR DELETE ON incident_events
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();

-- Suppress (score and record, show nothing) or disable (no score) a model's deployment.
CREATE TABLE deployment_controls (
    id          BIGSERIAL PRIMARY KEY,
    model       TEXT NOT NULL REFERENCES models (name),
    control     TEXT NOT NULL CHECK (control IN ('suppress', 'disable')),
    release_id  TEXT,
    firing_id   BIGINT REFERENCES monitor_firings (id),
    reason      TEXT NOT NULL,
    set_by      TEXT NOT NULL,
    set_at      TEXT NOT NULL,
    lifted_by   TEXT,
    lifted_at   TEXT
);
CREATE UNIQUE INDEX deployment_controls_active ON deployment_controls (model, control) WHERE lifted_at IS NULL;

-- Review-by reminders and overdue flags, each sent once per release.
CREATE TABLE revalidation_notices (
    release_id  TEXT NOT NULL REFERENCES releases (id),
    kind        TEXT NOT NULL CHECK (kind IN ('due_soon', 'overdue', 'triggered')),
    due_at      TEXT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (release_id, kind)
);

-- A rehearsed scenario and what the policy did, kept as evidence.
CREATE TABLE rehearsals (
    id          BIGSERIAL PRIMARY KEY,
    model       TEXT NOT NULL REFERENCES models (name),
    release_id  TEXT NOT NULL REFERENCES releases (id),
    scenario    TEXT NOT NULL,
    result      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE TRIGGER rehearsals_no_change BEFORE UPDATE OR DELETE ON rehearsals
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();
