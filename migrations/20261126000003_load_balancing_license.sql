-- Load-balancing pools (one config per model, ordered entries) and installed licenses.

CREATE TABLE lb_configs (
    model_id          uuid PRIMARY KEY REFERENCES models (id) ON DELETE CASCADE,
    workspace_id      uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    enabled           boolean NOT NULL DEFAULT false,
    cooldown_seconds  integer NOT NULL DEFAULT 60 CHECK (cooldown_seconds BETWEEN 1 AND 3600),
    max_attempts      integer NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 10),
    -- Starts at 1, bumps once per successful write (the ETag).
    version           bigint NOT NULL DEFAULT 1,
    updated_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX lb_configs_workspace_idx ON lb_configs (workspace_id);

INSERT INTO lb_configs (model_id, workspace_id) SELECT id, workspace_id FROM models;

CREATE TABLE lb_entries (
    id             uuid PRIMARY KEY,
    model_id       uuid NOT NULL REFERENCES lb_configs (model_id) ON DELETE CASCADE,
    workspace_id   uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    position       integer NOT NULL,
    -- NULL is the Default Config entry: the model's current default credential.
    credential_id  uuid REFERENCES credentials (id) ON DELETE CASCADE,
    enabled        boolean NOT NULL DEFAULT true,
    weight         integer NOT NULL DEFAULT 1 CHECK (weight BETWEEN 1 AND 100),
    CONSTRAINT lb_entries_position_key UNIQUE (model_id, position)
);
CREATE INDEX lb_entries_credential_idx ON lb_entries (credential_id);

CREATE TABLE licenses (
    id            uuid PRIMARY KEY,
    token         text NOT NULL,
    jti           text,
    licensee      text NOT NULL,
    expires_at    timestamptz NOT NULL,
    installed_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    installed_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX licenses_installed_idx ON licenses (installed_at DESC);
