-- flywheel store, version 20261203000000: the fleet's history (issue 13).
-- One row per series (a workflow label or an owner) and bucket: minute rows
-- (step 60) for the last 48 hours, hour rows (step 3600) folded from them
-- after that, nothing older than 14 days. Times are Unix seconds (UTC), the
-- start of the bucket. max_runners NULL: some set of the series has no limit.
CREATE TABLE history_samples (
    kind        TEXT   NOT NULL CHECK (kind IN ('label', 'owner')),
    key         TEXT   NOT NULL,
    step        BIGINT NOT NULL CHECK (step IN (60, 3600)),
    t           BIGINT NOT NULL,
    running     BIGINT NOT NULL,
    max_runners BIGINT,
    started     BIGINT NOT NULL DEFAULT 0,
    finished    BIGINT NOT NULL DEFAULT 0,
    failed      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, key, step, t)
);
CREATE INDEX history_samples_age ON history_samples (step, t);

-- A scale set was paused from from_t to to_t; one row per series it serves.
CREATE TABLE history_pauses (
    kind      TEXT   NOT NULL CHECK (kind IN ('label', 'owner')),
    key       TEXT   NOT NULL,
    namespace TEXT   NOT NULL,
    name      TEXT   NOT NULL,
    paused_by TEXT,
    from_t    BIGINT NOT NULL,
    to_t      BIGINT NOT NULL,
    PRIMARY KEY (kind, key, namespace, name, from_t)
);
CREATE INDEX history_pauses_age ON history_pauses (to_t);
