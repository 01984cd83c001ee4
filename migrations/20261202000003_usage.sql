-- The usage ledger (DESIGN §15): per workspace, API key, model, serving credential and UTC
-- minute, what the gateway served. Each replica adds its own increments (an additive upsert),
-- so the rows are exact across replicas. No foreign keys to keys, models or credentials:
-- usage outlives them (names are joined when present); a workspace takes its rows with it.
CREATE TABLE usage_minutes (
    workspace_id         uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- The minute's start (UTC).
    minute               timestamptz NOT NULL,
    api_key_id           uuid NOT NULL,
    model_id             uuid NOT NULL,
    -- The nil uuid when no credential served (Rotor's own refusals, e.g. all cooling down),
    -- so the key columns can form the primary key.
    credential_id        uuid NOT NULL,
    -- The model's name when the row was first written (kept after the model is deleted).
    model_name           text NOT NULL,
    requests             bigint NOT NULL DEFAULT 0,
    errors               bigint NOT NULL DEFAULT 0,
    -- Cached input tokens included.
    input_tokens         bigint NOT NULL DEFAULT 0,
    output_tokens        bigint NOT NULL DEFAULT 0,
    cached_input_tokens  bigint NOT NULL DEFAULT 0,
    -- Workspace then minute first: a range query over one workspace reads one contiguous
    -- stretch of this index.
    PRIMARY KEY (workspace_id, minute, api_key_id, model_id, credential_id)
);
-- The retention sweep deletes by age across workspaces.
CREATE INDEX usage_minutes_minute_idx ON usage_minutes (minute);

-- The same counts per hour, written in the same transaction as the minutes: the usage API
-- reads whole hours here and only the partial hours at a range's edges from the minutes,
-- so a 92-day query over a busy workspace reads ~2,200 hours per series, not ~132,000 minutes.
CREATE TABLE usage_hours (
    workspace_id         uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    hour                 timestamptz NOT NULL,
    api_key_id           uuid NOT NULL,
    model_id             uuid NOT NULL,
    credential_id        uuid NOT NULL,
    model_name           text NOT NULL,
    requests             bigint NOT NULL DEFAULT 0,
    errors               bigint NOT NULL DEFAULT 0,
    input_tokens         bigint NOT NULL DEFAULT 0,
    output_tokens        bigint NOT NULL DEFAULT 0,
    cached_input_tokens  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, hour, api_key_id, model_id, credential_id)
);
CREATE INDEX usage_hours_hour_idx ON usage_hours (hour);

-- Optional prices of a model, US dollars per million tokens (cached input at the input
-- price); the API bounds them the same way.
ALTER TABLE models
    ADD COLUMN input_usd_per_mtok numeric
        CONSTRAINT models_input_usd_per_mtok_check
        CHECK (input_usd_per_mtok IS NULL OR input_usd_per_mtok BETWEEN 0 AND 100000),
    ADD COLUMN output_usd_per_mtok numeric
        CONSTRAINT models_output_usd_per_mtok_check
        CHECK (output_usd_per_mtok IS NULL OR output_usd_per_mtok BETWEEN 0 AND 100000);
